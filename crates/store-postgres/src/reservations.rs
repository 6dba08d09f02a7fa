//! `ReservationRepository` over PostgreSQL, and the statements a hold writes
//! (shared by every lock strategy).
//!
//! Lock order, the same in every transaction, so none can deadlock:
//! reservation row, then seat rows in ascending id. No transaction writes
//! the schedule row (its available count is derived from the seats), so
//! holds of different seats never wait for each other.

use crate::models::{PaymentRow, ReservationRow};
use crate::schema::{outbox, payments, reservation_seats, reservations, seats};
use crate::tx::{in_bounded_transaction, TxError};
use crate::{constraint_violated, is_transient_conflict, repo_error, PgStore};
use async_trait::async_trait;
use booking_domain::*;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::Error;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

const RESERVATION_KEY_CONSTRAINT: &str = "reservations_user_id_idempotency_key_key";
const ONE_ACTIVE_CONSTRAINT: &str = "reservation_seats_one_active";
const PAYMENT_KEY_CONSTRAINT: &str = "payments_user_id_idempotency_key_key";

async fn find_domain_reservation(
    conn: &mut AsyncPgConnection,
    id: i64,
) -> Result<Option<Reservation>, RepoError> {
    match load_reservation(conn, id).await.map_err(repo_error)? {
        Some((row, seats)) => row.into_domain(seats).map(Some),
        None => Ok(None),
    }
}

/// A reservation with its seat ids (ascending).
pub async fn load_reservation(
    conn: &mut AsyncPgConnection,
    id: i64,
) -> QueryResult<Option<(ReservationRow, Vec<SeatId>)>> {
    let Some(row) = reservations::table
        .find(id)
        .select(ReservationRow::as_select())
        .first(conn)
        .await
        .optional()?
    else {
        return Ok(None);
    };
    let seat_ids = reservation_seat_ids(conn, id).await?;
    Ok(Some((row, seat_ids)))
}

async fn reservation_seat_ids(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Vec<SeatId>> {
    let ids: Vec<i64> = reservation_seats::table
        .filter(reservation_seats::reservation_id.eq(id))
        .order(reservation_seats::seat_id)
        .select(reservation_seats::seat_id)
        .load(conn)
        .await?;
    Ok(ids.into_iter().map(SeatId).collect())
}

pub async fn write_outbox(conn: &mut AsyncPgConnection, event: &NewOutboxEvent) -> QueryResult<()> {
    let headers = match crate::tx::current_request_id() {
        Some(id) => serde_json::json!({ "request-id": id }),
        None => serde_json::json!({}),
    };
    diesel::insert_into(outbox::table)
        .values((
            outbox::topic.eq(event.topic),
            outbox::key.eq(&event.key),
            outbox::payload.eq(&event.payload),
            outbox::headers.eq(headers),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// Writes what a successful hold consists of: the PENDING reservation, its
/// seats (active) and its `reservation.held` outbox row. The caller has already made the seats HELD with a conditional
/// write; the partial unique index on active reservation seats would refuse
/// a second holder even if it had not.
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
        &NewOutboxEvent::for_reservation(&reservation, request.now),
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

/// Ends a PENDING reservation as `to` (CANCELLED or EXPIRED): seats back to
/// AVAILABLE, links inactive, outbox row; all or nothing.
pub async fn release_reservation(
    conn: &mut AsyncPgConnection,
    id: ReservationId,
    to: ReservationStatus,
    now: DateTime<Utc>,
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
    let reservation = row.into_domain(seat_ids).map_err(TxError::Abort)?;
    write_outbox(conn, &NewOutboxEvent::for_reservation(&reservation, now)).await?;
    Ok(Transition::Done(reservation))
}

#[async_trait]
impl ReservationRepository for PgStore {
    async fn find_reservation(&self, id: ReservationId) -> Result<Option<Reservation>, RepoError> {
        let mut conn = self.conn().await?;
        find_domain_reservation(&mut conn, id.0).await
    }

    async fn find_reservation_by_key(
        &self,
        user: UserId,
        key: &IdempotencyKey,
    ) -> Result<Option<Reservation>, RepoError> {
        let mut conn = self.conn().await?;
        let id: Option<i64> = reservations::table
            .filter(reservations::user_id.eq(user.0))
            .filter(reservations::idempotency_key.eq(key.as_str()))
            .select(reservations::id)
            .first(&mut conn)
            .await
            .optional()
            .map_err(repo_error)?;
        let Some(id) = id else { return Ok(None) };
        find_domain_reservation(&mut conn, id).await
    }

    async fn list_reservations(&self, user: UserId) -> Result<Vec<Reservation>, RepoError> {
        let mut conn = self.conn().await?;
        let rows: Vec<ReservationRow> = reservations::table
            .filter(reservations::user_id.eq(user.0))
            .order((reservations::created_at.desc(), reservations::id.desc()))
            .select(ReservationRow::as_select())
            .load(&mut conn)
            .await
            .map_err(repo_error)?;
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let links: Vec<(i64, i64)> = reservation_seats::table
            .filter(reservation_seats::reservation_id.eq_any(&ids))
            .order((
                reservation_seats::reservation_id,
                reservation_seats::seat_id,
            ))
            .select((
                reservation_seats::reservation_id,
                reservation_seats::seat_id,
            ))
            .load(&mut conn)
            .await
            .map_err(repo_error)?;
        rows.into_iter()
            .map(|row| {
                let seats = links
                    .iter()
                    .filter(|(r, _)| *r == row.id)
                    .map(|(_, s)| SeatId(*s))
                    .collect();
                row.into_domain(seats)
            })
            .collect()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn cancel_reservation(
        &self,
        id: ReservationId,
        now: DateTime<Utc>,
    ) -> Result<Transition<Reservation>, RepoError> {
        let conn = self.conn().await?;
        in_bounded_transaction(conn, self.timeouts(), move |conn| {
            release_reservation(conn, id, ReservationStatus::Cancelled, now).scope_boxed()
        })
        .await
        .map_err(|e| e.into_inner(repo_error))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn confirm_with_payment(
        &self,
        payment: &PaymentRequest,
    ) -> Result<Transition<Payment>, RepoError> {
        let conn = self.conn().await?;
        let payment = payment.clone();
        let outcome = in_bounded_transaction(conn, self.timeouts(), move |conn| {
            async move { confirm(conn, &payment).await }.scope_boxed()
        })
        .await;
        match outcome {
            Ok(t) => Ok(t),
            Err(TxError::Db(e)) if constraint_violated(&e, PAYMENT_KEY_CONSTRAINT) => {
                Ok(Transition::KeyReused)
            }
            Err(e) => Err(e.into_inner(repo_error)),
        }
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn expire_overdue_holds(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Reservation>, RepoError> {
        let conn = self.conn().await?;
        in_bounded_transaction(conn, self.timeouts(), move |conn| {
            async move {
                // SKIP LOCKED: rows a concurrent expirer or cancel holds
                // are theirs; each reservation ends exactly once.
                let overdue: Vec<i64> = reservations::table
                    .filter(reservations::status.eq(ReservationStatus::Pending.as_str()))
                    .filter(reservations::expires_at.le(now))
                    .order(reservations::id)
                    .limit(limit)
                    .select(reservations::id)
                    .for_update()
                    .skip_locked()
                    .load(conn)
                    .await?;
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
                        release_reservation(conn, ReservationId(id), to, now).await?
                    {
                        expired.push(r);
                    }
                }
                Ok(expired)
            }
            .scope_boxed()
        })
        .await
        .map_err(|e| e.into_inner(repo_error))
    }

    async fn find_payment(&self, id: PaymentId) -> Result<Option<Payment>, RepoError> {
        let mut conn = self.conn().await?;
        payments::table
            .find(id.0)
            .select(PaymentRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(repo_error)?
            .map(Payment::try_from)
            .transpose()
    }

    async fn find_payment_by_key(
        &self,
        user: UserId,
        key: &IdempotencyKey,
    ) -> Result<Option<Payment>, RepoError> {
        let mut conn = self.conn().await?;
        payments::table
            .filter(payments::user_id.eq(user.0))
            .filter(payments::idempotency_key.eq(key.as_str()))
            .select(PaymentRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(repo_error)?
            .map(Payment::try_from)
            .transpose()
    }
}

/// PENDING and unexpired -> CONFIRMED, seats HELD -> RESERVED, payment row,
/// `reservation.completed` outbox row.
async fn confirm(
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
        &NewOutboxEvent::for_reservation(&reservation, payment.now),
    )
    .await?;
    Payment::try_from(stored)
        .map(Transition::Done)
        .map_err(TxError::Abort)
}
