//! `MemorySeatLock`: the in-memory seat-locking strategy.
//!
//! Why it cannot oversell: the whole hold (check every seat is AVAILABLE,
//! flip them to HELD, write the reservation and its outbox row) happens under
//! the store's single mutex, so no two holds interleave; and it checks every
//! seat before writing any, so a multi-seat hold is all-or-nothing. The
//! per-buyer limit is checked and counted under the same lock.

use crate::store::MemoryStore;
use async_trait::async_trait;
use booking_domain::{
    total_price, HoldError, HoldRequest, NewOutboxEvent, Reservation, ReservationStatus, SeatId,
    SeatLock, SeatStatus,
};

#[derive(Debug, Clone)]
pub struct MemorySeatLock {
    store: MemoryStore,
}

impl MemorySeatLock {
    pub const STRATEGY: &'static str = "memory";

    pub fn new(store: MemoryStore) -> Self {
        Self { store }
    }
}

#[async_trait]
impl SeatLock for MemorySeatLock {
    fn strategy(&self) -> &'static str {
        Self::STRATEGY
    }

    async fn hold_seats(&self, request: &HoldRequest) -> Result<Reservation, HoldError> {
        let mut t = self.store.tables()?;
        // The database's foreign key on `reservations.user_id`: a token
        // outliving its user (a restarted embedded server) holds nothing.
        if !t.users.contains_key(&request.user_id) {
            return Err(HoldError::UnknownUser);
        }
        if !t.schedules.contains_key(&request.schedule_id) {
            return Err(HoldError::ScheduleNotFound);
        }
        let ids = request.seat_ids.as_slice();

        let missing: Vec<SeatId> = ids
            .iter()
            .filter(|id| !t.seats.contains_key(id))
            .copied()
            .collect();
        if !missing.is_empty() {
            return Err(HoldError::SeatsNotFound(missing));
        }
        let seats: Vec<_> = ids.iter().filter_map(|id| t.seats.get(id)).collect();
        let foreign: Vec<SeatId> = seats
            .iter()
            .filter(|s| s.schedule_id != request.schedule_id)
            .map(|s| s.id)
            .collect();
        if !foreign.is_empty() {
            return Err(HoldError::ForeignSeats(foreign));
        }
        if let Some(key) = &request.idempotency_key {
            // The unique (user_id, idempotency_key) index of the database.
            if t.reservation_keys
                .contains_key(&(request.user_id, key.clone()))
            {
                return Err(HoldError::DuplicateIdempotencyKey);
            }
        }
        let taken: Vec<SeatId> = seats
            .iter()
            .filter(|s| s.status != SeatStatus::Available)
            .map(|s| s.id)
            .collect();
        if !taken.is_empty() {
            return Err(HoldError::SeatTaken(taken));
        }
        let total_amount =
            total_price(seats.iter().map(|s| s.price)).ok_or(HoldError::TotalOutOfRange)?;
        // The per-buyer limit, checked after the seats as the database's
        // statement does (its `buyer` CTE runs only for granted seats).
        let buyer = (request.schedule_id, request.user_id);
        let had = t.buyer_seats.get(&buyer).copied().unwrap_or(0);
        let limit = t
            .schedules
            .get(&request.schedule_id)
            .map_or(0, |s| s.max_seats_per_buyer);
        let wanted = i32::try_from(ids.len()).unwrap_or(i32::MAX);
        if had + wanted > limit {
            return Err(HoldError::BuyerLimitReached { limit, held: had });
        }

        // Every check passed: from here on, only writes.
        *t.buyer_seats.entry(buyer).or_insert(0) += wanted;
        let held = t.move_seats(ids, SeatStatus::Available, SeatStatus::Held);
        if let Some(schedule) = t.schedules.get_mut(&request.schedule_id) {
            schedule.available_seats -= held;
        }
        let reservation = Reservation {
            id: t.next_reservation_id(),
            user_id: request.user_id,
            schedule_id: request.schedule_id,
            status: ReservationStatus::Pending,
            seat_ids: ids.to_vec(),
            total_amount,
            expires_at: request.expires_at,
            created_at: request.now,
        };
        t.reservations.insert(reservation.id, reservation.clone());
        if let Some(key) = &request.idempotency_key {
            t.reservation_keys
                .insert((request.user_id, key.clone()), reservation.id);
        }
        t.push_outbox(
            NewOutboxEvent::for_reservation(&reservation, request.now, request.request_id.as_ref()),
            request.now,
        );
        Ok(reservation)
    }
}

#[cfg(test)]
mod tests {
    //! What only the in-memory strategy promises, or what the `SeatLock`
    //! conformance suite (run in `tests/conformance.rs`) does not check.

    use super::*;
    use booking_domain::{
        CatalogRepository, ConcertDetails, Deleted, Email, IdempotencyKey, Inserted,
        InvariantAudit, NewUser, Nickname, OutboxRepository, PaymentRequest, ReservationRepository,
        Role, SaleSettings, Schedule, ScheduleId, SeatGrid, SectionSpec, Transition, UserId,
        UserRepository,
    };
    use booking_testkit::conformance::race;
    use chrono::{Duration, Utc};
    use std::sync::Arc;

    /// A store whose users 1 to `n` exist: a hold needs its user.
    async fn store_with_users(n: i64) -> MemoryStore {
        let store = MemoryStore::new();
        for i in 1..=n {
            let user = NewUser {
                email: Email::parse(&format!("user{i}@example.com")).unwrap(),
                nickname: Nickname::parse("user").unwrap(),
                password_hash: String::new(),
                role: Role::User,
            };
            let Inserted::New(stored) = store.insert_user(&user).await.unwrap() else {
                panic!("user {i} exists twice");
            };
            assert_eq!(stored.id, UserId(i));
        }
        store
    }

    async fn schedule_with_seats(store: &MemoryStore, seats: i32) -> Schedule {
        let concert = store
            .insert_concert(&ConcertDetails::parse("t", "a", "v", "").unwrap())
            .await
            .unwrap();
        let grid = SeatGrid::parse(vec![SectionSpec {
            name: "A".into(),
            rows: 1,
            seats_per_row: seats,
            price: 100,
        }])
        .unwrap();
        store
            .insert_schedule(
                concert.id,
                Utc::now() + Duration::days(1),
                &grid,
                &SaleSettings::default(),
            )
            .await
            .unwrap()
            .unwrap()
    }

    fn request(user: i64, schedule: ScheduleId, seats: &[i64]) -> HoldRequest {
        let seats: Vec<SeatId> = seats.iter().copied().map(SeatId).collect();
        booking_testkit::conformance::request(UserId(user), schedule, &seats)
    }

    /// The suite lets a loser be told `SoldOut` (strategies with a stock
    /// pre-check); in memory every loser learns exactly which seat was taken.
    #[tokio::test(flavor = "multi_thread", worker_threads = 8)]
    async fn a_racing_loser_is_told_which_seat_was_taken() {
        let store = store_with_users(200).await;
        let schedule = schedule_with_seats(&store, 10).await;
        let lock: Arc<dyn SeatLock> = Arc::new(MemorySeatLock::new(store.clone()));
        let requests = (1..=200)
            .map(|user| request(user, schedule.id, &[1]))
            .collect();
        let results = race(&lock, requests).await;

        let won = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1);
        for lost in results.iter().filter_map(|r| r.as_ref().err()) {
            assert!(
                matches!(lost, HoldError::SeatTaken(ids) if ids == &[SeatId(1)]),
                "unexpected error: {lost}"
            );
        }
        let report = store.audit_schedule(schedule.id).await.unwrap();
        assert_eq!((report.held, report.reported_available), (1, 9));
    }

    #[tokio::test]
    async fn a_refused_hold_changes_nothing() {
        let store = store_with_users(200).await;
        let schedule = schedule_with_seats(&store, 4).await;
        let lock = MemorySeatLock::new(store.clone());
        lock.hold_seats(&request(1, schedule.id, &[2]))
            .await
            .unwrap();
        let before = store.list_seats(schedule.id).await.unwrap();

        let err = lock
            .hold_seats(&request(2, schedule.id, &[1, 2, 3]))
            .await
            .unwrap_err();
        assert!(matches!(err, HoldError::SeatTaken(ref ids) if ids == &[SeatId(2)]));
        assert_eq!(store.list_seats(schedule.id).await.unwrap(), before);
        assert_eq!(
            store
                .claim_unpublished("test", 100, Utc::now(), Utc::now())
                .await
                .unwrap()
                .len(),
            1
        );
    }

    /// Like the database's foreign key on `reservations.user_id`: a token
    /// that outlived its user (the embedded server restarted) holds nothing.
    #[tokio::test]
    async fn a_user_that_does_not_exist_holds_nothing() {
        let store = store_with_users(1).await;
        let schedule = schedule_with_seats(&store, 2).await;
        let lock = MemorySeatLock::new(store.clone());
        let before = store.list_seats(schedule.id).await.unwrap();
        let err = lock.hold_seats(&request(2, schedule.id, &[1])).await;
        assert!(matches!(err, Err(HoldError::UnknownUser)), "{err:?}");
        assert_eq!(store.list_seats(schedule.id).await.unwrap(), before);
    }

    /// Prices over `MAX_SEAT_PRICE` cannot be entered, but a total is
    /// checked anyway: it never wraps into a negative amount.
    #[tokio::test]
    async fn a_total_past_i64_max_is_refused_not_wrapped() {
        let store = store_with_users(1).await;
        let schedule = schedule_with_seats(&store, 2).await;
        for seat in store.tables().unwrap().seats.values_mut() {
            seat.price = i64::MAX;
        }
        let lock = MemorySeatLock::new(store.clone());
        let before = store.list_seats(schedule.id).await.unwrap();
        let err = lock.hold_seats(&request(1, schedule.id, &[1, 2])).await;
        assert!(matches!(err, Err(HoldError::TotalOutOfRange)), "{err:?}");
        assert_eq!(store.list_seats(schedule.id).await.unwrap(), before);
        let one = lock
            .hold_seats(&request(1, schedule.id, &[1]))
            .await
            .unwrap();
        assert_eq!(one.total_amount, i64::MAX);
    }

    /// Like the database's unique (user_id, idempotency_key) index: a key
    /// used by one user is free for another.
    #[tokio::test]
    async fn an_idempotency_key_is_scoped_to_its_user() {
        let store = store_with_users(200).await;
        let schedule = schedule_with_seats(&store, 3).await;
        let lock = MemorySeatLock::new(store.clone());
        let keyed = |user: i64, seats: &[i64]| {
            let mut request = request(user, schedule.id, seats);
            request.idempotency_key = Some(IdempotencyKey::parse("k-1").unwrap());
            request
        };

        lock.hold_seats(&keyed(1, &[1])).await.unwrap();
        let err = lock.hold_seats(&keyed(1, &[2])).await;
        assert!(matches!(err, Err(HoldError::DuplicateIdempotencyKey)));
        lock.hold_seats(&keyed(2, &[3])).await.unwrap();
    }

    #[tokio::test]
    async fn schedules_with_reservations_cannot_be_deleted() {
        let store = store_with_users(200).await;
        let schedule = schedule_with_seats(&store, 2).await;
        let lock = MemorySeatLock::new(store.clone());
        lock.hold_seats(&request(1, schedule.id, &[1]))
            .await
            .unwrap();
        assert!(matches!(
            store.delete_schedule(schedule.id).await,
            Ok(Deleted::InUse)
        ));
        assert!(matches!(
            store.delete_concert(schedule.concert_id).await,
            Ok(Deleted::InUse)
        ));
        assert_eq!(store.list_seats(schedule.id).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn cancel_pay_and_expire_move_seats_counter_and_outbox_together() {
        let store = store_with_users(200).await;
        let schedule = schedule_with_seats(&store, 6).await;
        let lock = MemorySeatLock::new(store.clone());
        let now = Utc::now();

        let cancelled = lock
            .hold_seats(&request(1, schedule.id, &[1, 2]))
            .await
            .unwrap();
        let paid = lock
            .hold_seats(&request(1, schedule.id, &[3]))
            .await
            .unwrap();
        let overdue = lock
            .hold_seats(&request(2, schedule.id, &[4]))
            .await
            .unwrap();

        let done = store
            .cancel_reservation(cancelled.id, now, None)
            .await
            .unwrap();
        assert!(
            matches!(done, Transition::Done(ref r) if r.status == ReservationStatus::Cancelled)
        );
        assert_eq!(
            store
                .cancel_reservation(cancelled.id, now, None)
                .await
                .unwrap(),
            Transition::NotPending(ReservationStatus::Cancelled)
        );

        let pay = PaymentRequest {
            reservation_id: paid.id,
            user_id: UserId(1),
            amount: paid.total_amount,
            idempotency_key: Some(IdempotencyKey::parse("p").unwrap()),
            now,
            request_id: None,
        };
        let Transition::Done(payment) = store.confirm_with_payment(&pay).await.unwrap() else {
            panic!("payment refused");
        };
        assert_eq!(payment.amount, 100);
        let again = store.confirm_with_payment(&pay).await.unwrap();
        assert_eq!(again, Transition::NotPending(ReservationStatus::Confirmed));
        let someone_else = PaymentRequest {
            user_id: UserId(2),
            ..pay.clone()
        };
        assert_eq!(
            store.confirm_with_payment(&someone_else).await.unwrap(),
            Transition::NotFound
        );

        let late = PaymentRequest {
            reservation_id: overdue.id,
            user_id: UserId(2),
            now: overdue.expires_at,
            idempotency_key: None,
            amount: 100,
            request_id: None,
        };
        assert_eq!(
            store.confirm_with_payment(&late).await.unwrap(),
            Transition::Overdue
        );
        let expired = store
            .expire_overdue_holds(overdue.expires_at, 10)
            .await
            .unwrap();
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].status, ReservationStatus::Expired);

        let report = store.audit_schedule(schedule.id).await.unwrap();
        assert_eq!(report.violations(), Vec::<String>::new());
        assert_eq!((report.available, report.held, report.reserved), (5, 0, 1));
        let topics: Vec<String> = store
            .claim_unpublished("test", 100, Utc::now(), Utc::now())
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.topic)
            .collect();
        assert_eq!(
            topics,
            [
                "reservation.held",
                "reservation.held",
                "reservation.held",
                "reservation.cancelled",
                "reservation.completed",
                "reservation.cancelled",
            ]
        );
    }
}
