//! The end of a sale: once a tick is told nothing is left, the sale is sold
//! out for good: nobody is admitted or enters, everyone is told, and the
//! ticker drops the room.

use super::{
    line_up_and_admit, ms, now_ms, open_plan, pass_of, place, token_in, users, FreshQueue,
    LONG_TTL, S,
};
use booking_domain::{AdmissionPlan, Place, ReservationId, ScheduleId, SeatId, UserId};

fn sold_out(active_limit: u64) -> AdmissionPlan {
    AdmissionPlan {
        sold_out: true,
        ..open_plan(active_limit)
    }
}

/// The sold-out tick admits nobody, and neither does any later tick, even
/// one whose plan has seats again.
pub async fn a_sell_out_is_final_and_admits_nobody(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, now_ms());
    line_up_and_admit(queue, &users(1..=10), 3, at).await;

    let end = queue
        .tick(S, &sold_out(100), None, at + ms(1))
        .await
        .unwrap();
    assert!(end.sale.sold_out);
    assert!(
        end.admitted.is_empty(),
        "the sold-out tick admitted someone"
    );
    let later = f.instance().await;
    let after = later
        .tick(S, &open_plan(100), None, at + ms(2))
        .await
        .unwrap();
    assert!(after.sale.sold_out, "sold out is sticky");
    assert!(after.admitted.is_empty());
    assert_eq!(after.sale.waiting, 7);

    let view = queue.view(S, UserId(5), at + ms(3)).await.unwrap();
    assert!(view.sale.sold_out);
    assert!(matches!(
        view.place,
        Some(Place::InLine { position: 2, .. })
    ));
}

/// After the sell-out an entrant gets no place, and one already in the
/// room keeps theirs (in line or admitted); everyone reads `sold_out`.
pub async fn entering_a_sold_out_sale_changes_nothing(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, now_ms());
    line_up_and_admit(queue, &users(1..=4), 1, at).await;
    let pass = pass_of(queue, 1, at).await;
    let waiting = place(queue, 3, at).await;
    queue
        .tick(S, &sold_out(100), None, at + ms(1))
        .await
        .unwrap();

    let stranger = queue.enter(S, UserId(99), None, at + ms(2)).await.unwrap();
    assert!(stranger.sale.sold_out);
    assert_eq!(stranger.place, None);
    assert_eq!(place(queue, 99, at + ms(2)).await, None);

    let in_line = queue.enter(S, UserId(3), None, at + ms(2)).await.unwrap();
    assert!(in_line.sale.sold_out);
    assert_eq!(in_line.place, waiting);
    let admitted = queue.enter(S, UserId(1), None, at + ms(2)).await.unwrap();
    assert_eq!(token_in(&admitted.place), pass.token);
    assert_eq!(queue.stats(S, at + ms(2)).await.unwrap().waiting, 3);
}

/// The ticker's list: rooms someone entered, until they sell out. Hold
/// markers alone do not make a room.
pub async fn open_rooms_are_those_entered_and_not_sold_out(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(LONG_TTL).await;
    let (queue, at) = (&*f.queue, now_ms());
    assert!(queue.open_rooms().await.unwrap().is_empty());
    let opens_at = Some(at + chrono::Duration::minutes(1));
    queue
        .enter(ScheduleId(3), UserId(1), opens_at, at)
        .await
        .unwrap();
    queue
        .enter(ScheduleId(2), UserId(1), None, at)
        .await
        .unwrap();
    queue
        .enter(ScheduleId(5), UserId(1), None, at)
        .await
        .unwrap();
    queue
        .mark_held(ScheduleId(6), &[SeatId(1)], ReservationId(1), at + LONG_TTL)
        .await
        .unwrap();
    // Admitting everyone leaves the room open: holds may still come back.
    queue
        .tick(ScheduleId(5), &open_plan(10), None, at)
        .await
        .unwrap();
    // The port promises no order.
    let mut listed = queue.open_rooms().await.unwrap();
    listed.sort_unstable();
    assert_eq!(listed, [ScheduleId(2), ScheduleId(3), ScheduleId(5)]);

    queue
        .tick(ScheduleId(2), &sold_out(10), None, at)
        .await
        .unwrap();
    let mut listed = queue.open_rooms().await.unwrap();
    listed.sort_unstable();
    assert_eq!(listed, [ScheduleId(3), ScheduleId(5)]);
}
