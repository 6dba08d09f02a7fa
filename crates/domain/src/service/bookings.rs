//! Holds: take 1 to 4 seats for five minutes through the strategy, read and
//! cancel one's own. Paying for a hold is in `payments.rs`.

use crate::*;
use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;

/// A reservation request as the client sent it, before parsing.
#[derive(Debug, Clone)]
pub struct HoldCommand {
    pub user_id: UserId,
    pub schedule_id: ScheduleId,
    pub seat_ids: Vec<SeatId>,
    pub idempotency_key: Option<IdempotencyKey>,
    /// The waiting room's entry token (`X-Queue-Token`).
    pub entry_token: Option<String>,
    /// The HTTP request, carried into the outbox row.
    pub request_id: Option<RequestId>,
}

/// The result of an idempotent create: the resource, and whether it was
/// created by this call or replayed from an earlier one with the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotent<T> {
    pub value: T,
    pub replayed: bool,
}

/// Holds and payments: the strategy, the reservations, and the waiting room
/// whose entry tokens a hold uses up.
#[derive(Clone)]
pub struct Bookings {
    pub(super) seat_lock: Arc<dyn SeatLock>,
    pub(super) reservations: Arc<dyn ReservationRepository>,
    pub(super) catalog: Arc<dyn CatalogRepository>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) waiting_room: Option<WaitingRoom>,
    pub(super) hold_ttl: Duration,
}

impl std::fmt::Debug for Bookings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bookings")
            .field("strategy", &self.seat_lock.strategy())
            .field("hold_ttl", &self.hold_ttl)
            .finish_non_exhaustive()
    }
}

impl Bookings {
    pub(super) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The strategy's running totals (e.g. optimistic retries), for metrics.
    pub fn strategy_counters(&self) -> Vec<(&'static str, u64)> {
        self.seat_lock.counters()
    }

    /// Holds 1 to 4 seats for five minutes, all or none. A retry with the same
    /// idempotency key returns the first reservation and changes nothing.
    pub async fn hold_seats(
        &self,
        command: HoldCommand,
    ) -> Result<Idempotent<Reservation>, HoldError> {
        let seat_ids = SeatIds::parse(command.seat_ids)?;
        if let Some(key) = &command.idempotency_key {
            if let Some(found) = self
                .replay_hold(command.user_id, key, command.schedule_id, &seat_ids)
                .await?
            {
                return Ok(found);
            }
        }
        let now = self.now();
        let request = HoldRequest {
            user_id: command.user_id,
            schedule_id: command.schedule_id,
            seat_ids,
            idempotency_key: command.idempotency_key,
            now,
            expires_at: now + self.hold_ttl,
            request_id: command.request_id,
        };
        let Some(room) = &self.waiting_room else {
            return self.hold_or_replay(&request).await;
        };
        // The token is claimed for this attempt only: used up if it holds
        // seats, usable again if it does not.
        let token = command
            .entry_token
            .as_deref()
            .ok_or(HoldError::EntryTokenRequired)?;
        let (schedule, user) = (request.schedule_id, request.user_id);
        if !room.queue.claim_token(schedule, user, token, now).await? {
            // A retry racing its first attempt (which holds the token) gets
            // that attempt's result if it has landed.
            if let Some(key) = &request.idempotency_key {
                if let Some(found) = self
                    .replay_hold(user, key, schedule, &request.seat_ids)
                    .await?
                {
                    return Ok(found);
                }
            }
            return Err(HoldError::EntryTokenRequired);
        }
        let held = self.hold_or_replay(&request).await;
        let settled = match &held {
            Ok(h) => {
                let until = h.value.expires_at;
                let consumed = room.queue.consume_token(schedule, user, token, until).await;
                let marked = room
                    .queue
                    .mark_held(schedule, &h.value.seat_ids, h.value.id, until)
                    .await;
                consumed.and(marked)
            }
            Err(e) if self.nothing_left(e, schedule).await => {
                // The slot goes to nobody, at once: no seat to try next.
                room.queue.free_slot(schedule, user).await
            }
            Err(_) => room.queue.restore_token(schedule, user, token).await,
        };
        if let Err(e) = settled {
            // The database decided; the waiting room catches up at expiry.
            tracing::warn!(%schedule, %user, error = %e, "waiting room not updated after a hold");
        }
        held
    }

    /// Whether a refused hold found no seat free at all (the redis strategy
    /// says so itself; the others name the taken seat, so ask the store).
    async fn nothing_left(&self, refusal: &HoldError, schedule: ScheduleId) -> bool {
        match refusal {
            HoldError::SoldOut => true,
            HoldError::SeatTaken(_) => matches!(
                self.catalog.seat_counts(schedule).await,
                Ok(Some(counts)) if counts.available == 0
            ),
            _ => false,
        }
    }

    /// The hold, or the first result of a concurrent twin with the same key.
    async fn hold_or_replay(
        &self,
        request: &HoldRequest,
    ) -> Result<Idempotent<Reservation>, HoldError> {
        match self.seat_lock.hold_seats(request).await {
            Ok(reservation) => Ok(Idempotent {
                value: reservation,
                replayed: false,
            }),
            // A concurrent twin with the same key may have won the seats.
            Err(
                e @ (HoldError::DuplicateIdempotencyKey
                | HoldError::SeatTaken(_)
                | HoldError::SoldOut
                | HoldError::BuyerLimitReached { .. }),
            ) => {
                let Some(key) = &request.idempotency_key else {
                    return Err(e);
                };
                match self
                    .replay_hold(request.user_id, key, request.schedule_id, &request.seat_ids)
                    .await?
                {
                    Some(found) => Ok(found),
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn replay_hold(
        &self,
        user: UserId,
        key: &IdempotencyKey,
        schedule: ScheduleId,
        seats: &SeatIds,
    ) -> Result<Option<Idempotent<Reservation>>, HoldError> {
        let Some(found) = self.reservations.find_reservation_by_key(user, key).await? else {
            return Ok(None);
        };
        if found.schedule_id != schedule || found.seat_ids != seats.as_slice() {
            return Err(HoldError::IdempotencyKeyReused);
        }
        Ok(Some(Idempotent {
            value: found,
            replayed: true,
        }))
    }

    /// The reservation if it exists and belongs to `user`; others get
    /// `NotFound`, so ids cannot be probed.
    pub async fn reservation_of(
        &self,
        user: UserId,
        id: ReservationId,
    ) -> Result<Reservation, ReservationError> {
        match self.reservations.find_reservation(id).await? {
            Some(r) if r.user_id == user => Ok(r),
            _ => Err(ReservationError::NotFound),
        }
    }

    pub async fn my_reservations(&self, user: UserId) -> Result<Vec<Reservation>, RepoError> {
        self.reservations.list_reservations(user).await
    }

    /// Cancels a PENDING reservation of `user`; its seats become AVAILABLE.
    pub async fn cancel(
        &self,
        user: UserId,
        id: ReservationId,
        request_id: Option<RequestId>,
    ) -> Result<Reservation, ReservationError> {
        let reservation = self.reservation_of(user, id).await?;
        reservation
            .status
            .transition(ReservationStatus::Cancelled)
            .map_err(|c| ReservationError::NotPending(c.from))?;
        match self
            .reservations
            .cancel_reservation(id, self.now(), request_id.as_ref())
            .await?
        {
            // The Redis stock follows through the `seat-release` consumer.
            Transition::Done(r) => {
                self.leave_waiting_room(&r).await;
                Ok(r)
            }
            Transition::NotPending(status) => Err(ReservationError::NotPending(status)),
            Transition::Overdue => Err(ReservationError::Expired),
            Transition::NotFound | Transition::KeyReused => Err(ReservationError::NotFound),
        }
    }

    /// The user is done with this schedule (paid or cancelled): their slot
    /// goes to the next in line and the hold markers go away. Best effort:
    /// both expire on their own.
    pub(super) async fn leave_waiting_room(&self, reservation: &Reservation) {
        let Some(room) = &self.waiting_room else {
            return;
        };
        let (schedule, user) = (reservation.schedule_id, reservation.user_id);
        let freed = room.queue.free_slot(schedule, user).await;
        let cleared = room
            .queue
            .clear_held(schedule, &reservation.seat_ids, reservation.id)
            .await;
        if let Err(e) = freed.and(cleared) {
            tracing::warn!(%schedule, %user, error = %e, "waiting room not updated");
        }
    }
}
