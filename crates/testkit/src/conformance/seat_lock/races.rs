//! Holds racing each other, on one instance and across two: one winner per
//! seat, no interference between distinct seats, no deadlock, no split.

use super::{assert_no_violations, is_refusal, race, race_across, request, LockFixture};
use booking_domain::*;
use std::sync::Arc;

/// Invariant 1: of 200 concurrent holds of one seat exactly one wins, 199
/// are refused (seat taken, or sold out where a strategy pre-checks stock),
/// and the store has one active reservation.
pub async fn one_winner_per_seat_under_200_racers(f: LockFixture) {
    let (schedule, seats) = f.schedule_with_seats(1).await;
    let users = f.users(200).await;
    let requests = users
        .iter()
        .map(|u| request(*u, schedule, &seats))
        .collect();
    let results = race(&f.lock, requests).await;

    let wins = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| r.as_ref().is_err_and(is_refusal))
        .count();
    let other: Vec<_> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .filter(|e| !is_refusal(e))
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        (wins, refused),
        (1, 199),
        "unexpected errors, e.g. {:?}",
        &other[..other.len().min(3)]
    );

    let report = f.audit(schedule).await;
    assert_eq!(report.active_reservations, 1);
    assert_eq!((report.held, report.available), (1, 0));
    assert_no_violations(&report);
}

/// 200 concurrent holds of 200 different seats do not interfere: all win.
pub async fn distinct_seats_never_conflict(f: LockFixture) {
    let (schedule, seats) = f.schedule_with_seats(200).await;
    let users = f.users(200).await;
    let requests = users
        .iter()
        .zip(&seats)
        .map(|(u, s)| request(*u, schedule, &[*s]))
        .collect();
    let results = race(&f.lock, requests).await;

    let errors: Vec<_> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(ToString::to_string)
        .collect();
    assert!(
        errors.is_empty(),
        "{} of 200 failed: {errors:?}",
        errors.len()
    );
    let report = f.audit(schedule).await;
    assert_eq!(
        (report.active_reservations, report.held, report.available),
        (200, 200, 0)
    );
    assert_no_violations(&report);
}

/// Invariant 3: 100 concurrent two-seat requests over overlapping pairs
/// (seat i with seat i+1, around a ring of 50) end with no deadlock or
/// timeout error, no partial reservation, and no seat held twice.
pub async fn overlapping_pairs_never_deadlock_or_split(f: LockFixture) {
    let (schedule, seats) = f.schedule_with_seats(50).await;
    let users = f.users(100).await;
    let pairs: Vec<[SeatId; 2]> = (0..100)
        .map(|i| [seats[i % 50], seats[(i + 1) % 50]])
        .collect();
    let requests = users
        .iter()
        .zip(&pairs)
        .map(|(u, p)| request(*u, schedule, p))
        .collect();
    let results = race(&f.lock, requests).await;

    let mut won = 0;
    for (result, pair) in results.iter().zip(&pairs) {
        match result {
            Ok(r) => {
                won += 1;
                let mut want = pair.to_vec();
                want.sort();
                assert_eq!(
                    r.seat_ids, want,
                    "a reservation must hold exactly its seats"
                );
            }
            Err(e) if is_refusal(e) => {}
            Err(other) => panic!("an overlapping pair may only be refused, got: {other}"),
        }
    }
    assert!(won >= 1);
    let report = f.audit(schedule).await;
    assert_eq!(report.active_reservations, won);
    assert_eq!(
        report.held,
        2 * won,
        "every winner holds both of its seats, no loser holds one"
    );
    assert_no_violations(&report);
}

/// Two servers (independent instances sharing the stores), 100 racers on
/// each for one seat: still exactly one winner.
pub async fn two_instances_one_winner_per_seat(f: LockFixture) {
    let (schedule, seats) = f.schedule_with_seats(1).await;
    let users = f.users(200).await;
    let requests = users
        .iter()
        .map(|u| request(*u, schedule, &seats))
        .collect();
    let both = [Arc::clone(&f.lock), Arc::clone(&f.second_instance)];
    let results = race_across(&both, requests).await;

    let wins = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| r.as_ref().is_err_and(is_refusal))
        .count();
    assert_eq!((wins, refused), (1, 199));
    let report = f.audit(schedule).await;
    assert_eq!((report.active_reservations, report.held), (1, 1));
    assert_no_violations(&report);
}

/// Two servers, overlapping pairs and distinct seats mixed: no deadlock, no
/// partial hold, no seat held twice; every uncontested seat is won.
pub async fn two_instances_overlapping_and_distinct_requests(f: LockFixture) {
    // 200 seats: the 150 seats asked for fit, so a stock pre-check refuses none.
    let (schedule, seats) = f.schedule_with_seats(200).await;
    let users = f.users(100).await;
    // Requests 0..50 fight over pairs of seats 0..25; 50..100 each want one of seats 100..150.
    let wanted: Vec<Vec<SeatId>> = (0..100)
        .map(|i| {
            let mut w = if i < 50 {
                vec![seats[i % 25], seats[(i + 1) % 25]]
            } else {
                vec![seats[i + 50]]
            };
            w.sort();
            w
        })
        .collect();
    let requests = users
        .iter()
        .zip(&wanted)
        .map(|(u, w)| request(*u, schedule, w))
        .collect();
    let both = [Arc::clone(&f.lock), Arc::clone(&f.second_instance)];
    let results = race_across(&both, requests).await;

    for (i, result) in results.iter().enumerate() {
        match result {
            Ok(r) => assert_eq!(r.seat_ids, wanted[i]),
            Err(e) if i < 50 && is_refusal(e) => {}
            Err(e) => panic!("request {i} ({:?}) failed: {e}", wanted[i]),
        }
    }
    let won_pairs = results[..50].iter().filter(|r| r.is_ok()).count() as i64;
    let report = f.audit(schedule).await;
    assert_eq!(
        report.held,
        2 * won_pairs + 50,
        "all 50 distinct seats, and both seats of each won pair"
    );
    assert_no_violations(&report);
}
