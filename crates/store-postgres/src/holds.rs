//! What every strategy's hold shares once it has read the requested seats:
//! the checks that decide between "unknown", "not yours" and "taken", the
//! rows a successful hold writes, and what a failed hold statement means.

use crate::outbox::write_outbox;
use crate::schema::{reservation_seats, reservations};
use crate::{constraint_violated, is_transient_conflict, repo_error};
use booking_domain::{
    HoldError, HoldRequest, NewOutboxEvent, Reservation, ReservationId, ReservationStatus, SeatId,
    SeatStatus,
};
use diesel::prelude::*;
use diesel::result::Error;
use diesel::sql_types::{BigInt, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

const RESERVATION_KEY_CONSTRAINT: &str = "reservations_user_id_idempotency_key_key";
const ONE_ACTIVE_CONSTRAINT: &str = "reservation_seats_one_active";

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

/// Writes what a successful hold consists of: the PENDING reservation, its
/// seats (active) and its `reservation.held` outbox row. The caller has
/// already made the seats HELD with a conditional write; the partial unique
/// index on active reservation seats would refuse a second holder even if it
/// had not.
pub async fn insert_pending_reservation(
    conn: &mut AsyncPgConnection,
    request: &HoldRequest,
    total_amount: i64,
) -> QueryResult<Reservation> {
    let id: i64 = diesel::insert_into(reservations::table)
        .values((
            reservations::user_id.eq(request.user_id.0),
            reservations::schedule_id.eq(request.schedule_id.0),
            reservations::status.eq(ReservationStatus::Pending.as_str()),
            reservations::total_amount.eq(total_amount),
            reservations::expires_at.eq(request.expires_at),
            reservations::idempotency_key.eq(request.idempotency_key.as_ref().map(|k| k.as_str())),
            reservations::created_at.eq(request.now),
            reservations::updated_at.eq(request.now),
        ))
        .returning(reservations::id)
        .get_result(conn)
        .await?;
    let links: Vec<_> = request
        .seat_ids
        .as_slice()
        .iter()
        .map(|s| {
            (
                reservation_seats::reservation_id.eq(id),
                reservation_seats::seat_id.eq(s.0),
            )
        })
        .collect();
    diesel::insert_into(reservation_seats::table)
        .values(links)
        .execute(conn)
        .await?;
    let reservation = Reservation {
        id: ReservationId(id),
        user_id: request.user_id,
        schedule_id: request.schedule_id,
        status: ReservationStatus::Pending,
        seat_ids: request.seat_ids.as_slice().to_vec(),
        total_amount,
        expires_at: request.expires_at,
        created_at: request.now,
    };
    write_outbox(
        conn,
        &NewOutboxEvent::for_reservation(&reservation, request.now, request.request_id.as_ref()),
    )
    .await?;
    Ok(reservation)
}

/// The `HoldError` a failed hold statement means, for every strategy.
pub fn hold_error(e: Error, request: &HoldRequest) -> HoldError {
    if constraint_violated(&e, RESERVATION_KEY_CONSTRAINT) {
        HoldError::DuplicateIdempotencyKey
    } else if constraint_violated(&e, ONE_ACTIVE_CONSTRAINT) {
        HoldError::SeatTaken(request.seat_ids.as_slice().to_vec())
    } else if is_transient_conflict(&e) {
        HoldError::Contention
    } else {
        HoldError::Repo(repo_error(e))
    }
}
