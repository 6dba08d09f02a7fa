//! The seat map from memory: ETags and 304, the max age, and one rebuild
//! for many concurrent readers.

use crate::helpers::*;
use reqwest::{header, Response, StatusCode};
use serde_json::Value;
use std::time::{Duration, Instant};

const MAX_AGE_MS: u64 = 250;

/// The API with the production max age (the other tests use 0).
async fn spawn_cached_app(max_age_ms: u64) -> TestApp {
    spawn_app_adjusted(|s| s.catalog.seat_map_max_age_ms = max_age_ms).await
}

fn map_path(concert: i64, schedule: i64) -> String {
    format!("/api/concerts/{concert}/schedules/{schedule}/seats")
}

async fn get_if_none_match(app: &TestApp, path: &str, etag: &str) -> Response {
    app.client
        .get(app.url(path))
        .header(header::IF_NONE_MATCH, etag)
        .send()
        .await
        .expect("request sent")
}

fn etag_of(response: &Response) -> String {
    response.headers()[header::ETAG]
        .to_str()
        .expect("an ASCII ETag")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unchanged_seat_map_is_answered_304_without_a_body() {
    let app = spawn_cached_app(MAX_AGE_MS).await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 2, 5).await;

    let path = map_path(s.concert_id, s.schedule_id);
    let first = app.get(&path, None).await;
    assert_eq!(first.status(), StatusCode::OK);
    let etag = etag_of(&first);
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "a strong tag: {etag}"
    );
    assert_eq!(first.headers()[header::CACHE_CONTROL], "no-cache");

    let again = get_if_none_match(&app, &path, &etag).await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(etag_of(&again), etag);
    assert_eq!(again.headers()[header::CACHE_CONTROL], "no-cache");
    assert!(again.bytes().await.unwrap().is_empty(), "a 304 has no body");

    // A weak copy of the tag, or one of several, matches too.
    let listed = format!("\"other\", W/{etag}");
    let weak = get_if_none_match(&app, &path, &listed).await;
    assert_eq!(weak.status(), StatusCode::NOT_MODIFIED);
    let stale = get_if_none_match(&app, &path, "\"not-this-one\"").await;
    assert_eq!(stale.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hold_shows_on_the_map_within_the_max_age_and_changes_its_etag() {
    let app = spawn_cached_app(MAX_AGE_MS).await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 4).await;
    let path = map_path(s.concert_id, s.schedule_id);
    let before = etag_of(&app.get(&path, None).await);
    let fan = app.user("fan").await;
    expect_status(
        app.hold(&fan, s.schedule_id, &s.seat_ids[..1], None).await,
        StatusCode::CREATED,
    )
    .await;
    let held = Instant::now();

    // Poll with the old tag: 304 while the map is the old one, then the new map.
    let deadline = held + Duration::from_secs(5);
    let shown = loop {
        let response = get_if_none_match(&app, &path, &before).await;
        if response.status() == StatusCode::OK {
            break Some((etag_of(&response), response.json::<Value>().await.unwrap()));
        }
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        if Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (after, map) = shown.expect("the hold shows on the map within 5 s");
    let waited = held.elapsed();
    assert_ne!(after, before);
    assert_eq!(map["seats"][0]["status"], "HELD");
    assert_eq!(map["seats"][0]["available"], false);
    assert_eq!(map["availableSeats"], 3);
    // The bound is the max age; the slack is for a busy test machine.
    assert!(
        waited < Duration::from_millis(MAX_AGE_MS) + Duration::from_secs(2),
        "the hold showed after {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_first_readers_of_a_seat_map_cause_one_rebuild() {
    // A max age no test outlives: only the first read may rebuild.
    let app = spawn_cached_app(60_000).await;
    let admin = app.admin().await;
    let (concert, schedule) = app.create_schedule(&admin, 10, 100).await;
    let before = app.metric("booking_seat_map_rebuilds_total").await;

    let path = map_path(concert, schedule);
    let responses = futures::future::join_all((0..32).map(|_| app.get(&path, None))).await;
    assert!(responses.iter().all(|r| r.status() == StatusCode::OK));

    let after = app.metric("booking_seat_map_rebuilds_total").await;
    assert_eq!(after - before, 1.0, "32 concurrent readers, one rebuild");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_read_through_another_concert_or_deleted_is_not_found() {
    let app = spawn_cached_app(60_000).await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 2).await;
    let other = app.schedule(&admin, 1, 2).await;

    let wrong = map_path(other.concert_id, s.schedule_id);
    expect_problem(app.get(&wrong, None).await, StatusCode::NOT_FOUND).await;

    let response = app
        .client
        .delete(app.url(&format!("/api/admin/schedules/{}", s.schedule_id)))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    // Within the max age, but this instance forgot the deleted schedule.
    expect_problem(
        app.get(&map_path(s.concert_id, s.schedule_id), None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}
