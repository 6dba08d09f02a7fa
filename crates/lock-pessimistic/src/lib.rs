//! `SeatLock` strategy **pessimistic**: lock the requested seat rows with
//! `SELECT ... FOR UPDATE` in ascending id order, check them, mark them HELD
//! and write the reservation, its seats and its outbox row, all in one
//! transaction.
//!
//! Why it cannot oversell: a second transaction asking for the same seat
//! blocks on the row lock until the first commits, then re-reads the row
//! (READ COMMITTED re-checks a locked row's latest version), sees HELD and
//! gives up. The `UPDATE ... WHERE status = 'AVAILABLE'` and the partial
//! unique index on active reservation seats would refuse it even if the
//! check were skipped. Ascending lock order means two multi-seat requests can
//! wait for each other but never deadlock; `lock_timeout` bounds the wait.

use async_trait::async_trait;
use booking_domain::*;
use booking_store_postgres::holds::{refuse_unholdable, total_price, SeatSnapshot};
use booking_store_postgres::tx::{in_bounded_transaction, TxError};
use booking_store_postgres::{hold_error, insert_pending_reservation, PgStore};
use diesel::sql_types::{Array, BigInt};
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// Takes the row locks, ascending, and reads what the checks need.
const LOCK_SEATS: &str = "\
SELECT id, schedule_id, status, price, version FROM seats
 WHERE id = ANY($1)
 ORDER BY id
   FOR UPDATE";

/// Conditional even though the rows are locked: belt and braces.
const MARK_HELD: &str = "\
UPDATE seats SET status = 'HELD', version = version + 1
 WHERE id = ANY($1) AND status = 'AVAILABLE'";

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
        let conn = self.store.conn().await?;
        let owned = request.clone();
        in_bounded_transaction(conn, self.store.timeouts(), move |conn| {
            async move { hold_in_transaction(conn, &owned).await }.scope_boxed()
        })
        .await
        .map_err(|e| e.into_inner(|db| hold_error(db, request)))
    }
}

async fn hold_in_transaction(
    conn: &mut AsyncPgConnection,
    request: &HoldRequest,
) -> Result<Reservation, TxError<HoldError>> {
    let ids = request.seat_ids.raw();
    let locked: Vec<SeatSnapshot> = diesel::sql_query(LOCK_SEATS)
        .bind::<Array<BigInt>, _>(&ids)
        .load(conn)
        .await?;
    refuse_unholdable(conn, request, &locked)
        .await?
        .map_err(TxError::Abort)?;
    let held = diesel::sql_query(MARK_HELD)
        .bind::<Array<BigInt>, _>(&ids)
        .execute(conn)
        .await?;
    if held != ids.len() {
        // Unreachable while the rows are locked and were checked AVAILABLE.
        return Err(TxError::Abort(HoldError::SeatTaken(
            request.seat_ids.as_slice().to_vec(),
        )));
    }
    let total = total_price(&locked);
    Ok(insert_pending_reservation(conn, request, total).await?)
}
