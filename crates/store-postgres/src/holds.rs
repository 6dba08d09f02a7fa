//! What every strategy's hold shares once it has read the requested seats:
//! the checks that decide between "unknown", "not yours" and "taken".

use booking_domain::{HoldError, HoldRequest, SeatId, SeatStatus};
use diesel::sql_types::{BigInt, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

const SCHEDULE_EXISTS: &str = "SELECT id FROM concert_schedules WHERE id = $1";

/// A requested seat as a strategy read it. Every strategy's seat query
/// selects exactly these columns: `id, schedule_id, status, price, version`.
#[derive(Debug, Clone, QueryableByName)]
pub struct SeatSnapshot {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub schedule_id: i64,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = BigInt)]
    pub price: i64,
    #[diesel(sql_type = BigInt)]
    pub version: i64,
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    #[allow(dead_code)]
    id: i64,
}

/// Why `seats` (the rows found for the request) cannot be held, in order of
/// precedence: unknown schedule, unknown seats, seats of another schedule,
/// seats not AVAILABLE. `Ok(())` when all are the schedule's and free.
pub async fn refuse_unholdable(
    conn: &mut AsyncPgConnection,
    request: &HoldRequest,
    seats: &[SeatSnapshot],
) -> diesel::QueryResult<Result<(), HoldError>> {
    let schedule = request.schedule_id.0;
    let all_ours =
        seats.len() == request.seat_ids.len() && seats.iter().all(|s| s.schedule_id == schedule);
    if !all_ours {
        let exists: Vec<Id> = diesel::sql_query(SCHEDULE_EXISTS)
            .bind::<BigInt, _>(schedule)
            .load(conn)
            .await?;
        if exists.is_empty() {
            return Ok(Err(HoldError::ScheduleNotFound));
        }
        let missing: Vec<SeatId> = request
            .seat_ids
            .as_slice()
            .iter()
            .filter(|id| !seats.iter().any(|s| s.id == id.0))
            .copied()
            .collect();
        if !missing.is_empty() {
            return Ok(Err(HoldError::SeatsNotFound(missing)));
        }
        let foreign = seats
            .iter()
            .filter(|s| s.schedule_id != schedule)
            .map(|s| SeatId(s.id))
            .collect();
        return Ok(Err(HoldError::ForeignSeats(foreign)));
    }
    let taken: Vec<SeatId> = seats
        .iter()
        .filter(|s| s.status != SeatStatus::Available.as_str())
        .map(|s| SeatId(s.id))
        .collect();
    if !taken.is_empty() {
        return Ok(Err(HoldError::SeatTaken(taken)));
    }
    Ok(Ok(()))
}

/// The total price of the seats.
pub fn total_price(seats: &[SeatSnapshot]) -> i64 {
    seats.iter().map(|s| s.price).sum()
}
