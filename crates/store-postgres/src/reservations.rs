//! `ReservationRepository` over PostgreSQL: reads of reservations and
//! payments, and the bounded transactions of cancel, pay and expire (their
//! statements are in `transitions`).

use crate::models::{PaymentRow, ReservationRow};
use crate::schema::{payments, reservation_seats, reservations};
use crate::transitions::{confirm, expire_overdue, release_reservation, reservation_seat_ids};
use crate::tx::{in_bounded_transaction, TxError};
use crate::{constraint_violated, repo_error, PgStore};
use async_trait::async_trait;
use booking_domain::*;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

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
        request_id: Option<&RequestId>,
    ) -> Result<Transition<Reservation>, RepoError> {
        let conn = self.conn().await?;
        let request_id = request_id.cloned();
        in_bounded_transaction(conn, move |conn| {
            async move {
                let to = ReservationStatus::Cancelled;
                release_reservation(conn, id, to, now, request_id.as_ref()).await
            }
            .scope_boxed()
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
        let outcome = in_bounded_transaction(conn, move |conn| {
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
        in_bounded_transaction(conn, move |conn| {
            expire_overdue(conn, now, limit).scope_boxed()
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
