//! Holds that are never paid give their seats back: the scheduler under a
//! lease, the outbox, and the seat-release consumer on Kafka.

use crate::helpers::*;
use booking_api::Strategy;
use booking_domain::*;
use booking_lock_pessimistic::PessimisticSeatLock;
use booking_testkit::conformance::{request, LockFixture};
use booking_testkit::{TestDb, TestKafka};
use chrono::{Duration, Utc};
use reqwest::StatusCode;
use std::collections::HashSet;
use std::sync::Arc;

fn expirer(db: &TestDb, owner: &str) -> HoldExpirer {
    let store = db.store();
    HoldExpirer {
        reservations: Arc::new(store.clone()),
        leases: Arc::new(store),
        owner: owner.into(),
        period: Duration::seconds(30),
        batch: 7,
        counters: Arc::new(JobCounters::default()),
    }
}

/// 20 overdue holds; two scheduler instances run the same period at once:
/// one of them takes the lease, each hold expires once, one event each.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_schedulers_expire_each_hold_exactly_once() {
    let db = TestDb::new().await;
    let store = db.store();
    let f = LockFixture::on_postgres(
        &store,
        Arc::new(PessimisticSeatLock::new(store.clone())),
        Arc::new(PessimisticSeatLock::new(store.clone())),
        (),
    );
    let (schedule, seats) = f.schedule_with_seats(20).await;
    let users = f.users(20).await;
    for (user, seat) in users.iter().zip(&seats) {
        let mut hold = request(*user, schedule, &[*seat]);
        hold.expires_at = Utc::now() - Duration::seconds(1);
        f.lock.hold_seats(&hold).await.unwrap();
    }
    let now = Utc::now();
    let (a, b) = (expirer(&db, "instance-a"), expirer(&db, "instance-b"));
    let (ran_a, ran_b) = tokio::join!(a.expire_overdue_holds(now), b.expire_overdue_holds(now));
    let runs: Vec<Vec<Reservation>> = [ran_a.unwrap(), ran_b.unwrap()]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(
        runs.len(),
        1,
        "exactly one instance holds the period's lease"
    );
    let ids: HashSet<ReservationId> = runs[0].iter().map(|r| r.id).collect();
    assert_eq!((runs[0].len(), ids.len()), (20, 20));
    assert!(runs[0]
        .iter()
        .all(|r| r.status == ReservationStatus::Expired));

    let report = f.audit(schedule).await;
    assert_eq!((report.available, report.active_reservations), (20, 0));
    assert!(report.violations().is_empty(), "{:?}", report.violations());
    let events = store
        .claim_unpublished("check", 1000, now, now)
        .await
        .unwrap();
    let cancelled: Vec<&str> = events
        .iter()
        .filter(|e| e.topic == topics::RESERVATION_CANCELLED)
        .map(|e| e.key.as_str())
        .collect();
    let distinct: HashSet<&&str> = cancelled.iter().collect();
    assert_eq!(
        (cancelled.len(), distinct.len()),
        (20, 20),
        "one event per expired hold"
    );

    // Without the lease (a lapsed holder and its successor overlapping),
    // the rows themselves still expire once: SKIP LOCKED.
    let later = request(users[0], schedule, &seats[..4]);
    let mut later = later;
    later.expires_at = Utc::now() - Duration::seconds(1);
    f.lock.hold_seats(&later).await.unwrap();
    let (one, two) = (db.store(), db.store());
    let (x, y) = tokio::join!(
        one.expire_overdue_holds(Utc::now(), 100),
        two.expire_overdue_holds(Utc::now(), 100)
    );
    assert_eq!(x.unwrap().len() + y.unwrap().len(), 1);
}

/// Over HTTP, with a 1 s hold and a 1 s scheduler, events on Kafka: the
/// seats come back, the availability and the Redis stock too, and paying
/// the expired hold is refused (410).
#[tokio::test(flavor = "multi_thread")]
async fn an_unpaid_hold_gives_its_seats_back_end_to_end() {
    let kafka = TestKafka::new().await;
    let (brokers, prefix) = (kafka.brokers().to_owned(), kafka.prefix().to_owned());
    let mut app = spawn_app_configured(Strategy::Redis, |s| {
        s.booking.hold_ttl_secs = 1;
        s.expiry.period_secs = 1;
        s.events.kafka_brokers = Some(brokers);
        s.events.kafka_prefix = prefix;
        s.events.relay_poll_ms = 100;
    })
    .await;
    app.kafka = Some(kafka);
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 4).await;
    let fan = app.user("fan").await;
    let held = expect_status(
        app.hold(&fan, s.schedule_id, &s.seat_ids[..2], None).await,
        StatusCode::CREATED,
    )
    .await;
    let id = held["id"].as_i64().unwrap();
    assert_eq!(
        app.seat_statuses(s.concert_id, s.schedule_id).await[0].1,
        "HELD"
    );

    let mut back = false;
    for _ in 0..100 {
        let seats = app.seat_statuses(s.concert_id, s.schedule_id).await;
        if seats.iter().all(|(_, status)| status == "AVAILABLE") {
            back = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        back,
        "the expired hold's seats are AVAILABLE again within 10 s"
    );
    let schedules = expect_status(
        app.get(&format!("/api/concerts/{}/schedules", s.concert_id), None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(schedules[0]["availableSeats"], 4);
    let reservation = expect_status(
        app.get(&format!("/api/reservations/{id}"), Some(&fan.token))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(reservation["status"], "EXPIRED");
    expect_problem(app.pay(&fan, id, None).await, StatusCode::GONE).await;

    // The seat-release consumer, through the broker, gave the stock back.
    let redis = app.redis.as_ref().unwrap();
    let key = format!("{}stock:{{s:{}}}", redis.prefix(), s.schedule_id);
    let mut stock = 0;
    for _ in 0..150 {
        stock = redis::cmd("GET")
            .arg(&key)
            .query_async::<i64>(&mut redis.connection().await)
            .await
            .unwrap();
        if stock == 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(stock, 4, "stock restored by the consumer");
}
