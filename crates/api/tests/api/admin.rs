//! Admin catalogue management and its access rules.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn only_admins_manage_the_catalogue() {
    let app = spawn_app().await;
    let fan = app.user("fan").await;
    let body = json!({"title": "T", "artist": "A", "venue": "V"});
    expect_problem(
        app.post("/api/admin/concerts", None, &body).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    expect_problem(
        app.post("/api/admin/concerts", Some(&fan.token), &body)
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;

    let admin = app.admin().await;
    let s = app.schedule(&admin, 3, 4).await;
    assert_eq!(s.seat_ids.len(), 12, "the grid generated rows x seats");

    let updated = expect_status(
        app.client
            .put(app.url(&format!("/api/admin/concerts/{}", s.concert_id)))
            .bearer_auth(&admin.token)
            .json(&json!({"title": "Renamed", "artist": "A", "venue": "V"}))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(updated["title"], "Renamed");

    let moved = expect_status(
        app.client
            .put(app.url(&format!("/api/admin/schedules/{}", s.schedule_id)))
            .bearer_auth(&admin.token)
            .json(&json!({"startsAt": "2031-05-01T19:30:00Z"}))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(moved["startsAt"], "2031-05-01T19:30:00Z");

    // A bad grid is refused with a reason.
    let bad = app
        .post(
            &format!("/api/admin/concerts/{}/schedules", s.concert_id),
            Some(&admin.token),
            &json!({"startsAt": "2030-01-01T20:00:00Z", "sections": [{"name": "A", "rows": 0, "seatsPerRow": 5, "price": 1}]}),
        )
        .await;
    expect_problem(bad, StatusCode::UNPROCESSABLE_ENTITY).await;

    // A schedule with reservations cannot be deleted; one without can.
    expect_status(
        app.hold(&fan, s.schedule_id, &s.seat_ids[..1], None).await,
        StatusCode::CREATED,
    )
    .await;
    let delete = |path: String| {
        let req = app.client.delete(app.url(&path)).bearer_auth(&admin.token);
        async move { req.send().await.unwrap() }
    };
    expect_problem(
        delete(format!("/api/admin/schedules/{}", s.schedule_id)).await,
        StatusCode::CONFLICT,
    )
    .await;
    expect_problem(
        delete(format!("/api/admin/concerts/{}", s.concert_id)).await,
        StatusCode::CONFLICT,
    )
    .await;
    let empty = app.schedule(&admin, 1, 1).await;
    expect_status(
        delete(format!("/api/admin/schedules/{}", empty.schedule_id)).await,
        StatusCode::NO_CONTENT,
    )
    .await;
    expect_status(
        delete(format!("/api/admin/concerts/{}", empty.concert_id)).await,
        StatusCode::NO_CONTENT,
    )
    .await;
    expect_problem(
        delete(format!("/api/admin/concerts/{}", empty.concert_id)).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn health_and_openapi_describe_the_running_service() {
    let app = spawn_app().await;
    let ready = app.get("/health/ready", None).await;
    assert_eq!(
        ready.headers().get("x-booking-strategy").unwrap(),
        "pessimistic"
    );
    let ready = expect_status(ready, StatusCode::OK).await;
    assert_eq!(ready["strategy"], "pessimistic");
    assert_eq!(ready["store"], "postgres");
    expect_status(app.get("/health/live", None).await, StatusCode::OK).await;

    let doc = expect_status(app.get("/api/openapi.json", None).await, StatusCode::OK).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/reservations",
        "/api/payments",
        "/api/auth/login",
        "/api/concerts/{id}/schedules/{scheduleId}/seats",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
    let ui = app.get("/swagger-ui/", None).await;
    assert_eq!(ui.status(), StatusCode::OK);
}
