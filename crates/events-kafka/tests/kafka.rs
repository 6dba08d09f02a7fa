//! The event path on a real Kafka-protocol broker.

use async_trait::async_trait;
use booking_domain::*;
use booking_events_kafka::{dead_letter_topic, KafkaEventBus, KafkaSettings};
use booking_testkit::{TestDb, TestKafka};
use chrono::Utc;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TOPIC: &str = topics::RESERVATION_CANCELLED;

fn bus(kafka: &TestKafka) -> KafkaEventBus {
    let mut settings = KafkaSettings::new(kafka.brokers());
    settings.prefix = kafka.prefix().to_owned();
    settings.backoff = Duration::from_millis(50);
    KafkaEventBus::connect(settings).unwrap()
}

fn event(id: i64, payload: serde_json::Value) -> OutboxEvent {
    OutboxEvent {
        id,
        topic: TOPIC.into(),
        key: id.to_string(),
        payload,
        created_at: Utc::now(),
        published_at: None,
        request_id: Some("req-1".into()),
    }
}

fn cancelled(id: i64, seats: &[i64]) -> serde_json::Value {
    serde_json::json!({
        "reservationId": id, "userId": 1, "scheduleId": 1, "seatIds": seats,
        "status": "CANCELLED", "totalAmount": 0, "occurredAt": Utc::now(),
    })
}

/// Counts attempts per event id; always fails on `{"poison": true}`.
#[derive(Default)]
struct Recorder {
    attempts: Mutex<HashMap<i64, u32>>,
}

#[async_trait]
impl EventHandler for Recorder {
    async fn handle(&self, event: &OutboxEvent) -> Result<(), BoxError> {
        *self.attempts.lock().unwrap().entry(event.id).or_default() += 1;
        if event.payload.get("poison").is_some() {
            return Err("cannot handle a poison record".into());
        }
        Ok(())
    }
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..300 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen within 15 s");
}

fn reader(kafka: &TestKafka, topic: &str) -> StreamConsumer {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka.brokers())
        .set(
            "group.id",
            format!("{}reader-{}", kafka.prefix(), uuid::Uuid::new_v4().simple()),
        )
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    consumer
}

#[tokio::test(flavor = "multi_thread")]
async fn poison_record_goes_to_the_dlt_after_three_attempts_and_the_next_is_handled() {
    let kafka = TestKafka::new().await;
    let bus = bus(&kafka);
    bus.ensure_topics(&[TOPIC], 1).await.unwrap();
    let recorder = Arc::new(Recorder::default());
    bus.subscribe(TOPIC, "poison-test", recorder.clone())
        .await
        .unwrap();

    bus.publish(&event(1, serde_json::json!({"poison": true})))
        .await
        .unwrap();
    bus.publish(&event(2, cancelled(2, &[7]))).await.unwrap();
    eventually("the good record handled", || {
        recorder.attempts.lock().unwrap().get(&2) == Some(&1)
    })
    .await;
    assert_eq!(
        recorder.attempts.lock().unwrap().get(&1),
        Some(&3),
        "exactly 3 attempts"
    );

    let dlt = reader(&kafka, &dead_letter_topic(&bus.topic(TOPIC)));
    let record = tokio::time::timeout(Duration::from_secs(15), dlt.recv())
        .await
        .unwrap()
        .unwrap();
    let headers: HashMap<String, String> = record
        .headers()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h.key.to_owned(),
                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
            )
        })
        .collect();
    assert_eq!(headers["original-topic"], bus.topic(TOPIC));
    assert_eq!(headers["attempts"], "3");
    assert_eq!(headers["event-id"], "1");
    assert!(headers.contains_key("original-partition") && headers.contains_key("original-offset"));
    assert!(headers["error"].contains("poison"), "{headers:?}");
    assert_eq!(
        bus.stats()
            .dead_lettered
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

/// Records which reservations the strategy was told were released; like the
/// redis strategy, it gives each reservation's seats back once.
#[derive(Default)]
struct CountingLock {
    calls: Mutex<usize>,
    released: Mutex<HashMap<ReservationId, usize>>,
}

#[async_trait]
impl SeatLock for CountingLock {
    fn strategy(&self) -> &'static str {
        "counting"
    }
    async fn hold_seats(&self, _: &HoldRequest) -> Result<Reservation, HoldError> {
        Err(HoldError::Contention)
    }
    async fn seats_released(&self, reservation: &Reservation) -> Result<(), RepoError> {
        *self.calls.lock().unwrap() += 1;
        self.released
            .lock()
            .unwrap()
            .entry(reservation.id)
            .or_insert(reservation.seat_ids.len());
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_record_delivered_twice_releases_its_seats_once() {
    let (kafka, db) = (TestKafka::new().await, TestDb::new().await);
    let bus = bus(&kafka);
    bus.ensure_topics(&[TOPIC], 1).await.unwrap();
    let lock = Arc::new(CountingLock::default());
    let counters = Arc::new(JobCounters::default());
    let handler = SeatReleaseHandler {
        processed: Arc::new(db.store()),
        seat_lock: lock.clone(),
        queue: None,
        counters: counters.clone(),
    };
    bus.subscribe(TOPIC, SeatReleaseHandler::CONSUMER, Arc::new(handler))
        .await
        .unwrap();

    let twice = event(41, cancelled(41, &[3, 4]));
    bus.publish(&twice).await.unwrap();
    bus.publish(&twice).await.unwrap();
    eventually("both deliveries handled", || {
        counters
            .duplicates_skipped
            .load(std::sync::atomic::Ordering::Relaxed)
            == 1
    })
    .await;
    // The handler may tell the strategy twice (it must be idempotent); the
    // seats are given back and counted once.
    assert!(*lock.calls.lock().unwrap() >= 1);
    assert_eq!(
        lock.released.lock().unwrap().values().sum::<usize>(),
        2,
        "two seats, released once"
    );
    assert_eq!(
        counters
            .seats_released
            .load(std::sync::atomic::Ordering::Relaxed),
        2,
        "two seats counted once"
    );
}

/// A private broker this test can stop and start again.
struct Broker {
    child: std::process::Child,
}

fn tansu() -> String {
    let home = std::env::var("HOME").unwrap_or_default();
    for candidate in ["tansu".to_owned(), format!("{home}/.cargo/bin/tansu")] {
        if std::process::Command::new(&candidate)
            .arg("--version")
            .output()
            .is_ok()
        {
            return candidate;
        }
    }
    panic!("this test stops and restarts its own broker and needs the `tansu` binary: cargo install tansu --locked --features dynostore (deploy/local/up installs it)");
}

impl Broker {
    async fn start(port: u16) -> Broker {
        let url = format!("tcp://127.0.0.1:{port}");
        let child = std::process::Command::new(tansu())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Broker { child };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut child = child;
        let _ = child.kill();
        let _ = child.wait();
        panic!("tansu did not listen on {port}");
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_booking_made_while_the_broker_is_down_is_published_when_it_is_back() {
    let db = TestDb::new().await;
    let port = free_port();
    let broker = Broker::start(port).await;
    let mut settings = KafkaSettings::new(format!("127.0.0.1:{port}"));
    settings.delivery_timeout = Duration::from_secs(2);
    let bus = Arc::new(KafkaEventBus::connect(settings).unwrap());
    bus.ensure_topics(&[topics::RESERVATION_HELD], 3)
        .await
        .unwrap();
    let store = db.store();
    let relay = OutboxRelay {
        outbox: Arc::new(store.clone()),
        bus: bus.clone(),
        owner: "relay-1".into(),
        batch: 100,
        claim_for: chrono::Duration::seconds(30),
        counters: Arc::new(JobCounters::default()),
    };

    // The broker goes down; a booking still succeeds: its event waits in the outbox.
    broker.stop();
    let fixture = booking_testkit::conformance::LockFixture {
        lock: Arc::new(booking_lock_pessimistic::PessimisticSeatLock::new(
            store.clone(),
        )),
        second_instance: Arc::new(booking_lock_pessimistic::PessimisticSeatLock::new(
            store.clone(),
        )),
        catalog: Arc::new(store.clone()),
        users: Arc::new(store.clone()),
        audit: Arc::new(store.clone()),
        guard: Box::new(()),
    };
    let (schedule, seats) = fixture.schedule_with_seats(2).await;
    let user = fixture.users(1).await[0];
    let held = fixture
        .lock
        .hold_seats(&booking_testkit::conformance::request(
            user,
            schedule,
            &seats[..1],
        ))
        .await;
    assert!(held.is_ok(), "booking does not need the broker: {held:?}");
    assert!(
        relay.relay_once(Utc::now()).await.is_err(),
        "the broker is down"
    );
    assert_eq!(
        store.backlog(Utc::now()).await.unwrap().unpublished,
        1,
        "kept, not lost"
    );

    // Back up (empty: memory storage), topics again, and the relay catches up.
    let _broker = Broker::start(port).await;
    bus.ensure_topics(&[topics::RESERVATION_HELD], 3)
        .await
        .unwrap();
    let mut published = 0;
    for _ in 0..20 {
        match relay.relay_once(Utc::now()).await {
            Ok(n) => published += n,
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
        if published > 0 {
            break;
        }
    }
    assert_eq!(published, 1);
    assert_eq!(
        store.backlog(Utc::now()).await.unwrap().unpublished,
        0,
        "0 events lost"
    );

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", format!("127.0.0.1:{port}"))
        .set("group.id", "verify")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topics::RESERVATION_HELD]).unwrap();
    let record = tokio::time::timeout(Duration::from_secs(15), consumer.recv())
        .await
        .unwrap()
        .unwrap();
    let payload: serde_json::Value = serde_json::from_slice(record.payload().unwrap()).unwrap();
    assert_eq!(payload["reservationId"], held.unwrap().id.0);
}
