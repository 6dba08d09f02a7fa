//! The `EventBus` on Kafka.
//!
//! Publishing (the outbox relay): an idempotent producer (`acks=all`), key =
//! reservation id, so a reservation's events stay in order on one partition;
//! `publish` returns only once the broker has the record, and
//! `publish_batch` queues a whole batch before it waits for the deliveries,
//! so the records travel together. The outbox row id travels as the
//! `event-id` header: consumers deduplicate on it.
//!
//! Consuming: one consumer per (topic, group) with manual commits. A record's
//! offset is committed only after its handler succeeded, or after the record
//! went to `<topic>.DLT` (headers: original topic, partition, offset, error,
//! attempts) following the configured number of failed attempts with
//! backoff; the handled offsets are committed together every 500 ms. Everything is async: no blocking call on the runtime.

use async_trait::async_trait;
use booking_domain::{BoxError, EventBus, EventHandler, OutboxEvent, RepoError};
use chrono::{DateTime, Utc};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::Instrument;

mod consumer;
mod group_watch;
mod replay;
use consumer::ConsumerLoop;
pub use replay::ReplayReport;

pub const EVENT_ID: &str = "event-id";
/// The HTTP request that wrote the event (see `OutboxEvent::request_id`).
pub const REQUEST_ID: &str = "request-id";

/// A record's header as text, if it has it and it is UTF-8.
pub(crate) fn header_str(message: &BorrowedMessage<'_>, name: &str) -> Option<String> {
    message.headers().and_then(|h| {
        h.iter()
            .find(|header| header.key == name)
            .and_then(|header| header.value)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::to_owned)
    })
}

#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// Bootstrap servers, e.g. `127.0.0.1:9092`.
    pub brokers: String,
    /// Handler attempts before a record goes to the dead-letter topic.
    pub attempts: u32,
    /// Pause after the first failed attempt; doubles per attempt.
    pub backoff: Duration,
    /// How long a publish may wait for the broker before it fails.
    pub delivery_timeout: Duration,
    /// Prepended to every topic and consumer group (tests, tenants).
    pub prefix: String,
}

impl KafkaSettings {
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            attempts: 3,
            backoff: Duration::from_millis(200),
            delivery_timeout: Duration::from_secs(10),
            prefix: String::new(),
        }
    }
}

/// What the consumers and the producer did; exported as metrics.
#[derive(Debug, Default)]
pub struct KafkaStats {
    pub published: AtomicU64,
    pub consumed: AtomicU64,
    pub retries: AtomicU64,
    pub dead_lettered: AtomicU64,
    /// (topic, group) -> records behind, as each consumer last measured.
    pub lags: Mutex<std::collections::BTreeMap<(String, String), i64>>,
    /// (topic, group) -> how often the consumer recovered its place.
    pub recoveries: Mutex<std::collections::BTreeMap<(String, String), Recoveries>>,
}

/// A consumer's recoveries of its place in a log (see `consumer`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recoveries {
    pub offset_resets: u64,
    pub gaps: u64,
    /// Times the member left and joined its group again because a partition
    /// had no reader (counted per such partition's topic).
    pub rejoins: u64,
}

impl KafkaStats {
    pub(crate) fn recovered(&self, topic: &str, group: &str, count: impl FnOnce(&mut Recoveries)) {
        let mut all = self
            .recoveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        count(all.entry((topic.to_owned(), group.to_owned())).or_default());
    }

    /// The recoveries of `group` on `topic` so far.
    pub fn recoveries_of(&self, topic: &str, group: &str) -> Recoveries {
        self.recoveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(topic.to_owned(), group.to_owned()))
            .copied()
            .unwrap_or_default()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KafkaSetupError {
    #[error("kafka client: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
}

/// The headers a dead-letter record adds to the original's.
pub const DLT_HEADERS: [&str; 5] = [
    "original-topic",
    "original-partition",
    "original-offset",
    "error",
    "attempts",
];

/// A record's own headers, without those a dead letter adds: what a
/// dead-letter record carries along, and what its replay restores.
pub(crate) fn original_headers(message: &BorrowedMessage<'_>) -> OwnedHeaders {
    let mut headers = OwnedHeaders::new();
    if let Some(all) = message.headers() {
        for header in all.iter().filter(|h| !DLT_HEADERS.contains(&h.key)) {
            headers = headers.insert(header);
        }
    }
    headers
}

/// A record's key as text (empty when it has none).
pub(crate) fn key_of(message: &BorrowedMessage<'_>) -> String {
    message
        .key()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .unwrap_or_default()
}

/// The dead-letter topic of `topic`.
pub fn dead_letter_topic(topic: &str) -> String {
    format!("{topic}.DLT")
}

#[derive(Clone)]
pub struct KafkaEventBus {
    settings: KafkaSettings,
    /// Rebuilt after a fatal error (an idempotent producer cannot recover
    /// from some of them, e.g. a broker that lost its state).
    producer: Arc<Mutex<FutureProducer>>,
    /// Partitions of a topic this bus creates (the last `ensure_topics`).
    partitions: Arc<std::sync::atomic::AtomicI32>,
    stats: Arc<KafkaStats>,
    stop: Arc<watch::Sender<bool>>,
}

impl std::fmt::Debug for KafkaEventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaEventBus")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn producer(settings: &KafkaSettings) -> Result<FutureProducer, rdkafka::error::KafkaError> {
    ClientConfig::new()
        .set("bootstrap.servers", &settings.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set(
            "message.timeout.ms",
            settings.delivery_timeout.as_millis().to_string(),
        )
        // What keeps a partition's records in order while a batch is in
        // flight: the idempotent producer numbers them, and the broker
        // takes them only in sequence. Idempotence allows at most 5
        // requests in flight per connection (its default; stated here).
        .set("max.in.flight.requests.per.connection", "5")
        .set("linger.ms", "5")
        // Find a restarted broker, and topics created since, quickly.
        .set("reconnect.backoff.max.ms", "1000")
        .set("topic.metadata.refresh.interval.ms", "5000")
        .create()
}

fn unavailable(e: impl std::fmt::Display) -> RepoError {
    RepoError::Unavailable(format!("kafka: {e}"))
}

impl KafkaEventBus {
    pub fn connect(settings: KafkaSettings) -> Result<Self, KafkaSetupError> {
        let producer = producer(&settings)?;
        let (stop, _) = watch::channel(false);
        Ok(Self {
            settings,
            producer: Arc::new(Mutex::new(producer)),
            partitions: Arc::new(std::sync::atomic::AtomicI32::new(3)),
            stats: Arc::new(KafkaStats::default()),
            stop: Arc::new(stop),
        })
    }

    /// The broker's name for a domain topic.
    pub fn topic(&self, topic: &str) -> String {
        format!("{}{topic}", self.settings.prefix)
    }

    /// Creates the topics (and their dead-letter topics) that do not exist.
    /// Later publishes and consumers create them again with as many
    /// partitions when the broker lost them.
    pub async fn ensure_topics(&self, topics: &[&str], partitions: i32) -> Result<(), RepoError> {
        self.partitions.store(partitions, Ordering::Relaxed);
        let names: Vec<String> = topics
            .iter()
            .flat_map(|t| [self.topic(t), dead_letter_topic(&self.topic(t))])
            .collect();
        self.create_topics(&names).await
    }

    /// After a failed publish or a consumer told its topic is unknown: a
    /// broker that came back empty (memory storage) lost its topics, and
    /// nobody else would create them again. Creating one that exists is a
    /// no-op, so this runs on any failure.
    pub(crate) async fn recreate_topics<'a>(&self, topics: impl IntoIterator<Item = &'a str>) {
        let mut names: Vec<String> = Vec::new();
        for topic in topics {
            let base = topic.strip_suffix(".DLT").unwrap_or(topic);
            for name in [base.to_owned(), dead_letter_topic(base)] {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        if let Err(e) = self.create_topics(&names).await {
            tracing::warn!(error = %e, ?names, "could not create the topics again");
        }
    }

    /// Creates the topics named (broker names) that do not exist.
    async fn create_topics(&self, names: &[String]) -> Result<(), RepoError> {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.settings.brokers)
            .create()
            .map_err(unavailable)?;
        let partitions = self.partitions.load(Ordering::Relaxed);
        let wanted: Vec<NewTopic<'_>> = names
            .iter()
            .map(|n| NewTopic::new(n, partitions, TopicReplication::Fixed(1)))
            .collect();
        // Both bounded: a broker that is down must not hold up the relay
        // (the request's own default is librdkafka's 60 s socket timeout).
        let options = AdminOptions::new()
            .request_timeout(Some(self.settings.delivery_timeout))
            .operation_timeout(Some(self.settings.delivery_timeout));
        for result in admin
            .create_topics(&wanted, &options)
            .await
            .map_err(unavailable)?
        {
            match result {
                Ok(topic) => tracing::info!(%topic, partitions, "topic created"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(unavailable(format!("create topic {topic}: {code}")))
                }
            }
        }
        Ok(())
    }

    pub fn stats(&self) -> Arc<KafkaStats> {
        self.stats.clone()
    }

    /// Stops every consumer loop (server shutdown).
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }

    fn current_producer(&self) -> FutureProducer {
        self.producer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn send(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
        headers: OwnedHeaders,
    ) -> Result<(), RepoError> {
        let producer = self.current_producer();
        let record = FutureRecord::to(topic)
            .key(key)
            .payload(payload)
            .headers(headers);
        let sent = producer
            .send(record, Timeout::After(self.settings.delivery_timeout))
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err((e, _)) => {
                self.renew_producer(&producer, &e);
                self.recreate_topics([topic]).await;
                Err(unavailable(e))
            }
        }
    }

    /// A broker that restarted without its state can leave the idempotent
    /// producer's sequence unusable (fatal or stuck): after a failed send,
    /// the next one starts with a fresh producer. Cheap, and only ever on
    /// the failure path.
    fn renew_producer(&self, failed: &FutureProducer, error: &KafkaError) {
        let fatal = failed.client().fatal_error();
        tracing::warn!(%error, ?fatal, "kafka send failed; using a fresh producer next");
        if let Ok(fresh) = crate::producer(&self.settings) {
            *self.producer.lock().unwrap_or_else(PoisonError::into_inner) = fresh;
        }
    }

    /// The record of an outbox event, as the relay sends it.
    fn outgoing(&self, event: &OutboxEvent) -> Result<Outgoing, RepoError> {
        let payload = serde_json::to_vec(&event.payload).map_err(RepoError::unexpected)?;
        let id = event.id.to_string();
        let created = event.created_at.to_rfc3339();
        let mut headers = OwnedHeaders::new()
            .insert(Header {
                key: EVENT_ID,
                value: Some(id.as_bytes()),
            })
            .insert(Header {
                key: "created-at",
                value: Some(created.as_bytes()),
            });
        if let Some(request) = &event.request_id {
            headers = headers.insert(Header {
                key: REQUEST_ID,
                value: Some(request.as_bytes()),
            });
        }
        Ok(Outgoing {
            topic: self.topic(&event.topic),
            key: event.key.clone(),
            payload,
            headers,
        })
    }
}

/// An outbox event as the producer takes it (`FutureRecord` borrows).
struct Outgoing {
    topic: String,
    key: String,
    payload: Vec<u8>,
    headers: OwnedHeaders,
}

/// Puts `outgoing` on the producer's queue without waiting for its delivery.
/// A full queue is waited out, in 10 ms steps, until `deadline`.
async fn enqueue(
    producer: &FutureProducer,
    outgoing: Outgoing,
    deadline: Instant,
) -> Result<DeliveryFuture, KafkaError> {
    let Outgoing {
        topic,
        key,
        payload,
        headers,
    } = outgoing;
    let mut record = FutureRecord::to(&topic)
        .key(&key)
        .payload(&payload)
        .headers(headers);
    loop {
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                if Instant::now() < deadline =>
            {
                record = back;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// What became of a queued record: delivered, or why not.
async fn delivered(delivery: DeliveryFuture) -> Result<(), KafkaError> {
    match delivery.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => Err(e),
        // The producer went away before it reported: not known delivered.
        Err(_) => Err(KafkaError::Canceled),
    }
}

#[async_trait]
impl EventBus for KafkaEventBus {
    async fn publish(&self, event: &OutboxEvent) -> Result<(), RepoError> {
        let Outgoing {
            topic,
            key,
            payload,
            headers,
        } = self.outgoing(event)?;
        self.send(&topic, &key, &payload, headers).await?;
        self.stats.published.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Queues every record first, so they travel together (one produce
    /// request per broker per `linger.ms`, up to 5 in flight), then waits
    /// for each delivery. The idempotent producer keeps each partition's
    /// records in queue order. Queueing stops at the first record the
    /// producer refuses outright; a delivery refused later does not stop
    /// the others, which are already on their way.
    async fn publish_batch(&self, events: &[OutboxEvent]) -> Vec<Result<(), RepoError>> {
        let producer = self.current_producer();
        let deadline = Instant::now() + self.settings.delivery_timeout;
        // The first failure of the producer, to renew it once at the end.
        let mut failure: Option<KafkaError> = None;
        let mut refused = |e: KafkaError| {
            let error = unavailable(&e);
            failure.get_or_insert(e);
            error
        };
        let mut queued = Vec::with_capacity(events.len());
        for event in events {
            let delivery = match self.outgoing(event) {
                Ok(outgoing) => enqueue(&producer, outgoing, deadline)
                    .await
                    .map_err(&mut refused),
                Err(e) => Err(e),
            };
            let stop = delivery.is_err();
            queued.push(delivery);
            if stop {
                break;
            }
        }
        let mut outcomes = Vec::with_capacity(queued.len());
        for delivery in queued {
            outcomes.push(match delivery {
                Ok(delivery) => delivered(delivery).await.map_err(&mut refused),
                Err(e) => Err(e),
            });
        }
        if let Some(e) = failure {
            self.renew_producer(&producer, &e);
            let topics: Vec<String> = events.iter().map(|e| self.topic(&e.topic)).collect();
            self.recreate_topics(topics.iter().map(String::as_str))
                .await;
        }
        let sent = outcomes.iter().filter(|o| o.is_ok()).count();
        self.stats
            .published
            .fetch_add(sent as u64, Ordering::Relaxed);
        outcomes
    }

    async fn subscribe(
        &self,
        topic: &str,
        group: &str,
        handler: Arc<dyn EventHandler>,
    ) -> Result<(), RepoError> {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.settings.brokers)
            .set("group.id", format!("{}{group}", self.settings.prefix))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            // A member learns that its group is rebalancing only from its
            // next heartbeat, and tansu holds a rejoining follower's JoinGroup
            // for 3 s. At the default 3 s interval the two members of a group,
            // rejoining after a broker restart, kept missing each other's
            // round: up to 11 s of rebalances with nothing consumed. At
            // 500 ms, an instance killed and restarted left one partition of
            // each group unconsumed in 4 of 7 chaos runs (tansu's coordinator;
            // the cause is not pinned down); 1 s did neither in its runs.
            .set("heartbeat.interval.ms", "1000")
            // Back within a second of a broker that returns (default 10 s).
            .set("reconnect.backoff.max.ms", "1000")
            // Notice soon that a topic vanished (a broker back empty) or is back.
            .set("topic.metadata.refresh.interval.ms", "5000")
            .create()
            .map_err(unavailable)?;
        consumer
            .subscribe(&[self.topic(topic).as_str()])
            .map_err(unavailable)?;
        let worker = ConsumerLoop {
            bus: self.clone(),
            consumer: Arc::new(consumer),
            group: group.to_owned(),
            handler,
            stopped: self.stop.subscribe(),
            places: Default::default(),
        };
        tokio::spawn(worker.run());
        Ok(())
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            ("consumer_retries", load(&self.stats.retries)),
            ("dead_lettered", load(&self.stats.dead_lettered)),
        ]
    }

    fn consumer_recoveries(&self) -> Vec<booking_domain::ConsumerRecoveries> {
        self.stats
            .recoveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|((topic, group), r)| booking_domain::ConsumerRecoveries {
                topic: topic.clone(),
                group: group.clone(),
                offset_resets: r.offset_resets,
                gaps: r.gaps,
                rejoins: r.rejoins,
            })
            .collect()
    }

    fn consumer_lags(&self) -> Vec<booking_domain::ConsumerLag> {
        self.stats
            .lags
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|((topic, group), records)| booking_domain::ConsumerLag {
                topic: topic.clone(),
                group: group.clone(),
                records: *records,
            })
            .collect()
    }
}
