//! The `SeatLock` conformance suite: the invariants every strategy must keep
//! under concurrency, checked from the store itself (the `InvariantAudit`
//! reads the tables), not from what the requests returned.
//!
//! A strategy crate runs it with one line in `tests/`:
//! `booking_testkit::seat_lock_conformance_suite!(my_fixture);` where
//! `my_fixture` is an `async fn() -> LockFixture`.

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
            .insert_schedule(concert.id, Utc::now() + Duration::days(30), &grid)
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
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let user = self
                .users
                .insert_user(&NewUser {
                    email: Email::parse(&format!("racer{i}-{tag}@example.com")).unwrap(),
                    nickname: Nickname::parse(&format!("racer{i}")).unwrap(),
                    password_hash: "not-a-hash".into(),
                    role: Role::User,
                })
                .await
                .unwrap();
            let Inserted::New(user) = user else {
                panic!("racer {i} of run {tag} already exists");
            };
            ids.push(user.id);
        }
        ids
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

/// How a loser of a race is told: the seat is taken, or (a strategy with a
/// stock pre-check) not enough seats are left. Never an internal error.
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

/// Invariant 1: of 200 concurrent holds of one seat exactly one wins, 199
/// are refused (seat taken, or sold out where a strategy pre-checks stock),
/// and the store has one active reservation.
pub async fn one_winner_per_seat_under_200_racers(f: LockFixture) {
    let (schedule, seats) = f.schedule_with_seats(1).await;
    let users = f.users(200).await;
    let requests = users
        .iter()
        .map(|u| request(*u, schedule, &seats))
        .collect();
    let results = race(&f.lock, requests).await;

    let wins = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| r.as_ref().is_err_and(is_refusal))
        .count();
    let other: Vec<_> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .filter(|e| !is_refusal(e))
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        (wins, refused),
        (1, 199),
        "unexpected errors, e.g. {:?}",
        &other[..other.len().min(3)]
    );

    let report = f.audit(schedule).await;
    assert_eq!(report.active_reservations, 1);
    assert_eq!((report.held, report.available), (1, 0));
    assert_no_violations(&report);
}

/// 200 concurrent holds of 200 different seats do not interfere: all win.
pub async fn distinct_seats_never_conflict(f: LockFixture) {
    let (schedule, seats) = f.schedule_with_seats(200).await;
    let users = f.users(200).await;
    let requests = users
        .iter()
        .zip(&seats)
        .map(|(u, s)| request(*u, schedule, &[*s]))
        .collect();
    let results = race(&f.lock, requests).await;

    let errors: Vec<_> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(ToString::to_string)
        .collect();
    assert!(
        errors.is_empty(),
        "{} of 200 failed: {errors:?}",
        errors.len()
    );
    let report = f.audit(schedule).await;
    assert_eq!(
        (report.active_reservations, report.held, report.available),
        (200, 200, 0)
    );
    assert_no_violations(&report);
}

/// Invariant 3: 100 concurrent two-seat requests over overlapping pairs
/// (seat i with seat i+1, around a ring of 50) end with no deadlock or
/// timeout error, no partial reservation, and no seat held twice.
pub async fn overlapping_pairs_never_deadlock_or_split(f: LockFixture) {
    let (schedule, seats) = f.schedule_with_seats(50).await;
    let users = f.users(100).await;
    let pairs: Vec<[SeatId; 2]> = (0..100)
        .map(|i| [seats[i % 50], seats[(i + 1) % 50]])
        .collect();
    let requests = users
        .iter()
        .zip(&pairs)
        .map(|(u, p)| request(*u, schedule, p))
        .collect();
    let results = race(&f.lock, requests).await;

    let mut won = 0;
    for (result, pair) in results.iter().zip(&pairs) {
        match result {
            Ok(r) => {
                won += 1;
                let mut want = pair.to_vec();
                want.sort();
                assert_eq!(
                    r.seat_ids, want,
                    "a reservation must hold exactly its seats"
                );
            }
            Err(e) if is_refusal(e) => {}
            Err(other) => panic!("an overlapping pair may only be refused, got: {other}"),
        }
    }
    assert!(won >= 1);
    let report = f.audit(schedule).await;
    assert_eq!(report.active_reservations, won);
    assert_eq!(
        report.held,
        2 * won,
        "every winner holds both of its seats, no loser holds one"
    );
    assert_no_violations(&report);
}

/// Invariant 3: a request that includes one taken seat holds none of them.
pub async fn taken_seat_fails_the_whole_request(f: LockFixture) {
    let (schedule, seats) = f.schedule_with_seats(4).await;
    let users = f.users(2).await;
    f.lock
        .hold_seats(&request(users[0], schedule, &seats[1..2]))
        .await
        .unwrap();

    let err = f
        .lock
        .hold_seats(&request(users[1], schedule, &seats[0..3]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HoldError::SeatTaken(ids) if ids == &seats[1..2]),
        "{err}"
    );
    let report = f.audit(schedule).await;
    assert_eq!(
        (report.held, report.available, report.active_reservations),
        (1, 3, 1)
    );
    assert_no_violations(&report);
}

/// Bad references are refused precisely and change nothing.
pub async fn unknown_and_foreign_seats_are_refused(f: LockFixture) {
    let (schedule, seats) = f.schedule_with_seats(2).await;
    let (other_schedule, other_seats) = f.schedule_with_seats(2).await;
    let user = f.users(1).await[0];

    let missing = SeatId(seats[1].0 + 1_000_000);
    let err = f
        .lock
        .hold_seats(&request(user, schedule, &[seats[0], missing]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HoldError::SeatsNotFound(ids) if ids == &[missing]),
        "{err}"
    );

    let err = f
        .lock
        .hold_seats(&request(user, schedule, &[seats[0], other_seats[0]]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HoldError::ForeignSeats(ids) if ids == &[other_seats[0]]),
        "{err}"
    );

    let err = f
        .lock
        .hold_seats(&request(user, ScheduleId(i64::MAX), &seats[..1]))
        .await
        .unwrap_err();
    assert!(matches!(err, HoldError::ScheduleNotFound), "{err}");

    for s in [schedule, other_schedule] {
        let report = f.audit(s).await;
        assert_eq!((report.held, report.active_reservations), (0, 0));
        assert_no_violations(&report);
    }
}

/// A hold's reservation says what was held, for how much, until when.
pub async fn hold_returns_the_pending_reservation(f: LockFixture) {
    let (schedule, seats) = f.schedule_with_seats(4).await;
    let user = f.users(1).await[0];
    let req = request(user, schedule, &[seats[3], seats[0]]);
    let r = f.lock.hold_seats(&req).await.unwrap();
    assert_eq!(r.status, ReservationStatus::Pending);
    assert_eq!((r.user_id, r.schedule_id), (user, schedule));
    assert_eq!(r.seat_ids, vec![seats[0], seats[3]]);
    assert_eq!(r.total_amount, 2000);
    assert_eq!(
        r.expires_at.timestamp_millis(),
        req.expires_at.timestamp_millis()
    );
}

/// Two requests with the same idempotency key store one reservation.
pub async fn idempotency_key_is_stored_once(f: LockFixture) {
    let (schedule, seats) = f.schedule_with_seats(4).await;
    let user = f.users(1).await[0];
    let mut first = request(user, schedule, &seats[..1]);
    first.idempotency_key = Some(IdempotencyKey::parse("key-1").unwrap());
    f.lock.hold_seats(&first).await.unwrap();

    let mut again = request(user, schedule, &seats[1..2]);
    again.idempotency_key = first.idempotency_key.clone();
    let err = f.lock.hold_seats(&again).await.unwrap_err();
    assert!(matches!(err, HoldError::DuplicateIdempotencyKey), "{err}");
    let report = f.audit(schedule).await;
    assert_eq!((report.held, report.active_reservations), (1, 1));
    assert_no_violations(&report);
}

/// Two servers (independent instances sharing the stores), 100 racers on
/// each for one seat: still exactly one winner.
pub async fn two_instances_one_winner_per_seat(f: LockFixture) {
    let (schedule, seats) = f.schedule_with_seats(1).await;
    let users = f.users(200).await;
    let requests = users
        .iter()
        .map(|u| request(*u, schedule, &seats))
        .collect();
    let both = [Arc::clone(&f.lock), Arc::clone(&f.second_instance)];
    let results = race_across(&both, requests).await;

    let wins = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| r.as_ref().is_err_and(is_refusal))
        .count();
    assert_eq!((wins, refused), (1, 199));
    let report = f.audit(schedule).await;
    assert_eq!((report.active_reservations, report.held), (1, 1));
    assert_no_violations(&report);
}

/// Two servers, overlapping pairs and distinct seats mixed: no deadlock, no
/// partial hold, no seat held twice; every uncontested seat is won.
pub async fn two_instances_overlapping_and_distinct_requests(f: LockFixture) {
    // 200 seats: the 150 seats asked for fit, so a stock pre-check refuses none.
    let (schedule, seats) = f.schedule_with_seats(200).await;
    let users = f.users(100).await;
    // Requests 0..50 fight over pairs of seats 0..25; 50..100 each want one of seats 100..150.
    let wanted: Vec<Vec<SeatId>> = (0..100)
        .map(|i| {
            let mut w = if i < 50 {
                vec![seats[i % 25], seats[(i + 1) % 25]]
            } else {
                vec![seats[i + 50]]
            };
            w.sort();
            w
        })
        .collect();
    let requests = users
        .iter()
        .zip(&wanted)
        .map(|(u, w)| request(*u, schedule, w))
        .collect();
    let both = [Arc::clone(&f.lock), Arc::clone(&f.second_instance)];
    let results = race_across(&both, requests).await;

    for (i, result) in results.iter().enumerate() {
        match result {
            Ok(r) => assert_eq!(r.seat_ids, wanted[i]),
            Err(e) if i < 50 && is_refusal(e) => {}
            Err(e) => panic!("request {i} ({:?}) failed: {e}", wanted[i]),
        }
    }
    let won_pairs = results[..50].iter().filter(|r| r.is_ok()).count() as i64;
    let report = f.audit(schedule).await;
    assert_eq!(
        report.held,
        2 * won_pairs + 50,
        "all 50 distinct seats, and both seats of each won pair"
    );
    assert_no_violations(&report);
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
            two_instances_overlapping_and_distinct_requests,
        );
    };
    (@tests $fixture:path; $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            $crate::conformance::$name($fixture().await).await;
        }
    )*};
}
