//! `SeatLock` strategy **pessimistic**: one statement locks the requested
//! seat rows that are AVAILABLE with `SELECT ... FOR UPDATE` in ascending id
//! order, marks them HELD only if that is every one of them and all are the
//! schedule's, and writes the reservation, its seats and its outbox row:
//! one round trip, all or nothing. A refused hold's answer carries the
//! seats as the statement saw them; only when they show no reason (a racer
//! took a seat while the statement waited for its lock) are they read
//! again to say why.
//!
//! Why it cannot oversell: a second statement asking for the same seat
//! blocks on the row lock until the first commits, then re-reads the row
//! (READ COMMITTED re-checks a locked row's latest version against the
//! `WHERE`), sees HELD and leaves it out, so it grants nothing. The partial
//! unique index on active reservation seats would refuse it even if the
//! check were skipped. Ascending lock order means two multi-seat requests
//! can wait for each other but never deadlock; `lock_timeout` bounds the
//! wait.

use async_trait::async_trait;
use booking_domain::*;
use booking_store_postgres::holds::{explain_refusal, hold_failed, Hold, HoldAnswer, HoldSql};
use booking_store_postgres::prepared::Prepared;
use booking_store_postgres::tx::{committed_row, run_to_completion};
use booking_store_postgres::{hold_error, hold_writes_sql, PgStore};

/// The whole hold. `locked` takes the row locks of the requested seats
/// that are AVAILABLE, ascending; a racer that waited for a lock gets the
/// row's latest version, and leaves it out if it is no longer AVAILABLE.
/// They become HELD only if every requested seat was locked and is the
/// schedule's. A seat already taken is passed over without a lock, so a
/// hold refused at once writes nothing and its commit waits for no WAL
/// flush. `locked` finds the seats by primary key and filters on the
/// status alone, so no plan (a generic one on stale statistics included)
/// can scan a schedule's seats to find them.
pub const HOLD: &str = concat!(
    "\
WITH locked AS (
    SELECT id, schedule_id FROM seats
     WHERE id = ANY($1) AND status = 'AVAILABLE'
     ORDER BY id
       FOR UPDATE
), held AS (
    UPDATE seats SET status = 'HELD', version = version + 1
     WHERE id IN (SELECT id FROM locked)
       AND (SELECT count(*) FROM locked WHERE schedule_id = $2) = cardinality($1)
    RETURNING id, price
), granted AS (
    SELECT sum(price)::bigint AS total FROM held
    HAVING count(*) = cardinality($1)
),",
    hold_writes_sql!()
);

struct PessimisticHold;

impl HoldSql for PessimisticHold {
    const SQL: &'static str = HOLD;
}

#[derive(Debug, Clone)]
pub struct PessimisticSeatLock {
    store: PgStore,
}

impl PessimisticSeatLock {
    pub const NAME: &'static str = "pessimistic";

    pub fn new(store: PgStore) -> Self {
        Self { store }
    }
}

#[async_trait]
impl SeatLock for PessimisticSeatLock {
    fn strategy(&self) -> &'static str {
        Self::NAME
    }

    #[tracing::instrument(
        name = "hold_seats",
        skip_all,
        fields(strategy = "pessimistic", schedule = %request.schedule_id, seats = request.seat_ids.len())
    )]
    async fn hold_seats(&self, request: &HoldRequest) -> Result<Reservation, HoldError> {
        let mut conn = self.store.conn().await?;
        let owned = request.clone();
        // Its own task: a dropped caller cannot cut the statement short.
        run_to_completion(async move {
            let answer: Option<HoldAnswer> = match committed_row(
                Prepared(Hold::<PessimisticHold>::new(&owned)),
                &mut conn,
            )
            .await
            {
                Ok(answer) => answer,
                Err(e) => return Err(hold_failed(&mut conn, e, &owned).await),
            };
            if let Some(reservation) = answer.as_ref().and_then(|a| a.reservation(&owned)) {
                return Ok(reservation);
            }
            if let Some(refused) = answer.as_ref().and_then(|a| a.refusal(&owned)) {
                return Err(refused);
            }
            let why = explain_refusal(&mut conn, &owned)
                .await
                .map_err(|e| hold_error(e, &owned))?;
            // Free again now: they were not when the statement ran.
            Err(why.unwrap_or_else(|| HoldError::SeatTaken(owned.seat_ids.as_slice().to_vec())))
        })
        .await?
    }
}
