//! The jobs above their ports, over the in-memory adapters: the outbox
//! relay with a bus that refuses one event, the seat-release handler with a
//! strategy whose give-back fails once, and the pruner.

use async_trait::async_trait;
use booking_domain::*;
use booking_memory::{MemoryEventBus, MemorySeatLock, MemoryStore};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// Fails its first `seats_released`, like Redis being briefly unreachable;
/// gives each reservation's seats back once, as the port requires.
#[derive(Default)]
struct FlakyLock {
    calls: Mutex<usize>,
    released: Mutex<HashMap<ReservationId, usize>>,
}

#[async_trait]
impl SeatLock for FlakyLock {
    fn strategy(&self) -> &'static str {
        "flaky"
    }

    async fn hold_seats(&self, _: &HoldRequest) -> Result<Reservation, HoldError> {
        Err(HoldError::Contention)
    }

    async fn seats_released(&self, reservation: &Reservation) -> Result<(), RepoError> {
        let mut calls = self.calls.lock().unwrap();
        *calls += 1;
        if *calls == 1 {
            return Err(RepoError::Unavailable("redis: connection refused".into()));
        }
        self.released
            .lock()
            .unwrap()
            .entry(reservation.id)
            .or_insert(reservation.seat_ids.len());
        Ok(())
    }
}

fn cancelled(id: i64, seats: &[i64]) -> OutboxEvent {
    OutboxEvent {
        id,
        topic: "reservation.cancelled".into(),
        key: id.to_string(),
        payload: serde_json::json!({
            "reservationId": id, "userId": 1, "scheduleId": 1, "seatIds": seats,
            "status": "EXPIRED", "totalAmount": 0, "occurredAt": Utc::now(),
        }),
        created_at: Utc::now(),
        published_at: None,
        request_id: None,
    }
}

/// A give-back that fails is retried with the record, not skipped as
/// already processed: the seats go back exactly once, counted once.
#[tokio::test]
async fn a_failed_give_back_is_retried_and_counted_once() {
    let lock = Arc::new(FlakyLock::default());
    let counters = Arc::new(JobCounters::default());
    let handler = SeatReleaseHandler {
        processed: Arc::new(MemoryStore::default()),
        seat_lock: lock.clone(),
        queue: None,
        counters: counters.clone(),
    };
    let event = cancelled(7, &[3, 4]);

    assert!(handler.handle(&event).await.is_err(), "first attempt fails");
    assert!(lock.released.lock().unwrap().is_empty());
    handler.handle(&event).await.unwrap();
    handler.handle(&event).await.unwrap(); // a duplicate delivery

    assert_eq!(*lock.calls.lock().unwrap(), 3);
    assert_eq!(
        lock.released.lock().unwrap().get(&ReservationId(7)),
        Some(&2),
        "both seats given back"
    );
    assert_eq!(counters.seats_released.load(Ordering::Relaxed), 2);
    assert_eq!(counters.duplicates_skipped.load(Ordering::Relaxed), 1);
}

/// The in-memory store prunes marks by age too (the embedded mode runs the
/// pruner), and the lease keeps a second instance out.
#[tokio::test]
async fn the_pruner_drops_marks_older_than_it_keeps() {
    let store = MemoryStore::default();
    assert!(store.mark_processed("notification", "1").await.unwrap());
    let pruner = |owner: &str| RowPruner {
        outbox: Arc::new(store.clone()),
        processed: Arc::new(store.clone()),
        leases: Arc::new(store.clone()),
        owner: owner.into(),
        period: chrono::Duration::hours(1),
        keep: chrono::Duration::days(8),
        batch: 100,
        counters: Arc::new(JobCounters::default()),
    };
    let now = Utc::now();
    let kept = pruner("a").prune(now).await.unwrap();
    assert_eq!(kept, Some(Pruned::default()), "a fresh mark stays");
    assert_eq!(pruner("b").prune(now).await.unwrap(), None, "a's lease");
    let later = now + chrono::Duration::days(9);
    let pruned = pruner("a").prune(later).await.unwrap();
    assert_eq!(pruned.map(|p| p.processed), Some(1));
    assert!(
        store.mark_processed("notification", "1").await.unwrap(),
        "the mark is gone"
    );
}

// --- the outbox relay --------------------------------------------------------

/// A store whose outbox holds `n` unpublished rows, ids 1..=n: one hold each.
async fn outbox_of(n: i32) -> MemoryStore {
    let store = MemoryStore::new();
    let concert = store
        .insert_concert(&ConcertDetails::parse("Night", "Band", "Hall", "").unwrap())
        .await
        .unwrap();
    let grid = SeatGrid::parse(vec![SectionSpec {
        name: "A".into(),
        rows: 1,
        seats_per_row: n,
        price: 100,
    }])
    .unwrap();
    let schedule = store
        .insert_schedule(
            concert.id,
            Utc::now() + chrono::Duration::days(30),
            &grid,
            &SaleSettings::default(),
        )
        .await
        .unwrap()
        .unwrap();
    let lock = MemorySeatLock::new(store.clone());
    for (user, seat) in store
        .list_seats(schedule.id)
        .await
        .unwrap()
        .iter()
        .enumerate()
    {
        // A hold needs its user to exist, as in the database.
        let Inserted::New(holder) = store
            .insert_user(&NewUser {
                email: Email::parse(&format!("holder{user}@example.com")).unwrap(),
                nickname: Nickname::parse("holder").unwrap(),
                password_hash: String::new(),
                role: Role::User,
            })
            .await
            .unwrap()
        else {
            panic!("holder {user} exists twice");
        };
        let now = Utc::now();
        lock.hold_seats(&HoldRequest {
            user_id: holder.id,
            schedule_id: schedule.id,
            seat_ids: SeatIds::parse(vec![seat.id]).unwrap(),
            idempotency_key: None,
            now,
            expires_at: now + chrono::Duration::minutes(5),
            request_id: None,
        })
        .await
        .unwrap();
    }
    store
}

/// The in-memory bus, except that it refuses the `k`-th event it is given.
/// Only `publish` is its own: `publish_batch` is the port's default, one
/// event at a time, stopping at the first refusal.
struct RefusingBus {
    inner: MemoryEventBus,
    k: usize,
    seen: Mutex<usize>,
}

impl RefusingBus {
    fn refusing(k: usize) -> Self {
        Self {
            inner: MemoryEventBus::new(),
            k,
            seen: Mutex::new(0),
        }
    }

    fn accepting() -> Self {
        Self::refusing(usize::MAX)
    }

    fn published_ids(&self) -> Vec<i64> {
        self.inner
            .published()
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect()
    }
}

#[async_trait]
impl EventBus for RefusingBus {
    async fn publish(&self, event: &OutboxEvent) -> Result<(), RepoError> {
        let nth = {
            let mut seen = self.seen.lock().unwrap();
            *seen += 1;
            *seen
        };
        if nth == self.k {
            return Err(RepoError::Unavailable("kafka: broker refused".into()));
        }
        self.inner.publish(event).await
    }

    async fn subscribe(
        &self,
        topic: &str,
        group: &str,
        handler: Arc<dyn EventHandler>,
    ) -> Result<(), RepoError> {
        self.inner.subscribe(topic, group, handler).await
    }
}

/// Like Kafka's `publish_batch`: every event is on its way before the first
/// outcome is known, so the events after a refused one are delivered.
struct PipelinedBus(RefusingBus);

#[async_trait]
impl EventBus for PipelinedBus {
    async fn publish(&self, event: &OutboxEvent) -> Result<(), RepoError> {
        self.0.publish(event).await
    }

    async fn publish_batch(&self, events: &[OutboxEvent]) -> Vec<Result<(), RepoError>> {
        let mut outcomes = Vec::new();
        for event in events {
            outcomes.push(self.0.publish(event).await);
        }
        outcomes
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

fn relay(store: &MemoryStore, bus: Arc<dyn EventBus>, owner: &str) -> OutboxRelay {
    OutboxRelay {
        outbox: Arc::new(store.clone()),
        bus,
        owner: owner.into(),
        batch: 100,
        claim_for: chrono::Duration::seconds(30),
        counters: Arc::new(JobCounters::default()),
    }
}

async fn unpublished(store: &MemoryStore, now: DateTime<Utc>) -> i64 {
    store.backlog(now).await.unwrap().unpublished
}

/// Sent one at a time, a batch stops at the refused event: what came before
/// is marked published, the refused event and the rest are given back at
/// once (another relay takes them now, not when the claim would lapse),
/// and the counters say one failure and two publications.
#[tokio::test]
async fn a_refused_event_stops_the_batch_and_the_rest_is_claimable_at_once() {
    let store = outbox_of(5).await;
    let bus = Arc::new(RefusingBus::refusing(3));
    let first = relay(&store, bus.clone(), "relay-1");
    let now = Utc::now();

    assert!(
        first.relay_once(now).await.is_err(),
        "the refusal is reported"
    );
    assert_eq!(bus.published_ids(), [1, 2]);
    assert_eq!(unpublished(&store, now).await, 3, "nothing lost");
    assert_eq!(first.counters.published.load(Ordering::Relaxed), 2);
    assert_eq!(first.counters.publish_failures.load(Ordering::Relaxed), 1);

    let second_bus = Arc::new(RefusingBus::accepting());
    let second = relay(&store, second_bus.clone(), "relay-2");
    assert_eq!(second.relay_once(now).await.unwrap(), 3);
    assert_eq!(second_bus.published_ids(), [3, 4, 5], "in outbox order");
    assert_eq!(unpublished(&store, now).await, 0);
}

/// Pipelined, the events after a refused one are already delivered: they
/// are marked published (sending them again would only add duplicates);
/// only the refused one goes back, and the next pass publishes it alone.
#[tokio::test]
async fn only_the_refused_event_of_a_pipelined_batch_is_published_again() {
    let store = outbox_of(5).await;
    let bus = Arc::new(PipelinedBus(RefusingBus::refusing(2)));
    let relay = relay(&store, bus.clone(), "relay-1");
    let now = Utc::now();

    assert!(relay.relay_once(now).await.is_err());
    assert_eq!(bus.0.published_ids(), [1, 3, 4, 5]);
    assert_eq!(unpublished(&store, now).await, 1);
    assert_eq!(relay.counters.published.load(Ordering::Relaxed), 4);
    assert_eq!(relay.counters.publish_failures.load(Ordering::Relaxed), 1);

    assert_eq!(
        relay.relay_once(now).await.unwrap(),
        1,
        "the refused one, at once"
    );
    assert_eq!(bus.0.published_ids(), [1, 3, 4, 5, 2], "each exactly once");
    assert_eq!(unpublished(&store, now).await, 0);
    assert_eq!(relay.counters.published.load(Ordering::Relaxed), 5);
}
