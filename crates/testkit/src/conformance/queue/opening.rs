//! The opening: a pre-queue before it, one recorded draw at it (a
//! replayable permutation, so arriving early gains nothing), and arrival
//! order behind the drawn users afterwards.

use super::{enter_all, ms, now_ms, plan_with, users, FreshQueue, LONG_TTL, S};
use booking_domain::{draw_order, AdmissionPlan, DrawRecord, Place, Queue, UserId};
use chrono::{DateTime, Duration, Utc};
use std::collections::HashSet;

/// A plan that admits nobody: the line stays as drawn.
fn no_admission(opens_at: Option<DateTime<Utc>>) -> AdmissionPlan {
    plan_with(opens_at, 0)
}

/// The users in line, ordered by ticket; the tickets must be contiguous.
async fn line_order(queue: &dyn Queue, users: &[UserId]) -> Vec<UserId> {
    let tickets = queue.tickets(S, users).await.unwrap();
    let mut line: Vec<(u64, UserId)> = tickets
        .into_iter()
        .zip(users)
        .map(|(ticket, user)| {
            (
                ticket.unwrap_or_else(|| panic!("{user:?} not in line")),
                *user,
            )
        })
        .collect();
    line.sort_unstable();
    for pair in line.windows(2) {
        assert_eq!(pair[1].0, pair[0].0 + 1, "tickets are contiguous");
    }
    line.into_iter().map(|(_, user)| user).collect()
}

async fn the_draw(queue: &dyn Queue) -> DrawRecord {
    queue
        .draw_record(S)
        .await
        .unwrap()
        .expect("the draw is recorded")
}

/// Anyone can check the draw: the seed replays it.
fn assert_replays(record: &DrawRecord) {
    assert!(
        (1..=2_147_483_646).contains(&record.seed),
        "seed {} outside 1..2^31-2",
        record.seed
    );
    let replayed: Vec<UserId> = draw_order(record.seed, record.arrivals.len())
        .into_iter()
        .map(|k| record.arrivals[k])
        .collect();
    assert_eq!(record.drawn, replayed);
}

pub async fn before_the_opening_entrants_wait_in_the_pre_queue(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, now_ms());
    let opens_at = at + Duration::minutes(1);
    let early = users(1..=5);
    enter_all(queue, &early, Some(opens_at), at).await;

    let view = queue.view(S, UserId(3), at + ms(10)).await.unwrap();
    assert_eq!(view.place, Some(Place::PreQueue));
    assert!(!view.sale.opened);
    assert_eq!(view.sale.waiting, 5);
    assert_eq!(view.sale.admission_rate, 0.0);
    assert_eq!(queue.tickets(S, &early).await.unwrap(), [None; 5]);

    let tick = queue
        .tick(S, &plan_with(Some(opens_at), 100), None, opens_at - ms(1))
        .await
        .unwrap();
    assert!(
        tick.admitted.is_empty(),
        "nobody is admitted before the opening"
    );
    assert!(!tick.sale.opened);
    assert_eq!(tick.head, None);
    assert_eq!(queue.draw_record(S).await.unwrap(), None);
    assert_eq!(queue.stats(S, at).await.unwrap().waiting, 5);
    assert_eq!(queue.open_rooms().await.unwrap(), [S]);
}

/// 50 early users, then the opening's first tick: the line is the recorded
/// draw (a permutation of the pre-queue, not arrival order, replayable from
/// the seed), positions 1..=50 follow it, and admission follows it.
pub async fn the_opening_draw_is_a_recorded_permutation_of_the_pre_queue(
    fresh_queue: FreshQueue<'_>,
) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, now_ms());
    let opens_at = at + Duration::minutes(1);
    let early: Vec<UserId> = (1..=50).map(|i| UserId(i * 7 % 53)).collect();
    enter_all(queue, &early, Some(opens_at), at).await;

    let tick = queue
        .tick(S, &no_admission(Some(opens_at)), None, opens_at)
        .await
        .unwrap();
    assert!(tick.sale.opened);
    assert_eq!(tick.sale.waiting, 50);

    let record = the_draw(queue).await;
    assert_eq!(record.schedule, S);
    assert_eq!(record.drawn_at, opens_at);
    assert_eq!(record.arrivals, early, "the pre-queue in arrival order");
    assert_replays(&record);
    let (mut drawn, mut arrived) = (record.drawn.clone(), early.clone());
    drawn.sort_unstable();
    arrived.sort_unstable();
    assert_eq!(drawn, arrived, "a permutation of the pre-queue");
    assert_ne!(record.drawn, early, "50 users left in arrival order");

    assert_eq!(line_order(queue, &early).await, record.drawn);
    for (k, user) in record.drawn.iter().enumerate() {
        match queue.view(S, *user, opens_at).await.unwrap().place {
            Some(Place::InLine { position, .. }) => assert_eq!(position, k as u64 + 1),
            other => panic!("{user:?} not in line: {other:?}"),
        }
    }

    let tick = queue
        .tick(S, &plan_with(Some(opens_at), 20), None, opens_at + ms(1))
        .await
        .unwrap();
    let admitted: Vec<UserId> = tick.admitted.iter().map(|pass| pass.user).collect();
    assert_eq!(admitted, record.drawn[..20], "admitted in drawn order");
}

pub async fn arrivals_after_the_opening_keep_their_order_behind_the_drawn(
    fresh_queue: FreshQueue<'_>,
) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, now_ms());
    let opens_at = at + Duration::minutes(1);
    let early = users(1..=30);
    enter_all(queue, &early, Some(opens_at), at).await;
    queue
        .tick(S, &no_admission(Some(opens_at)), None, opens_at)
        .await
        .unwrap();
    let late: Vec<UserId> = [107, 103, 109, 101, 105].into_iter().map(UserId).collect();
    enter_all(
        queue,
        &late,
        Some(opens_at),
        opens_at + Duration::seconds(1),
    )
    .await;

    let everyone: Vec<UserId> = early.iter().chain(&late).copied().collect();
    let line = line_order(queue, &everyone).await;
    assert_eq!(line[..30], the_draw(queue).await.drawn[..]);
    assert_eq!(
        line[30..],
        late[..],
        "late arrivals in arrival order, behind"
    );
    let view = queue
        .view(S, UserId(109), opens_at + Duration::seconds(2))
        .await
        .unwrap();
    assert!(matches!(
        view.place,
        Some(Place::InLine { position: 33, .. })
    ));
    assert_eq!(view.sale.waiting, 35);
}

/// No tick ran yet: the first enter after the opening draws, then queues
/// its user behind the drawn.
pub async fn the_first_entrant_after_the_opening_makes_the_draw(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, now_ms());
    let opens_at = at + Duration::minutes(1);
    let early = users(1..=20);
    enter_all(queue, &early, Some(opens_at), at).await;

    let late = queue
        .enter(S, UserId(99), Some(opens_at), opens_at)
        .await
        .unwrap();
    assert!(late.sale.opened);
    assert!(matches!(
        late.place,
        Some(Place::InLine { position: 21, .. })
    ));
    let record = the_draw(queue).await;
    assert_eq!(record.arrivals, early);
    assert_eq!(record.drawn_at, opens_at);
    assert_replays(&record);
    let mut everyone = early.clone();
    everyone.push(UserId(99));
    let mut expected = record.drawn.clone();
    expected.push(UserId(99));
    assert_eq!(line_order(queue, &everyone).await, expected);
}

/// No opening time, or nobody early: the opening is a draw of nobody,
/// recorded all the same.
pub async fn an_opening_with_nobody_waiting_is_a_draw_of_none(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, now_ms());
    let first = queue.enter(S, UserId(1), None, at).await.unwrap();
    assert!(matches!(
        first.place,
        Some(Place::InLine { position: 1, .. })
    ));
    let record = the_draw(queue).await;
    assert!(record.arrivals.is_empty() && record.drawn.is_empty());
    assert_eq!(record.drawn_at, at);
}

/// Ticks from four instances and twenty late entrants, all at the opening:
/// one draw of exactly the pre-queue, everyone with their own ticket, the
/// drawn first.
pub async fn the_draw_is_made_once_however_many_open_the_room_at_once(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(LONG_TTL).await;
    let at = now_ms();
    let opens_at = at + Duration::minutes(1);
    let early = users(1..=30);
    enter_all(&*f.queue, &early, Some(opens_at), at).await;

    let mut racers = Vec::new();
    for i in 0..24_i64 {
        let queue = f.instance().await;
        racers.push(tokio::spawn(async move {
            if i < 4 {
                queue
                    .tick(S, &no_admission(Some(opens_at)), None, opens_at)
                    .await
                    .map(|_| ())
            } else {
                queue
                    .enter(S, UserId(100 + i), Some(opens_at), opens_at)
                    .await
                    .map(|_| ())
            }
        }));
    }
    for racer in racers {
        racer.await.unwrap().unwrap();
    }

    let record = the_draw(&*f.queue).await;
    assert_eq!(record.arrivals, early);
    assert_replays(&record);
    let everyone: Vec<UserId> = early
        .iter()
        .copied()
        .chain((104..=123).map(UserId))
        .collect();
    let line = line_order(&*f.queue, &everyone).await;
    assert_eq!(line[..30], record.drawn[..]);
    let late: HashSet<UserId> = line[30..].iter().copied().collect();
    assert_eq!(late.len(), 20);
}
