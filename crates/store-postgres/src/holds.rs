//! What every strategy's hold shares: the parameters of a one-statement
//! hold and the writes it ends with (`hold_writes_sql!`, the per-buyer
//! limit among them), the checks that explain a refused hold ("unknown",
//! "not yours", "taken"), and what a failed hold statement means.

use crate::outbox::outbox_headers;
use crate::prepared::{no_such_parameter, Prepared, Statement};
use crate::{constraint_violated, is_bigint_overflow, is_transient_conflict, repo_error};
use booking_domain::{
    HoldError, HoldRequest, NewOutboxEvent, Reservation, ReservationId, ReservationStatus, SeatId,
    SeatStatus,
};
use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::AstPass;
use diesel::result::{DatabaseErrorKind, Error};
use diesel::sql_types::{Array, BigInt, Integer, Json, Jsonb, Nullable, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use std::marker::PhantomData;

/// The end of every one-statement hold, after the strategy's own CTEs. It
/// expects a CTE `granted` with one column `total` that has exactly one row
/// when the strategy made every requested seat HELD, and none otherwise;
/// then it adds the seats to the user's `buyer_seats` row, writes the
/// PENDING reservation, its seats and its `reservation.held` outbox row.
/// It answers one row (`HoldAnswer`): `reservation_id` and `total_amount`
/// when granted; when not, `seats_seen`, the requested seats as the statement's
/// snapshot has them, so that a hold refused for a seat already taken is
/// answered in this one round trip (the read runs only for a refusal: a
/// scalar subquery is evaluated when first needed). Parameters: see
/// `HoldParams`.
///
/// `buyer` is the per-buyer limit: the upsert makes concurrent holds of one
/// user wait for each other on that row, and a count over `max_seats`
/// violates `buyer_seats_within_limit`, which aborts the whole statement,
/// the seats claimed before it included (`BUYER_LIMIT_CONSTRAINT`).
#[macro_export]
macro_rules! hold_writes_sql {
    () => {
        " buyer AS (
    INSERT INTO buyer_seats AS b (schedule_id, user_id, seats, max_seats)
    SELECT $2, $3, cardinality($1), max_seats_per_buyer
      FROM concert_schedules, granted
     WHERE id = $2
        ON CONFLICT (schedule_id, user_id) DO UPDATE
       SET seats = b.seats + excluded.seats, max_seats = excluded.max_seats
), reservation AS (
    INSERT INTO reservations (user_id, schedule_id, status, total_amount, expires_at,
                              idempotency_key, created_at, updated_at)
    SELECT $3, $2, 'PENDING', total, $4, $5, $6, $6 FROM granted
    RETURNING id, total_amount
), reserved_seats AS (
    INSERT INTO reservation_seats (reservation_id, seat_id)
    SELECT reservation.id, seat FROM reservation, unnest($1::bigint[]) AS seat
), event AS (
    INSERT INTO outbox (topic, key, payload, headers)
    SELECT 'reservation.held', id::text,
           $7 || jsonb_build_object('reservationId', id, 'totalAmount', total_amount), $8
      FROM reservation
)
SELECT reservation.id AS reservation_id, reservation.total_amount,
       CASE WHEN reservation.id IS NULL THEN (
           SELECT json_agg(json_build_array(id, schedule_id, status) ORDER BY id)
             FROM seats WHERE id = ANY($1)
       ) END AS seats_seen
  FROM (VALUES (0)) AS answer (one) LEFT JOIN reservation ON true"
    };
}

/// The parameters of a one-statement hold, the same numbers for every
/// strategy: `$1` seat ids (ascending), `$2` schedule, `$3` user, `$4`
/// expires at, `$5` idempotency key, `$6` now, `$7` the outbox payload
/// without the reservation id and total (the statement adds them), `$8` the
/// outbox headers.
#[derive(Debug, Clone)]
pub struct HoldParams {
    seat_ids: Vec<i64>,
    schedule_id: i64,
    user_id: i64,
    expires_at: DateTime<Utc>,
    idempotency_key: Option<String>,
    now: DateTime<Utc>,
    payload: serde_json::Value,
    headers: serde_json::Value,
}

impl HoldParams {
    pub fn new(request: &HoldRequest) -> Self {
        let event = NewOutboxEvent::for_reservation(
            &pending(request, ReservationId(0), 0),
            request.now,
            request.request_id.as_ref(),
        );
        Self {
            seat_ids: request.seat_ids.raw(),
            schedule_id: request.schedule_id.0,
            user_id: request.user_id.0,
            expires_at: request.expires_at,
            idempotency_key: request
                .idempotency_key
                .as_ref()
                .map(|k| k.as_str().to_owned()),
            now: request.now,
            headers: outbox_headers(&event),
            payload: event.payload,
        }
    }

    /// For `Statement::bind` of a hold statement.
    pub fn bind<'b, S>(&'b self, n: usize, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        match n {
            1 => out.push_bind_param::<Array<BigInt>, _>(&self.seat_ids),
            2 => out.push_bind_param::<BigInt, _>(&self.schedule_id),
            3 => out.push_bind_param::<BigInt, _>(&self.user_id),
            4 => out.push_bind_param::<Timestamptz, _>(&self.expires_at),
            5 => out.push_bind_param::<Nullable<Text>, _>(&self.idempotency_key),
            6 => out.push_bind_param::<Timestamptz, _>(&self.now),
            7 => out.push_bind_param::<Jsonb, _>(&self.payload),
            8 => out.push_bind_param::<Jsonb, _>(&self.headers),
            _ => Err(no_such_parameter::<S>(n)),
        }
    }
}

/// A strategy's whole hold statement: its own CTEs, then
/// `hold_writes_sql!`, over the parameters of `HoldParams`.
pub trait HoldSql: Send + Sync + 'static {
    const SQL: &'static str;
}

/// The `Statement` of a `HoldSql`: run it as `Prepared(Hold::<S>::new(..))`.
#[derive(Debug)]
pub struct Hold<S>(HoldParams, PhantomData<fn() -> S>);

impl<S: HoldSql> Hold<S> {
    pub fn new(request: &HoldRequest) -> Self {
        Self(HoldParams::new(request), PhantomData)
    }
}

impl<S: HoldSql> Statement for Hold<S> {
    const SQL: &'static str = S::SQL;

    fn bind<'b>(&'b self, n: usize, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.bind::<Self>(n, out)
    }
}

/// The row every one-statement hold answers (see `hold_writes_sql!`).
#[derive(Debug, QueryableByName)]
pub struct HoldAnswer {
    #[diesel(sql_type = Nullable<BigInt>)]
    pub reservation_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub total_amount: Option<i64>,
    /// When not granted: `[[id, schedule_id, status], ...]`, in id order.
    #[diesel(sql_type = Nullable<Json>)]
    pub seats_seen: Option<serde_json::Value>,
}

impl HoldAnswer {
    /// The reservation the statement wrote, if it granted the hold.
    pub fn reservation(&self, request: &HoldRequest) -> Option<Reservation> {
        Some(pending(
            request,
            ReservationId(self.reservation_id?),
            self.total_amount?,
        ))
    }

    /// The refusal the seats seen by the statement prove: some are taken
    /// (every one found and the schedule's). `None` when they show no
    /// reason, which `explain_refusal` then reads afresh: all free in the
    /// statement's snapshot (a racer took one while this statement waited
    /// for its row lock), or a seat unknown or another schedule's (the
    /// answer depends on whether the schedule exists).
    pub fn refusal(&self, request: &HoldRequest) -> Option<HoldError> {
        let seen: Vec<(i64, i64, String)> =
            serde_json::from_value(self.seats_seen.clone()?).ok()?;
        let seats = seen
            .iter()
            .map(|(id, schedule, status)| (*id, *schedule, status.as_str()));
        taken_of(request, seats)
            .filter(|taken| !taken.is_empty())
            .map(HoldError::SeatTaken)
    }
}

/// The requested seats found (`(id, schedule_id, status)`) that are not
/// AVAILABLE; `None` unless every requested seat was found and all are the
/// schedule's (then the refusal depends on whether the schedule exists).
fn taken_of<'s>(
    request: &HoldRequest,
    seats: impl ExactSizeIterator<Item = (i64, i64, &'s str)> + Clone,
) -> Option<Vec<SeatId>> {
    let all_ours = seats.len() == request.seat_ids.len()
        && seats
            .clone()
            .all(|(_, schedule, _)| schedule == request.schedule_id.0);
    all_ours.then(|| {
        seats
            .filter(|(_, _, status)| *status != SeatStatus::Available.as_str())
            .map(|(id, _, _)| SeatId(id))
            .collect()
    })
}

fn pending(request: &HoldRequest, id: ReservationId, total_amount: i64) -> Reservation {
    Reservation {
        id,
        user_id: request.user_id,
        schedule_id: request.schedule_id,
        status: ReservationStatus::Pending,
        seat_ids: request.seat_ids.as_slice().to_vec(),
        total_amount,
        expires_at: request.expires_at,
        created_at: request.now,
    }
}

/// A plain read of the requested seats: the redis strategy's read under
/// its locks, and every strategy's explanation of a refusal.
pub const READ_SEATS: &str = "\
SELECT id, schedule_id, status, price, version FROM seats
 WHERE id = ANY($1)
 ORDER BY id";

struct ReadSeats(Vec<i64>);

impl Statement for ReadSeats {
    const SQL: &'static str = READ_SEATS;

    fn bind<'b>(&'b self, n: usize, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        match n {
            1 => out.push_bind_param::<Array<BigInt>, _>(&self.0),
            _ => Err(no_such_parameter::<Self>(n)),
        }
    }
}

/// The requested seats as they are now (`READ_SEATS`, prepared).
pub async fn read_seats(
    conn: &mut AsyncPgConnection,
    request: &HoldRequest,
) -> QueryResult<Vec<SeatSnapshot>> {
    Prepared(ReadSeats(request.seat_ids.raw())).load(conn).await
}

/// Why a hold that was not granted was refused, read afresh: `None` when
/// every seat is the schedule's and free now (it was not a moment ago: a
/// lost race).
pub async fn explain_refusal(
    conn: &mut AsyncPgConnection,
    request: &HoldRequest,
) -> QueryResult<Option<HoldError>> {
    let seats = read_seats(conn, request).await?;
    Ok(refuse_unholdable(conn, request, &seats).await?.err())
}

/// True when a hold statement lost a race in a way a retry may win: a
/// serialization failure (SQLSTATE 40001, raised by `claim_all_or_nothing`
/// when an optimistic claim won only some of its seats) or a deadlock
/// between two multi-seat claims.
pub fn is_lost_race(e: &Error) -> bool {
    match e {
        Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        Error::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            info.message().contains("deadlock detected")
        }
        _ => false,
    }
}

const RESERVATION_KEY_CONSTRAINT: &str = "reservations_user_id_idempotency_key_key";
/// The foreign keys to `users` a hold writes through: a token whose user no
/// longer exists is found by the hold's own statement, at no extra cost.
const USER_CONSTRAINTS: [&str; 2] = ["buyer_seats_user_id_fkey", "reservations_user_id_fkey"];
const ONE_ACTIVE_CONSTRAINT: &str = "reservation_seats_one_active";
/// The CHECK of `buyer_seats` a hold past the per-buyer limit violates.
pub const BUYER_LIMIT_CONSTRAINT: &str = "buyer_seats_within_limit";

/// True when a hold statement failed because it would take the user past
/// the schedule's per-buyer limit: a definite answer, never retried.
pub fn is_buyer_limit(e: &Error) -> bool {
    matches!(e, Error::DatabaseError(DatabaseErrorKind::CheckViolation, info)
        if info.constraint_name() == Some(BUYER_LIMIT_CONSTRAINT))
}

/// The schedule's limit and the seats the user has now, for the refusal.
const BUYER_LIMIT: &str = "\
SELECT s.max_seats_per_buyer AS max_seats, COALESCE(b.seats, 0) AS seats
  FROM concert_schedules s
  LEFT JOIN buyer_seats b ON b.schedule_id = s.id AND b.user_id = $2
 WHERE s.id = $1";

#[derive(QueryableByName)]
struct BuyerLimit {
    #[diesel(sql_type = Integer)]
    max_seats: i32,
    #[diesel(sql_type = Integer)]
    seats: i32,
}

/// What a failed hold statement means, for every strategy: `hold_error`,
/// except that a buyer-limit violation reads the limit and the user's seats
/// (the statement rolled back; `conn` is not in a failed transaction).
pub async fn hold_failed(
    conn: &mut AsyncPgConnection,
    e: Error,
    request: &HoldRequest,
) -> HoldError {
    if !is_buyer_limit(&e) {
        return hold_error(e, request);
    }
    let found: QueryResult<Vec<BuyerLimit>> = diesel::sql_query(BUYER_LIMIT)
        .bind::<BigInt, _>(request.schedule_id.0)
        .bind::<BigInt, _>(request.user_id.0)
        .load(conn)
        .await;
    match found.map(|rows| rows.into_iter().next()) {
        Ok(Some(b)) => HoldError::BuyerLimitReached {
            limit: b.max_seats,
            held: b.seats,
        },
        // The schedule was deleted since: nothing to hold now.
        Ok(None) => HoldError::ScheduleNotFound,
        Err(read) => hold_error(read, request),
    }
}

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
    let found = seats
        .iter()
        .map(|s| (s.id, s.schedule_id, s.status.as_str()));
    if let Some(taken) = taken_of(request, found) {
        return Ok(if taken.is_empty() {
            Ok(())
        } else {
            Err(HoldError::SeatTaken(taken))
        });
    }
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
    Ok(Err(HoldError::ForeignSeats(foreign)))
}

/// The `HoldError` a failed hold statement means, for every strategy.
pub fn hold_error(e: Error, request: &HoldRequest) -> HoldError {
    if constraint_violated(&e, RESERVATION_KEY_CONSTRAINT) {
        HoldError::DuplicateIdempotencyKey
    } else if constraint_violated(&e, ONE_ACTIVE_CONSTRAINT) {
        HoldError::SeatTaken(request.seat_ids.as_slice().to_vec())
    } else if USER_CONSTRAINTS.iter().any(|c| constraint_violated(&e, c)) {
        HoldError::UnknownUser
    } else if is_bigint_overflow(&e) {
        // `sum(price)::bigint` of prices written before `MAX_SEAT_PRICE`.
        HoldError::TotalOutOfRange
    } else if is_transient_conflict(&e) {
        HoldError::Contention
    } else {
        HoldError::Repo(repo_error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use booking_domain::{ScheduleId, SeatIds, UserId};

    fn request(seats: &[i64]) -> HoldRequest {
        let now = Utc::now();
        HoldRequest {
            user_id: UserId(7),
            schedule_id: ScheduleId(1),
            seat_ids: SeatIds::parse(seats.iter().map(|s| SeatId(*s)).collect()).unwrap(),
            idempotency_key: None,
            now,
            expires_at: now,
            request_id: None,
        }
    }

    fn refused(seen: serde_json::Value) -> HoldAnswer {
        HoldAnswer {
            reservation_id: None,
            total_amount: None,
            seats_seen: Some(seen),
        }
    }

    #[test]
    fn a_refusal_that_saw_a_taken_seat_names_it_without_reading_again() {
        let answer = refused(serde_json::json!([[1, 1, "AVAILABLE"], [2, 1, "HELD"]]));
        assert!(answer.reservation(&request(&[1, 2])).is_none());
        assert!(matches!(
            answer.refusal(&request(&[1, 2])),
            Some(HoldError::SeatTaken(taken)) if taken == vec![SeatId(2)]
        ));
    }

    #[test]
    fn a_refusal_that_saw_every_seat_free_leaves_the_reason_to_a_fresh_read() {
        let answer = refused(serde_json::json!([
            [1, 1, "AVAILABLE"],
            [2, 1, "AVAILABLE"]
        ]));
        assert!(answer.refusal(&request(&[1, 2])).is_none());
    }

    #[test]
    fn a_refusal_that_missed_a_seat_or_saw_another_schedules_leaves_the_reason_to_a_fresh_read() {
        let missing = refused(serde_json::json!([[1, 1, "HELD"]]));
        assert!(missing.refusal(&request(&[1, 2])).is_none());
        let foreign = refused(serde_json::json!([[1, 1, "HELD"], [2, 9, "HELD"]]));
        assert!(foreign.refusal(&request(&[1, 2])).is_none());
    }

    #[test]
    fn a_granted_answer_is_the_reservation_and_no_refusal() {
        let answer = HoldAnswer {
            reservation_id: Some(5),
            total_amount: Some(300),
            seats_seen: None,
        };
        let reservation = answer.reservation(&request(&[1])).unwrap();
        assert_eq!(
            (reservation.id, reservation.total_amount),
            (ReservationId(5), 300)
        );
        assert!(answer.refusal(&request(&[1])).is_none());
    }
}
