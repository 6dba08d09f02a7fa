//! Putting places back after the room's state was lost (Redis restarted
//! empty): each instance restores the places its streams knew, and the
//! line comes back in the old order, one place per user. A fresh room is
//! what a lost one looks like.

use super::{now_ms, open_plan, place, FreshQueue, LONG_TTL, S};
use booking_domain::{KnownPlace, Place, UserId};
use chrono::{Duration, Utc};

fn known(user: i64, ticket: Option<u64>) -> KnownPlace {
    KnownPlace {
        user: UserId(user),
        ticket,
    }
}

/// Every tick of a room, from any instance, reports the epoch the room's
/// state was created with.
pub async fn the_epoch_stays_while_the_room_lives(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(LONG_TTL).await;
    let at = now_ms();
    f.queue.enter(S, UserId(1), None, at).await.unwrap();
    let first = f.queue.tick(S, &open_plan(0), None, at).await.unwrap();
    let other = f.instance().await;
    let second = other.tick(S, &open_plan(0), None, at).await.unwrap();
    assert!(!first.epoch.is_empty());
    assert_eq!(first.epoch, second.epoch);
}

/// Two instances put back their streams' places after a loss, in any
/// order; one user entered again meanwhile. The line admits in the old
/// order, everyone once, and a later entrant is behind them all.
pub async fn places_put_back_by_two_instances_keep_the_old_order_once_each(
    fresh_queue: FreshQueue<'_>,
) {
    let f = fresh_queue(LONG_TTL).await;
    let at = now_ms();
    let (a, b) = (f.instance().await, f.instance().await);
    f.queue.enter(S, UserId(12), None, at).await.unwrap();
    let re_entered = f.queue.tickets(S, &[UserId(12)]).await.unwrap()[0];

    let from_a = a
        .restore(
            S,
            &[known(11, Some(3)), known(13, Some(5)), known(12, Some(4))],
        )
        .await
        .unwrap();
    assert_eq!(from_a.tickets, vec![Some(3), Some(5), re_entered]);
    let from_b = b
        .restore(
            S,
            &[known(10, Some(2)), known(14, Some(6)), known(15, None)],
        )
        .await
        .unwrap();
    assert_eq!(from_b.head, re_entered.min(Some(2)));
    let end_of_line = from_b.tickets[2].expect("a place in line once open");
    assert!(
        end_of_line > 6,
        "{end_of_line} is not behind the old tickets"
    );
    f.queue.enter(S, UserId(16), None, at).await.unwrap();

    let tick = f.queue.tick(S, &open_plan(100), None, at).await.unwrap();
    let admitted: Vec<i64> = tick.admitted.iter().map(|p| p.user.0).collect();
    assert_eq!(admitted, vec![12, 10, 11, 13, 14, 15, 16]);
    assert_eq!(tick.handed_out, 7, "each user once");
}

/// Before the opening nobody has a ticket: the places go back into the
/// pre-queue, to be drawn at the opening; after it, to the end of the line.
pub async fn places_without_a_ticket_go_back_to_the_pre_queue_before_the_opening(
    fresh_queue: FreshQueue<'_>,
) {
    let f = fresh_queue(LONG_TTL).await;
    let at = now_ms();
    let opens_at = Some(Utc::now() + Duration::minutes(1));
    f.queue.enter(S, UserId(1), opens_at, at).await.unwrap();
    let restored = f
        .queue
        .restore(S, &[known(1, None), known(2, None)])
        .await
        .unwrap();
    assert_eq!(restored.tickets, vec![None, None]);
    assert_eq!(place(&*f.queue, 1, at).await, Some(Place::PreQueue));
    assert_eq!(place(&*f.queue, 2, at).await, Some(Place::PreQueue));
    assert_eq!(f.queue.stats(S, at).await.unwrap().waiting, 2);
}

/// Restoring costs nothing to a room that lost nothing: everyone keeps
/// their place, nobody is added twice.
pub async fn restoring_into_a_room_that_kept_its_places_changes_nothing(
    fresh_queue: FreshQueue<'_>,
) {
    let f = fresh_queue(LONG_TTL).await;
    let at = now_ms();
    for user in 1..=3 {
        f.queue.enter(S, UserId(user), None, at).await.unwrap();
    }
    let before = f
        .queue
        .tickets(S, &[UserId(1), UserId(2), UserId(3)])
        .await
        .unwrap();
    let restored = f
        .queue
        .restore(S, &[known(2, before[1]), known(3, before[2])])
        .await
        .unwrap();
    assert_eq!(restored.tickets, before[1..].to_vec());
    assert_eq!(restored.head, before[0]);
    assert_eq!(f.queue.stats(S, at).await.unwrap().waiting, 3);
    let in_line = |p: Option<Place>| matches!(p, Some(Place::InLine { .. }));
    assert!(in_line(place(&*f.queue, 3, at).await));
}
