//! Admission ticks: paced by a credit shared by every instance, measured,
//! and reported along a cursor so that each instance learns of every pass
//! exactly once, whoever handed it out.

use super::{enter_all, ms, now_ms, open_plan, pass_of, users, FreshQueue, LONG_TTL, S};
use booking_domain::{AdmissionPlan, Pass, UserId};
use chrono::Duration;
use std::collections::HashSet;

/// Credit is the rate times the time since the last tick, capped at the
/// burst (where the first tick starts), and is shared by every instance.
pub async fn a_tick_admits_no_more_than_its_credit(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, t0) = (&*f.queue, now_ms());
    enter_all(queue, &users(1..=100), None, t0 - ms(100)).await;
    let plan = AdmissionPlan {
        rate_per_sec: 4.0,
        burst: 10,
        ..open_plan(1_000)
    };
    let second = f.instance().await;
    let mut admitted = 0;
    for (after, instance, expected) in [
        (0, queue, 10),
        (500, queue, 2),
        (750, queue, 1),
        (750, queue, 0),
        (1_000, &*second, 1),
        (1_250, queue, 1),
        (60_000, &*second, 10),
    ] {
        let tick = instance.tick(S, &plan, None, t0 + ms(after)).await.unwrap();
        assert_eq!(
            tick.admitted.len(),
            expected,
            "admitted by the tick {after} ms in"
        );
        assert_eq!(tick.handed_out, expected as u64);
        admitted += expected;
        assert_eq!(tick.passes, admitted as u64);
        assert_eq!(tick.sale.waiting, 100 - admitted as u64);
    }
}

/// Passes handed out in the last 5 s per second, over the time since the
/// opening while that is shorter; 0 before any. Measured on the `now`
/// passed in.
pub async fn the_admission_rate_is_measured_over_the_last_five_seconds(
    fresh_queue: FreshQueue<'_>,
) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, t0) = (&*f.queue, now_ms());
    // The first entrant opens the sale at `t0`.
    enter_all(queue, &users(1..=20), None, t0).await;
    let rate_at = |after: i64| async move {
        queue
            .view(S, UserId(20), t0 + ms(after))
            .await
            .unwrap()
            .sale
            .admission_rate
    };
    assert_eq!(rate_at(500).await, 0.0, "nobody admitted yet");
    let plan = AdmissionPlan {
        burst: 10,
        ..open_plan(1_000)
    };
    let tick = queue.tick(S, &plan, None, t0 + ms(1_000)).await.unwrap();
    assert_eq!(tick.handed_out, 10);

    for (after, expected) in [(2_000, 5.0), (4_000, 2.5), (5_500, 2.0), (6_500, 0.0)] {
        let rate = rate_at(after).await;
        assert!(
            (rate - expected).abs() < 1e-6,
            "{after} ms after the opening: {rate} per second, expected {expected}"
        );
    }
}

/// Two instances tick in turns, each passing its own cursor on: each sees
/// every pass once, its own and the other's, oldest first, with the token
/// its user is shown.
pub async fn passes_are_reported_once_along_the_cursor_whoever_handed_them_out(
    fresh_queue: FreshQueue<'_>,
) {
    let f = fresh_queue(LONG_TTL).await;
    let (a, at) = (&*f.queue, now_ms());
    let b = f.instance().await;
    enter_all(a, &users(1..=30), None, at - ms(30)).await;

    let (mut seen_by_a, mut seen_by_b) = (Vec::<Pass>::new(), Vec::<Pass>::new());
    let (mut cursor_a, mut cursor_b) = (None::<String>, None::<String>);
    let mut handed_out = Vec::<Pass>::new();
    for (step, active_limit) in [3, 5, 6, 6, 8, 12, 12].into_iter().enumerate() {
        let (instance, cursor, seen) = if step % 2 == 0 {
            (a, &mut cursor_a, &mut seen_by_a)
        } else {
            (&*b, &mut cursor_b, &mut seen_by_b)
        };
        let now = at + ms(step as i64);
        let passes_before = handed_out.len() as u64;
        let tick = instance
            .tick(S, &open_plan(active_limit), cursor.as_deref(), now)
            .await
            .unwrap();
        let new = active_limit - passes_before;
        let own = &tick.admitted[tick.admitted.len() - new as usize..];
        for pass in own {
            assert_eq!(pass.admitted_at, now);
            assert_eq!(pass.token.expires_at, now + LONG_TTL);
        }
        handed_out.extend_from_slice(own);
        seen.extend(tick.admitted);
        *cursor = Some(tick.cursor);
    }

    let in_line_order: Vec<UserId> = handed_out.iter().map(|pass| pass.user).collect();
    assert_eq!(in_line_order, users(1..=12));
    // A starts at its first tick, B at its own first tick (after A's).
    assert_eq!(seen_by_a, handed_out, "A saw every pass once, oldest first");
    assert_eq!(
        seen_by_b,
        handed_out[3..],
        "B saw every pass since it started"
    );
    let tokens: HashSet<&str> = handed_out.iter().map(|p| p.token.token.as_str()).collect();
    assert_eq!(tokens.len(), 12, "a fresh token per pass");
    for pass in &handed_out {
        assert_eq!(pass_of(a, pass.user.0, at).await.token, pass.token.token);
    }

    let idle = a
        .tick(
            S,
            &open_plan(12),
            cursor_a.as_deref(),
            at + Duration::seconds(1),
        )
        .await
        .unwrap();
    assert!(idle.admitted.is_empty(), "nothing new since the cursor");
}
