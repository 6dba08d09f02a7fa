//! Seat-hold markers: the seats shown as held, until their reservation
//! clears them or they expire.

use super::{sleep_past, FreshQueue, LONG_TTL, OTHER, S};
use booking_domain::{ReservationId, SeatId};
use chrono::{Duration, Utc};

/// A seat's marker stays until its own reservation clears it or it
/// expires (by the wall clock: the port passes no `now`); another
/// reservation cannot clear it.
pub async fn hold_markers_live_until_cleared_or_expired(fresh_queue: FreshQueue<'_>) {
    let f = fresh_queue(LONG_TTL).await;
    let queue = &*f.queue;
    let (mine, other) = (ReservationId(1), ReservationId(2));
    let soon = Utc::now() + Duration::seconds(1);
    queue
        .mark_held(S, &[SeatId(4), SeatId(3)], mine, Utc::now() + LONG_TTL)
        .await
        .unwrap();
    queue.mark_held(S, &[SeatId(9)], other, soon).await.unwrap();
    assert_eq!(
        queue.held_seats(S).await.unwrap(),
        [SeatId(3), SeatId(4), SeatId(9)]
    );
    assert!(queue.held_seats(OTHER).await.unwrap().is_empty());

    queue
        .clear_held(S, &[SeatId(3), SeatId(4)], other)
        .await
        .unwrap();
    assert_eq!(
        queue.held_seats(S).await.unwrap().len(),
        3,
        "not the other reservation's markers"
    );
    queue
        .clear_held(S, &[SeatId(3), SeatId(4)], mine)
        .await
        .unwrap();
    assert_eq!(queue.held_seats(S).await.unwrap(), [SeatId(9)]);

    sleep_past(soon).await;
    assert!(queue.held_seats(S).await.unwrap().is_empty());
}
