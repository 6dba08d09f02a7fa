//! Entry tokens: unguessable, for one user and one schedule, claimed by
//! one attempt at a time, and spent by the reservation they let through.

use super::{enter_and_admit, token_of, users, FreshQueue, LONG_TTL, OTHER, S};
use booking_domain::UserId;
use chrono::{Duration, Utc};
use std::sync::Arc;

/// 128 random bits in hex, valid for the token lifetime, and spent by the
/// reservation it lets through.
pub async fn a_token_works_once(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, Utc::now());
    enter_and_admit(queue, &users(1..=1), 1, at).await;
    let token = queue.entry_token(S, UserId(1), at).await.unwrap().unwrap();
    assert_eq!(token.token.len(), 32);
    assert!(token.token.chars().all(|c| c.is_ascii_hexdigit()));
    // Redis reports the time left, read a moment after admission.
    assert!(
        token.expires_at <= at + LONG_TTL
            && token.expires_at > at + LONG_TTL - Duration::seconds(5),
        "expires at {}, admitted at {at}",
        token.expires_at
    );

    assert!(queue
        .claim_token(S, UserId(1), &token.token, at)
        .await
        .unwrap());
    queue
        .consume_token(S, UserId(1), &token.token, at + LONG_TTL)
        .await
        .unwrap();
    assert!(
        !queue
            .claim_token(S, UserId(1), &token.token, at)
            .await
            .unwrap(),
        "used up"
    );
    assert_eq!(queue.entry_token(S, UserId(1), at).await.unwrap(), None);
}

pub async fn a_token_is_bound_to_its_user_and_schedule(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, Utc::now());
    enter_and_admit(queue, &users(1..=2), 2, at).await;
    let mine = token_of(queue, 1, at).await;
    let theirs = token_of(queue, 2, at).await;
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
    let (queue, at) = (&*f.queue, Utc::now());
    enter_and_admit(queue, &users(1..=1), 1, at).await;
    let token = token_of(queue, 1, at).await;

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
