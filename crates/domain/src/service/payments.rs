//! Paying for a hold: PENDING and unexpired becomes CONFIRMED, once.

use super::{Bookings, Idempotent};
use crate::*;

impl Bookings {
    /// Pays for a PENDING, unexpired reservation of `user`, which becomes
    /// CONFIRMED. A retry with the same key returns the first payment.
    pub async fn pay(
        &self,
        user: UserId,
        id: ReservationId,
        key: Option<IdempotencyKey>,
        request_id: Option<RequestId>,
    ) -> Result<Idempotent<Payment>, ReservationError> {
        if let Some(key) = &key {
            if let Some(found) = self.replay_payment(user, key, id).await? {
                return Ok(found);
            }
        }
        let reservation = self.reservation_of(user, id).await?;
        let now = self.now();
        reservation
            .status
            .transition(ReservationStatus::Confirmed)
            .map_err(|c| ReservationError::NotPending(c.from))?;
        if reservation.is_overdue(now) {
            return Err(ReservationError::Expired);
        }
        let request = PaymentRequest {
            reservation_id: id,
            user_id: user,
            amount: reservation.total_amount,
            idempotency_key: key.clone(),
            now,
            request_id,
        };
        match self.reservations.confirm_with_payment(&request).await? {
            Transition::Done(payment) => {
                self.leave_waiting_room(&reservation).await;
                Ok(Idempotent {
                    value: payment,
                    replayed: false,
                })
            }
            Transition::Overdue => Err(ReservationError::Expired),
            Transition::NotFound => Err(ReservationError::NotFound),
            // A concurrent twin with the same key may have paid first.
            Transition::NotPending(status) => match self.replay_if_keyed(user, key, id).await? {
                Some(found) => Ok(found),
                None => Err(ReservationError::NotPending(status)),
            },
            Transition::KeyReused => match self.replay_if_keyed(user, key, id).await? {
                Some(found) => Ok(found),
                None => Err(ReservationError::IdempotencyKeyReused),
            },
        }
    }

    async fn replay_if_keyed(
        &self,
        user: UserId,
        key: Option<IdempotencyKey>,
        reservation: ReservationId,
    ) -> Result<Option<Idempotent<Payment>>, ReservationError> {
        match key {
            Some(key) => self.replay_payment(user, &key, reservation).await,
            None => Ok(None),
        }
    }

    async fn replay_payment(
        &self,
        user: UserId,
        key: &IdempotencyKey,
        reservation: ReservationId,
    ) -> Result<Option<Idempotent<Payment>>, ReservationError> {
        match self.reservations.find_payment_by_key(user, key).await? {
            Some(p) if p.reservation_id == reservation => Ok(Some(Idempotent {
                value: p,
                replayed: true,
            })),
            Some(_) => Err(ReservationError::IdempotencyKeyReused),
            None => Ok(None),
        }
    }

    pub async fn payment_of(
        &self,
        user: UserId,
        id: PaymentId,
    ) -> Result<Payment, ReservationError> {
        match self.reservations.find_payment(id).await? {
            Some(p) if p.user_id == user => Ok(p),
            _ => Err(ReservationError::NotFound),
        }
    }
}
