//! With no database the API runs on the in-memory adapters.

use crate::helpers::*;
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread")]
async fn embedded_mode_serves_the_demo_concert_and_books_it() {
    let app = spawn_embedded_app().await;
    let concerts = expect_status(app.get("/api/concerts", None).await, StatusCode::OK).await;
    let concert = concerts[0]["id"].as_i64().expect("a demo concert");
    let schedules = expect_status(
        app.get(&format!("/api/concerts/{concert}/schedules"), None)
            .await,
        StatusCode::OK,
    )
    .await;
    let schedule = schedules[0]["id"].as_i64().unwrap();
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
