//! Reservations, payments and the outbox over `MemoryStore`: cancel, pay and
//! expire each move the reservation, its seats, the schedule's counter and
//! the outbox together, under one lock.

use crate::store::{MemoryStore, Tables};
use async_trait::async_trait;
use booking_domain::{
    IdempotencyKey, NewOutboxEvent, OutboxBacklog, OutboxEvent, OutboxRepository, Payment,
    PaymentId, PaymentRequest, PaymentStatus, ProcessedEvents, RepoError, RequestId, Reservation,
    ReservationId, ReservationRepository, ReservationStatus, SeatStatus, Transition, UserId,
};
use chrono::{DateTime, Utc};

impl Tables {
    /// PENDING -> `to` (CANCELLED or EXPIRED): seats HELD -> AVAILABLE, the
    /// counters restored (the schedule's, the buyer's), and the
    /// `reservation.cancelled` event written.
    fn release_hold(
        &mut self,
        id: ReservationId,
        to: ReservationStatus,
        now: DateTime<Utc>,
        request_id: Option<&RequestId>,
    ) -> Transition<Reservation> {
        let Some(current) = self.reservations.get(&id) else {
            return Transition::NotFound;
        };
        let next = match current.status.transition(to) {
            Ok(next) => next,
            Err(conflict) => return Transition::NotPending(conflict.from),
        };
        let mut updated = current.clone();
        updated.status = next;
        let released = self.move_seats(&updated.seat_ids, SeatStatus::Held, SeatStatus::Available);
        if let Some(schedule) = self.schedules.get_mut(&updated.schedule_id) {
            schedule.available_seats += released;
        }
        if let Some(seats) = self
            .buyer_seats
            .get_mut(&(updated.schedule_id, updated.user_id))
        {
            *seats -= i32::try_from(updated.seat_ids.len()).unwrap_or(i32::MAX);
        }
        self.reservations.insert(id, updated.clone());
        let event = NewOutboxEvent::for_reservation(&updated, now, request_id);
        self.push_outbox(event, now);
        Transition::Done(updated)
    }
}

impl MemoryStore {
    /// What the hold-expiry scheduler does: every PENDING reservation whose
    /// hold ran out becomes EXPIRED and gives its seats back. Returns the
    /// expired reservations, oldest first.
    ///
    fn expire_overdue(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Reservation>, RepoError> {
        let mut t = self.tables()?;
        let overdue: Vec<ReservationId> = t
            .reservations
            .values()
            .filter(|r| r.is_overdue(now))
            .map(|r| r.id)
            .take(limit)
            .collect();
        Ok(overdue
            .into_iter()
            .filter_map(
                |id| match t.release_hold(id, ReservationStatus::Expired, now, None) {
                    Transition::Done(r) => Some(r),
                    _ => None,
                },
            )
            .collect())
    }
}

#[async_trait]
impl ReservationRepository for MemoryStore {
    async fn expire_overdue_holds(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Reservation>, RepoError> {
        self.expire_overdue(now, usize::try_from(limit).unwrap_or(0))
    }

    async fn find_reservation(&self, id: ReservationId) -> Result<Option<Reservation>, RepoError> {
        let t = self.tables()?;
        Ok(t.reservations.get(&id).cloned())
    }

    async fn find_reservation_by_key(
        &self,
        user: UserId,
        key: &IdempotencyKey,
    ) -> Result<Option<Reservation>, RepoError> {
        let t = self.tables()?;
        let id = t.reservation_keys.get(&(user, key.clone()));
        Ok(id.and_then(|id| t.reservations.get(id)).cloned())
    }

    async fn list_reservations(&self, user: UserId) -> Result<Vec<Reservation>, RepoError> {
        let t = self.tables()?;
        let mut mine: Vec<Reservation> = t
            .reservations
            .values()
            .filter(|r| r.user_id == user)
            .cloned()
            .collect();
        mine.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.id)));
        Ok(mine)
    }

    async fn cancel_reservation(
        &self,
        id: ReservationId,
        now: DateTime<Utc>,
        request_id: Option<&RequestId>,
    ) -> Result<Transition<Reservation>, RepoError> {
        let mut t = self.tables()?;
        Ok(t.release_hold(id, ReservationStatus::Cancelled, now, request_id))
    }

    async fn confirm_with_payment(
        &self,
        request: &PaymentRequest,
    ) -> Result<Transition<Payment>, RepoError> {
        let mut t = self.tables()?;
        let now = request.now;
        // Someone else's reservation is "not found", as `WHERE user_id = $1`.
        let reservation = match t.reservations.get(&request.reservation_id) {
            Some(r) if r.user_id == request.user_id => r.clone(),
            _ => return Ok(Transition::NotFound),
        };
        if reservation.status != ReservationStatus::Pending {
            return Ok(Transition::NotPending(reservation.status));
        }
        if reservation.is_overdue(now) {
            return Ok(Transition::Overdue);
        }
        if let Some(key) = &request.idempotency_key {
            if t.payment_keys.contains_key(&(request.user_id, key.clone())) {
                return Ok(Transition::KeyReused);
            }
        }

        let mut confirmed = reservation;
        confirmed.status = ReservationStatus::Confirmed;
        t.move_seats(&confirmed.seat_ids, SeatStatus::Held, SeatStatus::Reserved);
        t.reservations.insert(confirmed.id, confirmed.clone());
        let payment = Payment {
            id: t.next_payment_id(),
            reservation_id: confirmed.id,
            user_id: request.user_id,
            amount: request.amount,
            status: PaymentStatus::Completed,
            created_at: now,
        };
        t.payments.insert(payment.id, payment.clone());
        if let Some(key) = &request.idempotency_key {
            t.payment_keys
                .insert((request.user_id, key.clone()), payment.id);
        }
        let event = NewOutboxEvent::for_reservation(&confirmed, now, request.request_id.as_ref());
        t.push_outbox(event, now);
        Ok(Transition::Done(payment))
    }

    async fn find_payment(&self, id: PaymentId) -> Result<Option<Payment>, RepoError> {
        let t = self.tables()?;
        Ok(t.payments.get(&id).cloned())
    }

    async fn find_payment_by_key(
        &self,
        user: UserId,
        key: &IdempotencyKey,
    ) -> Result<Option<Payment>, RepoError> {
        let t = self.tables()?;
        let id = t.payment_keys.get(&(user, key.clone()));
        Ok(id.and_then(|id| t.payments.get(id)).cloned())
    }
}

#[async_trait]
impl OutboxRepository for MemoryStore {
    async fn claim_unpublished(
        &self,
        owner: &str,
        limit: i64,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<OutboxEvent>, RepoError> {
        let mut t = self.tables()?;
        let limit = usize::try_from(limit).unwrap_or(0);
        let free: Vec<OutboxEvent> = t
            .outbox
            .values()
            .filter(|e| e.published_at.is_none())
            .filter(|e| {
                t.outbox_claims
                    .get(&e.id)
                    .is_none_or(|(_, until)| *until <= now)
            })
            .take(limit)
            .cloned()
            .collect();
        for event in &free {
            t.outbox_claims.insert(event.id, (owner.to_owned(), until));
        }
        Ok(free)
    }

    async fn mark_published(&self, ids: &[i64], at: DateTime<Utc>) -> Result<(), RepoError> {
        let mut t = self.tables()?;
        for id in ids {
            if let Some(event) = t.outbox.get_mut(id) {
                // At-least-once relays may mark twice; keep the first time.
                event.published_at.get_or_insert(at);
            }
        }
        Ok(())
    }

    async fn release_claims(&self, owner: &str, ids: &[i64]) -> Result<(), RepoError> {
        let mut t = self.tables()?;
        for id in ids {
            if t.outbox_claims.get(id).is_some_and(|(by, _)| by == owner) {
                t.outbox_claims.remove(id);
            }
        }
        Ok(())
    }

    async fn backlog(&self, now: DateTime<Utc>) -> Result<OutboxBacklog, RepoError> {
        let t = self.tables()?;
        let unpublished: Vec<&OutboxEvent> = t
            .outbox
            .values()
            .filter(|e| e.published_at.is_none())
            .collect();
        Ok(OutboxBacklog {
            unpublished: unpublished.len() as i64,
            oldest_age: unpublished.first().map(|e| now - e.created_at),
        })
    }

    async fn prune_published(&self, before: DateTime<Utc>, limit: i64) -> Result<u64, RepoError> {
        let mut t = self.tables()?;
        let old: Vec<i64> = t
            .outbox
            .values()
            .filter(|e| e.published_at.is_some_and(|at| at < before))
            .map(|e| e.id)
            .take(usize::try_from(limit).unwrap_or(0))
            .collect();
        for id in &old {
            t.outbox.remove(id);
            t.outbox_claims.remove(id);
        }
        Ok(old.len() as u64)
    }
}

#[async_trait]
impl ProcessedEvents for MemoryStore {
    async fn mark_processed(&self, consumer: &str, event_id: &str) -> Result<bool, RepoError> {
        let mut t = self.tables()?;
        let key = (consumer.to_owned(), event_id.to_owned());
        if t.processed.contains_key(&key) {
            return Ok(false);
        }
        t.processed.insert(key, Utc::now());
        Ok(true)
    }

    async fn prune_processed(&self, before: DateTime<Utc>, limit: i64) -> Result<u64, RepoError> {
        let mut t = self.tables()?;
        let old: Vec<(String, String)> = t
            .processed
            .iter()
            .filter(|(_, at)| **at < before)
            .map(|(key, _)| key.clone())
            .take(usize::try_from(limit).unwrap_or(0))
            .collect();
        for key in &old {
            t.processed.remove(key);
        }
        Ok(old.len() as u64)
    }
}
