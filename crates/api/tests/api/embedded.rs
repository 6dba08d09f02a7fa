//! With no database the API runs on the in-memory adapters.

use crate::helpers::*;
use booking_domain::{topics, BoxError, EventHandler, OutboxEvent};
use reqwest::StatusCode;
use std::sync::{Arc, Mutex};

#[tokio::test(flavor = "multi_thread")]
async fn embedded_mode_serves_the_demo_concert_and_books_it() {
    let app = spawn_embedded_app().await;
    let (concert, schedule) = demo_schedule(&app).await;
    let seats = app.seat_statuses(concert, schedule).await;
    assert!(!seats.is_empty());

    let fan = app.user("fan").await;
    let held = expect_status(
        app.hold(&fan, schedule, &[seats[0].0], None).await,
        StatusCode::CREATED,
    )
    .await;
    expect_status(
        app.pay(&fan, held["id"].as_i64().unwrap(), None).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(app.seat_statuses(concert, schedule).await[0].1, "RESERVED");
    let ready = expect_status(app.get("/health/ready", None).await, StatusCode::OK).await;
    assert_eq!(ready["store"], "memory");
}

/// The in-memory store keeps the per-buyer limit too (4 by default). The
/// waiting room is off: an admitted user's one entry token would not
/// reach a second hold.
#[tokio::test(flavor = "multi_thread")]
async fn embedded_mode_refuses_a_hold_past_the_buyer_limit() {
    let app = spawn_embedded_app_adjusted(|s| s.queue.enabled = false).await;
    let (concert, schedule) = demo_schedule(&app).await;
    let seats: Vec<i64> = app
        .seat_statuses(concert, schedule)
        .await
        .iter()
        .map(|(id, _)| *id)
        .collect();
    let fan = app.user("fan").await;
    expect_status(
        app.hold(&fan, schedule, &seats[0..4], None).await,
        StatusCode::CREATED,
    )
    .await;
    let problem = expect_problem(
        app.hold(&fan, schedule, &seats[4..5], None).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(problem["type"], "/problems/buyer-limit");
    assert_eq!(app.seat_statuses(concert, schedule).await[4].1, "AVAILABLE");
}

/// Embedded mode writes the request id into the outbox row as PostgreSQL
/// does: the event the relay hands to the consumers carries the id the
/// reply named.
#[tokio::test(flavor = "multi_thread")]
async fn embedded_outbox_rows_carry_the_request_id() {
    let app = spawn_embedded_app().await;
    let seen = CapturedEvents::default();
    app.events
        .subscribe(
            topics::RESERVATION_HELD,
            "request-id-test",
            Arc::new(seen.clone()),
        )
        .await
        .unwrap();
    let (concert, schedule) = demo_schedule(&app).await;
    let seat = app.seat_statuses(concert, schedule).await[0].0;
    let fan = app.user("fan").await;
    let response = app.hold(&fan, schedule, &[seat], None).await;
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let held = expect_status(response, StatusCode::CREATED).await;

    let key = held["id"].to_string();
    let mut event = None;
    for _ in 0..100 {
        event = seen.find(&key);
        if event.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let event = event.expect("the hold's event is relayed within 5 s");
    assert_eq!(event.request_id.as_deref(), Some(request_id.as_str()));
}

/// Every event a subscription saw.
#[derive(Clone, Default)]
struct CapturedEvents(Arc<Mutex<Vec<OutboxEvent>>>);

impl CapturedEvents {
    fn find(&self, key: &str) -> Option<OutboxEvent> {
        let events = self.0.lock().unwrap();
        events.iter().find(|e| e.key == key).cloned()
    }
}

#[async_trait::async_trait]
impl EventHandler for CapturedEvents {
    async fn handle(&self, event: &OutboxEvent) -> Result<(), BoxError> {
        self.0.lock().unwrap().push(event.clone());
        Ok(())
    }
}

/// The demo concert embedded mode seeds, and its one schedule.
async fn demo_schedule(app: &TestApp) -> (i64, i64) {
    let concerts = expect_status(app.get("/api/concerts", None).await, StatusCode::OK).await;
    let concert = concerts[0]["id"].as_i64().expect("a demo concert");
    let schedules = expect_status(
        app.get(&format!("/api/concerts/{concert}/schedules"), None)
            .await,
        StatusCode::OK,
    )
    .await;
    (
        concert,
        schedules[0]["id"].as_i64().expect("a demo schedule"),
    )
}
