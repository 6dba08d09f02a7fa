//! Redis that does not answer, seen from outside: the server does not start
//! without it, and once started it answers 503 with `Retry-After` within
//! `redis.timeout_ms` while Redis is down, then serves again by itself.

use crate::helpers::*;
use crate::queue::{read_events, read_until};
use booking_api::{Application, Secrets, Settings, Strategy};
use booking_testkit::{RedisProcess, TestDb};
use reqwest::{Response, StatusCode};
use serde_json::json;
use std::time::{Duration, Instant};

const TIMEOUT_MS: u64 = 300;

/// `redis.timeout_ms`, and room for a loaded test machine.
const ANSWERS_WITHIN: Duration = Duration::from_secs(2);

/// Connecting, then the start-up PING, each within `redis.timeout_ms`; and
/// room for the database work before them.
const FAILS_TO_START_WITHIN: Duration = Duration::from_secs(5);

async fn start_with_redis(db: &TestDb, url: String) -> Result<Application, String> {
    let mut settings = Settings::default();
    settings.database.url = Some(db.url().to_owned());
    settings.booking.strategy = Strategy::Redis;
    settings.redis.url = Some(url);
    settings.redis.timeout_ms = TIMEOUT_MS;
    settings.server.port = 0;
    let secrets = Secrets {
        jwt_secret: Some(JWT_SECRET.into()),
        admin: None,
    };
    Application::build(settings, secrets)
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_does_not_start_when_redis_does_not_answer() {
    let db = TestDb::new().await;
    let frozen = RedisProcess::start().await;
    frozen.pause();
    for url in ["redis://127.0.0.1:1".to_owned(), frozen.url()] {
        let started = Instant::now();
        let refused = tokio::time::timeout(Duration::from_secs(30), start_with_redis(&db, url))
            .await
            .expect("start-up gives up instead of hanging");
        let Err(message) = refused else {
            panic!("started without Redis");
        };
        assert!(message.contains("Redis is not usable"), "{message}");
        let took = started.elapsed();
        assert!(took < FAILS_TO_START_WITHIN, "gave up after {took:?}");
    }
    frozen.resume();
}

/// A 503 with `Retry-After`, in time.
async fn expect_unavailable(call: impl std::future::Future<Output = Response>) {
    let started = Instant::now();
    let response = call.await;
    let took = started.elapsed();
    assert!(took < ANSWERS_WITHIN, "answered after {took:?}");
    assert_eq!(
        response.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"5"[..])
    );
    expect_status(response, StatusCode::SERVICE_UNAVAILABLE).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn while_redis_is_down_calls_answer_503_and_then_serve_again_by_themselves() {
    let mut redis = RedisProcess::start().await;
    let url = redis.url();
    let app = spawn_app_configured(Strategy::Redis, |s| {
        s.redis.url = Some(url);
        s.redis.timeout_ms = TIMEOUT_MS;
    })
    .await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 4).await;
    let fan = app.user("fan").await;
    expect_status(app.get("/health/ready", None).await, StatusCode::OK).await;
    let body = json!({"scheduleId": s.schedule_id});
    let enter = || app.post("/api/queue/enter", Some(&fan.token), &body);

    redis.stop();
    for _ in 0..3 {
        expect_unavailable(app.get("/health/ready", None)).await;
        expect_unavailable(enter()).await;
    }

    redis.restart().await;
    // The first call may still find the connection broken, and rebuild it.
    if app.get("/health/ready", None).await.status() != StatusCode::OK {
        expect_status(app.get("/health/ready", None).await, StatusCode::OK).await;
    }
    // Redis came back empty: the fan queues again, and holds a seat.
    let held = app.hold(&fan, s.schedule_id, &s.seat_ids[..1], None).await;
    expect_status(held, StatusCode::CREATED).await;
}

/// A waiting user's stream on this instance (bearer), after its first event,
/// which must be `position`: returns the stream and that position.
async fn waiting_stream(app: &TestApp, user: &TestUser, schedule: i64) -> (Response, i64) {
    let mut stream = app
        .client
        .get(app.url(&format!("/api/queue/events?scheduleId={schedule}")))
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let (name, data) = read_events(&mut stream, 1).await.remove(0);
    assert_eq!(name, "position", "{data}");
    (stream, data["position"].as_i64().expect("a position"))
}

/// The pass of a stream, skipping position updates: never `left`.
async fn admitted_on(stream: &mut Response) -> (String, u64) {
    let (_, admitted) = read_until(stream, |name, _| name == "admitted").await;
    (
        admitted["token"].as_str().unwrap().to_owned(),
        admitted["ticket"].as_u64().expect("a ticket"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_redis_restart_waiting_streams_keep_their_order_and_are_admitted_in_it() {
    let mut redis = RedisProcess::start().await;
    let url = redis.url();
    let app = spawn_app_configured(Strategy::Pessimistic, |s| {
        s.redis.url = Some(url);
        s.redis.timeout_ms = TIMEOUT_MS;
        s.queue.active_limit = 1;
    })
    .await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 4).await;
    // The one slot is taken by a hold: the three wait.
    let first = app.user("first").await;
    let held = app
        .hold(&first, s.schedule_id, &s.seat_ids[..1], None)
        .await;
    expect_status(held, StatusCode::CREATED).await;
    let mut waiting = Vec::new();
    for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
        let user = app.user(name).await;
        let body = json!({"scheduleId": s.schedule_id});
        let entered = app.post("/api/queue/enter", Some(&user.token), &body).await;
        expect_status(entered, StatusCode::OK).await;
        let (stream, position) = waiting_stream(&app, &user, s.schedule_id).await;
        assert_eq!(position, i as i64 + 1);
        waiting.push((user, stream));
    }
    // Let a tick see the room as it is before the restart.
    tokio::time::sleep(Duration::from_millis(600)).await;

    redis.stop();
    redis.restart().await;

    // The held slot was forgotten with the rest, so the first waiting is
    // admitted by itself; each of the others only after the one before
    // booked and paid, in their old order, and none is told `left`.
    let mut tickets = Vec::new();
    for (k, seat) in s.seat_ids[1..4].iter().enumerate() {
        let (user, stream) = &mut waiting[k];
        let (token, ticket) = admitted_on(stream).await;
        tickets.push(ticket);
        let booked = app
            .hold_with_token(user, s.schedule_id, &[*seat], None, Some(&token))
            .await;
        let booked = expect_status(booked, StatusCode::CREATED).await;
        let paid = app.pay(user, booked["id"].as_i64().unwrap(), None).await;
        expect_status(paid, StatusCode::CREATED).await;
    }
    assert!(tickets.windows(2).all(|w| w[0] < w[1]), "{tickets:?}");
}
