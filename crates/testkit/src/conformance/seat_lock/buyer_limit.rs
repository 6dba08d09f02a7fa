//! The per-buyer limit: however many holds one user sends at once, the
//! store never gives them more seats of a schedule than its limit; a cancel
//! or an expiry gives the room back, a payment does not.

use super::{assert_no_violations, race, request, LockFixture};
use booking_domain::*;
use chrono::{Duration, Utc};

/// Seats of `schedule` in the user's PENDING and CONFIRMED reservations,
/// as the store has them.
async fn seats_of_buyer(f: &LockFixture, user: UserId, schedule: ScheduleId) -> usize {
    f.reservations
        .list_reservations(user)
        .await
        .unwrap()
        .iter()
        .filter(|r| r.schedule_id == schedule && r.status.is_active())
        .map(|r| r.seat_ids.len())
        .sum()
}

/// One user sends 10 concurrent holds of 10 distinct free seats against the
/// default limit of 4: the store ends with exactly 4 of them held by that
/// user, and the 6 others are refused as over the limit (not as taken).
pub async fn one_buyer_holds_at_most_the_limit_under_10_concurrent_holds(f: LockFixture) {
    let (schedule, seats) = f.schedule_with_seats(10).await;
    let limit = MaxSeatsPerBuyer::DEFAULT.get();
    let user = f.users(1).await[0];
    let requests = seats
        .iter()
        .map(|s| request(user, schedule, &[*s]))
        .collect();
    let results = race(&f.lock, requests).await;

    let wins = results.iter().filter(|r| r.is_ok()).count();
    let other: Vec<_> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .filter(|e| !matches!(e, HoldError::BuyerLimitReached { limit: l, .. } if *l == limit))
        .map(ToString::to_string)
        .collect();
    assert!(other.is_empty(), "refused for another reason: {other:?}");
    assert_eq!(wins, 4, "every hold within the limit is granted");

    assert_eq!(seats_of_buyer(&f, user, schedule).await, 4);
    let report = f.audit(schedule).await;
    assert_eq!(
        (report.held, report.available, report.active_reservations),
        (4, 6, 4),
        "the refused holds left their seats free"
    );
    assert_no_violations(&report);
}

/// The limit counts held and paid seats; a cancel and an expiry give their
/// seats back to the buyer's allowance; another user is not limited by it.
pub async fn cancel_and_expiry_give_the_buyer_room_back(f: LockFixture) {
    let (schedule, seats) = f.schedule_with_seats(10).await;
    let users = f.users(2).await;
    let (buyer, other) = (users[0], users[1]);
    let lock = &f.lock;
    let hold = |seats: &[SeatId]| {
        let request = request(buyer, schedule, seats);
        async move { lock.hold_seats(&request).await }
    };

    let paid = hold(&seats[0..1]).await.unwrap();
    let confirmed = f
        .reservations
        .confirm_with_payment(&PaymentRequest {
            reservation_id: paid.id,
            user_id: buyer,
            amount: paid.total_amount,
            idempotency_key: None,
            now: Utc::now(),
            request_id: None,
        })
        .await
        .unwrap();
    assert!(matches!(confirmed, Transition::Done(_)), "{confirmed:?}");
    let pair = hold(&seats[1..3]).await.unwrap();
    let single = hold(&seats[3..4]).await.unwrap();

    let refused = hold(&seats[4..5]).await.unwrap_err();
    assert!(
        matches!(refused, HoldError::BuyerLimitReached { limit: 4, held: 4 }),
        "a paid seat counts: {refused}"
    );
    f.lock
        .hold_seats(&request(other, schedule, &seats[4..5]))
        .await
        .expect("another user has an allowance of their own");

    let cancelled = f
        .reservations
        .cancel_reservation(pair.id, Utc::now(), None)
        .await
        .unwrap();
    assert!(matches!(cancelled, Transition::Done(_)), "{cancelled:?}");
    hold(&seats[5..7])
        .await
        .expect("the cancelled pair's room is the buyer's again");
    assert!(matches!(
        hold(&seats[7..8]).await.unwrap_err(),
        HoldError::BuyerLimitReached { limit: 4, held: 4 }
    ));

    // Expire the single seat (and the other holds, all still pending).
    let expired = f
        .reservations
        .expire_overdue_holds(Utc::now() + Duration::minutes(10), 100)
        .await
        .unwrap();
    assert!(expired.iter().any(|r| r.id == single.id));
    assert_eq!(
        seats_of_buyer(&f, buyer, schedule).await,
        1,
        "the paid seat"
    );
    hold(&seats[7..10])
        .await
        .expect("expired holds give their room back");
    assert_eq!(seats_of_buyer(&f, buyer, schedule).await, 4);
    assert_no_violations(&f.audit(schedule).await);
}
