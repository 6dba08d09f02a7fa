//! How many events per second one outbox relay publishes to the broker.
//!
//! For each relay mode: a fresh test database (`TestDb`) with N unpublished
//! outbox rows, one `OutboxRelay` over `KafkaEventBus`, and the wall time of
//! `relay_once` loops until nothing is left to claim. Two modes: one event
//! at a time (the relay before `publish_batch`: publish, await, next; the
//! port's default `publish_batch`), and pipelined (`KafkaEventBus`'s own).
//! Beside them, the same producer sending N records with no database at
//! all, both ways: the ceilings on this machine and broker.
//!
//! `just bench-relay` (or `cargo run --release -p booking-events-kafka
//! --example relay_throughput -- [N] [BATCH] [pipelined]`); needs
//! `DATABASE_URL` and `KAFKA_BROKERS`, like the tests. Defaults: N = 20000,
//! BATCH = 500 (the default `events.relay_batch`); `pipelined` skips the
//! slow one-at-a-time modes (to compare batch sizes).

use async_trait::async_trait;
use booking_domain::*;
use booking_events_kafka::{KafkaEventBus, KafkaSettings};
use booking_testkit::{TestDb, TestKafka};
use chrono::Utc;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOPICS: [&str; 3] = [
    topics::RESERVATION_HELD,
    topics::RESERVATION_COMPLETED,
    topics::RESERVATION_CANCELLED,
];

/// N rows shaped like the real ones: a reservation event, keyed by its
/// reservation, spread over the three topics, with a request id.
const FILL_OUTBOX: &str = "\
INSERT INTO outbox (topic, key, payload, headers)
SELECT (ARRAY['reservation.held', 'reservation.completed', 'reservation.cancelled'])[1 + i % 3],
       i::text,
       jsonb_build_object('reservationId', i, 'userId', i, 'scheduleId', 1,
                          'seatIds', jsonb_build_array(i), 'status', 'PENDING',
                          'totalAmount', 10000, 'occurredAt', now()),
       jsonb_build_object('request-id', 'bench-' || i)
  FROM generate_series(1, $1) AS i";

fn events(n: i64) -> Vec<OutboxEvent> {
    (1..=n)
        .map(|i| OutboxEvent {
            id: i,
            topic: TOPICS[(i % 3) as usize].to_owned(),
            key: i.to_string(),
            payload: serde_json::json!({
                "reservationId": i, "userId": i, "scheduleId": 1, "seatIds": [i],
                "status": "PENDING", "totalAmount": 10000, "occurredAt": Utc::now(),
            }),
            created_at: Utc::now(),
            published_at: None,
            request_id: Some(format!("bench-{i}")),
        })
        .collect()
}

async fn kafka_bus(kafka: &TestKafka) -> Arc<KafkaEventBus> {
    let mut settings = KafkaSettings::new(kafka.brokers());
    settings.prefix = kafka.prefix().to_owned();
    let bus = KafkaEventBus::connect(settings).expect("a kafka producer");
    bus.ensure_topics(&TOPICS, 3).await.expect("topics");
    Arc::new(bus)
}

/// The bus with the port's default `publish_batch`: one event at a time,
/// each delivery awaited before the next, as the relay published before.
struct OneAtATime(Arc<KafkaEventBus>);

#[async_trait]
impl EventBus for OneAtATime {
    async fn publish(&self, event: &OutboxEvent) -> Result<(), RepoError> {
        self.0.publish(event).await
    }

    async fn subscribe(
        &self,
        topic: &str,
        group: &str,
        handler: Arc<dyn EventHandler>,
    ) -> Result<(), RepoError> {
        self.0.subscribe(topic, group, handler).await
    }
}

/// Fills a fresh database with `n` rows and times one relay draining them.
async fn relay(bus: Arc<dyn EventBus>, n: i64, batch: i64) -> Duration {
    let db = TestDb::new().await;
    let mut conn = db.connection().await;
    diesel::sql_query(FILL_OUTBOX)
        .bind::<BigInt, _>(n)
        .execute(&mut conn)
        .await
        .expect("outbox rows");
    let store = Arc::new(db.store());
    let relay = OutboxRelay {
        outbox: store.clone(),
        bus,
        owner: "bench".into(),
        batch,
        claim_for: chrono::Duration::seconds(30),
        counters: Arc::new(JobCounters::default()),
    };
    let started = Instant::now();
    let mut published = 0;
    loop {
        let sent = relay.relay_once(Utc::now()).await.expect("a relay pass");
        if sent == 0 {
            break;
        }
        published += sent;
    }
    let took = started.elapsed();
    let left = store
        .backlog(Utc::now())
        .await
        .expect("backlog")
        .unpublished;
    assert_eq!((published as i64, left), (n, 0), "every row published once");
    took
}

/// Sends `n` records with no database, awaiting each before the next.
async fn producer_one_at_a_time(bus: &KafkaEventBus, n: i64) -> Duration {
    let events = events(n);
    let started = Instant::now();
    for event in &events {
        bus.publish(event).await.expect("delivered");
    }
    started.elapsed()
}

/// Sends `n` records with no database, `batch` at a time, pipelined.
async fn producer_pipelined(bus: &KafkaEventBus, n: i64, batch: i64) -> Duration {
    let events = events(n);
    let started = Instant::now();
    for chunk in events.chunks(batch as usize) {
        for outcome in bus.publish_batch(chunk).await {
            outcome.expect("delivered");
        }
    }
    started.elapsed()
}

fn report(what: &str, n: i64, took: Duration) {
    let rate = n as f64 / took.as_secs_f64();
    println!(
        "{what:<44} {n:>7} events in {:>7.2} s = {rate:>8.0} events/s",
        took.as_secs_f64()
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: i64 = args.next().map_or(20_000, |a| a.parse().expect("N"));
    let batch: i64 = args.next().map_or(500, |a| a.parse().expect("BATCH"));
    let one_at_a_time = args.next().as_deref() != Some("pipelined");
    let kafka = TestKafka::new().await;
    let bus = kafka_bus(&kafka).await;
    println!("one relay, batch {batch}, broker {}", kafka.brokers());

    if one_at_a_time {
        report(
            "relay, one at a time (before)",
            n,
            relay(Arc::new(OneAtATime(bus.clone())), n, batch).await,
        );
    }
    report(
        "relay, pipelined (publish_batch)",
        n,
        relay(bus.clone(), n, batch).await,
    );
    if one_at_a_time {
        report(
            "producer alone, no database, one at a time",
            n,
            producer_one_at_a_time(&bus, n).await,
        );
    }
    report(
        "producer alone, no database, pipelined",
        n,
        producer_pipelined(&bus, n, batch).await,
    );
}
