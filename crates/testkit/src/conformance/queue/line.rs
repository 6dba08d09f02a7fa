//! The line: arrival order, one place per user, positions read one at a
//! time or in a batch, and which schedules have anyone waiting.

use super::{admitted, enter_and_admit, token_of, users, waiting, FreshQueue, LONG_TTL, OTHER, S};
use booking_domain::{ScheduleId, UserId};
use chrono::Utc;

pub async fn arrival_order_is_queue_order(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, Utc::now());
    assert_eq!(queue.enter(S, UserId(7), at).await.unwrap(), waiting(1, 1));
    assert_eq!(queue.enter(S, UserId(3), at).await.unwrap(), waiting(2, 2));
    assert_eq!(queue.enter(S, UserId(9), at).await.unwrap(), waiting(3, 3));
    assert_eq!(
        queue.position(S, UserId(3), at).await.unwrap(),
        Some(waiting(2, 3))
    );

    assert_eq!(
        queue.admit_next(S, 2, at).await.unwrap(),
        [UserId(7), UserId(3)],
        "admitted in arrival order"
    );
    assert_eq!(
        queue.position(S, UserId(9), at).await.unwrap(),
        Some(waiting(1, 1))
    );
    assert_eq!(
        queue.position(S, UserId(7), at).await.unwrap(),
        Some(admitted(1))
    );
}

pub async fn entering_twice_keeps_the_first_place(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, Utc::now());
    queue.enter(S, UserId(1), at).await.unwrap();
    queue.enter(S, UserId(2), at).await.unwrap();
    assert_eq!(queue.enter(S, UserId(1), at).await.unwrap(), waiting(1, 2));
    assert_eq!(queue.stats(S, at).await.unwrap().waiting, 2);
}

pub async fn a_stranger_has_no_position(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, Utc::now());
    queue.enter(S, UserId(1), at).await.unwrap();
    assert_eq!(queue.position(S, UserId(9), at).await.unwrap(), None);
    assert_eq!(queue.position(OTHER, UserId(1), at).await.unwrap(), None);
}

pub async fn an_admitted_user_entering_again_stays_admitted_until_the_slot_is_freed(
    fresh_queue: FreshQueue<'_>,
) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, Utc::now());
    enter_and_admit(queue, &users(1..=2), 1, at).await;
    // Unused token.
    assert_eq!(queue.enter(S, UserId(1), at).await.unwrap(), admitted(1));
    // Used token: the hold keeps the slot.
    let token = token_of(queue, 1, at).await;
    assert!(queue.claim_token(S, UserId(1), &token, at).await.unwrap());
    queue
        .consume_token(S, UserId(1), &token, at + LONG_TTL)
        .await
        .unwrap();
    assert_eq!(queue.enter(S, UserId(1), at).await.unwrap(), admitted(1));
    assert_eq!(queue.stats(S, at).await.unwrap().waiting, 1);

    // Paid: done, a new visit queues at the back.
    queue.free_slot(S, UserId(1)).await.unwrap();
    assert_eq!(queue.enter(S, UserId(1), at).await.unwrap(), waiting(2, 2));
}

/// The batch read (the SSE ticker's) answers like one read per user.
pub async fn positions_of_many_users_in_the_order_asked(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, Utc::now());
    enter_and_admit(queue, &users(1..=1_000), 10, at).await;
    let asked: Vec<UserId> = [1_000, 5, 11, 12, 999, 4_242, 10]
        .into_iter()
        .map(UserId)
        .collect();
    assert_eq!(
        queue.positions(S, &asked, at).await.unwrap(),
        [
            Some(waiting(990, 990)),
            Some(admitted(990)),
            Some(waiting(1, 990)),
            Some(waiting(2, 990)),
            Some(waiting(989, 990)),
            None,
            Some(admitted(990)),
        ]
    );
    for user in &asked {
        let one = queue.position(S, *user, at).await.unwrap();
        let many = queue.positions(S, &[*user], at).await.unwrap();
        assert_eq!(many, [one]);
    }
    assert_eq!(
        queue.positions(OTHER, &asked[..2], at).await.unwrap(),
        [None, None]
    );
}

pub async fn only_schedules_with_someone_waiting_are_listed(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, Utc::now());
    queue.enter(ScheduleId(3), UserId(1), at).await.unwrap();
    queue.enter(ScheduleId(2), UserId(1), at).await.unwrap();
    queue.enter(ScheduleId(5), UserId(1), at).await.unwrap();
    queue.admit_next(ScheduleId(5), 1, at).await.unwrap();
    // The port promises no order.
    let mut listed = queue.schedules_waiting().await.unwrap();
    listed.sort_unstable();
    assert_eq!(listed, [ScheduleId(2), ScheduleId(3)]);
}
