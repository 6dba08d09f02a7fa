//! Step 2 of a redis hold, the database's part: the requested seats read
//! (under the Redis locks, not row locks), the checks, then the claim at
//! the versions read and the reservation's writes in one statement.

use booking_domain::*;
use booking_store_postgres::hold_writes_sql;
pub use booking_store_postgres::holds::READ_SEATS;
use booking_store_postgres::holds::{
    hold_failed, is_buyer_limit, is_lost_race, read_seats, refuse_unholdable, HoldAnswer,
    HoldParams, SeatSnapshot,
};
use booking_store_postgres::prepared::{Prepared, Statement};
use booking_store_postgres::tx::{committed_row, TxError};
use diesel::pg::Pg;
use diesel::query_builder::AstPass;
use diesel::sql_types::{Array, BigInt};
use diesel_async::AsyncPgConnection;

/// Claims every seat at the version read under the lock and writes the
/// reservation, all or nothing, in one statement. Fenced by those versions:
/// a stale lock holder's claim matches no row once anyone else has written
/// the seat. `$9` / `$10`: the seat ids and the versions read.
pub const CLAIM_SEATS: &str = concat!(
    "\
WITH claimed AS (
    UPDATE seats SET status = 'HELD', version = seats.version + 1
      FROM unnest($9::bigint[], $10::bigint[]) AS read (id, version)
     WHERE seats.id = read.id AND seats.version = read.version
       AND seats.status = 'AVAILABLE'
    RETURNING seats.id, seats.price
), granted AS (
    SELECT sum(price)::bigint AS total FROM claimed
    HAVING claim_all_or_nothing(count(*), cardinality($1))
),",
    hold_writes_sql!()
);

struct ClaimSeats {
    hold: HoldParams,
    ids: Vec<i64>,
    versions: Vec<i64>,
}

impl Statement for ClaimSeats {
    const SQL: &'static str = CLAIM_SEATS;

    fn bind<'b>(&'b self, n: usize, out: &mut AstPass<'_, 'b, Pg>) -> diesel::QueryResult<()> {
        match n {
            9 => out.push_bind_param::<Array<BigInt>, _>(&self.ids),
            10 => out.push_bind_param::<Array<BigInt>, _>(&self.versions),
            _ => self.hold.bind::<Self>(n, out),
        }
    }
}

/// Reads the requested seats with their versions: a plain read, the Redis
/// locks, not row locks, keep racers apart.
pub async fn read_requested_seats(
    conn: &mut AsyncPgConnection,
    request: &HoldRequest,
) -> diesel::QueryResult<Vec<SeatSnapshot>> {
    read_seats(conn, request).await
}

/// Checks `seats` and claims each at the version it was read with, writing
/// the reservation in the same statement. A claim that matches no row means
/// the seat was written since it was read: this request's lock was not
/// exclusive (its lease ran out), so it is refused. A claim past the
/// per-buyer limit is `BuyerLimitReached`, read afresh (outside a
/// transaction: inside one, the failed statement has aborted it).
pub async fn claim_seats(
    conn: &mut AsyncPgConnection,
    request: &HoldRequest,
    seats: &[SeatSnapshot],
) -> Result<Reservation, TxError<HoldError>> {
    refuse_unholdable(conn, request, seats)
        .await?
        .map_err(TxError::Abort)?;
    let claim = ClaimSeats {
        hold: HoldParams::new(request),
        ids: seats.iter().map(|s| s.id).collect(),
        versions: seats.iter().map(|s| s.version).collect(),
    };
    let stale = || {
        tracing::warn!("claim refused: a seat changed under a stale lock");
        TxError::Abort(HoldError::SeatTaken(request.seat_ids.as_slice().to_vec()))
    };
    match committed_row::<_, HoldAnswer>(Prepared(claim), conn).await {
        Ok(answer) => answer
            .and_then(|a| a.reservation(request))
            .ok_or_else(stale),
        // Some seats claimed, others not: `claim_all_or_nothing` undid them.
        Err(e) if is_lost_race(&e) => Err(stale()),
        Err(e) if is_buyer_limit(&e) => Err(TxError::Abort(hold_failed(conn, e, request).await)),
        Err(e) => Err(TxError::Db(e)),
    }
}
