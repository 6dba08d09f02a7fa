//! `/metrics` reports what happened: a booking, a conflict, a queue entry.

use crate::helpers::*;
use booking_api::Strategy;
use reqwest::StatusCode;
use serde_json::json;

/// The value of the series `name` whose labels include `labels`.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, number) = line.rsplit_once(' ')?;
            let (series_name, rest) = series.split_once('{').unwrap_or((series, ""));
            let matches = series_name == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
            matches.then(|| number.parse().ok()).flatten()
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_a_booking_a_conflict_and_a_queue_entry() {
    let app = spawn_app_configured(Strategy::Pessimistic, |s| s.queue.active_limit = 2).await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 4).await;
    let (first, second, third) = (
        app.user("first").await,
        app.user("second").await,
        app.user("third").await,
    );

    expect_status(
        app.hold(&first, s.schedule_id, &s.seat_ids[..1], None)
            .await,
        StatusCode::CREATED,
    )
    .await;
    expect_problem(
        app.hold(&second, s.schedule_id, &s.seat_ids[..1], None)
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    // Both slots are taken (a live hold, an unused token): the third waits.
    let entered = app
        .post(
            "/api/queue/enter",
            Some(&third.token),
            &json!({"scheduleId": s.schedule_id}),
        )
        .await;
    let entered = expect_status(entered, StatusCode::OK).await;
    assert_eq!(entered["position"], 1);

    let text = app.get("/metrics", None).await.text().await.unwrap();
    let holds = |outcome| {
        value(
            &text,
            "booking_holds_total",
            &[("strategy", "pessimistic"), ("outcome", outcome)],
        )
    };
    assert_eq!(holds("success"), Some(1.0), "{text}");
    assert_eq!(holds("seat_taken"), Some(1.0));
    let schedule = s.schedule_id.to_string();
    assert_eq!(
        value(&text, "booking_queue_waiting", &[("schedule", &schedule)]),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "booking_queue_active", &[("schedule", &schedule)]),
        Some(2.0)
    );
    assert_eq!(value(&text, "booking_queue_admitted_total", &[]), Some(2.0));
    let created = [
        ("route", "/api/reservations"),
        ("method", "POST"),
        ("status", "201"),
    ];
    assert_eq!(
        value(&text, "http_request_duration_seconds_count", &created),
        Some(1.0)
    );
    let conflict = [
        ("route", "/api/reservations"),
        ("method", "POST"),
        ("status", "409"),
    ];
    assert_eq!(
        value(&text, "http_request_duration_seconds_count", &conflict),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "booking_hold_duration_seconds_count",
            &[("outcome", "success")]
        ),
        Some(1.0)
    );
    assert_eq!(value(&text, "booking_oversold_seats", &[]), Some(0.0));
    assert!(value(&text, "booking_outbox_backlog", &[]).is_some());
    assert!(
        value(&text, "booking_db_pool_connections", &[("state", "size")]).is_some_and(|n| n >= 1.0)
    );
    assert!(value(&text, "booking_sse_connections", &[]).is_some());
}
