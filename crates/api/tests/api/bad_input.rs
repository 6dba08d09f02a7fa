//! Bad input gets a precise 4xx problem+json and changes nothing.

use crate::helpers::*;
use booking_domain::{Role, User, UserId};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn bad_reservation_requests_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 5).await;
    let other = app.schedule(&admin, 1, 2).await;
    let fan = app.user("fan").await;
    let before = app.db_snapshot().await;

    // Malformed JSON.
    let response = app
        .client
        .post(app.url("/api/reservations"))
        .bearer_auth(&fan.token)
        .header("content-type", "application/json")
        .body("{\"scheduleId\": 1, \"seatIds\": [1,")
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::BAD_REQUEST).await;

    // A field of the wrong type.
    let response = app
        .post(
            "/api/reservations",
            Some(&fan.token),
            &json!({"scheduleId": "one", "seatIds": [1]}),
        )
        .await;
    expect_problem(response, StatusCode::BAD_REQUEST).await;

    // Unknown seat ids.
    let unknown = s.seat_ids[4] + 1_000;
    let problem = expect_problem(
        app.hold(&fan, s.schedule_id, &[s.seat_ids[0], unknown], None)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem["type"], "/problems/seats-not-found");
    assert_eq!(problem["seatIds"], json!([unknown]));

    // Five seats.
    let problem = expect_problem(
        app.hold(&fan, s.schedule_id, &s.seat_ids, None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("at most 4"),
        "{problem}"
    );

    // No seats, and a seat twice.
    expect_problem(
        app.hold(&fan, s.schedule_id, &[], None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    expect_problem(
        app.hold(&fan, s.schedule_id, &[s.seat_ids[0], s.seat_ids[0]], None)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    // A seat of another schedule.
    let problem = expect_problem(
        app.hold(
            &fan,
            s.schedule_id,
            &[s.seat_ids[0], other.seat_ids[0]],
            None,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem["type"], "/problems/foreign-seats");
    assert_eq!(problem["seatIds"], json!([other.seat_ids[0]]));

    // An unknown schedule.
    expect_problem(
        app.hold(&fan, 9_999_999, &s.seat_ids[..1], None).await,
        StatusCode::NOT_FOUND,
    )
    .await;

    // An expired JWT, a forged one, none at all.
    let user = User {
        id: UserId(fan.id),
        email: fan.email.clone(),
        nickname: "fan".into(),
        password_hash: String::new(),
        role: Role::User,
    };
    let expired_keys =
        booking_api::auth::JwtKeys::new(JWT_SECRET.as_bytes(), chrono::Duration::hours(-1));
    let expired = expired_keys.issue(&user, chrono::Utc::now()).unwrap();
    let expired_user = TestUser {
        token: expired,
        ..fan.clone()
    };
    let problem = expect_problem(
        app.hold(&expired_user, s.schedule_id, &s.seat_ids[..1], None)
            .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("expired"),
        "{problem}"
    );
    let forged_keys = booking_api::auth::JwtKeys::new(
        b"another-secret-another-secret-0123456789",
        chrono::Duration::hours(1),
    );
    let forged = TestUser {
        token: forged_keys.issue(&user, chrono::Utc::now()).unwrap(),
        ..fan.clone()
    };
    expect_problem(
        app.hold(&forged, s.schedule_id, &s.seat_ids[..1], None)
            .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let response = app
        .post(
            "/api/reservations",
            None,
            &json!({"scheduleId": s.schedule_id, "seatIds": [s.seat_ids[0]]}),
        )
        .await;
    expect_problem(response, StatusCode::UNAUTHORIZED).await;

    // A malformed Idempotency-Key.
    let too_long = "k".repeat(300);
    expect_problem(
        app.hold(&fan, s.schedule_id, &s.seat_ids[..1], Some(&too_long))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;

    assert_eq!(
        app.db_snapshot().await,
        before,
        "no bad request changed the database"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_payment_and_path_input_is_refused() {
    let app = spawn_app().await;
    let fan = app.user("fan").await;
    let before = app.db_snapshot().await;
    expect_problem(app.pay(&fan, 424_242, None).await, StatusCode::NOT_FOUND).await;
    expect_problem(
        app.post(
            "/api/payments",
            Some(&fan.token),
            &json!({"reservation": 1}),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    expect_problem(
        app.get("/api/reservations/not-a-number", Some(&fan.token))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    expect_problem(
        app.get("/api/concerts/12345", None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    expect_problem(
        app.get("/api/nothing-here", None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(app.db_snapshot().await, before);
}
