//! A schedule's sale settings through the admin API, and the per-buyer
//! limit as a client meets it: 409 `buyer-limit`.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

impl TestApp {
    async fn schedules_of(&self, concert: i64) -> Vec<Value> {
        let list = expect_status(
            self.get(&format!("/api/concerts/{concert}/schedules"), None)
                .await,
            StatusCode::OK,
        )
        .await;
        list.as_array().expect("a list").clone()
    }
}

fn schedule_body(extra: Value) -> Value {
    let mut body = json!({"startsAt": "2030-01-01T20:00:00Z",
        "sections": [{"name": "A", "rows": 1, "seatsPerRow": 10, "price": 5000}]});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_sets_and_changes_the_sale_settings_and_bad_ones_change_nothing() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 2).await;
    let created = |extra: Value| {
        let path = format!("/api/admin/concerts/{}/schedules", s.concert_id);
        let body = schedule_body(extra);
        let token = admin.token.clone();
        let app = &app;
        async move { app.post(&path, Some(&token), &body).await }
    };

    // Left out: the sale is open and the limit is 4.
    let first = app.schedules_of(s.concert_id).await;
    assert_eq!(first[0]["salesOpenAt"], Value::Null);
    assert_eq!(first[0]["maxSeatsPerBuyer"], 4);

    let set = expect_status(
        created(json!({"salesOpenAt": "2029-12-01T10:00:00+01:00", "maxSeatsPerBuyer": 2})).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(set["salesOpenAt"], "2029-12-01T09:00:00Z");
    assert_eq!(set["maxSeatsPerBuyer"], 2);
    let id = set["id"].as_i64().unwrap();

    for (bad, field) in [
        (json!({"maxSeatsPerBuyer": 0}), "maxSeatsPerBuyer"),
        (json!({"maxSeatsPerBuyer": 101}), "maxSeatsPerBuyer"),
        (json!({"maxSeatsPerBuyer": "four"}), "maxSeatsPerBuyer"),
        (json!({"maxSeatsPerBuyer": 2.5}), "maxSeatsPerBuyer"),
        (json!({"salesOpenAt": "tomorrow"}), "salesOpenAt"),
        (json!({"salesOpenAt": 17}), "salesOpenAt"),
    ] {
        let problem = expect_problem(created(bad.clone()).await, StatusCode::BAD_REQUEST).await;
        assert!(
            problem["detail"].as_str().unwrap().contains(field),
            "{bad}: {problem}"
        );
        let update = app
            .put(
                &format!("/api/admin/schedules/{id}"),
                &admin.token,
                &schedule_body(bad.clone()),
            )
            .await;
        let problem = expect_problem(update, StatusCode::BAD_REQUEST).await;
        assert!(
            problem["detail"].as_str().unwrap().contains(field),
            "{bad}: {problem}"
        );
    }
    let after = app.schedules_of(s.concert_id).await;
    assert_eq!(after.len(), 2, "no schedule was created by a bad request");
    assert_eq!(after[1]["salesOpenAt"], "2029-12-01T09:00:00Z");
    assert_eq!(after[1]["maxSeatsPerBuyer"], 2);
    assert_eq!(after[1]["startsAt"], "2030-01-01T20:00:00Z");

    // Left out on update: unchanged; null opens the sale now.
    let moved = expect_status(
        app.put(
            &format!("/api/admin/schedules/{id}"),
            &admin.token,
            &json!({"startsAt": "2030-02-01T20:00:00Z", "maxSeatsPerBuyer": 6}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(moved["salesOpenAt"], "2029-12-01T09:00:00Z");
    assert_eq!(moved["maxSeatsPerBuyer"], 6);
    let opened = expect_status(
        app.put(
            &format!("/api/admin/schedules/{id}"),
            &admin.token,
            &json!({"startsAt": "2030-02-01T20:00:00Z", "salesOpenAt": null}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(opened["salesOpenAt"], Value::Null);
    assert_eq!(opened["maxSeatsPerBuyer"], 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hold_past_the_buyer_limit_is_409_buyer_limit_until_a_cancel() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 10).await;
    expect_status(
        app.put(
            &format!("/api/admin/schedules/{}", s.schedule_id),
            &admin.token,
            &json!({"startsAt": "2030-01-01T20:00:00Z", "maxSeatsPerBuyer": 3}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let fan = app.user("fan").await;
    let seats = &s.seat_ids;
    let pair = expect_status(
        app.hold(&fan, s.schedule_id, &seats[0..2], None).await,
        StatusCode::CREATED,
    )
    .await;
    expect_status(
        app.hold(&fan, s.schedule_id, &seats[2..3], None).await,
        StatusCode::CREATED,
    )
    .await;

    let before = app.db_snapshot().await;
    let problem = expect_problem(
        app.hold(&fan, s.schedule_id, &seats[3..4], None).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(problem["type"], "/problems/buyer-limit");
    assert_eq!(
        problem["detail"],
        "you may hold at most 3 seats of this schedule; you have 3"
    );
    assert_eq!(
        app.db_snapshot().await,
        before,
        "the refusal changed nothing"
    );

    let other = app.user("other").await;
    expect_status(
        app.hold(&other, s.schedule_id, &seats[3..4], None).await,
        StatusCode::CREATED,
    )
    .await;
    expect_status(
        app.cancel(&fan, pair["id"].as_i64().unwrap()).await,
        StatusCode::OK,
    )
    .await;
    expect_status(
        app.hold(&fan, s.schedule_id, &seats[4..6], None).await,
        StatusCode::CREATED,
    )
    .await;
}

/// A hold the counter never saw (written by an instance without it, during
/// an upgrade) is still cancelled, and the count does not go below zero.
#[tokio::test(flavor = "multi_thread")]
async fn a_hold_the_counter_missed_can_still_be_cancelled() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 4).await;
    let fan = app.user("fan").await;
    let held = expect_status(
        app.hold(&fan, s.schedule_id, &s.seat_ids[0..2], None).await,
        StatusCode::CREATED,
    )
    .await;
    app.execute("UPDATE buyer_seats SET seats = 0").await;

    expect_status(
        app.cancel(&fan, held["id"].as_i64().unwrap()).await,
        StatusCode::OK,
    )
    .await;
    expect_status(
        app.hold(&fan, s.schedule_id, &s.seat_ids, None).await,
        StatusCode::CREATED,
    )
    .await;
}
