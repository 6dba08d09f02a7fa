//! The `SeatLock` conformance suite: the invariants every strategy must keep
//! under concurrency, checked from the store itself (the `InvariantAudit`
//! reads the tables), not from what the requests returned.
//!
//! A strategy crate runs it with one line in `tests/`:
//! `booking_testkit::seat_lock_conformance_suite!(my_fixture);` where
//! `my_fixture` is an `async fn() -> LockFixture`.

mod buyer_limit;
mod prepared;
mod races;
mod requests;

pub use buyer_limit::*;
pub use prepared::*;
pub use races::*;
pub use requests::*;

use booking_domain::*;
use chrono::{Duration, Utc};
use std::any::Any;
use std::sync::Arc;
use tokio::sync::Barrier;

/// A strategy under test and the stores it writes to.
pub struct LockFixture {
    pub lock: Arc<dyn SeatLock>,
    /// A second, independent instance of the same strategy (its own pool and
    /// clients) over the same stores: a second API server.
    pub second_instance: Arc<dyn SeatLock>,
    pub catalog: Arc<dyn CatalogRepository>,
    pub users: Arc<dyn UserRepository>,
    /// Cancel, pay and expire, as the service does them.
    pub reservations: Arc<dyn ReservationRepository>,
    pub audit: Arc<dyn InvariantAudit>,
    /// Whatever must live as long as the test (a `TestDb`, a container).
    pub guard: Box<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for LockFixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockFixture")
            .field("strategy", &self.lock.strategy())
            .finish()
    }
}

impl LockFixture {
    /// A fixture whose catalogue, users and audit are one PostgreSQL store.
    pub fn on_postgres(
        store: &booking_store_postgres::PgStore,
        lock: Arc<dyn SeatLock>,
        second_instance: Arc<dyn SeatLock>,
        guard: impl Any + Send + Sync,
    ) -> Self {
        Self {
            lock,
            second_instance,
            catalog: Arc::new(store.clone()),
            users: Arc::new(store.clone()),
            reservations: Arc::new(store.clone()),
            audit: Arc::new(store.clone()),
            guard: Box::new(guard),
        }
    }

    /// A concert with one schedule of `seats` seats (one section, rows of up
    /// to 50) at 1000 each; returns the schedule and its seat ids, ascending.
    pub async fn schedule_with_seats(&self, seats: i32) -> (ScheduleId, Vec<SeatId>) {
        let concert = self
            .catalog
            .insert_concert(&ConcertDetails::parse("Race", "Testers", "Hall", "").unwrap())
            .await
            .unwrap();
        let per_row = seats.min(50);
        assert_eq!(seats % per_row, 0, "use a multiple of 50 above 50 seats");
        let grid = SeatGrid::parse(vec![SectionSpec {
            name: "A".into(),
            rows: seats / per_row,
            seats_per_row: per_row,
            price: 1000,
        }])
        .unwrap();
        let schedule = self
            .catalog
            .insert_schedule(
                concert.id,
                Utc::now() + Duration::days(30),
                &grid,
                &SaleSettings::default(),
            )
            .await
            .unwrap()
            .expect("the concert exists");
        let ids = self
            .catalog
            .list_seats(schedule.id)
            .await
            .unwrap()
            .iter()
            .map(|s| s.id)
            .collect();
        (schedule.id, ids)
    }

    pub async fn users(&self, n: usize) -> Vec<UserId> {
        insert_users(self.users.as_ref(), n, "racer").await
    }

    pub async fn audit(&self, schedule: ScheduleId) -> AuditReport {
        self.audit.audit_schedule(schedule).await.unwrap()
    }
}

pub fn request(user: UserId, schedule: ScheduleId, seats: &[SeatId]) -> HoldRequest {
    let now = Utc::now();
    HoldRequest {
        user_id: user,
        schedule_id: schedule,
        seat_ids: SeatIds::parse(seats.to_vec()).unwrap(),
        idempotency_key: None,
        now,
        expires_at: now + Duration::minutes(5),
        request_id: None,
    }
}

/// Starts every request at the same moment (a barrier) and collects results
/// in request order.
pub async fn race(
    lock: &Arc<dyn SeatLock>,
    requests: Vec<HoldRequest>,
) -> Vec<Result<Reservation, HoldError>> {
    race_across(std::slice::from_ref(lock), requests).await
}

/// Like `race`, with request i sent to instance i mod n: several servers.
pub async fn race_across(
    instances: &[Arc<dyn SeatLock>],
    requests: Vec<HoldRequest>,
) -> Vec<Result<Reservation, HoldError>> {
    let barrier = Arc::new(Barrier::new(requests.len()));
    let tasks: Vec<_> = requests
        .into_iter()
        .enumerate()
        .map(|(i, req)| {
            let lock = Arc::clone(&instances[i % instances.len()]);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                lock.hold_seats(&req).await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

/// How a loser of a race is told: the seat is taken, or (a strategy that
/// counts the free seats) no seat is left. Never an internal error.
pub fn is_refusal(e: &HoldError) -> bool {
    matches!(e, HoldError::SeatTaken(_) | HoldError::SoldOut)
}

fn assert_no_violations(report: &AuditReport) {
    assert!(
        report.violations().is_empty(),
        "invariants broken: {:?}",
        report.violations()
    );
}

/// Generates one `#[tokio::test]` per conformance check for a strategy.
/// `$fixture` is an `async fn() -> LockFixture`.
#[macro_export]
macro_rules! seat_lock_conformance_suite {
    ($fixture:path) => {
        $crate::seat_lock_conformance_suite!(@tests $fixture;
            one_winner_per_seat_under_200_racers,
            distinct_seats_never_conflict,
            overlapping_pairs_never_deadlock_or_split,
            taken_seat_fails_the_whole_request,
            unknown_and_foreign_seats_are_refused,
            hold_returns_the_pending_reservation,
            idempotency_key_is_stored_once,
            two_instances_one_winner_per_seat,
            the_last_free_seat_is_won_while_200_race_for_a_taken_one,
            two_instances_overlapping_and_distinct_requests,
            one_buyer_holds_at_most_the_limit_under_10_concurrent_holds,
            cancel_and_expiry_give_the_buyer_room_back,
        );
    };
    (@tests $fixture:path; $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            $crate::conformance::seat_lock::$name($fixture().await).await;
        }
    )*};
}

/// `n` fresh users (`<label><i>-<random>@example.com`), for tests that need
/// buyers the database knows.
pub async fn insert_users(users: &dyn UserRepository, n: usize, label: &str) -> Vec<UserId> {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let user = users
            .insert_user(&NewUser {
                email: Email::parse(&format!("{label}{i}-{tag}@example.com")).unwrap(),
                nickname: Nickname::parse(&format!("{label}{i}")).unwrap(),
                password_hash: "not-a-hash".into(),
                role: Role::User,
            })
            .await
            .unwrap();
        let Inserted::New(user) = user else {
            panic!("{label} {i} of run {tag} already exists");
        };
        ids.push(user.id);
    }
    ids
}
