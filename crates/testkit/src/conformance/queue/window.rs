//! The admission window: never overfilled, even by several instances at
//! once, and a slot freed by payment, by leaving, or by expiry.

use super::{
    admitted, enter_all, enter_and_admit, sleep_past, token_of, users, waiting, FreshQueue,
    LONG_TTL, S, SHORT_TTL,
};
use booking_domain::{QueueStats, UserId};
use chrono::{Duration, Utc};

/// A window of 100: users 101 and 102 wait until a slot is freed, by a hold
/// ending (paid) or by an admitted user leaving with an unused token.
pub async fn a_full_window_admits_the_next_user_only_when_a_slot_is_freed(
    fresh_queue: FreshQueue<'_>,
) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, Utc::now());
    enter_all(queue, &users(1..=102), at).await;
    assert_eq!(queue.admit_next(S, 100, at).await.unwrap(), users(1..=100));
    assert!(
        queue.admit_next(S, 100, at).await.unwrap().is_empty(),
        "the window is full"
    );
    assert_eq!(
        queue.position(S, UserId(101), at).await.unwrap(),
        Some(waiting(1, 2))
    );
    assert_eq!(
        queue.stats(S, at).await.unwrap(),
        QueueStats {
            waiting: 2,
            active: 100
        }
    );

    // User 1 holds seats, then pays: the slot goes to user 101.
    let token = token_of(queue, 1, at).await;
    assert!(queue.claim_token(S, UserId(1), &token, at).await.unwrap());
    queue
        .consume_token(S, UserId(1), &token, at + LONG_TTL)
        .await
        .unwrap();
    assert!(
        queue.admit_next(S, 100, at).await.unwrap().is_empty(),
        "a live hold keeps its slot"
    );
    queue.free_slot(S, UserId(1)).await.unwrap();
    assert_eq!(queue.admit_next(S, 100, at).await.unwrap(), [UserId(101)]);

    // User 42 leaves without using the token: it goes with the slot.
    queue.free_slot(S, UserId(42)).await.unwrap();
    assert_eq!(queue.entry_token(S, UserId(42), at).await.unwrap(), None);
    assert_eq!(queue.admit_next(S, 100, at).await.unwrap(), [UserId(102)]);
    assert_eq!(
        queue.stats(S, at).await.unwrap(),
        QueueStats {
            waiting: 0,
            active: 100
        }
    );
}

/// An admission nobody uses ends with its token: the token is refused and
/// gone, the slot counts for nothing and goes to the next in line, and the
/// user is neither admitted nor waiting.
pub async fn an_unused_admission_expires_and_frees_its_slot(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(SHORT_TTL).await;
    let (queue, at) = (&*f.queue, Utc::now());
    enter_and_admit(queue, &users(1..=101), 100, at).await;
    let token = queue
        .entry_token(S, UserId(1), Utc::now())
        .await
        .unwrap()
        .expect("a token right after admission");
    assert!(
        queue
            .admit_next(S, 100, at + SHORT_TTL - Duration::milliseconds(1))
            .await
            .unwrap()
            .is_empty(),
        "the slots are taken until the tokens expire"
    );

    sleep_past((at + SHORT_TTL).max(token.expires_at)).await;
    let later = Utc::now();
    assert!(
        !queue
            .claim_token(S, UserId(1), &token.token, later)
            .await
            .unwrap(),
        "an expired token is refused"
    );
    assert_eq!(queue.entry_token(S, UserId(1), later).await.unwrap(), None);
    assert_eq!(queue.stats(S, later).await.unwrap().active, 0);
    assert_eq!(
        queue.admit_next(S, 100, later).await.unwrap(),
        [UserId(101)]
    );
    assert_eq!(queue.position(S, UserId(1), later).await.unwrap(), None);
}

pub async fn a_used_token_keeps_the_slot_until_the_hold_expires(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, Utc::now());
    enter_and_admit(queue, &users(1..=2), 1, at).await;
    let token = token_of(queue, 1, at).await;
    assert!(queue.claim_token(S, UserId(1), &token, at).await.unwrap());
    let hold_until = at + LONG_TTL * 3;
    queue
        .consume_token(S, UserId(1), &token, hold_until)
        .await
        .unwrap();

    // Past the token's lifetime the hold still takes the slot.
    assert!(queue
        .admit_next(S, 1, at + LONG_TTL)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        queue.position(S, UserId(1), at + LONG_TTL).await.unwrap(),
        Some(admitted(1))
    );
    assert_eq!(
        queue.admit_next(S, 1, hold_until).await.unwrap(),
        [UserId(2)]
    );
}

/// Eight instances admitting at once let in exactly the first 100, once.
pub async fn concurrent_admissions_never_exceed_the_window(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, Utc::now());
    enter_all(queue, &users(1..=500), at).await;
    let mut admitters = Vec::new();
    for _ in 0..8 {
        let queue = f.instance().await;
        admitters.push(tokio::spawn(
            async move { queue.admit_next(S, 100, at).await },
        ));
    }
    let mut all = Vec::new();
    for admitter in admitters {
        all.extend(admitter.await.unwrap().unwrap());
    }
    all.sort_unstable();
    assert_eq!(all, users(1..=100), "exactly the first 100, once each");
    assert_eq!(
        queue.stats(S, at).await.unwrap(),
        QueueStats {
            waiting: 400,
            active: 100
        }
    );
}
