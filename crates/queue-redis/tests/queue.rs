//! The waiting room against a real Redis.

use booking_domain::*;
use booking_queue_redis::RedisQueue;
use booking_testkit::TestRedis;
use chrono::{Duration, Utc};

const S: ScheduleId = ScheduleId(7);

fn queue(redis: &TestRedis, token_ttl: Duration) -> RedisQueue {
    RedisQueue::new(redis.pool(8), redis.prefix(), token_ttl)
}

fn users(range: std::ops::Range<i64>) -> Vec<UserId> {
    range.map(UserId).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_order_is_arrival_order_and_entering_twice_keeps_the_place() {
    let redis = TestRedis::new().await;
    let q = queue(&redis, Duration::minutes(5));
    let now = Utc::now();
    for (i, user) in users(1..6).into_iter().rev().enumerate() {
        let p = q.enter(S, user, now).await.unwrap();
        assert_eq!((p.position, p.admitted), (i as u64 + 1, false));
    }
    let again = q.enter(S, UserId(5), now).await.unwrap();
    assert_eq!(again.position, 1, "the first to arrive keeps place 1");
    let positions = q.positions(S, &users(1..7), now).await.unwrap();
    let places: Vec<_> = positions.iter().map(|p| p.map(|p| p.position)).collect();
    assert_eq!(
        places,
        vec![Some(5), Some(4), Some(3), Some(2), Some(1), None]
    );

    let admitted = q.admit_next(S, 2, now).await.unwrap();
    assert_eq!(
        admitted,
        vec![UserId(5), UserId(4)],
        "admitted in arrival order"
    );
    let p = q.position(S, UserId(3), now).await.unwrap().unwrap();
    assert_eq!((p.position, p.waiting), (1, 3));
    let admitted = q.position(S, UserId(5), now).await.unwrap().unwrap();
    assert!(admitted.admitted && admitted.position == 0, "{admitted:?}");
    assert_eq!(
        q.position(S, UserId(42), now).await.unwrap(),
        None,
        "never entered"
    );
    let again = q.enter(S, UserId(5), now).await.unwrap();
    assert!(
        again.admitted,
        "entering again after admission keeps the admission"
    );
    assert_eq!(q.schedules_waiting().await.unwrap(), vec![S]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_101st_user_waits_until_a_slot_frees() {
    let redis = TestRedis::new().await;
    let q = queue(&redis, Duration::minutes(5));
    let now = Utc::now();
    for user in users(1..102) {
        q.enter(S, user, now).await.unwrap();
    }
    assert_eq!(q.admit_next(S, 100, now).await.unwrap().len(), 100);
    assert!(
        q.admit_next(S, 100, now).await.unwrap().is_empty(),
        "the window is full"
    );
    let p = q.position(S, UserId(101), now).await.unwrap().unwrap();
    assert_eq!((p.position, p.admitted), (1, false));
    assert_eq!(
        q.stats(S, now).await.unwrap(),
        QueueStats {
            waiting: 1,
            active: 100
        }
    );

    // User 1 books and pays: the slot goes to user 101.
    let token = q.entry_token(S, UserId(1), now).await.unwrap().unwrap();
    assert!(q
        .claim_token(S, UserId(1), &token.token, now)
        .await
        .unwrap());
    q.consume_token(S, UserId(1), &token.token, now + Duration::minutes(5))
        .await
        .unwrap();
    assert!(
        q.admit_next(S, 100, now).await.unwrap().is_empty(),
        "a live hold keeps its slot"
    );
    q.free_slot(S, UserId(1)).await.unwrap();
    assert_eq!(q.admit_next(S, 100, now).await.unwrap(), vec![UserId(101)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unused_token_expires_and_frees_its_slot() {
    let redis = TestRedis::new().await;
    let q = queue(&redis, Duration::milliseconds(400));
    let now = Utc::now();
    q.enter(S, UserId(1), now).await.unwrap();
    q.enter(S, UserId(2), now).await.unwrap();
    assert_eq!(q.admit_next(S, 1, now).await.unwrap(), vec![UserId(1)]);
    let token = q.entry_token(S, UserId(1), now).await.unwrap().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let later = Utc::now();
    assert!(
        !q.claim_token(S, UserId(1), &token.token, later)
            .await
            .unwrap(),
        "expired"
    );
    assert_eq!(
        q.admit_next(S, 1, later).await.unwrap(),
        vec![UserId(2)],
        "its slot freed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_works_once_and_only_for_its_user_and_schedule() {
    let redis = TestRedis::new().await;
    let q = queue(&redis, Duration::minutes(5));
    let now = Utc::now();
    q.enter(S, UserId(1), now).await.unwrap();
    q.admit_next(S, 10, now).await.unwrap();
    let token = q.entry_token(S, UserId(1), now).await.unwrap().unwrap();
    assert_eq!(token.token.len(), 32, "128 random bits, hex");

    assert!(
        !q.claim_token(S, UserId(2), &token.token, now)
            .await
            .unwrap(),
        "not user 2's"
    );
    assert!(
        !q.claim_token(ScheduleId(8), UserId(1), &token.token, now)
            .await
            .unwrap(),
        "not schedule 8's"
    );
    assert!(!q.claim_token(S, UserId(1), "guess", now).await.unwrap());

    assert!(q
        .claim_token(S, UserId(1), &token.token, now)
        .await
        .unwrap());
    assert!(
        !q.claim_token(S, UserId(1), &token.token, now)
            .await
            .unwrap(),
        "claimed: a twin attempt waits"
    );
    q.restore_token(S, UserId(1), &token.token).await.unwrap();
    assert!(
        q.claim_token(S, UserId(1), &token.token, now)
            .await
            .unwrap(),
        "a failed attempt gives it back"
    );
    q.consume_token(S, UserId(1), &token.token, now + Duration::minutes(5))
        .await
        .unwrap();
    assert!(
        !q.claim_token(S, UserId(1), &token.token, now)
            .await
            .unwrap(),
        "used up"
    );
    assert!(q.entry_token(S, UserId(1), now).await.unwrap().is_none());
}

/// Admission from several instances at once never exceeds the window.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_admitters_never_exceed_the_window() {
    let redis = TestRedis::new().await;
    let q = queue(&redis, Duration::minutes(5));
    let now = Utc::now();
    for user in users(1..501) {
        q.enter(S, user, now).await.unwrap();
    }
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let q = queue(&redis, Duration::minutes(5));
            tokio::spawn(async move { q.admit_next(S, 100, now).await.unwrap() })
        })
        .collect();
    let mut admitted = Vec::new();
    for t in tasks {
        admitted.extend(t.await.unwrap());
    }
    admitted.sort();
    assert_eq!(admitted, users(1..101), "exactly the first 100, once each");
    assert_eq!(
        q.stats(S, now).await.unwrap(),
        QueueStats {
            waiting: 400,
            active: 100
        }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hold_markers_live_until_cleared_or_expired() {
    let redis = TestRedis::new().await;
    let q = queue(&redis, Duration::minutes(5));
    let soon = Utc::now() + Duration::milliseconds(300);
    q.mark_held(
        S,
        &[SeatId(3), SeatId(4)],
        ReservationId(1),
        Utc::now() + Duration::minutes(5),
    )
    .await
    .unwrap();
    q.mark_held(S, &[SeatId(9)], ReservationId(2), soon)
        .await
        .unwrap();
    assert_eq!(
        q.held_seats(S).await.unwrap(),
        vec![SeatId(3), SeatId(4), SeatId(9)]
    );
    q.clear_held(S, &[SeatId(3), SeatId(4)], ReservationId(2))
        .await
        .unwrap();
    assert_eq!(
        q.held_seats(S).await.unwrap().len(),
        3,
        "markers of reservation 1 stay"
    );
    q.clear_held(S, &[SeatId(3), SeatId(4)], ReservationId(1))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(q.held_seats(S).await.unwrap().is_empty());
}
