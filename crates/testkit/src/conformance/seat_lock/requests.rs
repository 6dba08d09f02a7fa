//! What one hold request gets: refused whole when a seat is taken or bad,
//! or the pending reservation, stored once per idempotency key.

use super::{assert_no_violations, request, LockFixture};
use booking_domain::*;

/// Invariant 3: a request that includes one taken seat holds none of them.
pub async fn taken_seat_fails_the_whole_request(f: LockFixture) {
    let (schedule, seats) = f.schedule_with_seats(4).await;
    let users = f.users(2).await;
    f.lock
        .hold_seats(&request(users[0], schedule, &seats[1..2]))
        .await
        .unwrap();

    let err = f
        .lock
        .hold_seats(&request(users[1], schedule, &seats[0..3]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HoldError::SeatTaken(ids) if ids == &seats[1..2]),
        "{err}"
    );
    let report = f.audit(schedule).await;
    assert_eq!(
        (report.held, report.available, report.active_reservations),
        (1, 3, 1)
    );
    assert_no_violations(&report);
}

/// Bad references are refused precisely and change nothing.
pub async fn unknown_and_foreign_seats_are_refused(f: LockFixture) {
    let (schedule, seats) = f.schedule_with_seats(2).await;
    let (other_schedule, other_seats) = f.schedule_with_seats(2).await;
    let user = f.users(1).await[0];

    let missing = SeatId(seats[1].0 + 1_000_000);
    let err = f
        .lock
        .hold_seats(&request(user, schedule, &[seats[0], missing]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HoldError::SeatsNotFound(ids) if ids == &[missing]),
        "{err}"
    );

    let err = f
        .lock
        .hold_seats(&request(user, schedule, &[seats[0], other_seats[0]]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HoldError::ForeignSeats(ids) if ids == &[other_seats[0]]),
        "{err}"
    );

    let err = f
        .lock
        .hold_seats(&request(user, ScheduleId(i64::MAX), &seats[..1]))
        .await
        .unwrap_err();
    assert!(matches!(err, HoldError::ScheduleNotFound), "{err}");

    for s in [schedule, other_schedule] {
        let report = f.audit(s).await;
        assert_eq!((report.held, report.active_reservations), (0, 0));
        assert_no_violations(&report);
    }
}

/// A hold's reservation says what was held, for how much, until when.
pub async fn hold_returns_the_pending_reservation(f: LockFixture) {
    let (schedule, seats) = f.schedule_with_seats(4).await;
    let user = f.users(1).await[0];
    let req = request(user, schedule, &[seats[3], seats[0]]);
    let r = f.lock.hold_seats(&req).await.unwrap();
    assert_eq!(r.status, ReservationStatus::Pending);
    assert_eq!((r.user_id, r.schedule_id), (user, schedule));
    assert_eq!(r.seat_ids, vec![seats[0], seats[3]]);
    assert_eq!(r.total_amount, 2000);
    assert_eq!(
        r.expires_at.timestamp_millis(),
        req.expires_at.timestamp_millis()
    );
}

/// Two requests with the same idempotency key store one reservation.
pub async fn idempotency_key_is_stored_once(f: LockFixture) {
    let (schedule, seats) = f.schedule_with_seats(4).await;
    let user = f.users(1).await[0];
    let mut first = request(user, schedule, &seats[..1]);
    first.idempotency_key = Some(IdempotencyKey::parse("key-1").unwrap());
    f.lock.hold_seats(&first).await.unwrap();

    let mut again = request(user, schedule, &seats[1..2]);
    again.idempotency_key = first.idempotency_key.clone();
    let err = f.lock.hold_seats(&again).await.unwrap_err();
    assert!(matches!(err, HoldError::DuplicateIdempotencyKey), "{err}");
    let report = f.audit(schedule).await;
    assert_eq!((report.held, report.active_reservations), (1, 1));
    assert_no_violations(&report);
}
