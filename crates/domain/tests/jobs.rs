//! The seat-release handler above its ports: a strategy whose give-back
//! fails once, over the in-memory processed-events store.

use async_trait::async_trait;
use booking_domain::*;
use booking_memory::MemoryStore;
use chrono::Utc;
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
