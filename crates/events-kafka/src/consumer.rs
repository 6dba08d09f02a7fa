//! The consuming side: one loop per (topic, group) that hands each record
//! to its handler, retries with backoff, sends a poison record to
//! `<topic>.DLT`, and commits an offset only after one of the two (the
//! handled offsets together, every `COMMIT_EVERY`).
//!
//! The loop also keeps its place in each partition's log and checks every
//! record against it, because the broker may not: tansu with memory storage
//! answers a fetch from an offset inside a stored batch with the batches
//! after it, and a fetch that races a concurrent produce with the batch
//! after the one being written; either way records are silently skipped.
//! A record past the expected offset sends the loop back for the missing
//! ones. A log shorter than the group's position (a broker back empty) is
//! read again from its start. Both are logged and counted
//! (`KafkaStats::recoveries`); the handlers are idempotent.

use crate::*;
use futures::{FutureExt, StreamExt};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::collections::{HashMap, HashSet};

/// The most records a loop takes off its queue at once (those already
/// fetched; it never waits for more), and how many of their keys it
/// handles at the same time. Records of one key are handled in log order;
/// records of different keys are independent (every handler's effect is
/// per reservation, the key). One record at a time, a consumer catching up
/// with a backlog waited on one store round trip per record.
const BATCH_MAX: usize = 64;
const KEYS_AT_ONCE: usize = 4;

/// A record's place: (topic, partition) and offset.
type Record = ((String, i32), i64);

/// The records of one key in one partition, in log order.
struct Line<'a, 'm> {
    partition: (String, i32),
    records: Vec<&'a BorrowedMessage<'m>>,
}

pub(crate) struct ConsumerLoop {
    pub(crate) bus: KafkaEventBus,
    pub(crate) consumer: Arc<StreamConsumer>,
    pub(crate) group: String,
    pub(crate) handler: Arc<dyn EventHandler>,
    pub(crate) stopped: watch::Receiver<bool>,
    pub(crate) places: Places,
}

/// Where the loop is in each (topic, partition) it reads.
#[derive(Debug, Default)]
pub(crate) struct Places {
    /// The offset after the last record handled.
    next: HashMap<(String, i32), i64>,
    /// Offsets handled but not committed yet (see `COMMIT_EVERY`).
    uncommitted: HashMap<(String, i32), i64>,
    /// Partitions read again from before a gap.
    rewinding: HashMap<(String, i32), Rewind>,
    /// Where the loop was in a partition of a topic the broker then said
    /// it did not know, and since when: the topic's new log is read from
    /// its start.
    vanished: HashMap<(String, i32), (i64, Instant)>,
}

/// How often the offsets of handled records are committed. One commit per
/// record was more than tansu's SQLite engine could write under load; a
/// crash now hands at most this much handled work to the next reader again,
/// which the handlers' idempotency absorbs.
const COMMIT_EVERY: Duration = Duration::from_millis(500);

/// What became of a record's attempts.
enum Handled {
    Yes,
    /// Every attempt failed, with this last error: the record goes to the DLT.
    Failed(String),
    /// The loop is stopping: the record is neither handled nor committed, so
    /// it comes again.
    Stopped,
}

/// The longest pause between attempts while a store is unavailable.
const MAX_UNAVAILABLE_PAUSE: Duration = Duration::from_secs(2);

/// How long a vanished topic's old place is kept: longer than a broker
/// takes to come back, short enough that a partition coming back to this
/// member much later is not read again from its start.
const VANISHED_FOR: Duration = Duration::from_secs(120);

/// Going back for the records from `missing` on: the last seek went `back`
/// records before it (a batch may begin before `missing`, and tansu's
/// memory storage returns a batch only when the fetch starts at or before
/// its first record).
#[derive(Debug, Clone, Copy)]
struct Rewind {
    missing: i64,
    back: i64,
    low: i64,
}

/// What to do with a received record.
#[derive(Debug, PartialEq, Eq)]
enum Placement {
    /// Next in line: handle it.
    Handle,
    /// Before the point a rewind goes back for: handled already.
    Behind,
    /// The loop sought back; this record comes again later.
    Rewound,
}

/// What the broker says of a partition: the group's committed offset (if
/// any) and the log's watermarks.
#[derive(Debug, Clone, Copy)]
struct BrokerView {
    committed: Option<i64>,
    low: i64,
    high: i64,
}

/// A record as the domain sees it, or why it cannot be one (a poison record).
fn event_of(message: &BorrowedMessage<'_>, prefix: &str) -> Result<OutboxEvent, BoxError> {
    let header = |name: &str| header_str(message, name);
    let id = header(EVENT_ID)
        .and_then(|v| v.parse::<i64>().ok())
        .ok_or("the record has no numeric event-id header")?;
    let payload = serde_json::from_slice(message.payload().unwrap_or_default())
        .map_err(|e| format!("the payload is not JSON: {e}"))?;
    let created_at = header("created-at")
        .and_then(|v| DateTime::parse_from_rfc3339(&v).ok())
        .map_or_else(Utc::now, |t| t.with_timezone(&Utc));
    Ok(OutboxEvent {
        id,
        topic: message
            .topic()
            .strip_prefix(prefix)
            .unwrap_or(message.topic())
            .to_owned(),
        key: message
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default(),
        payload,
        created_at,
        published_at: None,
        request_id: header(REQUEST_ID),
    })
}

/// The broker's view of `topic`/`partition` (blocking calls: off the runtime).
async fn broker_view(
    consumer: &Arc<StreamConsumer>,
    topic: &str,
    partition: i32,
) -> Option<BrokerView> {
    let consumer = Arc::clone(consumer);
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let timeout = Duration::from_secs(5);
        let (low, high) = consumer.fetch_watermarks(&topic, partition, timeout).ok()?;
        let mut wanted = TopicPartitionList::new();
        wanted.add_partition(&topic, partition);
        let committed = consumer
            .committed_offsets(wanted, timeout)
            .ok()?
            .find_partition(&topic, partition)
            .and_then(|e| e.offset().to_raw())
            .filter(|o| *o >= 0);
        Some(BrokerView {
            committed,
            low,
            high,
        })
    })
    .await
    .ok()
    .flatten()
}

async fn seek(consumer: &Arc<StreamConsumer>, topic: &str, partition: i32, offset: i64) -> bool {
    let consumer = Arc::clone(consumer);
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        consumer.seek(
            &topic,
            partition,
            Offset::Offset(offset),
            Duration::from_secs(5),
        )
    })
    .await
    .is_ok_and(|sought| sought.is_ok())
}

/// The topics the consumer is subscribed to (none while it waits out a broker).
pub(crate) fn subscribed_topics(consumer: &StreamConsumer) -> Vec<String> {
    consumer
        .subscription()
        .map(|list| {
            list.elements()
                .iter()
                .map(|e| e.topic().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Per topic: does the broker know it? `None`: no broker answered.
async fn topics_known(consumer: &Arc<StreamConsumer>, topics: &[String]) -> Option<Vec<bool>> {
    let probe = Arc::clone(consumer);
    let wanted = topics.to_vec();
    tokio::task::spawn_blocking(move || {
        wanted
            .iter()
            .map(|t| {
                let metadata = probe.fetch_metadata(Some(t), Duration::from_secs(2)).ok()?;
                Some(
                    metadata.topics().iter().any(|m| {
                        m.name() == t && m.error().is_none() && !m.partitions().is_empty()
                    }),
                )
            })
            .collect::<Option<Vec<bool>>>()
    })
    .await
    .ok()
    .flatten()
}

impl ConsumerLoop {
    /// Checks a record against the loop's place in its partition (see the
    /// module's comment). Asks the broker only when the record is not the
    /// one expected: the first of a partition, after a rebalance, a gap.
    async fn place(&mut self, topic: &str, partition: i32, offset: i64) -> Placement {
        let key = (topic.to_owned(), partition);
        if let Some(rewind) = self.places.rewinding.get(&key).copied() {
            if let Some(placed) = self.rewinding(&key, rewind, offset).await {
                return placed;
            }
        }
        let expected = self.places.next.get(&key).copied();
        if expected == Some(offset) {
            return Placement::Handle;
        }
        let Some(view) = broker_view(&self.consumer, topic, partition).await else {
            return Placement::Handle; // cannot check now: as before
        };
        let before_vanishing = self
            .places
            .vanished
            .remove(&key)
            .filter(|(_, since)| since.elapsed() < VANISHED_FOR)
            .map(|(at, _)| at);
        // The group's position: ours, or further if another member of the
        // group went on while the partition was not ours.
        let position = expected.max(view.committed);
        let start = match (position, before_vanishing) {
            (_, Some(at)) => {
                self.offset_reset(topic, partition, at, view.low);
                view.low
            }
            (Some(at), None) if at > view.high => {
                self.offset_reset(topic, partition, at, view.low);
                view.low
            }
            (Some(at), None) => at,
            (None, None) => view.low,
        };
        if offset > start && start >= view.low {
            let reset =
                start == view.low && (before_vanishing.is_some() || position > Some(view.high));
            if reset {
                return self
                    .seek_back(
                        key,
                        Rewind {
                            missing: start,
                            back: 0,
                            low: view.low,
                        },
                    )
                    .await;
            }
            self.bus
                .stats
                .recovered(topic, &self.group, |r| r.gaps += 1);
            tracing::warn!(
                %topic, partition, group = %self.group, expected = start, received = offset,
                "the broker skipped records; reading them again from the expected offset"
            );
            let rewind = Rewind {
                missing: start,
                back: 0,
                low: view.low,
            };
            return self.seek_back(key, rewind).await;
        }
        Placement::Handle
    }

    /// While going back for `rewind.missing`: records before it were
    /// handled; the missing one ends the rewind; a later one means the seek
    /// landed inside a batch the broker skips again: go further back.
    /// `None`: the rewind is over without the record (the group went on
    /// elsewhere meanwhile): place the record as any other.
    async fn rewinding(
        &mut self,
        key: &(String, i32),
        rewind: Rewind,
        offset: i64,
    ) -> Option<Placement> {
        if offset < rewind.missing {
            return Some(Placement::Behind);
        }
        self.places.rewinding.remove(key);
        if offset == rewind.missing {
            tracing::info!(topic = %key.0, partition = key.1, group = %self.group, offset, "skipped records found again");
            return Some(Placement::Handle);
        }
        // The partition went to another member and came back: it handled them.
        let view = broker_view(&self.consumer, &key.0, key.1).await;
        if view.is_some_and(|v| v.committed > Some(rewind.missing)) {
            self.places.next.remove(key);
            return None;
        }
        let further = Rewind {
            back: (rewind.back * 2).max(1),
            ..rewind
        };
        if rewind.missing - rewind.back <= rewind.low {
            tracing::error!(
                topic = %key.0, partition = key.1, group = %self.group,
                missing = rewind.missing, received = offset,
                "records missing from the log even from its start; going on without them"
            );
            return Some(Placement::Handle);
        }
        Some(self.seek_back(key.clone(), further).await)
    }

    async fn seek_back(&mut self, key: (String, i32), rewind: Rewind) -> Placement {
        let to = (rewind.missing - rewind.back).max(rewind.low);
        if seek(&self.consumer, &key.0, key.1, to).await {
            self.places.rewinding.insert(key, rewind);
        } else {
            // Not ours any more, or the broker is away: the record is not
            // committed, so whoever reads the partition next gets it again.
            tracing::warn!(topic = %key.0, partition = key.1, group = %self.group, to, "seek failed");
        }
        Placement::Rewound
    }

    /// The log is shorter than the group's position (the broker came back
    /// without it) or the topic vanished: read its new log from the start.
    fn offset_reset(&self, topic: &str, partition: i32, committed: i64, low: i64) {
        self.bus
            .stats
            .recovered(topic, &self.group, |r| r.offset_resets += 1);
        tracing::warn!(
            %topic, partition, group = %self.group, committed, new_offset = low,
            "the group's offset is past the end of the log (the broker lost it); reading the log again from its start, relying on the handlers' idempotency"
        );
    }

    pub(crate) async fn run(mut self) {
        // Beside the loop: a consumer stuck on a record still reports its
        // lag, and the loop hears of partitions nobody reads.
        let (rejoin, mut rejoins) = tokio::sync::mpsc::channel(1);
        tokio::spawn(crate::group_watch::watch_group(
            Arc::clone(&self.consumer),
            Arc::clone(&self.bus.stats),
            self.group.clone(),
            rejoin,
            self.stopped.clone(),
        ));
        // Its own handle: a record borrows it while the loop updates its places.
        let consumer = Arc::clone(&self.consumer);
        let mut commit_every = tokio::time::interval(COMMIT_EVERY);
        commit_every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // `recv` is cancel-safe: a record is taken off librdkafka's queue
            // only in the poll that returns it.
            let message = tokio::select! {
                m = consumer.recv() => m,
                _ = commit_every.tick() => {
                    self.commit_handled(&consumer);
                    continue;
                }
                Some(unread) = rejoins.recv() => {
                    self.rejoin(&consumer, &unread);
                    continue;
                }
                _ = self.stopped.changed() => {
                    self.commit_handled(&consumer);
                    return;
                }
            };
            let first = match message {
                Ok(m) => m,
                Err(e) => {
                    self.receive_failed(&consumer, e).await;
                    continue;
                }
            };
            // Whatever else is fetched already, without waiting for more.
            let mut batch = vec![first];
            let mut failure = None;
            while batch.len() < BATCH_MAX {
                match consumer.recv().now_or_never() {
                    Some(Ok(m)) => batch.push(m),
                    Some(Err(e)) => {
                        failure = Some(e);
                        break;
                    }
                    None => break,
                }
            }
            if self.handle_batch(&batch).await {
                self.commit_handled(&consumer);
                return;
            }
            // Release the batch's records before acting on the error (which
            // may unsubscribe).
            drop(batch);
            if let Some(e) = failure {
                self.receive_failed(&consumer, e).await;
            }
        }
    }

    /// An error in place of a record: a broker gone (wait it out holding no
    /// partitions), a topic gone (create it again), or a stale one (skip).
    async fn receive_failed(&mut self, consumer: &Arc<StreamConsumer>, e: KafkaError) {
        tracing::warn!(group = %self.group, error = %e, "kafka receive failed");
        // A stale error (queued while the broker was away) gets no pause.
        let stale = match e.rdkafka_error_code() {
            Some(RDKafkaErrorCode::UnknownTopicOrPartition) => {
                self.topic_vanished().await;
                false
            }
            Some(RDKafkaErrorCode::AllBrokersDown) => !self.wait_out_the_broker(consumer).await,
            Some(RDKafkaErrorCode::BrokerTransportFailure) => {
                let topics = subscribed_topics(consumer);
                !topics.is_empty()
                    && topics_known(consumer, &topics)
                        .await
                        .is_some_and(|known| known.iter().all(|k| *k))
            }
            _ => false,
        };
        if !stale {
            tokio::time::sleep(self.bus.settings.backoff).await;
        }
    }

    /// Places every record of `batch` in log order (as one at a time would),
    /// then handles them, each key's in order and up to `KEYS_AT_ONCE` keys
    /// at once, and notes for each partition the offset up to which every
    /// record was handled (or dead-lettered). `true`: the loop is stopping.
    async fn handle_batch(&mut self, batch: &[BorrowedMessage<'_>]) -> bool {
        let mut lines: Vec<Line<'_, '_>> = Vec::new();
        let mut line_of: HashMap<(String, i32, Option<Vec<u8>>), usize> = HashMap::new();
        let mut placed: Vec<Record> = Vec::new();
        // A partition sought back: the rest of its records here come again.
        let mut rewound: HashSet<(String, i32)> = HashSet::new();
        for message in batch {
            let partition = (message.topic().to_owned(), message.partition());
            if rewound.contains(&partition) {
                continue;
            }
            match self
                .place(&partition.0, partition.1, message.offset())
                .await
            {
                Placement::Handle => {}
                Placement::Behind => continue,
                Placement::Rewound => {
                    rewound.insert(partition);
                    continue;
                }
            }
            self.places
                .next
                .insert(partition.clone(), message.offset() + 1);
            placed.push((partition.clone(), message.offset()));
            let key = (
                partition.0.clone(),
                partition.1,
                message.key().map(<[u8]>::to_vec),
            );
            let i = *line_of.entry(key).or_insert_with(|| {
                lines.push(Line {
                    partition,
                    records: Vec::new(),
                });
                lines.len() - 1
            });
            lines[i].records.push(message);
        }
        // Boxed: a closure in a stream combinator would not be Send here.
        let lines: Vec<_> = lines
            .into_iter()
            .map(|l| self.handle_line(l).boxed())
            .collect();
        let outcomes: Vec<(Vec<Record>, bool)> = futures::stream::iter(lines)
            .buffer_unordered(KEYS_AT_ONCE)
            .collect()
            .await;
        let mut stopping = false;
        let mut handled = HashSet::new();
        for (records, stopped) in outcomes {
            stopping |= stopped;
            handled.extend(records);
        }
        // Handled, or safely in the DLT: only now may the offset move, and
        // never past a record that was not (the loop is stopping).
        let mut held_back: HashSet<(String, i32)> = HashSet::new();
        for record in placed {
            if held_back.contains(&record.0) {
                continue;
            }
            if handled.contains(&record) {
                self.places.uncommitted.insert(record.0, record.1 + 1);
            } else {
                held_back.insert(record.0);
            }
        }
        stopping
    }

    /// Handles a line's records in order; stops at the first that finds
    /// the loop stopping. Returns the records handled, and whether it stopped.
    async fn handle_line(&self, line: Line<'_, '_>) -> (Vec<Record>, bool) {
        let mut handled = Vec::with_capacity(line.records.len());
        for message in line.records {
            self.bus.stats.consumed.fetch_add(1, Ordering::Relaxed);
            match self.handle_with_retries(message).await {
                Handled::Yes => {}
                Handled::Failed(error) => self.dead_letter(message, &error).await,
                Handled::Stopped => return (handled, true),
            }
            handled.push((line.partition.clone(), message.offset()));
        }
        (handled, false)
    }

    /// While no broker answers, the consumer holds no partitions, and it
    /// subscribes again once the broker is back and has the topics
    /// (creating them if it came back without). Why: a consumer still
    /// assigned a partition of a topic the broker no longer knows fetches it
    /// by topic id, and librdkafka 2.12.1 crashes the process (SIGSEGV) on
    /// tansu's reply to that fetch (see docs/DESIGN.md).
    /// `false`: the error was stale, the broker answers with every topic.
    async fn wait_out_the_broker(&mut self, consumer: &Arc<StreamConsumer>) -> bool {
        let topics = subscribed_topics(consumer);
        if topics.is_empty() {
            return true;
        }
        // librdkafka queues an error per failed connection while the broker
        // is away; popped after it came back they are stale, and acting on
        // each (unsubscribe, wait, subscribe) kept the consumers off the log
        // for minutes after a 30 s outage.
        if topics_known(consumer, &topics)
            .await
            .is_some_and(|known| known.iter().all(|k| *k))
        {
            return false;
        }
        consumer.unsubscribe();
        tracing::warn!(group = %self.group, ?topics, "no broker answers: holding no partitions until it is back");
        let mut lost = false;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = self.stopped.changed() => return true,
            }
            let known = topics_known(consumer, &topics).await;
            match known {
                None => continue,
                Some(known) if known.iter().all(|k| *k) => break,
                Some(_) => {
                    lost = true;
                    self.bus
                        .recreate_topics(topics.iter().map(String::as_str))
                        .await;
                }
            }
        }
        if lost {
            self.topic_vanished_from(&topics);
        }
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        match consumer.subscribe(&names) {
            Ok(()) => tracing::info!(group = %self.group, ?topics, "broker back: subscribed again"),
            Err(e) => tracing::error!(group = %self.group, error = %e, "could not subscribe again"),
        }
        true
    }

    /// The broker does not know the subscribed topic (it came back empty):
    /// create it again, and read its new log from the start once it is back.
    async fn topic_vanished(&mut self) {
        let topics = subscribed_topics(&self.consumer);
        self.bus
            .recreate_topics(topics.iter().map(String::as_str))
            .await;
        self.topic_vanished_from(&topics);
    }

    /// Leaves the group and joins it again, so that it deals out every
    /// partition afresh: `unread` had records nobody took (see `group_watch`).
    fn rejoin(&mut self, consumer: &StreamConsumer, unread: &[(String, i32)]) {
        let topics = subscribed_topics(consumer);
        if topics.is_empty() {
            return; // waiting out the broker: it subscribes again itself
        }
        self.commit_handled(consumer);
        for (topic, _) in unread {
            self.bus
                .stats
                .recovered(topic, &self.group, |r| r.rejoins += 1);
        }
        tracing::warn!(
            group = %self.group, ?unread,
            "partitions with records to handle have had no reader for seconds; leaving the group and joining it again"
        );
        consumer.unsubscribe();
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        if let Err(e) = consumer.subscribe(&names) {
            tracing::error!(group = %self.group, error = %e, "could not subscribe again");
        }
    }

    /// Commits the offsets handled since the last commit.
    fn commit_handled(&mut self, consumer: &StreamConsumer) {
        if self.places.uncommitted.is_empty() {
            return;
        }
        let mut offsets = TopicPartitionList::new();
        for ((topic, partition), next) in self.places.uncommitted.drain() {
            if let Err(e) = offsets.add_partition_offset(&topic, partition, Offset::Offset(next)) {
                tracing::warn!(%topic, partition, error = %e, "offset not committed");
            }
        }
        if let Err(e) = consumer.commit(&offsets, CommitMode::Async) {
            tracing::warn!(group = %self.group, error = %e, "offset commit failed; the records may come again");
        }
    }

    /// Keeps the places in `topics` aside: their new logs are read from
    /// the start (see `place`).
    fn topic_vanished_from(&mut self, topics: &[String]) {
        let now = Instant::now();
        let places = &mut self.places;
        for (key, at) in places.next.iter() {
            if topics.contains(&key.0) {
                places.vanished.insert(key.clone(), (*at, now));
            }
        }
        places.next.retain(|(t, _), _| !topics.contains(t));
        // Offsets of the old logs must not be committed against the new ones.
        places.uncommitted.retain(|(t, _), _| !topics.contains(t));
    }

    /// Ok once the handler succeeded; the last error after every attempt failed.
    async fn handle_with_retries(&self, message: &BorrowedMessage<'_>) -> Handled {
        let attempts = self.bus.settings.attempts.max(1);
        let mut pause = self.bus.settings.backoff;
        let mut attempt = 0;
        let mut stopped = self.stopped.clone();
        loop {
            let outcome = match event_of(message, &self.bus.settings.prefix) {
                Ok(event) => {
                    let span = tracing::info_span!(
                        "consume",
                        group = %self.group,
                        event_id = event.id,
                        request_id = event.request_id.as_deref().unwrap_or("-"),
                    );
                    self.handler.handle(&event).instrument(span).await
                }
                Err(e) => Err(e),
            };
            let error = match outcome {
                Ok(()) => return Handled::Yes,
                Err(e) => e,
            };
            // A store that is down (Redis restarting, PostgreSQL away) says
            // nothing about the record: wait it out on this record rather
            // than spend its attempts and dead-letter a good event.
            let unavailable = matches!(
                error.downcast_ref::<RepoError>(),
                Some(RepoError::Unavailable(_))
            );
            if !unavailable {
                attempt += 1;
            }
            tracing::warn!(group = %self.group, attempt, unavailable, error = %error, "event handler failed");
            if attempt >= attempts {
                return Handled::Failed(error.to_string());
            }
            self.bus.stats.retries.fetch_add(1, Ordering::Relaxed);
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stopped.changed() => return Handled::Stopped,
            }
            pause = (pause * 2).min(MAX_UNAVAILABLE_PAUSE);
        }
    }

    /// Produces the record to `<topic>.DLT`, retrying until the broker has
    /// it: its offset must not be committed before.
    async fn dead_letter(&self, message: &BorrowedMessage<'_>, error: &str) {
        let topic = dead_letter_topic(message.topic());
        let partition = message.partition().to_string();
        let offset = message.offset().to_string();
        let attempts = self.bus.settings.attempts.max(1).to_string();
        // Every original header rides along, so a replay can restore the
        // record as it was (event id, request id, creation time).
        let headers = original_headers(message)
            .insert(Header {
                key: "original-topic",
                value: Some(message.topic()),
            })
            .insert(Header {
                key: "original-partition",
                value: Some(partition.as_str()),
            })
            .insert(Header {
                key: "original-offset",
                value: Some(offset.as_str()),
            })
            .insert(Header {
                key: "error",
                value: Some(error),
            })
            .insert(Header {
                key: "attempts",
                value: Some(attempts.as_str()),
            });
        let key = key_of(message);
        let payload = message.payload().unwrap_or_default();
        let mut pause = self.bus.settings.backoff;
        loop {
            match self.bus.send(&topic, &key, payload, headers.clone()).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(%topic, error = %e, "dead-letter publish failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
        self.bus.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%topic, %offset, error, "record moved to the dead-letter topic");
    }
}
