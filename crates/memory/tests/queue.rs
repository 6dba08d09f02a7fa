//! The waiting room in memory: the `Queue` conformance suite, and what only
//! `MemoryQueue` does. It follows the clock it is handed to the instant (the
//! domain tests move time by hand), where Redis expires tokens by its own.

use booking_domain::{Queue, ScheduleId, UserId};
use booking_memory::MemoryQueue;
use booking_testkit::conformance::QueueFixture;
use chrono::{Duration, Utc};
use std::sync::Arc;

async fn memory_queue(token_ttl: Duration) -> QueueFixture {
    let queue = MemoryQueue::new(token_ttl);
    // In memory, another "server" can only share the rooms themselves.
    QueueFixture::new(
        move || {
            let queue: Arc<dyn Queue> = Arc::new(queue.clone());
            async move { queue }
        },
        (),
    )
    .await
}

booking_testkit::queue_conformance_suite!(memory_queue);

const S: ScheduleId = ScheduleId(1);
const TTL: Duration = Duration::seconds(60);

/// `users` enter in order, then `admit` of them are let in.
async fn queue_with(users: i64, admit: usize, at: chrono::DateTime<Utc>) -> MemoryQueue {
    let queue = MemoryQueue::new(TTL);
    for user in 1..=users {
        queue.enter(S, UserId(user), at).await.unwrap();
    }
    queue.admit_next(S, admit, at).await.unwrap();
    queue
}

/// A minute later by the clock passed in, not by the wall clock: the token
/// issued at `at` is refused and gone at exactly `at + TTL`, and its slot
/// goes to the next in line.
#[tokio::test]
async fn an_admission_expires_at_exactly_the_instant_passed_in() {
    let at = Utc::now();
    let queue = queue_with(101, 100, at).await;
    let token = queue.entry_token(S, UserId(1), at).await.unwrap().unwrap();
    assert_eq!(token.expires_at, at + TTL);
    assert!(queue
        .admit_next(S, 100, at + TTL - Duration::seconds(1))
        .await
        .unwrap()
        .is_empty());

    let expiry = token.expires_at;
    assert!(!queue
        .claim_token(S, UserId(1), &token.token, expiry)
        .await
        .unwrap());
    assert_eq!(queue.entry_token(S, UserId(1), expiry).await.unwrap(), None);
    assert_eq!(queue.stats(S, expiry).await.unwrap().active, 0);
    assert_eq!(
        queue.admit_next(S, 100, expiry).await.unwrap(),
        [UserId(101)]
    );
    // An expired, unused admission is no admission.
    assert_eq!(queue.position(S, UserId(1), expiry).await.unwrap(), None);
    assert_eq!(queue.entry_token(S, UserId(1), expiry).await.unwrap(), None);
}

/// Claimed by an attempt in flight, not used: in memory the token is still
/// the user's to read (`RedisQueue` shows none until it is restored).
#[tokio::test]
async fn a_claimed_token_is_still_shown_to_its_user() {
    let at = Utc::now();
    let queue = queue_with(1, 1, at).await;
    let token = queue.entry_token(S, UserId(1), at).await.unwrap().unwrap();
    assert!(queue
        .claim_token(S, UserId(1), &token.token, at)
        .await
        .unwrap());
    assert_eq!(
        queue.entry_token(S, UserId(1), at).await.unwrap(),
        Some(token)
    );
}

#[tokio::test]
async fn schedules_waiting_are_listed_in_ascending_order() {
    let at = Utc::now();
    let queue = MemoryQueue::new(TTL);
    for schedule in [3, 2, 5] {
        queue
            .enter(ScheduleId(schedule), UserId(1), at)
            .await
            .unwrap();
    }
    assert_eq!(
        queue.schedules_waiting().await.unwrap(),
        [ScheduleId(2), ScheduleId(3), ScheduleId(5)]
    );
}
