//! The waiting room in memory: the `Queue` conformance suite, and what only
//! `MemoryQueue` does. It follows the clock it is handed to the instant (the
//! domain tests move time by hand), where Redis expires passes by its own.

use booking_domain::{AdmissionPlan, Place, Queue, ScheduleId, UserId};
use booking_memory::MemoryQueue;
use booking_testkit::conformance::QueueFixture;
use chrono::{DateTime, Duration, Utc};
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

/// Admits as many as `active_limit` allows: credit is no limit.
fn plan(active_limit: u64) -> AdmissionPlan {
    AdmissionPlan {
        opens_at: None,
        rate_per_sec: 1_000.0,
        burst: 1_000,
        active_limit,
        pass_limit: 1_000,
        sold_out: false,
    }
}

/// `users` line up in an open sale, then `admit` of them get a pass.
async fn queue_with(users: i64, admit: u64, at: DateTime<Utc>) -> MemoryQueue {
    let queue = MemoryQueue::new(TTL);
    for user in 1..=users {
        queue.enter(S, UserId(user), None, at).await.unwrap();
    }
    queue.tick(S, &plan(admit), None, at).await.unwrap();
    queue
}

async fn place(queue: &MemoryQueue, user: i64, at: DateTime<Utc>) -> Option<Place> {
    queue.view(S, UserId(user), at).await.unwrap().place
}

/// A minute later by the clock passed in, not by the wall clock: the pass
/// handed out at `at` is refused and gone at exactly `at + TTL`, and its
/// slot goes to the next in line.
#[tokio::test]
async fn a_pass_expires_at_exactly_the_instant_passed_in() {
    let at = Utc::now();
    let queue = queue_with(101, 100, at).await;
    let Some(Place::Admitted(pass)) = place(&queue, 1, at).await else {
        panic!("user 1 has no pass");
    };
    assert_eq!(pass.expires_at, at + TTL);
    let just_before = at + TTL - Duration::nanoseconds(1);
    assert!(queue
        .tick(S, &plan(100), None, just_before)
        .await
        .unwrap()
        .admitted
        .is_empty());

    let expiry = pass.expires_at;
    assert!(!queue
        .claim_token(S, UserId(1), &pass.token, expiry)
        .await
        .unwrap());
    assert_eq!(place(&queue, 1, expiry).await, None);
    assert_eq!(queue.stats(S, expiry).await.unwrap().active, 0);
    let tick = queue.tick(S, &plan(100), None, expiry).await.unwrap();
    let admitted: Vec<UserId> = tick.admitted.iter().map(|pass| pass.user).collect();
    assert_eq!(admitted, [UserId(101)]);
}

/// Claimed by an attempt in flight, not used: the pass is still the user's
/// to read, so a page reloaded mid-attempt still shows it.
#[tokio::test]
async fn a_claimed_pass_is_still_shown_to_its_user() {
    let at = Utc::now();
    let queue = queue_with(1, 1, at).await;
    let Some(Place::Admitted(pass)) = place(&queue, 1, at).await else {
        panic!("user 1 has no pass");
    };
    assert!(queue
        .claim_token(S, UserId(1), &pass.token, at)
        .await
        .unwrap());
    assert_eq!(place(&queue, 1, at).await, Some(Place::Admitted(pass)));
}

/// Re-entering after the pass expired unused: a new ticket at the end.
#[tokio::test]
async fn an_expired_admission_keeps_no_place() {
    let at = Utc::now();
    let queue = queue_with(3, 1, at).await;
    let view = queue.enter(S, UserId(1), None, at + TTL).await.unwrap();
    assert!(matches!(
        view.place,
        Some(Place::InLine {
            ticket: 4,
            position: 3
        })
    ));
}

/// A cursor this room never handed out reads like none: from this tick on.
#[tokio::test]
async fn an_unknown_cursor_reads_like_none() {
    let at = Utc::now();
    let queue = queue_with(5, 1, at).await;
    for cursor in ["999", "garbage"] {
        let tick = queue
            .tick(S, &plan(2), Some(cursor), at + Duration::seconds(1))
            .await
            .unwrap();
        assert!(tick.admitted.len() <= 1, "{cursor}: {:?}", tick.admitted);
    }
}

#[tokio::test]
async fn open_rooms_are_listed_in_ascending_order() {
    let at = Utc::now();
    let queue = MemoryQueue::new(TTL);
    for schedule in [3, 2, 5] {
        queue
            .enter(ScheduleId(schedule), UserId(1), None, at)
            .await
            .unwrap();
    }
    assert_eq!(
        queue.open_rooms().await.unwrap(),
        [ScheduleId(2), ScheduleId(3), ScheduleId(5)]
    );
}
