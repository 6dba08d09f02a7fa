//! The booking journey: hold, pay, cancel, ownership and idempotency.

use crate::helpers::*;
use booking_api::Strategy;
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread")]
async fn hold_then_pay_reserves_seats_and_cancel_releases_them_pessimistic() {
    hold_then_pay_reserves_seats_and_cancel_releases_them(Strategy::Pessimistic).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hold_then_pay_reserves_seats_and_cancel_releases_them_optimistic() {
    hold_then_pay_reserves_seats_and_cancel_releases_them(Strategy::Optimistic).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hold_then_pay_reserves_seats_and_cancel_releases_them_redis() {
    hold_then_pay_reserves_seats_and_cancel_releases_them(Strategy::Redis).await;
}

/// The whole journey, the same HTTP API whatever the strategy.
async fn hold_then_pay_reserves_seats_and_cancel_releases_them(strategy: Strategy) {
    let app = spawn_app_with(strategy).await;
    let ready = app.get("/health/ready", None).await;
    assert_eq!(
        ready.headers().get("x-booking-strategy").unwrap(),
        strategy.as_str()
    );
    let ready = expect_status(ready, StatusCode::OK).await;
    assert_eq!(ready["strategy"], strategy.as_str());
    let admin = app.admin().await;
    let s = app.schedule(&admin, 2, 5).await;
    let fan = app.user("fan").await;

    // Browse: the concert, its schedule and an all-AVAILABLE seat map.
    let concerts = expect_status(app.get("/api/concerts", None).await, StatusCode::OK).await;
    assert_eq!(concerts[0]["id"].as_i64(), Some(s.concert_id));
    let schedules = expect_status(
        app.get(&format!("/api/concerts/{}/schedules", s.concert_id), None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(schedules[0]["availableSeats"].as_i64(), Some(10));
    assert!(app
        .seat_statuses(s.concert_id, s.schedule_id)
        .await
        .iter()
        .all(|(_, st)| st == "AVAILABLE"));

    // Hold two seats, then pay.
    let held = expect_status(
        app.hold(&fan, s.schedule_id, &s.seat_ids[..2], None).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(held["status"], "PENDING");
    assert_eq!(held["totalAmount"].as_i64(), Some(10_000));
    let reservation = held["id"].as_i64().unwrap();
    let paid = expect_status(app.pay(&fan, reservation, None).await, StatusCode::CREATED).await;
    assert_eq!(paid["reservationStatus"], "CONFIRMED");
    assert_eq!(paid["amount"].as_i64(), Some(10_000));

    let seats = app.seat_statuses(s.concert_id, s.schedule_id).await;
    assert_eq!(seats[0].1, "RESERVED");
    assert_eq!(seats[1].1, "RESERVED");
    let got = expect_status(
        app.get(
            &format!("/api/reservations/{reservation}"),
            Some(&fan.token),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(got["status"], "CONFIRMED");
    let payment_id = paid["id"].as_i64().unwrap();
    expect_status(
        app.get(&format!("/api/payments/{payment_id}"), Some(&fan.token))
            .await,
        StatusCode::OK,
    )
    .await;

    // Hold two more, cancel: they are AVAILABLE again and the count is back.
    let second = expect_status(
        app.hold(&fan, s.schedule_id, &s.seat_ids[2..4], None).await,
        StatusCode::CREATED,
    )
    .await;
    let second_id = second["id"].as_i64().unwrap();
    let cancelled = expect_status(app.cancel(&fan, second_id).await, StatusCode::OK).await;
    assert_eq!(cancelled["status"], "CANCELLED");
    let seats = app.seat_statuses(s.concert_id, s.schedule_id).await;
    assert_eq!(
        (seats[2].1.as_str(), seats[3].1.as_str()),
        ("AVAILABLE", "AVAILABLE")
    );
    assert_eq!(app.active_reservations_of_seat(s.seat_ids[2]).await, 0);
    let snapshot = app.db_snapshot().await;
    assert_eq!(snapshot.payments, 1);
    let schedules = expect_status(
        app.get(&format!("/api/concerts/{}/schedules", s.concert_id), None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        schedules[0]["availableSeats"].as_i64(),
        Some(8),
        "2 sold, 8 left"
    );
    if let (Strategy::Redis, Some(redis)) = (strategy, &app.redis) {
        // The cancelled seats go back to the advisory stock too, through
        // the outbox and the seat-release consumer.
        let key = format!("{}stock:{{s:{}}}", redis.prefix(), s.schedule_id);
        let mut stock = 0;
        for _ in 0..100 {
            stock = redis::cmd("GET")
                .arg(&key)
                .query_async::<i64>(&mut redis.connection().await)
                .await
                .unwrap();
            if stock == 8 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(stock, 8);
    }

    // Every state change wrote its event: held x2, completed, cancelled.
    assert_eq!(snapshot.outbox, 4);

    let mine = expect_status(
        app.get("/api/reservations/my", Some(&fan.token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(mine.as_array().map(Vec::len), Some(2));

    // A cancelled seat can be held again.
    expect_status(
        app.hold(&fan, s.schedule_id, &s.seat_ids[2..3], None).await,
        StatusCode::CREATED,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn another_users_reservation_and_payment_are_not_found() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 4).await;
    let owner = app.user("owner").await;
    let other = app.user("other").await;
    let held = expect_status(
        app.hold(&owner, s.schedule_id, &s.seat_ids[..1], None)
            .await,
        StatusCode::CREATED,
    )
    .await;
    let id = held["id"].as_i64().unwrap();
    let before = app.db_snapshot().await;

    expect_problem(
        app.get(&format!("/api/reservations/{id}"), Some(&other.token))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    expect_problem(app.cancel(&other, id).await, StatusCode::NOT_FOUND).await;
    expect_problem(app.pay(&other, id, None).await, StatusCode::NOT_FOUND).await;
    assert_eq!(app.db_snapshot().await, before, "nothing changed");

    let paid = expect_status(app.pay(&owner, id, None).await, StatusCode::CREATED).await;
    let payment = paid["id"].as_i64().unwrap();
    expect_problem(
        app.get(&format!("/api/payments/{payment}"), Some(&other.token))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let theirs = expect_status(
        app.get("/api/reservations/my", Some(&other.token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(theirs.as_array().map(Vec::len), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_taken_seat_is_a_409_naming_it() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 4).await;
    let first = app.user("first").await;
    let second = app.user("second").await;
    expect_status(
        app.hold(&first, s.schedule_id, &s.seat_ids[1..2], None)
            .await,
        StatusCode::CREATED,
    )
    .await;
    let before = app.db_snapshot().await;

    let problem = expect_problem(
        app.hold(&second, s.schedule_id, &s.seat_ids[..2], None)
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(problem["type"], "/problems/seat-taken");
    assert_eq!(problem["seatIds"][0].as_i64(), Some(s.seat_ids[1]));
    assert_eq!(
        app.db_snapshot().await,
        before,
        "all or nothing: the free seat stays free"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retried_hold_and_payment_with_the_same_key_change_nothing() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 4).await;
    let fan = app.user("fan").await;

    let first = app
        .hold(&fan, s.schedule_id, &s.seat_ids[..2], Some("hold-1"))
        .await;
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = expect_status(first, StatusCode::CREATED).await;
    let after_first = app.db_snapshot().await;
    let retry = app
        .hold(&fan, s.schedule_id, &s.seat_ids[..2], Some("hold-1"))
        .await;
    assert_eq!(
        retry
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    let retry = expect_status(retry, StatusCode::CREATED).await;
    assert_eq!(retry["id"], first["id"]);
    assert_eq!(app.db_snapshot().await, after_first);

    // Same key, different seats: refused, nothing stored.
    let problem = expect_problem(
        app.hold(&fan, s.schedule_id, &s.seat_ids[2..3], Some("hold-1"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("Idempotency-Key"));
    assert_eq!(app.db_snapshot().await, after_first);

    let id = first["id"].as_i64().unwrap();
    let paid = expect_status(app.pay(&fan, id, Some("pay-1")).await, StatusCode::CREATED).await;
    let after_pay = app.db_snapshot().await;
    let again = app.pay(&fan, id, Some("pay-1")).await;
    assert!(again.headers().get("idempotent-replayed").is_some());
    let again = expect_status(again, StatusCode::CREATED).await;
    assert_eq!(again["id"], paid["id"]);
    assert_eq!(app.db_snapshot().await, after_pay);
    assert_eq!(after_pay.payments, 1);

    // Without the key, paying twice is a state conflict.
    expect_problem(app.pay(&fan, id, None).await, StatusCode::CONFLICT).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_hold_cannot_be_paid() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 2).await;
    let fan = app.user("fan").await;
    let held = expect_status(
        app.hold(&fan, s.schedule_id, &s.seat_ids[..1], None).await,
        StatusCode::CREATED,
    )
    .await;
    let id = held["id"].as_i64().unwrap();
    // The scheduler has not run: the hold is still PENDING, but overdue.
    app.execute(&format!(
        "UPDATE reservations SET expires_at = now() - interval '1 second' WHERE id = {id}"
    ))
    .await;
    let before = app.db_snapshot().await;

    let problem = expect_problem(app.pay(&fan, id, None).await, StatusCode::GONE).await;
    assert_eq!(problem["type"], "/problems/hold-expired");
    assert_eq!(app.db_snapshot().await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn only_a_pending_reservation_can_be_cancelled() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 2).await;
    let fan = app.user("fan").await;
    let held = expect_status(
        app.hold(&fan, s.schedule_id, &s.seat_ids[..1], None).await,
        StatusCode::CREATED,
    )
    .await;
    let id = held["id"].as_i64().unwrap();
    expect_status(app.pay(&fan, id, None).await, StatusCode::CREATED).await;
    let before = app.db_snapshot().await;

    let problem = expect_problem(app.cancel(&fan, id).await, StatusCode::CONFLICT).await;
    assert_eq!(problem["type"], "/problems/state-conflict");
    assert_eq!(app.db_snapshot().await, before);
}

/// The id of the request that made a booking is in its reply and on the
/// outbox row its transaction wrote (and so on the Kafka record).
#[tokio::test(flavor = "multi_thread")]
async fn the_request_id_travels_with_the_event() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 2).await;
    let fan = app.user("fan").await;
    let response = app.hold(&fan, s.schedule_id, &s.seat_ids[..1], None).await;
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let held = expect_status(response, StatusCode::CREATED).await;

    #[derive(diesel::QueryableByName)]
    struct Header {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        request_id: Option<String>,
    }
    let mut conn = app.db.as_ref().unwrap().connection().await;
    let row: Header = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query(
            "SELECT headers->>'request-id' AS request_id FROM outbox
              WHERE topic = 'reservation.held' AND key = $1",
        )
        .bind::<diesel::sql_types::Text, _>(held["id"].to_string()),
        &mut conn,
    )
    .await
    .unwrap();
    assert_eq!(row.request_id.as_deref(), Some(request_id.as_str()));
}
