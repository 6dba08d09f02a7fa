//! The moves of a PENDING reservation, each all or nothing inside the
//! caller's transaction: confirm with a payment, cancel, expire overdue holds.
//!
//! Lock order, the same in every transaction, so none can deadlock:
//! reservation row, then seat rows in ascending id, then the user's
//! `buyer_seats` row (a hold statement takes it last too). No transaction
//! writes the schedule row (its available count is derived from the
//! seats), so holds of different seats never wait for each other.

use crate::models::{PaymentRow, ReservationRow};
use crate::outbox::write_outbox;
use crate::schema::{buyer_seats, payments, reservation_seats, reservations, seats};
use crate::tx::TxError;
use booking_domain::*;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// A reservation's seat ids, ascending.
pub(crate) async fn reservation_seat_ids(
    conn: &mut AsyncPgConnection,
    id: i64,
) -> QueryResult<Vec<SeatId>> {
    let ids: Vec<i64> = reservation_seats::table
        .filter(reservation_seats::reservation_id.eq(id))
        .order(reservation_seats::seat_id)
        .select(reservation_seats::seat_id)
        .load(conn)
        .await?;
    Ok(ids.into_iter().map(SeatId).collect())
}

/// Locks the seats of a reservation in ascending id order.
async fn lock_seats(conn: &mut AsyncPgConnection, ids: &[SeatId]) -> QueryResult<()> {
    let raw: Vec<i64> = ids.iter().map(|s| s.0).collect();
    seats::table
        .filter(seats::id.eq_any(&raw))
        .order(seats::id)
        .select(seats::id)
        .for_update()
        .load::<i64>(conn)
        .await
        .map(drop)
}

/// Sets the seats `from` -> `to`; fails the transaction if any seat was not
/// in `from` (that would mean the invariants are already broken).
async fn move_seats(
    conn: &mut AsyncPgConnection,
    ids: &[SeatId],
    from: SeatStatus,
    to: SeatStatus,
) -> Result<(), TxError<RepoError>> {
    let raw: Vec<i64> = ids.iter().map(|s| s.0).collect();
    let moved = diesel::update(
        seats::table
            .filter(seats::id.eq_any(&raw))
            .filter(seats::status.eq(from.as_str())),
    )
    .set((
        seats::status.eq(to.as_str()),
        seats::version.eq(seats::version + 1),
    ))
    .execute(conn)
    .await?;
    if moved != raw.len() {
        return Err(TxError::Abort(RepoError::unexpected(format!(
            "expected {} seats {} but found {moved}",
            raw.len(),
            from.as_str()
        ))));
    }
    Ok(())
}

/// Why a conditional `UPDATE reservations ... WHERE status = 'PENDING'`
/// matched nothing.
async fn why_not_pending<T>(
    conn: &mut AsyncPgConnection,
    id: ReservationId,
) -> Result<Transition<T>, TxError<RepoError>> {
    let row: Option<(String, DateTime<Utc>)> = reservations::table
        .find(id.0)
        .select((reservations::status, reservations::expires_at))
        .first(conn)
        .await
        .optional()?;
    Ok(match row {
        None => Transition::NotFound,
        Some((status, _)) => match ReservationStatus::parse(&status) {
            Some(ReservationStatus::Pending) => Transition::Overdue,
            Some(other) => Transition::NotPending(other),
            None => {
                return Err(TxError::Abort(RepoError::unexpected(format!(
                    "unknown reservation status '{status}'"
                ))))
            }
        },
    })
}

#[diesel::declare_sql_function]
extern "SQL" {
    fn greatest(
        a: diesel::sql_types::Integer,
        b: diesel::sql_types::Integer,
    ) -> diesel::sql_types::Integer;
}

/// Gives `n` seats of a schedule back to its buyer's per-buyer count. Never
/// below 0: a hold an instance without the counter wrote (during a rolling
/// upgrade) must still be cancellable and expirable.
async fn return_to_buyer(
    conn: &mut AsyncPgConnection,
    schedule: i64,
    user: i64,
    n: usize,
) -> QueryResult<()> {
    let n = i32::try_from(n).unwrap_or(i32::MAX);
    diesel::update(buyer_seats::table.find((schedule, user)))
        .set(buyer_seats::seats.eq(greatest(buyer_seats::seats - n, 0)))
        .execute(conn)
        .await
        .map(drop)
}

/// Ends a PENDING reservation as `to` (CANCELLED or EXPIRED): seats back to
/// AVAILABLE, links inactive, the buyer's count down, outbox row; all or
/// nothing.
pub async fn release_reservation(
    conn: &mut AsyncPgConnection,
    id: ReservationId,
    to: ReservationStatus,
    now: DateTime<Utc>,
    request_id: Option<&RequestId>,
) -> Result<Transition<Reservation>, TxError<RepoError>> {
    let updated = diesel::update(
        reservations::table
            .find(id.0)
            .filter(reservations::status.eq(ReservationStatus::Pending.as_str())),
    )
    .set((
        reservations::status.eq(to.as_str()),
        reservations::updated_at.eq(now),
    ))
    .returning(ReservationRow::as_returning())
    .get_result(conn)
    .await
    .optional()?;
    let Some(row) = updated else {
        return why_not_pending(conn, id).await.map(|t| match t {
            // A PENDING row always matches; only a concurrent change lands here.
            Transition::Overdue => Transition::NotPending(ReservationStatus::Pending),
            other => other,
        });
    };
    let seat_ids = reservation_seat_ids(conn, id.0).await?;
    lock_seats(conn, &seat_ids).await?;
    move_seats(conn, &seat_ids, SeatStatus::Held, SeatStatus::Available).await?;
    diesel::update(reservation_seats::table.filter(reservation_seats::reservation_id.eq(id.0)))
        .set(reservation_seats::active.eq(false))
        .execute(conn)
        .await?;
    return_to_buyer(conn, row.schedule_id, row.user_id, seat_ids.len()).await?;
    let reservation = row.into_domain(seat_ids).map_err(TxError::Abort)?;
    let event = NewOutboxEvent::for_reservation(&reservation, now, request_id);
    write_outbox(conn, &event).await?;
    Ok(Transition::Done(reservation))
}

/// Expires the oldest (by id) `limit` PENDING reservations overdue at
/// `now`; returns the ones this call ended.
pub(crate) async fn expire_overdue(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Reservation>, TxError<RepoError>> {
    // SKIP LOCKED: rows a concurrent expirer or cancel holds
    // are theirs; each reservation ends exactly once.
    let mut batch: Vec<(i64, i64, i64)> = reservations::table
        .filter(reservations::status.eq(ReservationStatus::Pending.as_str()))
        .filter(reservations::expires_at.le(now))
        .order(reservations::id)
        .limit(limit)
        .select((
            reservations::schedule_id,
            reservations::user_id,
            reservations::id,
        ))
        .for_update()
        .skip_locked()
        .load(conn)
        .await?;
    // Released in (schedule, user) order, so two batches take the buyers'
    // rows in one order too.
    batch.sort_unstable();
    let overdue: Vec<i64> = batch.into_iter().map(|(_, _, id)| id).collect();
    // All the batch's seats, ascending, before any is written:
    // the global lock order across reservations.
    let seats: Vec<i64> = reservation_seats::table
        .filter(reservation_seats::reservation_id.eq_any(&overdue))
        .select(reservation_seats::seat_id)
        .load(conn)
        .await?;
    let mut seats: Vec<SeatId> = seats.into_iter().map(SeatId).collect();
    seats.sort();
    lock_seats(conn, &seats).await?;
    let mut expired = Vec::with_capacity(overdue.len());
    for id in overdue {
        let to = ReservationStatus::Expired;
        if let Transition::Done(r) =
            release_reservation(conn, ReservationId(id), to, now, None).await?
        {
            expired.push(r);
        }
    }
    Ok(expired)
}

/// PENDING and unexpired -> CONFIRMED, seats HELD -> RESERVED, payment row,
/// `reservation.completed` outbox row.
pub(crate) async fn confirm(
    conn: &mut AsyncPgConnection,
    payment: &PaymentRequest,
) -> Result<Transition<Payment>, TxError<RepoError>> {
    let id = payment.reservation_id;
    let updated = diesel::update(
        reservations::table
            .find(id.0)
            .filter(reservations::status.eq(ReservationStatus::Pending.as_str()))
            .filter(reservations::expires_at.gt(payment.now)),
    )
    .set((
        reservations::status.eq(ReservationStatus::Confirmed.as_str()),
        reservations::updated_at.eq(payment.now),
    ))
    .returning(ReservationRow::as_returning())
    .get_result(conn)
    .await
    .optional()?;
    let Some(row) = updated else {
        return why_not_pending(conn, id).await;
    };
    let seat_ids = reservation_seat_ids(conn, id.0).await?;
    lock_seats(conn, &seat_ids).await?;
    move_seats(conn, &seat_ids, SeatStatus::Held, SeatStatus::Reserved).await?;
    let stored = diesel::insert_into(payments::table)
        .values((
            payments::reservation_id.eq(id.0),
            payments::user_id.eq(payment.user_id.0),
            payments::amount.eq(payment.amount),
            payments::status.eq(PaymentStatus::Completed.as_str()),
            payments::idempotency_key.eq(payment.idempotency_key.as_ref().map(|k| k.as_str())),
            payments::created_at.eq(payment.now),
        ))
        .returning(PaymentRow::as_returning())
        .get_result(conn)
        .await?;
    let reservation = row.into_domain(seat_ids).map_err(TxError::Abort)?;
    write_outbox(
        conn,
        &NewOutboxEvent::for_reservation(&reservation, payment.now, payment.request_id.as_ref()),
    )
    .await?;
    Payment::try_from(stored)
        .map(Transition::Done)
        .map_err(TxError::Abort)
}
