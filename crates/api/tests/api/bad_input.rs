//! Bad input gets a precise 4xx problem+json and changes nothing.

use crate::helpers::*;
use booking_domain::{Role, User, UserId};
use reqwest::StatusCode;
use serde_json::{json, Value};

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

/// Every text field refuses control characters with a 422 that names it,
/// before anything is stored: run against both stores.
async fn control_characters_are_refused_by_name(app: &TestApp) {
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 2).await;
    let canary = app.user("canary-before").await;
    let concerts = expect_status(app.get("/api/concerts", None).await, StatusCode::OK).await;

    let refused = |field: &'static str| {
        move |problem: Value| {
            let detail = problem["detail"].as_str().unwrap_or_default().to_owned();
            assert!(
                detail.starts_with(&format!("{field} must not contain control characters")),
                "{problem}"
            );
        }
    };
    let signups = [
        (
            "email",
            json!({"email": "fan\u{0}@example.com", "password": "password-123", "nickname": "fan"}),
        ),
        (
            "email",
            json!({"email": "fan@example.com\n", "password": "password-123", "nickname": "fan"}),
        ),
        (
            "password",
            json!({"email": "fan@example.com", "password": "password\u{0}123", "nickname": "fan"}),
        ),
        (
            "nickname",
            json!({"email": "fan@example.com", "password": "password-123", "nickname": "f\u{85}an"}),
        ),
    ];
    for (field, body) in signups {
        let response = app.post("/api/auth/signup", None, &body).await;
        refused(field)(expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await);
    }
    let logins = [
        (
            "email",
            json!({"email": "canary-before@example.com\u{0}", "password": "password-123"}),
        ),
        (
            "password",
            json!({"email": "canary-before@example.com", "password": "password-123\u{1b}"}),
        ),
    ];
    for (field, body) in logins {
        let response = app.post("/api/auth/login", None, &body).await;
        refused(field)(expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await);
    }

    let concert = |title: &str, artist: &str, venue: &str, description: &str| json!({"title": title, "artist": artist, "venue": venue, "description": description});
    let concerts_bad = [
        ("title", concert("Night\u{0}", "Band", "Hall", "")),
        ("artist", concert("Night", "Ba\tnd", "Hall", "")),
        ("venue", concert("Night", "Band", "\u{7f}Hall", "")),
        (
            "description",
            concert("Night", "Band", "Hall", "two\nlines\tand a NUL\u{0}"),
        ),
    ];
    for (field, body) in concerts_bad {
        let response = app
            .post("/api/admin/concerts", Some(&admin.token), &body)
            .await;
        refused(field)(expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await);
        let path = format!("/api/admin/concerts/{}", s.concert_id);
        let response = app.put(&path, &admin.token, &body).await;
        refused(field)(expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await);
    }
    // Free text keeps its tabs and line breaks.
    let kept = concert("Night", "Band", "Hall", "two\nlines\r\n\tindented");
    let response = app
        .put(
            &format!("/api/admin/concerts/{}", s.concert_id),
            &admin.token,
            &kept,
        )
        .await;
    expect_status(response, StatusCode::OK).await;

    let response = app
        .post(
            &format!("/api/admin/concerts/{}/schedules", s.concert_id),
            Some(&admin.token),
            &json!({"startsAt": "2030-01-01T20:00:00Z", "sections": [
                {"name": "A", "rows": 1, "seatsPerRow": 1, "price": 1},
                {"name": "B\u{0}", "rows": 1, "seatsPerRow": 1, "price": 1}]}),
        )
        .await;
    refused("sections[1].name")(expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await);

    // A header cannot carry NUL or a line break; a tab is the control that
    // reaches the key.
    let response = app
        .client
        .post(app.url("/api/reservations"))
        .bearer_auth(&canary.token)
        .header("Idempotency-Key", "key\tone")
        .json(&json!({"scheduleId": s.schedule_id, "seatIds": [s.seat_ids[0]]}))
        .send()
        .await
        .unwrap();
    refused("Idempotency-Key")(expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await);

    let after = app.user("canary-after").await;
    assert_eq!(after.id, canary.id + 1, "no refused sign-up stored a user");
    assert_eq!(
        expect_status(app.get("/api/concerts", None).await, StatusCode::OK).await,
        concerts
            .as_array()
            .map(|c| {
                // The one accepted change: the description above.
                let mut c = c.clone();
                for concert in &mut c {
                    if concert["id"] == s.concert_id {
                        concert["description"] = json!("two\nlines\r\n\tindented");
                    }
                }
                Value::Array(c)
            })
            .unwrap(),
        "no refused request changed the catalogue"
    );
    assert_eq!(
        app.seat_statuses(s.concert_id, s.schedule_id).await,
        s.seat_ids
            .iter()
            .map(|id| (*id, "AVAILABLE".to_owned()))
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn control_characters_in_any_text_field_are_a_422_naming_it_on_postgres() {
    let app = spawn_app().await;
    control_characters_are_refused_by_name(&app).await;
    let after = app.db_snapshot().await;
    assert_eq!((after.reservations, after.outbox), (0, 0), "{after:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn control_characters_in_any_text_field_are_a_422_naming_it_in_memory() {
    let app = spawn_embedded_app_adjusted(|s| s.queue.enabled = false).await;
    control_characters_are_refused_by_name(&app).await;
}

/// A token signed with the server's key for a user that does not exist
/// (the database was reset, the embedded server restarted).
fn token_of_a_missing_user() -> TestUser {
    let ghost = User {
        id: UserId(987_654_321),
        email: "ghost@example.com".into(),
        nickname: "ghost".into(),
        password_hash: String::new(),
        role: Role::User,
    };
    let keys = booking_api::auth::JwtKeys::new(JWT_SECRET.as_bytes(), chrono::Duration::hours(1));
    TestUser {
        id: ghost.id.0,
        email: ghost.email.clone(),
        token: keys.issue(&ghost, chrono::Utc::now()).unwrap(),
    }
}

async fn a_missing_user_cannot_hold(app: &TestApp) {
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 2).await;
    let ghost = token_of_a_missing_user();
    let problem = expect_problem(
        app.hold(&ghost, s.schedule_id, &s.seat_ids[..1], None)
            .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{problem}"
    );
    assert_eq!(
        app.seat_statuses(s.concert_id, s.schedule_id).await[0].1,
        "AVAILABLE"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_token_of_a_missing_user_is_a_401_on_postgres() {
    let app = spawn_app().await;
    a_missing_user_cannot_hold(&app).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_token_of_a_missing_user_is_a_401_in_memory() {
    let app = spawn_embedded_app_adjusted(|s| s.queue.enabled = false).await;
    a_missing_user_cannot_hold(&app).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = spawn_app().await;
    let fan = app.user("fan").await;
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let response = app
            .client
            .get(app.url("/api/reservations/my"))
            .header("Authorization", format!("{scheme} {}", fan.token))
            .send()
            .await
            .unwrap();
        expect_status(response, StatusCode::OK).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_seat_price_over_the_cap_is_a_422() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 1).await;
    for price in [booking_domain::MAX_SEAT_PRICE + 1, i64::MAX, -1] {
        let response = app
            .post(
                &format!("/api/admin/concerts/{}/schedules", s.concert_id),
                Some(&admin.token),
                &json!({"startsAt": "2030-01-01T20:00:00Z", "sections": [
                    {"name": "A", "rows": 1, "seatsPerRow": 1, "price": price}]}),
            )
            .await;
        let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("price is between 0 and"),
            "{problem}"
        );
    }
}

/// Prices written before the cap existed: their sum overflows `bigint` in
/// the hold statement, which is a 422 that holds nothing, not a 500.
#[tokio::test(flavor = "multi_thread")]
async fn a_total_price_past_i64_max_is_a_422_and_holds_nothing() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 2).await;
    let fan = app.user("fan").await;
    app.execute(&format!(
        "UPDATE seats SET price = 9223372036854775807 WHERE schedule_id = {}",
        s.schedule_id
    ))
    .await;
    let before = app.db_snapshot().await;
    let problem = expect_problem(
        app.hold(&fan, s.schedule_id, &s.seat_ids, None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("out of range"),
        "{problem}"
    );
    assert_eq!(app.db_snapshot().await, before);
}

/// serde's chrono reads years up to ±262,143; PostgreSQL stores 4713 BC to
/// 294276 AD. A start outside RFC 3339's years is refused before it gets
/// there (found by `fuzz.rs`: a 500 "timestamp out of range" before).
#[tokio::test(flavor = "multi_thread")]
async fn a_start_outside_years_0000_to_9999_is_a_400_naming_it() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 1).await;
    for starts_at in [
        "-262143-01-01T00:00:00Z",
        "+262142-12-31T23:59:59Z",
        "-0001-12-31T00:00:00Z",
    ] {
        let created = app
            .post(
                &format!("/api/admin/concerts/{}/schedules", s.concert_id),
                Some(&admin.token),
                &json!({"startsAt": starts_at, "sections": [
                    {"name": "A", "rows": 1, "seatsPerRow": 1, "price": 1}]}),
            )
            .await;
        let updated = app
            .put(
                &format!("/api/admin/schedules/{}", s.schedule_id),
                &admin.token,
                &json!({"startsAt": starts_at}),
            )
            .await;
        for response in [created, updated] {
            let problem = expect_problem(response, StatusCode::BAD_REQUEST).await;
            let detail = problem["detail"].as_str().unwrap_or_default();
            assert!(detail.starts_with("startsAt must be"), "{problem}");
        }
    }
    let schedules = expect_status(
        app.get(&format!("/api/concerts/{}/schedules", s.concert_id), None)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(schedules.as_array().map(Vec::len), Some(1), "{schedules}");
    assert_eq!(schedules[0]["startsAt"], "2030-01-01T20:00:00Z");
}
