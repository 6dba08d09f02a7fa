//! Passes (entry tokens): fresh for each admission, for one user and one
//! schedule, claimed by one attempt at a time, used by the hold they let
//! through, gone with a freed slot, and never shown as used before they are.

use super::{
    enter_all, hold_with, line_up_and_admit, ms, now_ms, open_plan, pass_of, place, users,
    FreshQueue, LONG_TTL, OTHER, S,
};
use booking_domain::{Place, UserId};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Each pass of a tick has its own token, the one its user is shown, living
/// the pass lifetime from the tick.
pub async fn every_pass_carries_its_own_fresh_token(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, now_ms());
    let passes = line_up_and_admit(queue, &users(1..=100), 100, at).await;
    let tokens: HashSet<&str> = passes.iter().map(|p| p.token.token.as_str()).collect();
    assert_eq!(tokens.len(), 100);
    assert!(tokens.iter().all(|t| !t.is_empty()));
    for pass in &passes {
        assert_eq!(pass.admitted_at, at);
        assert_eq!(pass.token.expires_at, at + LONG_TTL);
        assert_eq!(pass_of(queue, pass.user.0, at).await, pass.token);
    }
}

/// Claimed, then used by a hold: the user is `Holding`, and the token
/// cannot be claimed again.
pub async fn a_pass_works_once(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, now_ms());
    line_up_and_admit(queue, &users(1..=1), 1, at).await;
    let pass = pass_of(queue, 1, at).await;
    hold_with(queue, 1, &pass.token, at).await;
    assert_eq!(place(queue, 1, at).await, Some(Place::Holding));
    assert!(
        !queue
            .claim_token(S, UserId(1), &pass.token, at)
            .await
            .unwrap(),
        "used up"
    );
    queue
        .restore_token(S, UserId(1), &pass.token)
        .await
        .unwrap();
    assert!(
        !queue
            .claim_token(S, UserId(1), &pass.token, at)
            .await
            .unwrap(),
        "a used pass cannot be restored"
    );
    assert_eq!(place(queue, 1, at).await, Some(Place::Holding));
}

pub async fn a_pass_is_bound_to_its_user_and_schedule(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, now_ms());
    line_up_and_admit(queue, &users(1..=2), 2, at).await;
    let mine = pass_of(queue, 1, at).await.token;
    let theirs = pass_of(queue, 2, at).await.token;
    assert_ne!(mine, theirs);

    assert!(!queue.claim_token(S, UserId(2), &mine, at).await.unwrap());
    assert!(!queue
        .claim_token(OTHER, UserId(1), &mine, at)
        .await
        .unwrap());
    assert!(!queue.claim_token(S, UserId(1), "guess", at).await.unwrap());
    // None of those used it up.
    assert!(queue.claim_token(S, UserId(1), &mine, at).await.unwrap());
}

/// Twin attempts with one token, from several instances: one claims it,
/// the others are refused; a failed attempt gives it back, once.
pub async fn a_claim_blocks_concurrent_claims_until_restored(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, now_ms());
    line_up_and_admit(queue, &users(1..=1), 1, at).await;
    let token = pass_of(queue, 1, at).await.token;

    let mut instances = Vec::new();
    for _ in 0..4 {
        instances.push(f.instance().await);
    }
    let racers: Vec<_> = (0..50)
        .map(|i| {
            let (queue, token) = (Arc::clone(&instances[i % 4]), token.clone());
            tokio::spawn(async move { queue.claim_token(S, UserId(1), &token, at).await })
        })
        .collect();
    let mut winners = 0;
    for racer in racers {
        winners += usize::from(racer.await.unwrap().unwrap());
    }
    assert_eq!(winners, 1);

    queue.restore_token(S, UserId(1), &token).await.unwrap();
    assert!(
        queue.claim_token(S, UserId(1), &token, at).await.unwrap(),
        "a failed attempt gives it back"
    );
    assert!(
        !queue.claim_token(S, UserId(1), &token, at).await.unwrap(),
        "claimed: a twin attempt is refused"
    );
}

/// The token race of issue 14: users polling their place while a tick on
/// another instance admits them are never told `Holding` (what makes the
/// API answer `token-used`): the place and the pass are read together.
pub async fn a_user_admitted_between_reads_is_never_told_the_pass_was_used(
    fresh_queue: FreshQueue<'_>,
) {
    let f = fresh_queue(LONG_TTL).await;
    let at = now_ms();
    enter_all(&*f.queue, &users(1..=200), None, at - ms(200)).await;
    let admitted = Arc::new(AtomicBool::new(false));
    let mut pollers = Vec::new();
    for i in 0..8_i64 {
        let (queue, admitted) = (f.instance().await, Arc::clone(&admitted));
        pollers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            // Until the ticks are done, and then once more around.
            loop {
                let done = admitted.load(Ordering::Acquire);
                for user in (1 + i..=200).step_by(8) {
                    let view = queue.view(S, UserId(user), at).await.unwrap();
                    seen.push((user, view.place));
                    // An adapter that never waits must still let the ticker run.
                    tokio::task::yield_now().await;
                }
                if done {
                    break;
                }
            }
            seen
        }));
    }
    let ticker = f.instance().await;
    for round in 0..4_i64 {
        ticker
            .tick(S, &open_plan(50 * (round as u64 + 1)), None, at + ms(round))
            .await
            .unwrap();
    }
    admitted.store(true, Ordering::Release);

    let mut views = 0;
    for poller in pollers {
        for (user, place) in poller.await.unwrap() {
            views += 1;
            assert!(
                !matches!(place, Some(Place::Holding) | None),
                "user {user} was told {place:?} before any hold"
            );
        }
    }
    assert!(views >= 200);
    for user in 1..=200 {
        assert!(matches!(
            place(&*f.queue, user, at).await,
            Some(Place::Admitted(_))
        ));
    }
}

/// Leaving with an unused pass: the pass goes with the slot, and the slot
/// goes to the next in line.
pub async fn a_freed_slot_takes_the_unused_pass_with_it(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, now_ms());
    line_up_and_admit(queue, &users(1..=3), 2, at).await;
    let token = pass_of(queue, 2, at).await.token;
    queue.free_slot(S, UserId(2)).await.unwrap();
    assert_eq!(place(queue, 2, at).await, None);
    assert!(!queue.claim_token(S, UserId(2), &token, at).await.unwrap());

    let next = queue
        .tick(S, &open_plan(2), None, at + ms(1))
        .await
        .unwrap();
    assert_eq!(next.admitted.len(), 1);
    assert_eq!(next.admitted[0].user, UserId(3));
    // A stranger freeing nothing changes nothing.
    queue.free_slot(S, UserId(42)).await.unwrap();
    assert_eq!(queue.stats(S, at + ms(1)).await.unwrap().active, 2);
}
