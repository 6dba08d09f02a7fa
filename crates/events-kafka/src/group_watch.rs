//! A consumer's watch over its whole group. Every `WATCH_EVERY` it reads
//! every partition of its topic and records its lag (what it holds).
//!
//! A partition with records to
//! handle whose committed offset stands still, while this member does not
//! hold it, is a partition nobody reads. The member then leaves and joins
//! the group again, which makes the group deal out every partition afresh.
//!
//! Why: in the chaos runs an instance killed and restarted sometimes left one
//! partition of each group with no reader (its committed offset stuck
//! mid-log for minutes, the others at the end) although both instances'
//! consumers were in the group: a rebalance in tansu's coordinator dealt it
//! to nobody, by an interleaving not pinned down (docs/DESIGN.md, Consumers).

use crate::consumer::subscribed_topics;
use crate::KafkaStats;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::topic_partition_list::TopicPartitionList;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// How often a consumer looks at its group's partitions.
pub(crate) const WATCH_EVERY: Duration = Duration::from_secs(2);
/// How long a partition with records to handle may keep its committed offset
/// before the member rejoins: longer than a rebalance takes here (about
/// 3.5 s, tansu holding a follower's join 3 s) and than the commit interval.
pub(crate) const STALLED_AFTER: Duration = Duration::from_secs(8);
/// The least time between two rejoins of one member: a partition stuck for
/// another reason (its reader retrying a record while the store is down)
/// costs a rebalance at most this often.
pub(crate) const REJOIN_AT_MOST_EVERY: Duration = Duration::from_secs(30);

/// What the broker says of one partition of the group's topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartitionView {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    /// The group's committed offset, if any.
    pub(crate) committed: Option<i64>,
    pub(crate) low: i64,
    pub(crate) high: i64,
    /// Held by this member.
    pub(crate) mine: bool,
}

/// Since when each partition's committed offset has stood still.
#[derive(Debug, Default)]
pub(crate) struct Stalls {
    still: HashMap<(String, i32), (i64, Instant)>,
    last_rejoin: Option<Instant>,
}

impl Stalls {
    /// Takes a look at every partition of the group (`at` its time); returns
    /// the partitions nobody reads when it is time to rejoin, else nothing.
    pub(crate) fn look(&mut self, at: Instant, partitions: &[PartitionView]) -> Vec<(String, i32)> {
        let mut unread = Vec::new();
        let mut seen = HashMap::new();
        for p in partitions {
            let key = (p.topic.clone(), p.partition);
            let position = p.committed.unwrap_or(p.low).max(p.low);
            if position >= p.high {
                continue;
            }
            let since = match self.still.get(&key) {
                Some((was, since)) if *was == position => *since,
                _ => at,
            };
            if !p.mine && at.duration_since(since) >= STALLED_AFTER {
                unread.push(key.clone());
            }
            seen.insert(key, (position, since));
        }
        self.still = seen;
        let rested = self
            .last_rejoin
            .is_none_or(|last| at.duration_since(last) >= REJOIN_AT_MOST_EVERY);
        if unread.is_empty() || !rested {
            return Vec::new();
        }
        self.last_rejoin = Some(at);
        // The rebalance moves partitions: every clock starts again.
        self.still.clear();
        unread
    }

    /// The look failed (no broker, no subscription): whatever stood still
    /// before says nothing about after.
    pub(crate) fn forget(&mut self) {
        self.still.clear();
    }
}

/// Every `WATCH_EVERY`, looks at the group's partitions, records how far
/// this member trails each topic (the log's high watermark minus the
/// group's committed offset, over the partitions it holds; committed, not
/// read: a loop takes up to `BATCH_MAX` records before handling them), and
/// sends the loop the partitions nobody reads when it should rejoin (see
/// `Stalls`).
pub(crate) async fn watch_group(
    consumer: Arc<StreamConsumer>,
    stats: Arc<KafkaStats>,
    group: String,
    rejoin: mpsc::Sender<Vec<(String, i32)>>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(WATCH_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stalls = Stalls::default();
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stopped.changed() => return,
        }
        let consumer = Arc::clone(&consumer);
        // Metadata, offsets and watermarks block: a blocking thread.
        let looked = tokio::task::spawn_blocking(move || look_at_group(&consumer)).await;
        let Ok(Some(partitions)) = looked else {
            stalls.forget();
            continue;
        };
        record_lag(&stats, &group, &partitions);
        let unread = stalls.look(Instant::now(), &partitions);
        if !unread.is_empty() && rejoin.try_send(unread).is_err() {
            // The loop has one waiting already, or is gone.
            stalls.forget();
        }
    }
}

fn record_lag(stats: &KafkaStats, group: &str, partitions: &[PartitionView]) {
    let mut behind: BTreeMap<&str, i64> = BTreeMap::new();
    for p in partitions {
        let records = behind.entry(p.topic.as_str()).or_default();
        if p.mine {
            // Nothing committed yet: the whole log is still to handle.
            *records += (p.high - p.committed.unwrap_or(p.low)).max(0);
        }
    }
    let mut lags = stats.lags.lock().unwrap_or_else(PoisonError::into_inner);
    for (topic, records) in behind {
        lags.insert((topic.to_owned(), group.to_owned()), records);
    }
}

/// Every partition of the subscribed topics as the broker sees it; `None`
/// if the consumer is not subscribed or the broker does not answer.
fn look_at_group(consumer: &StreamConsumer) -> Option<Vec<PartitionView>> {
    let timeout = Duration::from_secs(2);
    let topics = subscribed_topics(consumer);
    if topics.is_empty() {
        return None;
    }
    let mine: HashSet<(String, i32)> = consumer
        .assignment()
        .ok()?
        .elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect();
    let mut wanted = TopicPartitionList::new();
    for topic in &topics {
        let metadata = consumer.fetch_metadata(Some(topic), timeout).ok()?;
        for known in metadata.topics() {
            if known.name() == topic && known.error().is_none() {
                for p in known.partitions() {
                    wanted.add_partition(topic, p.id());
                }
            }
        }
    }
    if wanted.count() == 0 {
        return None;
    }
    let committed = consumer.committed_offsets(wanted, timeout).ok()?;
    committed
        .elements()
        .iter()
        .map(|e| {
            let (low, high) = consumer
                .fetch_watermarks(e.topic(), e.partition(), timeout)
                .ok()?;
            let key = (e.topic().to_owned(), e.partition());
            Some(PartitionView {
                committed: e.offset().to_raw().filter(|o| *o >= 0),
                low,
                high,
                mine: mine.contains(&key),
                topic: key.0,
                partition: key.1,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(partition: i32, committed: Option<i64>, high: i64, mine: bool) -> PartitionView {
        PartitionView {
            topic: "t".into(),
            partition,
            committed,
            low: 0,
            high,
            mine,
        }
    }

    #[test]
    fn a_partition_nobody_reads_calls_for_a_rejoin_after_it_stood_still_long_enough() {
        let mut stalls = Stalls::default();
        let t0 = Instant::now();
        let group = [view(0, Some(10), 20, false), view(1, Some(20), 20, true)];
        assert!(stalls.look(t0, &group).is_empty());
        assert!(stalls.look(t0 + STALLED_AFTER / 2, &group).is_empty());
        assert_eq!(
            stalls.look(t0 + STALLED_AFTER, &group),
            vec![("t".to_owned(), 0)]
        );
    }

    #[test]
    fn a_partition_whose_offset_moves_is_read() {
        let mut stalls = Stalls::default();
        let t0 = Instant::now();
        for step in 0..10u32 {
            let committed = i64::from(step);
            let at = t0 + WATCH_EVERY * step;
            assert!(stalls
                .look(at, &[view(0, Some(committed), 100, false)])
                .is_empty());
        }
    }

    #[test]
    fn a_partition_at_the_end_of_its_log_or_held_here_calls_for_nothing() {
        let mut stalls = Stalls::default();
        let t0 = Instant::now();
        let group = [
            view(0, Some(20), 20, false),
            view(1, None, 0, false),
            view(2, Some(3), 20, true),
        ];
        for step in 0..10u32 {
            assert!(stalls.look(t0 + WATCH_EVERY * step, &group).is_empty());
        }
    }

    #[test]
    fn a_member_rejoins_at_most_once_per_pause() {
        let mut stalls = Stalls::default();
        let t0 = Instant::now();
        let stuck = [view(0, Some(1), 20, false)];
        stalls.look(t0, &stuck);
        assert_eq!(stalls.look(t0 + STALLED_AFTER, &stuck).len(), 1);
        let mut rejoins = 0;
        let mut at = t0 + STALLED_AFTER;
        while at < t0 + STALLED_AFTER + REJOIN_AT_MOST_EVERY {
            at += WATCH_EVERY;
            rejoins += stalls.look(at, &stuck).len();
        }
        assert_eq!(rejoins, 1, "one more rejoin once the pause is over");
    }

    #[test]
    fn a_failed_look_starts_the_clocks_again() {
        let mut stalls = Stalls::default();
        let t0 = Instant::now();
        let stuck = [view(0, Some(1), 20, false)];
        stalls.look(t0, &stuck);
        stalls.forget();
        assert!(stalls.look(t0 + STALLED_AFTER, &stuck).is_empty());
        assert_eq!(stalls.look(t0 + STALLED_AFTER * 2, &stuck).len(), 1);
    }
}
