//! `SeatLock` strategy **optimistic**: one statement reads the seats
//! without locking them and claims each one with a conditional `UPDATE ...
//! WHERE version = <the version read> AND status = 'AVAILABLE'`, then writes
//! the reservation, its seats and its outbox row: one round trip. If a claim
//! matches no row, someone changed that seat since the read: the statement
//! grants nothing (or aborts, if it won only some seats) and the hold is
//! tried again after a jittered backoff, a bounded number of times. A seat
//! already taken is a clean `SeatTaken` at once, never a retry, and so is a
//! hold past the per-buyer limit. A refused hold's answer carries the seats
//! as the statement saw them; only when they show no reason (every one
//! free then: a lost race) are they read again to tell a race from a
//! refusal.
//!
//! Why it cannot oversell: a claim only succeeds against the exact version
//! that was read as AVAILABLE, and every write to a seat bumps its version,
//! so of two requests that read the same version at most one can claim it
//! (PostgreSQL re-checks the WHERE clause against the row's latest version
//! after waiting for the other's row lock). The partial unique index on
//! active reservation seats is the last word behind that.
//!
//! Why different seats never conflict: the version is per seat. Nothing in a
//! hold writes a row another user's hold writes (no schedule version, no
//! schedule counter; the per-buyer count is the user's own row), so 50
//! users booking 50 different seats all succeed on the first attempt. Two
//! overlapping multi-seat claims can wait for each other's rows in opposite
//! orders; PostgreSQL then aborts one as a deadlock, which is retried like
//! any lost race.

use async_trait::async_trait;
use booking_domain::*;
use booking_store_postgres::holds::{
    explain_refusal, hold_failed, is_lost_race, Hold, HoldAnswer, HoldSql,
};
use booking_store_postgres::prepared::Prepared;
use booking_store_postgres::tx::{committed_row, run_to_completion};
use booking_store_postgres::{hold_error, hold_writes_sql, PgStore};
use rand::Rng;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The whole hold. `seen` is a plain read (no row lock) that filters on
/// nothing but the primary key, so no plan can scan a schedule's seats to
/// find them; `claimed` claims
/// each seat only at the version `seen` read, so a seat someone wrote since
/// (PostgreSQL re-checks the `WHERE` against the latest version) is not
/// claimed; `claim_all_or_nothing` (a migration) aborts the statement if
/// some seats were claimed and others not.
pub const HOLD: &str = concat!(
    "\
WITH seen AS (
    SELECT id, schedule_id, status, version FROM seats
     WHERE id = ANY($1)
     ORDER BY id
), claimed AS (
    UPDATE seats SET status = 'HELD', version = seats.version + 1
      FROM seen
     WHERE seats.id = seen.id AND seats.version = seen.version
       AND seats.status = 'AVAILABLE'
       AND (SELECT count(*) FROM seen
             WHERE schedule_id = $2 AND status = 'AVAILABLE') = cardinality($1)
    RETURNING seats.id, seats.price
), granted AS (
    SELECT sum(price)::bigint AS total FROM claimed
    HAVING claim_all_or_nothing(count(*), cardinality($1))
),",
    hold_writes_sql!()
);

struct OptimisticHold;

impl HoldSql for OptimisticHold {
    const SQL: &'static str = HOLD;
}

/// How often and how patiently a hold retries after losing a race.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 means a single attempt.
    pub max_retries: u32,
    /// The first backoff; it doubles per retry, jittered by ±50%.
    pub base_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            base_backoff: Duration::from_millis(5),
        }
    }
}

impl RetryPolicy {
    fn backoff(&self, retry: u32) -> Duration {
        let exp = self.base_backoff.saturating_mul(1 << retry.min(10));
        exp.mul_f64(rand::thread_rng().gen_range(0.5..1.5))
    }
}

#[derive(Debug, Clone)]
pub struct OptimisticSeatLock {
    store: PgStore,
    retry: RetryPolicy,
    /// Retries after a lost race, for metrics.
    retries: Arc<AtomicU64>,
}

impl OptimisticSeatLock {
    pub const NAME: &'static str = "optimistic";

    pub fn new(store: PgStore, retry: RetryPolicy) -> Self {
        Self {
            store,
            retry,
            retries: Arc::default(),
        }
    }
}

/// How one attempt ended, when it did not hold the seats.
#[derive(Debug)]
enum Miss {
    /// A definite answer: do not retry.
    Refused(HoldError),
    /// A seat changed between our read and our claim: retry may succeed.
    Conflict,
}

#[async_trait]
impl SeatLock for OptimisticSeatLock {
    fn strategy(&self) -> &'static str {
        Self::NAME
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![("retries", AtomicU64::load(&self.retries, Ordering::Relaxed))]
    }

    #[tracing::instrument(
        name = "hold_seats",
        skip_all,
        fields(strategy = "optimistic", schedule = %request.schedule_id, seats = request.seat_ids.len())
    )]
    async fn hold_seats(&self, request: &HoldRequest) -> Result<Reservation, HoldError> {
        let mut retry = 0;
        loop {
            match self.attempt(request).await? {
                Ok(reservation) => return Ok(reservation),
                Err(Miss::Refused(e)) => return Err(e),
                Err(Miss::Conflict) if retry < self.retry.max_retries => {
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(self.retry.backoff(retry)).await;
                    retry += 1;
                }
                Err(Miss::Conflict) => {
                    tracing::debug!(retries = retry, "optimistic hold gave up");
                    return Err(HoldError::Contention);
                }
            }
        }
    }
}

impl OptimisticSeatLock {
    /// One statement; on a miss, a read that says why.
    async fn attempt(&self, request: &HoldRequest) -> Result<Result<Reservation, Miss>, HoldError> {
        let mut conn = self.store.conn().await?;
        let owned = request.clone();
        // Its own task: a dropped caller cannot cut the statement short.
        run_to_completion(async move {
            let answer: Option<HoldAnswer> =
                match committed_row(Prepared(Hold::<OptimisticHold>::new(&owned)), &mut conn).await
                {
                    Ok(answer) => answer,
                    // Won some seats and lost others, or deadlocked with another claim.
                    Err(e) if is_lost_race(&e) => return Ok(Err(Miss::Conflict)),
                    // A definite answer (the per-buyer limit among them): no retry.
                    Err(e) => return Err(hold_failed(&mut conn, e, &owned).await),
                };
            if let Some(reservation) = answer.as_ref().and_then(|a| a.reservation(&owned)) {
                return Ok(Ok(reservation));
            }
            if let Some(refused) = answer.as_ref().and_then(|a| a.refusal(&owned)) {
                return Ok(Err(Miss::Refused(refused)));
            }
            match explain_refusal(&mut conn, &owned).await {
                Ok(Some(refused)) => Ok(Err(Miss::Refused(refused))),
                // Every seat free: someone wrote one between our read and claim.
                Ok(None) => Ok(Err(Miss::Conflict)),
                Err(e) => Err(hold_error(e, &owned)),
            }
        })
        .await?
    }
}
