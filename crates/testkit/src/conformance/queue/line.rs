//! The line: one place per user, arrival order once the sale is open,
//! positions counted from the head, and tickets read in a batch.

use super::{
    enter_all, hold_with, line_up_and_admit, now_ms, open_plan, pass_of, place, token_in, users,
    FreshQueue, LONG_TTL, OTHER, S,
};
use booking_domain::{Place, UserId};

fn in_line(place: Option<Place>) -> (u64, u64) {
    match place {
        Some(Place::InLine { ticket, position }) => (ticket, position),
        other => panic!("expected to be in line, found {other:?}"),
    }
}

/// In the pre-queue, in line, admitted (the same pass) or holding: entering
/// again changes nothing.
pub async fn entering_again_keeps_ones_place(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, now_ms());
    let opens_at = Some(at + chrono::Duration::minutes(1));
    queue.enter(S, UserId(1), opens_at, at).await.unwrap();
    queue.enter(S, UserId(2), opens_at, at).await.unwrap();
    let again = queue.enter(S, UserId(1), opens_at, at).await.unwrap();
    assert_eq!(again.place, Some(Place::PreQueue));
    assert_eq!(again.sale.waiting, 2);

    let f = fresh_queue(LONG_TTL).await;
    let queue = &*f.queue;
    line_up_and_admit(queue, &users(1..=3), 1, at).await;
    let first = queue.enter(S, UserId(3), None, at).await.unwrap();
    let second = queue.enter(S, UserId(3), None, at).await.unwrap();
    assert_eq!(first.place, second.place);
    assert_eq!(in_line(second.place).1, 2);
    assert_eq!(second.sale.waiting, 2);

    let pass = pass_of(queue, 1, at).await;
    let again = queue.enter(S, UserId(1), None, at).await.unwrap();
    assert_eq!(
        token_in(&again.place),
        pass.token,
        "the same pass, not a new one"
    );
    hold_with(queue, 1, &pass.token, at).await;
    assert_eq!(
        queue.enter(S, UserId(1), None, at).await.unwrap().place,
        Some(Place::Holding)
    );
    assert_eq!(queue.stats(S, at).await.unwrap().waiting, 2);
}

/// A double click on two servers: one ticket.
pub async fn one_user_entering_from_many_instances_at_once_takes_one_place(
    fresh_queue: FreshQueue<'_>,
) {
    let f = fresh_queue(LONG_TTL).await;
    let at = now_ms();
    f.queue.enter(S, UserId(1), None, at).await.unwrap();
    let mut entries = Vec::new();
    for _ in 0..8 {
        let queue = f.instance().await;
        entries.push(tokio::spawn(async move {
            queue.enter(S, UserId(2), None, at).await.unwrap()
        }));
    }
    for entry in entries {
        assert_eq!(in_line(entry.await.unwrap().place).1, 2);
    }
    assert_eq!(f.queue.stats(S, at).await.unwrap().waiting, 2);
}

/// With no opening time the sale is open at once: each entrant joins the
/// end with the next ticket.
pub async fn after_the_opening_users_line_up_in_arrival_order(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, now_ms());
    let mut tickets = Vec::new();
    for (user, expected_position) in [(7, 1), (3, 2), (9, 3)] {
        let view = queue.enter(S, UserId(user), None, at).await.unwrap();
        assert!(view.sale.opened);
        assert_eq!(view.sale.waiting, expected_position);
        let (ticket, position) = in_line(view.place);
        assert_eq!(position, expected_position);
        tickets.push(ticket);
    }
    assert_eq!(tickets, [tickets[0], tickets[0] + 1, tickets[0] + 2]);

    let tick = queue.tick(S, &open_plan(2), None, at).await.unwrap();
    let admitted: Vec<UserId> = tick.admitted.iter().map(|pass| pass.user).collect();
    assert_eq!(admitted, [UserId(7), UserId(3)], "admitted in line order");
    assert_eq!(tick.head, Some(tickets[2]));
    assert_eq!(in_line(place(queue, 9, at).await), (tickets[2], 1));
}

pub async fn positions_are_ticket_minus_head_plus_one_and_fall_as_the_head_is_admitted(
    fresh_queue: FreshQueue<'_>,
) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, now_ms());
    let line = users(1..=20);
    enter_all(queue, &line, None, at).await;
    let mut before = Vec::new();
    for user in 1..=20 {
        before.push(in_line(place(queue, user, at).await));
    }
    let head = before[0].0;
    for (ticket, position) in &before {
        assert_eq!(*position, ticket - head + 1);
    }

    let tick = queue.tick(S, &open_plan(5), None, at).await.unwrap();
    let head = tick.head.expect("15 still in line");
    assert_eq!(head, before[5].0);
    assert_eq!(tick.sale.waiting, 15);
    for user in 6..=20_i64 {
        let (ticket, position) = in_line(place(queue, user, at).await);
        let was = before[user as usize - 1];
        assert_eq!(ticket, was.0, "a ticket never changes");
        assert_eq!(position, ticket - head + 1);
        assert_eq!(position, was.1 - 5, "the position fell by those admitted");
    }
}

pub async fn a_stranger_has_no_place(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, now_ms());
    queue.enter(S, UserId(1), None, at).await.unwrap();
    assert_eq!(place(queue, 9, at).await, None);
    let elsewhere = queue.view(OTHER, UserId(1), at).await.unwrap();
    assert_eq!(elsewhere.place, None);
    assert_eq!(elsewhere.sale.waiting, 0);
}

/// The batch read answers like the place of each, in the order asked;
/// admitted users and strangers have no ticket.
pub async fn tickets_of_many_users_in_the_order_asked(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, now_ms());
    line_up_and_admit(queue, &users(1..=1_000), 10, at).await;
    let asked: Vec<UserId> = [1_000, 5, 11, 12, 999, 4_242, 10]
        .into_iter()
        .map(UserId)
        .collect();
    let tickets = queue.tickets(S, &asked).await.unwrap();
    assert_eq!(tickets.len(), asked.len());
    for (user, ticket) in asked.iter().zip(&tickets) {
        let expected = match queue.view(S, *user, at).await.unwrap().place {
            Some(Place::InLine { ticket, .. }) => Some(ticket),
            _ => None,
        };
        assert_eq!(*ticket, expected, "user {user:?}");
    }
    let head = tickets[2].expect("user 11 heads the line");
    assert_eq!(tickets[0], Some(head + 989));
    assert_eq!((tickets[1], tickets[5], tickets[6]), (None, None, None));
    assert_eq!(
        queue.tickets(OTHER, &asked[..2]).await.unwrap(),
        [None, None]
    );
}
