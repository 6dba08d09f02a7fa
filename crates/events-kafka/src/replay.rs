//! `booking dlt replay`: re-publishes dead-lettered records to the topic
//! they came from, with their original headers, so the consumers try them
//! again (they deduplicate on `event-id`, so a record that did get through
//! once is skipped). A consumer group of its own remembers how far it got:
//! each record is replayed once, and a run stops at the end it found when it
//! started.

use crate::*;
use rdkafka::consumer::BaseConsumer;
use rdkafka::TopicPartitionList;

/// What one replay did, per dead-letter topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// (dead-letter topic, records re-published).
    pub replayed: Vec<(String, u64)>,
}

impl ReplayReport {
    pub fn total(&self) -> u64 {
        self.replayed.iter().map(|(_, n)| n).sum()
    }
}

/// A poll that finds nothing for this long ends the run early.
const IDLE: Duration = Duration::from_secs(5);

impl KafkaEventBus {
    /// Replays the dead-letter topic of each of `topics` (names without the
    /// prefix) once, up to the end each had when the run started.
    pub async fn replay_dead_letters(&self, topics: &[&str]) -> Result<ReplayReport, RepoError> {
        let mut report = ReplayReport::default();
        for topic in topics {
            let dlt = dead_letter_topic(&self.topic(topic));
            let n = self.replay_one(&dlt).await?;
            report.replayed.push((dlt, n));
        }
        Ok(report)
    }

    async fn replay_one(&self, dlt: &str) -> Result<u64, RepoError> {
        let group = format!("{}dlt-replay", self.settings.prefix);
        let brokers = self.settings.brokers.clone();
        let topic = dlt.to_owned();
        // rdkafka's metadata, watermark and commit calls block: off the runtime.
        let (consumer, ends) = tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .set("group.id", &group)
                .set("enable.auto.commit", "false")
                .set("auto.offset.reset", "earliest")
                .create()?;
            let timeout = Duration::from_secs(10);
            let metadata = consumer.fetch_metadata(Some(&topic), timeout)?;
            let mut ends = Vec::new();
            let mut assignment = TopicPartitionList::new();
            for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
                let (_, high) = consumer.fetch_watermarks(&topic, partition.id(), timeout)?;
                ends.push((partition.id(), high));
                assignment.add_partition(&topic, partition.id());
            }
            // Start where the last replay stopped (the group's commit).
            let committed = consumer.committed_offsets(assignment, timeout)?;
            consumer.assign(&committed)?;
            Ok::<_, KafkaError>((consumer, ends))
        })
        .await
        .map_err(|e| RepoError::unexpected(format!("dlt replay: {e}")))?
        .map_err(unavailable)?;

        let mut replayed = 0;
        let mut done: Vec<i32> = Vec::new();
        loop {
            let unfinished: Vec<_> = ends
                .iter()
                .filter(|(p, high)| !done.contains(p) && *high > 0)
                .collect();
            if unfinished.is_empty() {
                break;
            }
            let polled = {
                let consumer = &consumer;
                tokio::task::block_in_place(|| consumer.poll(IDLE))
            };
            let Some(message) = polled else {
                break;
            };
            let message = message.map_err(unavailable)?;
            let end = ends
                .iter()
                .find(|(p, _)| *p == message.partition())
                .map_or(0, |(_, high)| *high);
            if message.offset() >= end {
                done.push(message.partition());
                continue;
            }
            self.republish(&message).await?;
            replayed += 1;
            consumer
                .commit_message(&message, CommitMode::Sync)
                .map_err(unavailable)?;
            if message.offset() + 1 >= end {
                done.push(message.partition());
            }
        }
        Ok(replayed)
    }

    /// Sends a dead-lettered record back to its original topic, as it was.
    async fn republish(&self, message: &BorrowedMessage<'_>) -> Result<(), RepoError> {
        let header = |name: &str| header_str(message, name);
        let Some(original) = header("original-topic") else {
            return Err(RepoError::unexpected(format!(
                "dead-letter record at offset {} has no original-topic header",
                message.offset()
            )));
        };
        self.send(
            &original,
            &key_of(message),
            message.payload().unwrap_or_default(),
            original_headers(message),
        )
        .await
    }
}
