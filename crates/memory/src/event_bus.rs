//! `MemoryEventBus`: delivers each published event, in the publisher's task,
//! to one handler of every consumer group subscribed to its topic, the way a
//! Kafka consumer group shares a topic.
//!
//! A failing handler is retried a few times, then the event is set aside as
//! a dead letter (the `<topic>.DLT` of the Kafka adapter); the publish itself
//! still succeeds, since the broker did accept the event.

use async_trait::async_trait;
use booking_domain::{EventBus, EventHandler, OutboxEvent, RepoError};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

/// Attempts per handler and event before it becomes a dead letter.
const ATTEMPTS: usize = 3;

#[derive(Clone, Default)]
pub struct MemoryEventBus {
    inner: Arc<Mutex<Bus>>,
}

#[derive(Default)]
struct Bus {
    subscriptions: Vec<Subscription>,
    published: Vec<OutboxEvent>,
    dead_letters: Vec<DeadLetter>,
}

struct Subscription {
    topic: String,
    group: String,
    handler: Arc<dyn EventHandler>,
}

/// A consumer group and the member handler one event goes to.
type Receiver = (String, Arc<dyn EventHandler>);

/// An event a group's handler failed on `ATTEMPTS` times.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub group: String,
    pub event: OutboxEvent,
    pub error: String,
}

impl std::fmt::Debug for MemoryEventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = f.debug_struct("MemoryEventBus");
        if let Ok(bus) = self.inner.lock() {
            let subscriptions: Vec<_> = bus
                .subscriptions
                .iter()
                .map(|s| format!("{}/{}", s.topic, s.group))
                .collect();
            out.field("subscriptions", &subscriptions)
                .field("published", &bus.published.len())
                .field("dead_letters", &bus.dead_letters.len());
        }
        out.finish()
    }
}

impl MemoryEventBus {
    pub fn new() -> Self {
        Self::default()
    }

    fn bus(&self) -> Result<MutexGuard<'_, Bus>, RepoError> {
        self.inner
            .lock()
            .map_err(|_| RepoError::unexpected("memory event bus lock poisoned by a panic"))
    }

    /// Every event published so far, in order: what the broker holds.
    pub fn published(&self) -> Result<Vec<OutboxEvent>, RepoError> {
        Ok(self.bus()?.published.clone())
    }

    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, RepoError> {
        Ok(self.bus()?.dead_letters.clone())
    }

    /// For each group subscribed to `event.topic`, the one handler that gets
    /// it: chosen by the event key, like a Kafka partition, so one key's
    /// events always reach the same member of a group.
    fn receivers(&self, event: &OutboxEvent) -> Result<Vec<Receiver>, RepoError> {
        let bus = self.bus()?;
        let mut groups: Vec<(&str, Vec<&Arc<dyn EventHandler>>)> = Vec::new();
        for s in bus.subscriptions.iter().filter(|s| s.topic == event.topic) {
            match groups.iter_mut().find(|(g, _)| *g == s.group) {
                Some((_, members)) => members.push(&s.handler),
                None => groups.push((&s.group, vec![&s.handler])),
            }
        }
        let mut hasher = DefaultHasher::new();
        event.key.hash(&mut hasher);
        let slot = hasher.finish();
        Ok(groups
            .into_iter()
            .filter_map(|(group, members)| {
                let index = usize::try_from(slot % members.len() as u64).ok()?;
                Some((group.to_owned(), Arc::clone(members.get(index)?)))
            })
            .collect())
    }
}

#[async_trait]
impl EventBus for MemoryEventBus {
    async fn publish(&self, event: &OutboxEvent) -> Result<(), RepoError> {
        self.bus()?.published.push(event.clone());
        // Handlers are cloned out first: the lock is never held across .await.
        for (group, handler) in self.receivers(event)? {
            let mut last_error = None;
            for _ in 0..ATTEMPTS {
                match handler.handle(event).await {
                    Ok(()) => {
                        last_error = None;
                        break;
                    }
                    Err(e) => last_error = Some(e.to_string()),
                }
            }
            if let Some(error) = last_error {
                tracing::warn!(%group, topic = %event.topic, key = %event.key, %error,
                    "event handler failed {ATTEMPTS} times; event set aside as a dead letter");
                self.bus()?.dead_letters.push(DeadLetter {
                    group,
                    event: event.clone(),
                    error,
                });
            }
        }
        Ok(())
    }

    async fn subscribe(
        &self,
        topic: &str,
        group: &str,
        handler: Arc<dyn EventHandler>,
    ) -> Result<(), RepoError> {
        self.bus()?.subscriptions.push(Subscription {
            topic: topic.to_owned(),
            group: group.to_owned(),
            handler,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use booking_domain::BoxError;
    use chrono::Utc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Default)]
    struct Counting {
        calls: AtomicUsize,
        fail: bool,
    }

    #[async_trait]
    impl EventHandler for Counting {
        async fn handle(&self, _event: &OutboxEvent) -> Result<(), BoxError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.fail {
                Err("boom".into())
            } else {
                Ok(())
            }
        }
    }

    fn event(topic: &str, key: &str) -> OutboxEvent {
        OutboxEvent {
            id: 1,
            topic: topic.into(),
            key: key.into(),
            payload: serde_json::Value::Null,
            created_at: Utc::now(),
            published_at: None,
            request_id: None,
        }
    }

    #[tokio::test]
    async fn each_group_gets_each_event_once() {
        let bus = MemoryEventBus::new();
        let a1 = Arc::new(Counting::default());
        let a2 = Arc::new(Counting::default());
        let b = Arc::new(Counting::default());
        let other_topic = Arc::new(Counting::default());
        bus.subscribe("t", "a", a1.clone()).await.unwrap();
        bus.subscribe("t", "a", a2.clone()).await.unwrap();
        bus.subscribe("t", "b", b.clone()).await.unwrap();
        bus.subscribe("u", "a", other_topic.clone()).await.unwrap();

        for key in ["1", "2", "3", "4"] {
            bus.publish(&event("t", key)).await.unwrap();
        }
        let group_a = a1.calls.load(Ordering::SeqCst) + a2.calls.load(Ordering::SeqCst);
        assert_eq!(group_a, 4);
        assert_eq!(b.calls.load(Ordering::SeqCst), 4);
        assert_eq!(other_topic.calls.load(Ordering::SeqCst), 0);
        assert_eq!(bus.published().unwrap().len(), 4);
    }

    #[tokio::test]
    async fn a_failing_handler_is_retried_then_dead_lettered() {
        let bus = MemoryEventBus::new();
        let failing = Arc::new(Counting {
            fail: true,
            ..Counting::default()
        });
        bus.subscribe("t", "g", failing.clone()).await.unwrap();
        bus.publish(&event("t", "1")).await.unwrap();
        assert_eq!(failing.calls.load(Ordering::SeqCst), ATTEMPTS);
        let dead = bus.dead_letters().unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(
            (dead[0].group.as_str(), dead[0].error.as_str()),
            ("g", "boom")
        );
    }
}
