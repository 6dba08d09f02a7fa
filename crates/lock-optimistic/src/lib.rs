//! `SeatLock` strategy **optimistic**: read the seats without locking them,
//! then claim each one with a conditional `UPDATE ... WHERE version = ? AND
//! status = 'AVAILABLE'`. If a claim matches no row, someone changed that
//! seat since we read it: roll back and try again after a jittered backoff,
//! a bounded number of times. A seat already taken is a clean `SeatTaken` at
//! once, never a retry.
//!
//! Why it cannot oversell: a claim only succeeds against the exact version
//! that was read as AVAILABLE, and every write to a seat bumps its version,
//! so of two requests that read the same version at most one can claim it
//! (PostgreSQL re-checks the WHERE clause after waiting for the other's row
//! lock). The partial unique index on active reservation seats is the last
//! word behind that.
//!
//! Why different seats never conflict: the version is per seat. Nothing in a
//! hold writes a shared row (no schedule version, no stored counter), so 50
//! users booking 50 different seats all succeed on the first attempt.
//! Claims go seat by seat in ascending id order, so two overlapping
//! multi-seat requests cannot deadlock on each other's row locks.

use async_trait::async_trait;
use booking_domain::*;
use booking_store_postgres::holds::{refuse_unholdable, total_price, SeatSnapshot};
use booking_store_postgres::tx::{in_bounded_transaction, TxError};
use booking_store_postgres::{hold_error, insert_pending_reservation, PgStore};
use diesel::sql_types::{Array, BigInt};
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rand::Rng;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A plain read: no row lock is taken.
const READ_SEATS: &str = "\
SELECT id, schedule_id, status, price, version FROM seats
 WHERE id = ANY($1)
 ORDER BY id";

/// Succeeds only if nobody wrote the seat since we read `version`.
const CLAIM_SEAT: &str = "\
UPDATE seats SET status = 'HELD', version = version + 1
 WHERE id = $1 AND version = $2 AND status = 'AVAILABLE'";

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

/// A transaction task that never finished: a definite failure.
impl From<RepoError> for Miss {
    fn from(e: RepoError) -> Self {
        Self::Refused(HoldError::from(e))
    }
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
    /// One transaction: read, check, claim every seat, write the reservation.
    async fn attempt(&self, request: &HoldRequest) -> Result<Result<Reservation, Miss>, HoldError> {
        let conn = self.store.conn().await?;
        let owned = request.clone();
        let outcome = in_bounded_transaction(conn, self.store.timeouts(), move |conn| {
            async move { claim_in_transaction(conn, &owned).await }.scope_boxed()
        })
        .await;
        match outcome {
            Ok(reservation) => Ok(Ok(reservation)),
            Err(TxError::Abort(miss)) => Ok(Err(miss)),
            Err(TxError::Db(e)) => Err(hold_error(e, request)),
        }
    }
}

async fn claim_in_transaction(
    conn: &mut AsyncPgConnection,
    request: &HoldRequest,
) -> Result<Reservation, TxError<Miss>> {
    let seats: Vec<SeatSnapshot> = diesel::sql_query(READ_SEATS)
        .bind::<Array<BigInt>, _>(request.seat_ids.raw())
        .load(conn)
        .await?;
    refuse_unholdable(conn, request, &seats)
        .await?
        .map_err(|e| TxError::Abort(Miss::Refused(e)))?;
    // Ascending, one seat per statement: the row locks are taken in a fixed order.
    for seat in &seats {
        let claimed = diesel::sql_query(CLAIM_SEAT)
            .bind::<BigInt, _>(seat.id)
            .bind::<BigInt, _>(seat.version)
            .execute(conn)
            .await?;
        if claimed == 0 {
            return Err(TxError::Abort(Miss::Conflict));
        }
    }
    Ok(insert_pending_reservation(conn, request, total_price(&seats)).await?)
}
