//! Use-case tests: `BookingService` driven over the in-memory adapters, with
//! a fake password hasher and a clock the test moves by hand.

use async_trait::async_trait;
use booking_domain::*;
use booking_memory::{MemoryQueue, MemorySeatLock, MemoryStore};
use chrono::{DateTime, Duration, TimeZone, Utc};
use std::sync::{Arc, Mutex};

/// Hashing without the cost: "hash:" + password.
struct FakeHasher;

#[async_trait]
impl PasswordHasher for FakeHasher {
    async fn hash(&self, password: &Password) -> Result<String, BoxError> {
        Ok(format!("hash:{}", password.expose()))
    }

    async fn verify(&self, password: &Password, hash: Option<&str>) -> bool {
        hash.is_some_and(|h| h == format!("hash:{}", password.expose()))
    }
}

/// A clock that only moves when the test says so.
struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

const PASSWORD: &str = "correct horse";
const PRICE: i64 = 10_000;

/// A service over fresh memory adapters, with one concert and two schedules:
/// `schedule` has seats 1..=10, `other_schedule` seats 11..=14.
struct World {
    service: BookingService,
    store: MemoryStore,
    clock: Arc<TestClock>,
    schedule: Schedule,
    other_schedule: Schedule,
}

impl World {
    /// The waiting room switched off: holds need no entry token.
    async fn new() -> Self {
        Self::build(None).await
    }

    /// The waiting room on, admitting `active_limit` users at a time.
    async fn with_waiting_room(active_limit: usize) -> (Self, MemoryQueue) {
        let queue = MemoryQueue::default();
        let room = WaitingRoom {
            queue: Arc::new(queue.clone()),
            rules: AdmissionRules {
                rate_per_sec: 100.0,
                tick: Duration::milliseconds(250),
                active_limit: active_limit as u64,
                passes_per_free_seat: 2.0,
            },
        };
        (Self::build(Some(room)).await, queue)
    }

    async fn build(waiting_room: Option<WaitingRoom>) -> Self {
        let store = MemoryStore::new();
        let start = Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0).unwrap();
        let clock = Arc::new(TestClock(Mutex::new(start)));
        let service = BookingService::new(
            Ports {
                users: Arc::new(store.clone()),
                catalog: Arc::new(store.clone()),
                reservations: Arc::new(store.clone()),
                seat_lock: Arc::new(MemorySeatLock::new(store.clone())),
                hasher: Arc::new(FakeHasher),
                clock: clock.clone(),
                waiting_room,
            },
            BookingService::DEFAULT_HOLD_TTL,
        );
        let concert = service
            .admin
            .create_concert(ConcertDetails::parse("Night", "Band", "Hall", "").unwrap())
            .await
            .unwrap();
        let grid = |rows, seats_per_row| {
            SeatGrid::parse(vec![SectionSpec {
                name: "A".into(),
                rows,
                seats_per_row,
                price: PRICE,
            }])
            .unwrap()
        };
        let starts_at = start + Duration::days(30);
        let schedule = service
            .admin
            .create_schedule(concert.id, starts_at, grid(2, 5), SaleSettings::default())
            .await
            .unwrap();
        let other_schedule = service
            .admin
            .create_schedule(concert.id, starts_at, grid(1, 4), SaleSettings::default())
            .await
            .unwrap();
        Self {
            service,
            store,
            clock,
            schedule,
            other_schedule,
        }
    }

    async fn user(&self, email: &str) -> UserId {
        self.service
            .accounts
            .sign_up(email, PASSWORD, "fan")
            .await
            .unwrap()
            .id
    }

    async fn hold(
        &self,
        user: UserId,
        seats: &[i64],
        key: Option<&str>,
    ) -> Result<Idempotent<Reservation>, HoldError> {
        self.hold_with_token(user, seats, key, None).await
    }

    async fn hold_with_token(
        &self,
        user: UserId,
        seats: &[i64],
        key: Option<&str>,
        entry_token: Option<&str>,
    ) -> Result<Idempotent<Reservation>, HoldError> {
        self.service
            .bookings
            .hold_seats(HoldCommand {
                user_id: user,
                schedule_id: self.schedule.id,
                seat_ids: seats.iter().copied().map(SeatId).collect(),
                idempotency_key: key.map(|k| IdempotencyKey::parse(k).unwrap()),
                entry_token: entry_token.map(str::to_owned),
                request_id: None,
            })
            .await
    }

    /// Enters the waiting room of `schedule` and is let in: the entry token.
    async fn admitted(&self, user: UserId) -> String {
        self.service
            .admissions
            .enter_queue(user, self.schedule.id)
            .await
            .unwrap();
        self.service.admissions.admit_waiting().await.unwrap();
        self.service
            .admissions
            .entry_token(user, self.schedule.id)
            .await
            .unwrap()
            .token
    }

    async fn held(&self, user: UserId, seats: &[i64]) -> Reservation {
        self.hold(user, seats, None).await.unwrap().value
    }

    async fn pay(
        &self,
        user: UserId,
        id: ReservationId,
        key: Option<&str>,
    ) -> Result<Idempotent<Payment>, ReservationError> {
        let key = key.map(|k| IdempotencyKey::parse(k).unwrap());
        self.service.bookings.pay(user, id, key, None).await
    }

    async fn seat_statuses(&self, seats: &[i64]) -> Vec<SeatStatus> {
        let all = self.store.list_seats(self.schedule.id).await.unwrap();
        seats
            .iter()
            .map(|id| {
                all.iter()
                    .find(|s| s.id == SeatId(*id))
                    .map(|s| s.status)
                    .unwrap()
            })
            .collect()
    }

    async fn available_counter(&self) -> i32 {
        self.store
            .find_schedule(self.schedule.id)
            .await
            .unwrap()
            .unwrap()
            .available_seats
    }

    async fn outbox_topics(&self) -> Vec<String> {
        let events = self
            .store
            .claim_unpublished("test", 1000, Utc::now(), Utc::now())
            .await
            .unwrap();
        events.into_iter().map(|e| e.topic).collect()
    }

    async fn assert_invariants_hold(&self) {
        for schedule in [self.schedule.id, self.other_schedule.id] {
            let report = self.store.audit_schedule(schedule).await.unwrap();
            assert_eq!(report.violations(), Vec::<String>::new(), "{report:?}");
        }
    }
}

// --- users -----------------------------------------------------------------

#[tokio::test]
async fn sign_up_stores_only_the_password_hash() {
    let w = World::new().await;
    let user = w
        .service
        .accounts
        .sign_up(" Fan@Example.com ", PASSWORD, "fan")
        .await
        .unwrap();
    assert_eq!(user.email, "fan@example.com");
    assert_eq!(user.password_hash, format!("hash:{PASSWORD}"));
    assert_eq!(user.role, Role::User);
    assert_eq!(
        w.service.accounts.find_user(user.id).await.unwrap(),
        Some(user)
    );
}

#[tokio::test]
async fn an_email_signs_up_once() {
    let w = World::new().await;
    w.user("fan@example.com").await;
    let again = w
        .service
        .accounts
        .sign_up("FAN@example.com", "another password", "twin")
        .await;
    assert!(matches!(again, Err(SignUpError::DuplicateEmail)));
}

#[tokio::test]
async fn malformed_sign_up_is_invalid() {
    let w = World::new().await;
    let short = w
        .service
        .accounts
        .sign_up("fan@example.com", "short", "fan")
        .await;
    assert!(matches!(short, Err(SignUpError::Invalid(_))));
    let no_at = w
        .service
        .accounts
        .sign_up("fan.example.com", PASSWORD, "fan")
        .await;
    assert!(matches!(no_at, Err(SignUpError::Invalid(_))));
}

#[tokio::test]
async fn log_in_needs_the_right_password_of_a_known_email() {
    let w = World::new().await;
    let id = w.user("fan@example.com").await;

    let user = w
        .service
        .accounts
        .log_in("fan@example.com", PASSWORD)
        .await
        .unwrap();
    assert_eq!(user.id, id);
    for (email, password) in [
        ("fan@example.com", "wrong password"),
        ("nobody@example.com", PASSWORD),
        ("not-an-email", PASSWORD),
        ("fan@example.com", "short"),
    ] {
        let refused = w.service.accounts.log_in(email, password).await;
        assert!(
            matches!(refused, Err(LogInError::InvalidCredentials)),
            "{email} / {password}"
        );
    }
}

// --- holding seats ---------------------------------------------------------

#[tokio::test]
async fn a_hold_is_pending_for_five_minutes_and_holds_its_seats() {
    let w = World::new().await;
    let user = w.user("fan@example.com").await;

    let held = w.hold(user, &[4, 3], None).await.unwrap();
    assert!(!held.replayed);
    let r = held.value;
    assert_eq!(r.status, ReservationStatus::Pending);
    assert_eq!(r.seat_ids, vec![SeatId(3), SeatId(4)]);
    assert_eq!(r.total_amount, 2 * PRICE);
    assert_eq!(r.created_at, w.clock.now());
    assert_eq!(r.expires_at, w.clock.now() + Duration::minutes(5));

    assert_eq!(
        w.seat_statuses(&[2, 3, 4, 5]).await,
        [
            SeatStatus::Available,
            SeatStatus::Held,
            SeatStatus::Held,
            SeatStatus::Available
        ]
    );
    assert_eq!(w.available_counter().await, 8);
    assert_eq!(w.outbox_topics().await, [topics::RESERVATION_HELD]);
    w.assert_invariants_hold().await;
}

#[tokio::test]
async fn a_taken_seat_cannot_be_held_and_nothing_else_is_held() {
    let w = World::new().await;
    let first = w.user("first@example.com").await;
    let second = w.user("second@example.com").await;
    w.held(first, &[4]).await;

    let refused = w.hold(second, &[4, 5], None).await;
    assert!(matches!(refused, Err(HoldError::SeatTaken(ids)) if ids == [SeatId(4)]));
    assert_eq!(w.seat_statuses(&[5]).await, [SeatStatus::Available]);
    assert_eq!(w.available_counter().await, 9);
    assert!(w
        .service
        .bookings
        .my_reservations(second)
        .await
        .unwrap()
        .is_empty());
    w.assert_invariants_hold().await;
}

#[tokio::test]
async fn at_most_four_seats_per_hold() {
    let w = World::new().await;
    let user = w.user("fan@example.com").await;
    let refused = w.hold(user, &[1, 2, 3, 4, 5], None).await;
    assert!(matches!(
        refused,
        Err(HoldError::InvalidSeats(SeatIdsError::TooMany(5)))
    ));
    let refused = w.hold(user, &[], None).await;
    assert!(matches!(
        refused,
        Err(HoldError::InvalidSeats(SeatIdsError::Empty))
    ));
    assert_eq!(w.available_counter().await, 10);
}

#[tokio::test]
async fn seats_of_another_schedule_cannot_be_held() {
    let w = World::new().await;
    let user = w.user("fan@example.com").await;
    let refused = w.hold(user, &[1, 11], None).await;
    assert!(matches!(refused, Err(HoldError::ForeignSeats(ids)) if ids == [SeatId(11)]));
    let refused = w.hold(user, &[1, 99], None).await;
    assert!(matches!(refused, Err(HoldError::SeatsNotFound(ids)) if ids == [SeatId(99)]));
    assert_eq!(w.seat_statuses(&[1]).await, [SeatStatus::Available]);
    w.assert_invariants_hold().await;
}

#[tokio::test]
async fn a_retried_hold_replays_the_first_reservation() {
    let w = World::new().await;
    let user = w.user("fan@example.com").await;
    let first = w.hold(user, &[1, 2], Some("hold-1")).await.unwrap();

    let retry = w.hold(user, &[2, 1], Some("hold-1")).await.unwrap();
    assert!(retry.replayed);
    assert_eq!(retry.value, first.value);
    assert_eq!(
        w.service
            .bookings
            .my_reservations(user)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(w.outbox_topics().await.len(), 1);
    assert_eq!(w.available_counter().await, 8);
    w.assert_invariants_hold().await;
}

#[tokio::test]
async fn an_idempotency_key_cannot_be_reused_for_other_seats() {
    let w = World::new().await;
    let user = w.user("fan@example.com").await;
    w.hold(user, &[1, 2], Some("hold-1")).await.unwrap();

    let refused = w.hold(user, &[3], Some("hold-1")).await;
    assert!(matches!(refused, Err(HoldError::IdempotencyKeyReused)));
    assert_eq!(w.seat_statuses(&[3]).await, [SeatStatus::Available]);

    // Keys are per user: someone else may use the same one.
    let other = w.user("other@example.com").await;
    let theirs = w.hold(other, &[3], Some("hold-1")).await.unwrap();
    assert!(!theirs.replayed);
    w.assert_invariants_hold().await;
}

// --- cancelling --------------------------------------------------------------

#[tokio::test]
async fn cancel_gives_the_seats_back_once() {
    let w = World::new().await;
    let user = w.user("fan@example.com").await;
    let r = w.held(user, &[1, 2]).await;

    let cancelled = w.service.bookings.cancel(user, r.id, None).await.unwrap();
    assert_eq!(cancelled.status, ReservationStatus::Cancelled);
    assert_eq!(
        w.seat_statuses(&[1, 2]).await,
        [SeatStatus::Available, SeatStatus::Available]
    );
    assert_eq!(w.available_counter().await, 10);
    assert_eq!(
        w.outbox_topics().await,
        [topics::RESERVATION_HELD, topics::RESERVATION_CANCELLED]
    );

    let twice = w.service.bookings.cancel(user, r.id, None).await;
    assert!(matches!(
        twice,
        Err(ReservationError::NotPending(ReservationStatus::Cancelled))
    ));
    // The seats are free for the next fan.
    let next = w.user("next@example.com").await;
    w.held(next, &[1, 2]).await;
    w.assert_invariants_hold().await;
}

#[tokio::test]
async fn a_confirmed_reservation_cannot_be_cancelled() {
    let w = World::new().await;
    let user = w.user("fan@example.com").await;
    let r = w.held(user, &[1]).await;
    w.pay(user, r.id, None).await.unwrap();

    let refused = w.service.bookings.cancel(user, r.id, None).await;
    assert!(matches!(
        refused,
        Err(ReservationError::NotPending(ReservationStatus::Confirmed))
    ));
    assert_eq!(w.seat_statuses(&[1]).await, [SeatStatus::Reserved]);
}

// --- paying --------------------------------------------------------------------

#[tokio::test]
async fn payment_confirms_the_hold_and_reserves_its_seats() {
    let w = World::new().await;
    let user = w.user("fan@example.com").await;
    let r = w.held(user, &[5, 6]).await;

    let paid = w.pay(user, r.id, Some("pay-1")).await.unwrap();
    assert!(!paid.replayed);
    let payment = paid.value;
    assert_eq!(payment.reservation_id, r.id);
    assert_eq!(payment.amount, r.total_amount);
    assert_eq!(payment.status, PaymentStatus::Completed);
    assert_eq!(
        w.service
            .bookings
            .payment_of(user, payment.id)
            .await
            .unwrap(),
        payment
    );

    let confirmed = w.service.bookings.reservation_of(user, r.id).await.unwrap();
    assert_eq!(confirmed.status, ReservationStatus::Confirmed);
    assert_eq!(
        w.seat_statuses(&[5, 6]).await,
        [SeatStatus::Reserved, SeatStatus::Reserved]
    );
    assert_eq!(w.available_counter().await, 8);
    assert_eq!(
        w.outbox_topics().await,
        [topics::RESERVATION_HELD, topics::RESERVATION_COMPLETED]
    );
    w.assert_invariants_hold().await;
}

#[tokio::test]
async fn expired_hold_cannot_be_paid() {
    let w = World::new().await;
    let user = w.user("fan@example.com").await;
    let r = w.held(user, &[1]).await;

    w.clock.advance(BookingService::DEFAULT_HOLD_TTL);
    let refused = w.pay(user, r.id, Some("pay-1")).await;
    assert!(matches!(refused, Err(ReservationError::Expired)));
    let still = w.service.bookings.reservation_of(user, r.id).await.unwrap();
    assert_eq!(still.status, ReservationStatus::Pending);
    assert!(w.store.find_payment(PaymentId(1)).await.unwrap().is_none());
    w.assert_invariants_hold().await;
}

#[tokio::test]
async fn a_hold_can_be_paid_until_its_last_second() {
    let w = World::new().await;
    let user = w.user("fan@example.com").await;
    let r = w.held(user, &[1]).await;

    w.clock
        .advance(BookingService::DEFAULT_HOLD_TTL - Duration::seconds(1));
    w.pay(user, r.id, None).await.unwrap();
    assert_eq!(w.seat_statuses(&[1]).await, [SeatStatus::Reserved]);
}

#[tokio::test]
async fn another_users_reservation_is_not_found() {
    let w = World::new().await;
    let owner = w.user("owner@example.com").await;
    let stranger = w.user("stranger@example.com").await;
    let r = w.held(owner, &[1]).await;

    assert!(matches!(
        w.service.bookings.reservation_of(stranger, r.id).await,
        Err(ReservationError::NotFound)
    ));
    assert!(matches!(
        w.pay(stranger, r.id, None).await,
        Err(ReservationError::NotFound)
    ));
    assert!(matches!(
        w.service.bookings.cancel(stranger, r.id, None).await,
        Err(ReservationError::NotFound)
    ));
    assert!(matches!(
        w.service
            .bookings
            .cancel(owner, ReservationId(999), None)
            .await,
        Err(ReservationError::NotFound)
    ));
    assert_eq!(w.seat_statuses(&[1]).await, [SeatStatus::Held]);

    let payment = w.pay(owner, r.id, None).await.unwrap().value;
    assert!(matches!(
        w.service.bookings.payment_of(stranger, payment.id).await,
        Err(ReservationError::NotFound)
    ));
}

#[tokio::test]
async fn a_retried_payment_replays_the_first_payment() {
    let w = World::new().await;
    let user = w.user("fan@example.com").await;
    let r = w.held(user, &[1]).await;
    let first = w.pay(user, r.id, Some("pay-1")).await.unwrap();

    let retry = w.pay(user, r.id, Some("pay-1")).await.unwrap();
    assert!(retry.replayed);
    assert_eq!(retry.value, first.value);
    // Still one payment, one completed event.
    assert!(w.store.find_payment(PaymentId(2)).await.unwrap().is_none());
    assert_eq!(
        w.outbox_topics().await,
        [topics::RESERVATION_HELD, topics::RESERVATION_COMPLETED]
    );

    // Without the key it is a second attempt, and the hold is no longer pending.
    let unkeyed = w.pay(user, r.id, None).await;
    assert!(matches!(
        unkeyed,
        Err(ReservationError::NotPending(ReservationStatus::Confirmed))
    ));
}

#[tokio::test]
async fn a_payment_key_cannot_pay_for_another_reservation() {
    let w = World::new().await;
    let user = w.user("fan@example.com").await;
    let first = w.held(user, &[1]).await;
    let second = w.held(user, &[2]).await;
    w.pay(user, first.id, Some("pay-1")).await.unwrap();

    let refused = w.pay(user, second.id, Some("pay-1")).await;
    assert!(matches!(
        refused,
        Err(ReservationError::IdempotencyKeyReused)
    ));
    assert_eq!(w.seat_statuses(&[2]).await, [SeatStatus::Held]);
}

// --- listing and admin ---------------------------------------------------------

#[tokio::test]
async fn my_reservations_are_newest_first() {
    let w = World::new().await;
    let user = w.user("fan@example.com").await;
    let older = w.held(user, &[1]).await;
    w.clock.advance(Duration::seconds(10));
    let newer = w.held(user, &[2]).await;

    let mine = w.service.bookings.my_reservations(user).await.unwrap();
    assert_eq!(
        mine.iter().map(|r| r.id).collect::<Vec<_>>(),
        [newer.id, older.id]
    );
}

#[tokio::test]
async fn a_schedule_with_reservations_cannot_be_deleted() {
    let w = World::new().await;
    let user = w.user("fan@example.com").await;
    w.held(user, &[1]).await;

    assert!(matches!(
        w.service.admin.delete_schedule(w.schedule.id).await,
        Err(AdminError::Conflict(_))
    ));
    assert!(matches!(
        w.service.admin.delete_concert(w.schedule.concert_id).await,
        Err(AdminError::Conflict(_))
    ));
    // The schedule nobody booked can go.
    w.service
        .admin
        .delete_schedule(w.other_schedule.id)
        .await
        .unwrap();
    assert!(matches!(
        w.service.admin.delete_schedule(w.other_schedule.id).await,
        Err(AdminError::NotFound("schedule"))
    ));
}

#[tokio::test]
async fn the_seat_map_belongs_to_its_concert() {
    let w = World::new().await;
    let map = w
        .service
        .catalogue
        .seat_map(w.schedule.concert_id, w.schedule.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(map.layout.schedule, w.schedule.id);
    assert_eq!(map.layout.concert, w.schedule.concert_id);
    assert_eq!(map.layout.total_seats, w.schedule.total_seats);
    assert_eq!(map.layout.seats.len(), 10);
    assert_eq!(map.statuses.available(), 10);
    let wrong_concert = ConcertId(w.schedule.concert_id.0 + 1);
    assert!(w
        .service
        .catalogue
        .seat_map(wrong_concert, w.schedule.id)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn the_seat_statuses_follow_a_hold_in_the_layouts_order() {
    let w = World::new().await;
    let user = w.user("fan@example.com").await;
    let map = w
        .service
        .catalogue
        .seat_map(w.schedule.concert_id, w.schedule.id)
        .await
        .unwrap()
        .unwrap();
    w.hold(user, &[2, 4], None).await.unwrap();
    let statuses = w
        .service
        .catalogue
        .seat_statuses(w.schedule.id)
        .await
        .unwrap()
        .unwrap();
    assert!(statuses.fit(&map.layout));
    let held: Vec<SeatId> = map
        .layout
        .seats
        .iter()
        .zip(&statuses.0)
        .filter(|(_, status)| **status == SeatStatus::Held)
        .map(|(seat, _)| seat.id)
        .collect();
    assert_eq!(held, [SeatId(2), SeatId(4)]);
    assert_eq!(statuses.available(), 8);
}

// --- waiting room --------------------------------------------------------------

#[tokio::test]
async fn with_the_waiting_room_on_a_hold_needs_an_entry_token() {
    let (w, queue) = World::with_waiting_room(10).await;
    let user = w.user("fan@example.com").await;

    for token in [None, Some("forged")] {
        let refused = w.hold_with_token(user, &[1], None, token).await;
        assert!(
            matches!(refused, Err(HoldError::EntryTokenRequired)),
            "{token:?}"
        );
    }
    assert_eq!(w.seat_statuses(&[1]).await, [SeatStatus::Available]);
    assert_eq!(w.available_counter().await, 10);
    assert!(w.outbox_topics().await.is_empty());
    assert!(w
        .service
        .bookings
        .my_reservations(user)
        .await
        .unwrap()
        .is_empty());
    assert!(queue.held_seats(w.schedule.id).await.unwrap().is_empty());
    w.assert_invariants_hold().await;
}

#[tokio::test]
async fn an_admitted_user_holds_seats_with_the_entry_token() {
    let (w, queue) = World::with_waiting_room(10).await;
    let user = w.user("fan@example.com").await;
    let s = w.schedule.id;

    let entered = w.service.admissions.enter_queue(user, s).await.unwrap();
    assert_eq!(
        (entered.state, entered.position, entered.waiting),
        (RoomState::Waiting, Some(1), 1)
    );
    assert!(matches!(
        w.service.admissions.entry_token(user, s).await,
        Err(QueueError::NotAdmittedYet(1))
    ));
    assert_eq!(w.service.admissions.admit_waiting().await.unwrap(), 1);
    let view = w.service.admissions.queue_status(user, s).await.unwrap();
    assert_eq!((view.state, view.position), (RoomState::Admitted, Some(0)));
    assert_eq!(view.estimated_wait, None);
    let token = w.service.admissions.entry_token(user, s).await.unwrap();
    assert_eq!(token.expires_at, w.clock.now() + Duration::minutes(5));

    let r = w
        .hold_with_token(user, &[2, 1], None, Some(&token.token))
        .await
        .unwrap()
        .value;
    assert_eq!(r.status, ReservationStatus::Pending);
    assert_eq!(
        w.seat_statuses(&[1, 2]).await,
        [SeatStatus::Held, SeatStatus::Held]
    );
    assert_eq!(queue.held_seats(s).await.unwrap(), [SeatId(1), SeatId(2)]);
    assert_eq!(
        queue.stats(s, w.clock.now()).await.unwrap(),
        QueueStats {
            waiting: 0,
            active: 1
        }
    );
    w.assert_invariants_hold().await;
}

#[tokio::test]
async fn an_entry_token_holds_seats_once() {
    let (w, _) = World::with_waiting_room(10).await;
    let user = w.user("fan@example.com").await;
    let token = w.admitted(user).await;
    let first = w
        .hold_with_token(user, &[1], Some("hold-1"), Some(&token))
        .await
        .unwrap();

    let again = w.hold_with_token(user, &[2], None, Some(&token)).await;
    assert!(matches!(again, Err(HoldError::EntryTokenRequired)));
    assert_eq!(w.seat_statuses(&[2]).await, [SeatStatus::Available]);
    assert!(matches!(
        w.service.admissions.entry_token(user, w.schedule.id).await,
        Err(QueueError::TokenUsed)
    ));
    // Entering again does not queue a user whose hold still takes a slot.
    let view = w
        .service
        .admissions
        .enter_queue(user, w.schedule.id)
        .await
        .unwrap();
    assert_eq!(view.state, RoomState::Admitted);

    // A retry of the hold that used the token replays it.
    let retry = w
        .hold_with_token(user, &[1], Some("hold-1"), Some(&token))
        .await
        .unwrap();
    assert!(retry.replayed);
    assert_eq!(retry.value, first.value);
    assert_eq!(
        w.service
            .bookings
            .my_reservations(user)
            .await
            .unwrap()
            .len(),
        1
    );
    w.assert_invariants_hold().await;
}

#[tokio::test]
async fn a_failed_hold_leaves_the_entry_token_usable() {
    let (w, _) = World::with_waiting_room(10).await;
    let first = w.user("first@example.com").await;
    let second = w.user("second@example.com").await;
    let first_token = w.admitted(first).await;
    w.hold_with_token(first, &[4], None, Some(&first_token))
        .await
        .unwrap();

    let token = w.admitted(second).await;
    let refused = w.hold_with_token(second, &[4, 5], None, Some(&token)).await;
    assert!(matches!(refused, Err(HoldError::SeatTaken(ids)) if ids == [SeatId(4)]));
    let foreign = w.hold_with_token(second, &[11], None, Some(&token)).await;
    assert!(matches!(foreign, Err(HoldError::ForeignSeats(_))));
    assert_eq!(
        w.service
            .admissions
            .entry_token(second, w.schedule.id)
            .await
            .unwrap()
            .token,
        token
    );

    w.hold_with_token(second, &[5], None, Some(&token))
        .await
        .unwrap();
    w.assert_invariants_hold().await;
}

#[tokio::test]
async fn another_users_entry_token_is_refused() {
    let (w, _) = World::with_waiting_room(10).await;
    let owner = w.user("owner@example.com").await;
    let stranger = w.user("stranger@example.com").await;
    let token = w.admitted(owner).await;
    w.admitted(stranger).await;

    let refused = w.hold_with_token(stranger, &[1], None, Some(&token)).await;
    assert!(matches!(refused, Err(HoldError::EntryTokenRequired)));
    assert_eq!(w.seat_statuses(&[1]).await, [SeatStatus::Available]);
    // Still good for its owner.
    w.hold_with_token(owner, &[1], None, Some(&token))
        .await
        .unwrap();
}

#[tokio::test]
async fn paying_frees_the_slot_for_the_next_in_line() {
    let (w, queue) = World::with_waiting_room(1).await;
    let s = w.schedule.id;
    let first = w.user("first@example.com").await;
    let second = w.user("second@example.com").await;
    let token = w.admitted(first).await;

    w.service.admissions.enter_queue(second, s).await.unwrap();
    assert_eq!(w.service.admissions.admit_waiting().await.unwrap(), 0);
    let view = w.service.admissions.queue_status(second, s).await.unwrap();
    assert_eq!(
        (view.state, view.position, view.waiting),
        (RoomState::Waiting, Some(1), 1)
    );

    let r = w
        .hold_with_token(first, &[1], None, Some(&token))
        .await
        .unwrap()
        .value;
    // The hold keeps the slot taken.
    assert_eq!(w.service.admissions.admit_waiting().await.unwrap(), 0);

    w.pay(first, r.id, None).await.unwrap();
    assert!(queue.held_seats(s).await.unwrap().is_empty());
    assert_eq!(w.service.admissions.admit_waiting().await.unwrap(), 1);
    let token = w
        .service
        .admissions
        .entry_token(second, s)
        .await
        .unwrap()
        .token;
    w.hold_with_token(second, &[2], None, Some(&token))
        .await
        .unwrap();
    w.assert_invariants_hold().await;
}

#[tokio::test]
async fn cancelling_frees_the_slot_for_the_next_in_line() {
    let (w, queue) = World::with_waiting_room(1).await;
    let first = w.user("first@example.com").await;
    let second = w.user("second@example.com").await;
    let token = w.admitted(first).await;
    w.service
        .admissions
        .enter_queue(second, w.schedule.id)
        .await
        .unwrap();
    let r = w
        .hold_with_token(first, &[1], None, Some(&token))
        .await
        .unwrap()
        .value;

    w.service.bookings.cancel(first, r.id, None).await.unwrap();
    assert!(queue.held_seats(w.schedule.id).await.unwrap().is_empty());
    assert_eq!(w.service.admissions.admit_waiting().await.unwrap(), 1);
    assert!(w
        .service
        .admissions
        .entry_token(second, w.schedule.id)
        .await
        .is_ok());
}

#[tokio::test]
async fn an_expired_hold_or_token_gives_the_slot_to_the_next_in_line() {
    let (w, _) = World::with_waiting_room(1).await;
    let s = w.schedule.id;
    let users = [
        w.user("first@example.com").await,
        w.user("second@example.com").await,
        w.user("third@example.com").await,
    ];
    let token = w.admitted(users[0]).await;
    for user in &users[1..] {
        w.service.admissions.enter_queue(*user, s).await.unwrap();
    }
    w.hold_with_token(users[0], &[1], None, Some(&token))
        .await
        .unwrap();

    // The hold lapses: the slot goes on.
    w.clock.advance(BookingService::DEFAULT_HOLD_TTL);
    assert_eq!(w.service.admissions.admit_waiting().await.unwrap(), 1);
    let unused = w
        .service
        .admissions
        .entry_token(users[1], s)
        .await
        .unwrap()
        .token;

    // The token lapses unused: it is refused, and the slot goes on.
    w.clock.advance(MemoryQueue::DEFAULT_TOKEN_TTL);
    let late = w.hold_with_token(users[1], &[2], None, Some(&unused)).await;
    assert!(matches!(late, Err(HoldError::EntryTokenRequired)));
    assert_eq!(w.service.admissions.admit_waiting().await.unwrap(), 1);
    assert!(w.service.admissions.entry_token(users[2], s).await.is_ok());
}

#[tokio::test]
async fn with_the_waiting_room_off_no_token_is_needed_and_the_queue_is_disabled() {
    let w = World::new().await;
    let user = w.user("fan@example.com").await;
    let s = w.schedule.id;
    assert!(!w.service.waiting_room_enabled());

    w.hold_with_token(user, &[1], None, None).await.unwrap();
    w.hold_with_token(user, &[2], None, Some("ignored"))
        .await
        .unwrap();

    assert!(matches!(
        w.service.admissions.enter_queue(user, s).await,
        Err(QueueError::Disabled)
    ));
    assert!(matches!(
        w.service.admissions.queue_status(user, s).await,
        Err(QueueError::Disabled)
    ));
    assert!(matches!(
        w.service.admissions.entry_token(user, s).await,
        Err(QueueError::Disabled)
    ));
    assert!(matches!(
        w.service.admissions.admit_waiting().await,
        Err(QueueError::Disabled)
    ));
}

#[tokio::test]
async fn only_a_known_schedule_has_a_waiting_room() {
    let (w, _) = World::with_waiting_room(10).await;
    let user = w.user("fan@example.com").await;
    assert!(matches!(
        w.service
            .admissions
            .enter_queue(user, ScheduleId(999))
            .await,
        Err(QueueError::ScheduleNotFound)
    ));
    assert!(matches!(
        w.service.admissions.queue_status(user, w.schedule.id).await,
        Err(QueueError::NotInQueue)
    ));
    assert!(matches!(
        w.service.admissions.entry_token(user, w.schedule.id).await,
        Err(QueueError::NotInQueue)
    ));
}

#[tokio::test]
async fn a_hold_that_finds_no_seat_free_gives_the_slot_up_at_once() {
    let (w, queue) = World::with_waiting_room(10).await;
    let s = w.schedule.id;
    // Admitted while seats were free; the others take them all first.
    let late = w.user("late@example.com").await;
    let token = w.admitted(late).await;
    for (i, seats) in [&[1, 2, 3, 4][..], &[5, 6, 7, 8], &[9, 10]]
        .iter()
        .enumerate()
    {
        let buyer = w.user(&format!("buyer{i}@example.com")).await;
        let pass = w.admitted(buyer).await;
        w.hold_with_token(buyer, seats, None, Some(&pass))
            .await
            .unwrap();
    }
    let active = queue.stats(s, w.clock.now()).await.unwrap().active;

    let refused = w.hold_with_token(late, &[1], None, Some(&token)).await;
    assert!(
        matches!(refused, Err(HoldError::SeatTaken(_))),
        "{refused:?}"
    );
    assert!(matches!(
        w.service.admissions.entry_token(late, s).await,
        Err(QueueError::NotInQueue)
    ));
    assert_eq!(
        queue.stats(s, w.clock.now()).await.unwrap().active,
        active - 1,
        "the slot went to nobody"
    );
}
