//! The seat map from memory: ETags and 304, the max age, the compact
//! status form, and one rebuild for many concurrent readers.

use crate::helpers::*;
use base64::Engine as _;
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

/// The statuses of the compact form, decoded as the OpenAPI text says.
fn decode_statuses(body: &Value) -> Vec<&'static str> {
    assert_eq!(body["encoding"], "2bit-le");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body["statuses"].as_str().expect("statuses"))
        .expect("base64");
    let seats = body["totalSeats"].as_u64().expect("totalSeats") as usize;
    assert_eq!(bytes.len(), seats.div_ceil(4));
    (0..seats)
        .map(|i| match (bytes[i / 4] >> (2 * (i % 4))) & 3 {
            0 => "AVAILABLE",
            1 => "HELD",
            2 => "RESERVED",
            other => panic!("seat {i} has the unused code {other}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unchanged_seat_map_is_answered_304_without_a_body() {
    let app = spawn_cached_app(MAX_AGE_MS).await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 2, 5).await;

    for suffix in ["", "/statuses", "/layout"] {
        let path = format!("{}{suffix}", map_path(s.concert_id, s.schedule_id));
        let first = app.get(&path, None).await;
        assert_eq!(first.status(), StatusCode::OK, "{path}");
        let etag = etag_of(&first);
        assert!(
            etag.starts_with('"') && etag.ends_with('"'),
            "a strong tag: {etag}"
        );
        let cache_control = first.headers()[header::CACHE_CONTROL].to_str().unwrap();
        let expected = match suffix {
            "/layout" => "public, max-age=3600",
            _ => "no-cache",
        };
        assert_eq!(cache_control, expected, "{path}");

        let again = get_if_none_match(&app, &path, &etag).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(etag_of(&again), etag);
        assert!(again.headers().contains_key(header::CACHE_CONTROL));
        assert!(again.bytes().await.unwrap().is_empty(), "a 304 has no body");

        // A weak copy of the tag, or one of several, matches too.
        let listed = format!("\"other\", W/{etag}");
        let weak = get_if_none_match(&app, &path, &listed).await;
        assert_eq!(weak.status(), StatusCode::NOT_MODIFIED, "{path}");
        let stale = get_if_none_match(&app, &path, "\"not-this-one\"").await;
        assert_eq!(stale.status(), StatusCode::OK, "{path}");
    }
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
async fn the_compact_statuses_agree_with_the_json_map_seat_by_seat() {
    let app = spawn_cached_app(MAX_AGE_MS).await;
    let admin = app.admin().await;
    // 11 seats: the last byte is partly used.
    let s = app.schedule(&admin, 1, 11).await;
    let fan = app.user("fan").await;
    let paid = expect_status(
        app.hold(&fan, s.schedule_id, &[s.seat_ids[1], s.seat_ids[4]], None)
            .await,
        StatusCode::CREATED,
    )
    .await;
    expect_status(
        app.pay(&fan, paid["id"].as_i64().unwrap(), None).await,
        StatusCode::CREATED,
    )
    .await;
    expect_status(
        app.hold(&fan, s.schedule_id, &[s.seat_ids[5], s.seat_ids[10]], None)
            .await,
        StatusCode::CREATED,
    )
    .await;
    let mut expected = vec!["AVAILABLE"; 11];
    (expected[1], expected[4]) = ("RESERVED", "RESERVED");
    (expected[5], expected[10]) = ("HELD", "HELD");

    // Nothing changes from here on: once the map shows the writes, every
    // later rebuild reads the same statuses.
    let path = map_path(s.concert_id, s.schedule_id);
    let mut map = Value::Null;
    for _ in 0..250 {
        map = expect_status(app.get(&path, None).await, StatusCode::OK).await;
        let shown: Vec<&str> = map["seats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|seat| seat["status"].as_str().unwrap())
            .collect();
        if shown == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seats = map["seats"].as_array().expect("seats");
    let compact = expect_status(
        app.get(&format!("{path}/statuses"), None).await,
        StatusCode::OK,
    )
    .await;
    let layout = expect_status(
        app.get(&format!("{path}/layout"), None).await,
        StatusCode::OK,
    )
    .await;

    let decoded = decode_statuses(&compact);
    assert_eq!(decoded, expected);
    assert_eq!(decoded.len(), seats.len());
    for (i, seat) in seats.iter().enumerate() {
        assert_eq!(seat["status"], decoded[i], "seat {i}");
        assert_eq!(layout["seats"][i]["id"], seat["id"], "seat {i}: same order");
        assert_eq!(layout["seats"][i]["price"], seat["price"]);
    }
    assert_eq!(compact["availableSeats"], map["availableSeats"]);
    assert_eq!(compact["availableSeats"], 7);
    assert_eq!(compact["scheduleId"].as_i64(), Some(s.schedule_id));
    assert_eq!(layout["totalSeats"], 11);
    assert!(layout["seats"][0].get("status").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_first_readers_of_a_seat_map_cause_one_rebuild() {
    // A max age no test outlives: only the first read may rebuild.
    let app = spawn_cached_app(60_000).await;
    let admin = app.admin().await;
    let (concert, schedule) = app.create_schedule(&admin, 10, 100).await;
    let before = app.metric("booking_seat_map_rebuilds_total").await;

    let path = map_path(concert, schedule);
    let paths: Vec<String> = (0..32)
        .map(|i| format!("{path}{}", ["", "/statuses", "/layout"][i % 3]))
        .collect();
    let responses = futures::future::join_all(paths.iter().map(|p| app.get(p, None))).await;
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
    expect_problem(
        app.get(&format!("{wrong}/statuses"), None).await,
        StatusCode::NOT_FOUND,
    )
    .await;

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

#[tokio::test(flavor = "multi_thread")]
async fn the_seat_map_forms_are_documented_with_their_headers_and_an_example() {
    let app = spawn_app().await;
    let doc = expect_status(app.get("/api/openapi.json", None).await, StatusCode::OK).await;
    let base = "/api/concerts/{id}/schedules/{scheduleId}/seats";
    for suffix in ["", "/layout", "/statuses"] {
        let get = &doc["paths"][format!("{base}{suffix}")]["get"];
        assert!(get["responses"]["304"].is_object(), "{suffix}: 304");
        assert!(
            get["responses"]["200"]["headers"]["ETag"].is_object(),
            "{suffix}: ETag"
        );
        let params = get["parameters"].as_array().expect("parameters");
        assert!(
            params
                .iter()
                .any(|p| p["name"] == "If-None-Match" && p["in"] == "header"),
            "{suffix}: If-None-Match"
        );
    }
    let compact = &doc["components"]["schemas"]["SeatStatusesResponse"];
    assert_eq!(compact["example"]["statuses"], "EAIA");
    assert_eq!(compact["example"]["encoding"], "2bit-le");
}
