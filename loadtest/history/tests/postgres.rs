//! The checker over real tables: a small sale written to PostgreSQL by the
//! pessimistic strategy, read back by `tables::load`, checked clean; then the
//! same tables against a history with a planted double hold and a payment
//! the database never kept.

use booking_domain::*;
use booking_history::{check, tables, Anomaly, Kind, Operation};
use booking_lock_pessimistic::PessimisticSeatLock;
use booking_testkit::conformance::{request, LockFixture};
use booking_testkit::TestDb;
use chrono::{Duration, Utc};
use std::sync::Arc;

fn acked(op: Kind, user: UserId, seats: &[SeatId], reservation: ReservationId) -> Operation {
    let now = Utc::now();
    Operation {
        start: now - Duration::milliseconds(20),
        end: now,
        user: Some(user.0),
        op,
        seats: seats.iter().map(|s| s.0).collect(),
        reservation: Some(reservation.0),
        status: 201,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_checker_reads_the_tables_and_flags_what_they_contradict() {
    let db = TestDb::new().await;
    let store = db.store();
    let f = LockFixture::on_postgres(
        &store,
        Arc::new(PessimisticSeatLock::new(store.clone())),
        Arc::new(PessimisticSeatLock::new(store.clone())),
        (),
    );
    let (schedule, seats) = f.schedule_with_seats(4).await;
    let users = f.users(2).await;

    let mut history = Vec::new();
    let sold = f
        .lock
        .hold_seats(&request(users[0], schedule, &seats[..2]))
        .await
        .unwrap();
    history.push(acked(Kind::Hold, users[0], &seats[..2], sold.id));
    let paid = store
        .confirm_with_payment(&PaymentRequest {
            reservation_id: sold.id,
            user_id: users[0],
            amount: sold.total_amount,
            idempotency_key: None,
            now: Utc::now(),
            request_id: None,
        })
        .await
        .unwrap();
    assert!(matches!(paid, Transition::Done(_)));
    history.push(acked(Kind::Pay, users[0], &[], sold.id));
    let gone = f
        .lock
        .hold_seats(&request(users[1], schedule, &seats[2..3]))
        .await
        .unwrap();
    history.push(acked(Kind::Hold, users[1], &seats[2..3], gone.id));
    store
        .cancel_reservation(gone.id, Utc::now(), None)
        .await
        .unwrap();
    history.push(acked(Kind::Cancel, users[1], &[], gone.id));

    let tables = tables::load(db.url(), schedule.0).await.unwrap();
    assert_eq!(tables.reservations.len(), 2);
    let verdict = check(&history, &tables, Duration::minutes(5));
    assert!(verdict.ok(), "{verdict}");
    assert_eq!(
        verdict.to_string(),
        "4 operations (4 acknowledged), 0 anomalies"
    );

    // Planted: a second buyer told they hold a sold seat, and a payment
    // acknowledged for the cancelled hold.
    let phantom = ReservationId(sold.id.0 + 1000);
    history.push(acked(Kind::Hold, users[1], &seats[1..2], phantom));
    history.push(acked(Kind::Pay, users[1], &[], gone.id));
    let verdict = check(&history, &tables, Duration::minutes(5));
    let kinds: Vec<&str> = verdict
        .anomalies
        .iter()
        .map(|a| match a {
            Anomaly::DoubleHold { .. } => "double-hold",
            Anomaly::LostHold { .. } => "lost-hold",
            Anomaly::LostPayment { .. } => "lost-payment",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        ["lost-hold", "lost-payment", "double-hold"],
        "{verdict}"
    );
    drop(db);
}
