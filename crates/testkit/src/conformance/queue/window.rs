//! The admission window: the active limit and the pass limit never
//! exceeded, even by several instances at once, and a slot freed by
//! payment, by leaving, or by expiry.

use super::{
    enter_all, hold_with, line_up_and_admit, ms, now_ms, open_plan, pass_of, place, sleep_past,
    users, FreshQueue, LONG_TTL, S, SHORT_TTL,
};
use booking_domain::{AdmissionPlan, Place, QueueStats, UserId};
use chrono::Duration;
use std::collections::HashSet;

/// An active limit of 5: passes plus holds never exceed it; a hold keeps
/// its slot until freed, and a freed slot goes to the head of the line.
pub async fn a_tick_never_fills_more_slots_than_the_active_limit(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, now_ms());
    line_up_and_admit(queue, &users(1..=10), 5, at).await;

    let pass = pass_of(queue, 1, at).await;
    hold_with(queue, 1, &pass.token, at).await;
    let full = queue
        .tick(S, &open_plan(5), None, at + ms(1))
        .await
        .unwrap();
    assert!(full.admitted.is_empty(), "4 passes and 1 hold fill 5 slots");
    assert_eq!((full.passes, full.holding), (4, 1));

    queue.free_slot(S, UserId(1)).await.unwrap();
    queue.free_slot(S, UserId(2)).await.unwrap();
    let freed = queue
        .tick(S, &open_plan(5), None, at + ms(2))
        .await
        .unwrap();
    let admitted: Vec<UserId> = freed.admitted.iter().map(|pass| pass.user).collect();
    assert_eq!(admitted, [UserId(6), UserId(7)]);
    assert_eq!((freed.passes, freed.holding), (5, 0));
    assert_eq!(
        queue.stats(S, at + ms(2)).await.unwrap(),
        QueueStats {
            waiting: 3,
            active: 5
        }
    );
}

/// A pass limit of 3 (the free seats can serve no more): unused passes
/// never exceed it, whatever the active limit; a used pass makes room.
pub async fn a_tick_never_holds_out_more_passes_than_the_pass_limit(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, now_ms());
    enter_all(queue, &users(1..=10), None, at - ms(10)).await;
    let plan = AdmissionPlan {
        pass_limit: 3,
        ..open_plan(100)
    };
    let first = queue.tick(S, &plan, None, at).await.unwrap();
    assert_eq!(first.admitted.len(), 3);
    assert!(queue
        .tick(S, &plan, None, at + ms(1))
        .await
        .unwrap()
        .admitted
        .is_empty());

    let pass = &first.admitted[0];
    assert!(queue
        .claim_token(S, pass.user, &pass.token.token, at)
        .await
        .unwrap());
    queue
        .consume_token(S, pass.user, &pass.token.token, at + LONG_TTL)
        .await
        .unwrap();
    let next = queue.tick(S, &plan, None, at + ms(2)).await.unwrap();
    assert_eq!(next.admitted.len(), 1, "the used pass made room for one");
    assert_eq!((next.passes, next.holding), (3, 1));
}

/// The pass ran out while the hold was being made: the hold exists, so
/// its slot counts until the hold ends.
pub async fn a_hold_whose_pass_expired_mid_attempt_still_takes_its_slot(
    fresh_queue: FreshQueue<'_>,
) {
    let f = fresh_queue(SHORT_TTL).await;
    let (queue, at) = (&*f.queue, now_ms());
    let passes = line_up_and_admit(queue, &users(1..=2), 1, at).await;
    let token = &passes[0].token.token;
    assert!(queue.claim_token(S, UserId(1), token, at).await.unwrap());

    sleep_past(at + SHORT_TTL).await;
    let late = now_ms();
    queue
        .consume_token(S, UserId(1), token, late + LONG_TTL)
        .await
        .unwrap();
    assert_eq!(place(queue, 1, late).await, Some(Place::Holding));
    let tick = queue.tick(S, &open_plan(1), None, late).await.unwrap();
    assert!(tick.admitted.is_empty(), "the hold keeps the only slot");
    assert_eq!((tick.passes, tick.holding), (0, 1));
}

/// Eight instances, three ticks each, all at once, with a window of 100:
/// exactly the first 100 in line get a pass, once each.
pub async fn concurrent_ticks_from_many_instances_never_overfill_the_window(
    fresh_queue: FreshQueue<'_>,
) {
    let f = fresh_queue(LONG_TTL).await;
    let at = now_ms();
    enter_all(&*f.queue, &users(1..=500), None, at - ms(500)).await;
    let mut tickers = Vec::new();
    for i in 0..8 {
        let queue = f.instance().await;
        tickers.push(tokio::spawn(async move {
            let (mut handed_out, mut admitted) = (0, Vec::new());
            for round in 0..3 {
                let now = at + ms(round * 10 + i);
                let tick = queue.tick(S, &open_plan(100), None, now).await.unwrap();
                assert!(tick.passes + tick.holding <= 100, "overfilled: {tick:?}");
                handed_out += tick.handed_out;
                admitted.extend(tick.admitted);
            }
            (handed_out, admitted)
        }));
    }
    let (mut handed_out, mut all) = (0, Vec::new());
    for ticker in tickers {
        let (own, admitted) = ticker.await.unwrap();
        handed_out += own;
        all.extend(admitted.into_iter().map(|pass| pass.user));
    }
    assert_eq!(handed_out, 100);
    assert_eq!(
        all.len(),
        100,
        "one report of each pass, by the tick that made it"
    );
    all.sort_unstable();
    assert_eq!(all, users(1..=100), "exactly the first 100, once each");
    assert_eq!(
        f.queue.stats(S, at + ms(100)).await.unwrap(),
        QueueStats {
            waiting: 400,
            active: 100
        }
    );
}

/// Nobody uses the pass: when it expires the user has no place, the pass
/// is refused, and its slot goes to the next in line.
pub async fn an_unused_pass_expires_and_frees_its_slot(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(SHORT_TTL).await;
    let (queue, at) = (&*f.queue, now_ms());
    let passes = line_up_and_admit(queue, &users(1..=3), 2, at).await;
    let pass = &passes[0];
    assert_eq!(pass.token.expires_at, at + SHORT_TTL);
    let still = queue
        .tick(S, &open_plan(2), None, at + ms(500))
        .await
        .unwrap();
    assert!(still.admitted.is_empty(), "the slots are taken until then");

    sleep_past(pass.token.expires_at).await;
    let later = now_ms();
    assert_eq!(place(queue, 1, later).await, None);
    assert!(
        !queue
            .claim_token(S, UserId(1), &pass.token.token, later)
            .await
            .unwrap(),
        "an expired pass is refused"
    );
    assert_eq!(queue.stats(S, later).await.unwrap().active, 0);
    let next = queue.tick(S, &open_plan(2), None, later).await.unwrap();
    let admitted: Vec<UserId> = next.admitted.iter().map(|pass| pass.user).collect();
    assert_eq!(admitted, [UserId(3)]);
    assert_eq!(next.passes, 1);
}

/// A used pass: the hold keeps the slot (past the pass's own lifetime)
/// until it expires; then the user has no place and the slot is free.
pub async fn a_hold_keeps_the_slot_until_it_expires(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(SHORT_TTL).await;
    let (queue, at) = (&*f.queue, now_ms());
    let passes = line_up_and_admit(queue, &users(1..=2), 1, at).await;
    let token = &passes[0].token.token;
    assert!(queue.claim_token(S, UserId(1), token, at).await.unwrap());
    let hold_until = at + SHORT_TTL * 2;
    queue
        .consume_token(S, UserId(1), token, hold_until)
        .await
        .unwrap();

    sleep_past(at + SHORT_TTL).await;
    let mid = now_ms();
    assert_eq!(place(queue, 1, mid).await, Some(Place::Holding));
    let held = queue.tick(S, &open_plan(1), None, mid).await.unwrap();
    assert!(held.admitted.is_empty(), "the hold keeps the slot");
    assert_eq!((held.passes, held.holding), (0, 1));

    sleep_past(hold_until).await;
    let later = now_ms();
    assert_eq!(place(queue, 1, later).await, None);
    let freed = queue.tick(S, &open_plan(1), None, later).await.unwrap();
    assert_eq!(freed.admitted.len(), 1);
    assert_eq!(freed.admitted[0].user, UserId(2));
    assert_eq!(freed.holding, 0);
}

/// Waiting: the pre-queue before the opening, the line after; active:
/// unused passes and live holds.
pub async fn stats_count_the_waiting_and_the_slots_taken(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, now_ms());
    let opens_at = at + Duration::minutes(1);
    enter_all(queue, &users(1..=8), Some(opens_at), at).await;
    assert_eq!(
        queue.stats(S, at + ms(10)).await.unwrap(),
        QueueStats {
            waiting: 8,
            active: 0
        }
    );

    let plan = AdmissionPlan {
        opens_at: Some(opens_at),
        ..open_plan(3)
    };
    let tick = queue.tick(S, &plan, None, opens_at).await.unwrap();
    let pass = &tick.admitted[0];
    assert!(queue
        .claim_token(S, pass.user, &pass.token.token, opens_at)
        .await
        .unwrap());
    queue
        .consume_token(S, pass.user, &pass.token.token, opens_at + LONG_TTL)
        .await
        .unwrap();
    assert_eq!(
        queue.stats(S, opens_at).await.unwrap(),
        QueueStats {
            waiting: 5,
            active: 3
        }
    );
    let unique: HashSet<UserId> = tick.admitted.iter().map(|pass| pass.user).collect();
    assert_eq!(unique.len(), 3);
    assert_eq!(
        queue.stats(super::OTHER, at).await.unwrap(),
        QueueStats::default()
    );
}
