//! The waiting room over HTTP: entry tokens gate reservations, and the SSE
//! stream carries positions and then the admission.

use crate::helpers::*;
use booking_api::Strategy;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

async fn enter(app: &TestApp, user: &TestUser, schedule: i64) -> Value {
    expect_status(
        app.post(
            "/api/queue/enter",
            Some(&user.token),
            &json!({"scheduleId": schedule}),
        )
        .await,
        StatusCode::OK,
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn reservation_without_a_valid_entry_token_is_forbidden_and_changes_nothing() {
    let app = spawn_app_with(Strategy::Pessimistic).await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 4).await;
    let other = app.schedule(&admin, 1, 4).await;
    let fan = app.user("fan").await;
    let rival = app.user("rival").await;
    let rivals_token = app
        .wait_for_entry_token(&rival, s.schedule_id)
        .await
        .unwrap();
    let other_schedule_token = app
        .wait_for_entry_token(&fan, other.schedule_id)
        .await
        .unwrap();
    let before = app.db_snapshot().await;

    for token in [
        None,
        Some("not-a-token"),
        Some(rivals_token.as_str()),
        Some(other_schedule_token.as_str()),
    ] {
        let response = app
            .hold_with_token(&fan, s.schedule_id, &s.seat_ids[..1], None, token)
            .await;
        let problem = expect_problem(response, StatusCode::FORBIDDEN).await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("X-Queue-Token"),
            "{problem}"
        );
    }
    assert_eq!(
        app.db_snapshot().await,
        before,
        "no refused request touched the database"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_entry_token_books_once_and_survives_a_failed_attempt() {
    let app = spawn_app_with(Strategy::Pessimistic).await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 4).await;
    let fan = app.user("fan").await;
    let rival = app.user("rival").await;
    expect_status(
        app.hold(&rival, s.schedule_id, &s.seat_ids[..1], None)
            .await,
        StatusCode::CREATED,
    )
    .await;
    let token = app.wait_for_entry_token(&fan, s.schedule_id).await.unwrap();

    // Seat taken: the attempt fails and the token stays usable.
    let taken = app
        .hold_with_token(&fan, s.schedule_id, &s.seat_ids[..1], None, Some(&token))
        .await;
    expect_problem(taken, StatusCode::CONFLICT).await;
    let held = app
        .hold_with_token(&fan, s.schedule_id, &s.seat_ids[1..2], None, Some(&token))
        .await;
    expect_status(held, StatusCode::CREATED).await;

    let again = app
        .hold_with_token(&fan, s.schedule_id, &s.seat_ids[2..3], None, Some(&token))
        .await;
    expect_problem(again, StatusCode::FORBIDDEN).await;
    let used = app
        .get(
            &format!("/api/queue/token?scheduleId={}", s.schedule_id),
            Some(&fan.token),
        )
        .await;
    expect_problem(used, StatusCode::CONFLICT).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_window_admits_the_next_user_when_a_slot_frees() {
    let app = spawn_app_configured(Strategy::Pessimistic, |s| s.queue.active_limit = 1).await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 4).await;
    let first = app.user("first").await;
    let second = app.user("second").await;
    let held = expect_status(
        app.hold(&first, s.schedule_id, &s.seat_ids[..1], None)
            .await,
        StatusCode::CREATED,
    )
    .await;

    let waiting = enter(&app, &second, s.schedule_id).await;
    assert_eq!(
        (waiting["position"].as_u64(), waiting["admitted"].as_bool()),
        (Some(1), Some(false))
    );
    assert_eq!(
        enter(&app, &second, s.schedule_id).await["position"],
        1,
        "entering twice keeps the place"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let still = app
        .get(
            &format!("/api/queue/token?scheduleId={}", s.schedule_id),
            Some(&second.token),
        )
        .await;
    let problem = expect_problem(still, StatusCode::CONFLICT).await;
    assert_eq!(
        problem["type"], "/problems/not-admitted",
        "the only slot is the first user's live hold"
    );

    expect_status(
        app.pay(&first, held["id"].as_i64().unwrap(), None).await,
        StatusCode::CREATED,
    )
    .await;
    let token = app.wait_for_entry_token(&second, s.schedule_id).await;
    assert!(
        token.is_some(),
        "paying freed the slot for the next in line"
    );
}

/// Reads server-sent events until `want` events (not comments) arrived.
pub(crate) async fn read_events(
    response: &mut reqwest::Response,
    want: usize,
) -> Vec<(String, Value)> {
    let mut buffer = String::new();
    let mut events = Vec::new();
    while events.len() < want {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("an event within 10 s")
            .expect("the stream reads");
        let Some(chunk) = chunk else { break };
        buffer.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let mut name = None;
            let mut data = None;
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = Some(v.to_owned());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = Some(serde_json::from_str(v).expect("JSON data"));
                }
            }
            if let (Some(name), Some(data)) = (name, data) {
                events.push((name, data));
            }
        }
    }
    events
}

/// Reads events until one matches, skipping the position updates between.
pub(crate) async fn read_until(
    response: &mut reqwest::Response,
    wanted: impl Fn(&str, &Value) -> bool,
) -> (String, Value) {
    loop {
        let event = read_events(response, 1).await.remove(0);
        if wanted(&event.0, &event.1) {
            return event;
        }
        assert_eq!(
            event.0, "position",
            "unexpected event before the wanted one: {event:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sse_streams_the_position_then_the_admission_with_its_token() {
    let app = spawn_app_configured(Strategy::Pessimistic, |s| s.queue.active_limit = 1).await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 4).await;
    let first = app.user("first").await;
    let second = app.user("second").await;
    let third = app.user("third").await;
    let held = expect_status(
        app.hold(&first, s.schedule_id, &s.seat_ids[..1], None)
            .await,
        StatusCode::CREATED,
    )
    .await;
    enter(&app, &second, s.schedule_id).await;
    enter(&app, &third, s.schedule_id).await;

    let mut stream = app
        .client
        .get(app.url(&format!("/api/queue/events?scheduleId={}", s.schedule_id)))
        .bearer_auth(&third.token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let events = read_events(&mut stream, 1).await;
    assert_eq!(events[0].0, "position");
    assert_eq!(events[0].1["position"], 2);

    // The first user pays: the second is admitted, the third moves up.
    expect_status(
        app.pay(&first, held["id"].as_i64().unwrap(), None).await,
        StatusCode::CREATED,
    )
    .await;
    read_until(&mut stream, |name, data| {
        name == "position" && data["position"] == 1
    })
    .await;

    // The second books and pays: the third is admitted, and the stream ends.
    let second_hold = expect_status(
        app.hold(&second, s.schedule_id, &s.seat_ids[1..2], None)
            .await,
        StatusCode::CREATED,
    )
    .await;
    expect_status(
        app.pay(&second, second_hold["id"].as_i64().unwrap(), None)
            .await,
        StatusCode::CREATED,
    )
    .await;
    let (_, admitted) = read_until(&mut stream, |name, _| name == "admitted").await;
    let token = admitted["token"].as_str().unwrap().to_owned();
    assert!(
        tokio::time::timeout(Duration::from_secs(5), stream.chunk())
            .await
            .unwrap()
            .unwrap()
            .is_none(),
        "the stream ends after the admission"
    );

    let booked = app
        .hold_with_token(&third, s.schedule_id, &s.seat_ids[2..3], None, Some(&token))
        .await;
    expect_status(booked, StatusCode::CREATED).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_endpoints_refuse_strangers_and_unknown_schedules() {
    let app = spawn_app_with(Strategy::Pessimistic).await;
    let fan = app.user("fan").await;
    let unknown = app
        .post(
            "/api/queue/enter",
            Some(&fan.token),
            &json!({"scheduleId": 424242}),
        )
        .await;
    expect_problem(unknown, StatusCode::NOT_FOUND).await;
    let not_in = app
        .get("/api/queue/position?scheduleId=1", Some(&fan.token))
        .await;
    expect_problem(not_in, StatusCode::NOT_FOUND).await;
    let bad = app
        .get("/api/queue/position?scheduleId=abc", Some(&fan.token))
        .await;
    expect_problem(bad, StatusCode::BAD_REQUEST).await;
    let anonymous = app.get("/api/queue/events?scheduleId=1", None).await;
    expect_problem(anonymous, StatusCode::UNAUTHORIZED).await;
    let ready = expect_status(app.get("/health/ready", None).await, StatusCode::OK).await;
    assert_eq!(ready["waitingRoom"], "enabled");
}

async fn stream_ticket(app: &TestApp, user: &TestUser, schedule: i64) -> String {
    let body = expect_status(
        app.post(
            "/api/queue/stream-ticket",
            Some(&user.token),
            &json!({"scheduleId": schedule}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    body["ticket"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_ticket_opens_only_its_users_stream_of_its_schedule() {
    let app = spawn_app_configured(Strategy::Pessimistic, |s| s.queue.active_limit = 1).await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 4).await;
    let other = app.schedule(&admin, 1, 4).await;
    let first = app.user("first").await;
    let fan = app.user("fan").await;
    expect_status(
        app.hold(&first, s.schedule_id, &s.seat_ids[..1], None)
            .await,
        StatusCode::CREATED,
    )
    .await;
    enter(&app, &fan, s.schedule_id).await;
    let ticket = stream_ticket(&app, &fan, s.schedule_id).await;

    // As a browser's EventSource would: no header, the ticket in the URL.
    let mut stream = app
        .client
        .get(app.url(&format!(
            "/api/queue/events?scheduleId={}&ticket={ticket}",
            s.schedule_id
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let events = read_events(&mut stream, 1).await;
    assert_eq!(
        (events[0].0.as_str(), &events[0].1["position"]),
        ("position", &json!(1))
    );

    for (schedule, ticket, why) in [
        (
            other.schedule_id,
            ticket.clone(),
            "a ticket for another schedule",
        ),
        (
            s.schedule_id,
            fan.token.clone(),
            "the login token in the URL",
        ),
        (s.schedule_id, "garbage".to_owned(), "garbage"),
    ] {
        let refused = app
            .get(
                &format!("/api/queue/events?scheduleId={schedule}&ticket={ticket}"),
                None,
            )
            .await;
        let problem = expect_problem(refused, StatusCode::UNAUTHORIZED).await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("stream ticket"),
            "{why}: {problem}"
        );
    }
    let as_login = app.get("/api/reservations/my", Some(&ticket)).await;
    expect_problem(as_login, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn when_the_last_seat_is_sold_every_stream_hears_sold_out_and_the_room_answers_410() {
    let app = spawn_app_configured(Strategy::Pessimistic, |s| s.queue.active_limit = 1).await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 1).await;
    let buyer = app.user("buyer").await;
    let held = expect_status(
        app.hold(&buyer, s.schedule_id, &s.seat_ids[..1], None)
            .await,
        StatusCode::CREATED,
    )
    .await;
    let mut streams = Vec::new();
    let mut waiting = Vec::new();
    for i in 0..3 {
        let fan = app.user(&format!("fan{i}")).await;
        let status = enter(&app, &fan, s.schedule_id).await;
        assert_eq!(
            status["state"], "paused",
            "the only seat is held: it may come back"
        );
        let ticket = stream_ticket(&app, &fan, s.schedule_id).await;
        let mut stream = app
            .client
            .get(app.url(&format!(
                "/api/queue/events?scheduleId={}&ticket={ticket}",
                s.schedule_id
            )))
            .send()
            .await
            .unwrap();
        read_events(&mut stream, 1).await;
        streams.push(stream);
        waiting.push(fan);
    }

    expect_status(
        app.pay(&buyer, held["id"].as_i64().unwrap(), None).await,
        StatusCode::CREATED,
    )
    .await;
    for stream in &mut streams {
        read_until(stream, |name, _| name == "sold-out").await;
        assert!(
            tokio::time::timeout(Duration::from_secs(5), stream.chunk())
                .await
                .unwrap()
                .unwrap()
                .is_none(),
            "the stream ends after sold-out"
        );
    }
    let late = app.user("late").await;
    let refused = app
        .post(
            "/api/queue/enter",
            Some(&late.token),
            &json!({"scheduleId": s.schedule_id}),
        )
        .await;
    let problem = expect_problem(refused, StatusCode::GONE).await;
    assert_eq!(problem["type"], "/problems/sold-out");
    let token = app
        .get(
            &format!("/api/queue/token?scheduleId={}", s.schedule_id),
            Some(&waiting[0].token),
        )
        .await;
    expect_problem(token, StatusCode::GONE).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admitted_user_polling_for_the_token_is_never_told_it_was_used() {
    let app = spawn_app_configured(Strategy::Pessimistic, |s| {
        s.queue.admit_rate_per_sec = 40.0;
    })
    .await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 50).await;
    let mut users = Vec::new();
    for i in 0..30 {
        let fan = app.user(&format!("poller{i}")).await;
        enter(&app, &fan, s.schedule_id).await;
        users.push(fan);
    }
    // Everyone polls while admission hands out passes a few per tick.
    let polls = users.iter().map(|fan| {
        let app = &app;
        async move {
            for _ in 0..200 {
                let response = app
                    .get(
                        &format!("/api/queue/token?scheduleId={}", s.schedule_id),
                        Some(&fan.token),
                    )
                    .await;
                match response.status() {
                    StatusCode::OK => return Ok(()),
                    StatusCode::CONFLICT => {
                        let problem: Value = response.json().await.unwrap();
                        if problem["type"] != "/problems/not-admitted" {
                            return Err(problem);
                        }
                    }
                    other => return Err(json!({"status": other.as_u16()})),
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(json!("never admitted"))
        }
    });
    let outcomes = futures::future::join_all(polls).await;
    let wrong: Vec<_> = outcomes.into_iter().filter_map(Result::err).collect();
    assert!(wrong.is_empty(), "admitted users were told: {wrong:?}");
}

/// Whether `value` fits `schema` of the OpenAPI document: types, required
/// and declared properties (nothing undeclared), `$ref` and `oneOf`.
fn fits(doc: &Value, schema: &Value, value: &Value) -> Result<(), String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let target = doc
            .pointer(reference.trim_start_matches('#'))
            .ok_or(format!("dangling {reference}"))?;
        return fits(doc, target, value);
    }
    if let Some(options) = schema["oneOf"].as_array() {
        return options
            .iter()
            .any(|option| fits(doc, option, value).is_ok())
            .then_some(())
            .ok_or(format!("{value} fits no option of {schema}"));
    }
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let allowed: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return Ok(()),
    };
    let widened = kind == "integer" && allowed.contains(&"number");
    if !allowed.contains(&kind) && !widened {
        return Err(format!("{value} is {kind}, the schema says {allowed:?}"));
    }
    if let Value::Object(fields) = value {
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap_or_default();
            if !fields.contains_key(name) {
                return Err(format!("{name} is required"));
            }
        }
        for (name, field) in fields {
            let declared = &schema["properties"][name];
            if declared.is_null() {
                return Err(format!("{name} is not in the schema"));
            }
            fits(doc, declared, field).map_err(|e| format!("{name}: {e}"))?;
        }
    }
    Ok(())
}

/// Checks one stream event against the schema the document names for it.
async fn assert_documented(app: &TestApp, events: &[(String, Value)]) {
    let doc = expect_status(app.get("/api/openapi.json", None).await, StatusCode::OK).await;
    for (event, data) in events {
        let schema = &doc["paths"]["/api/queue/events"]["get"]["x-sse-events"][event.as_str()];
        assert!(!schema.is_null(), "event {event} is not documented");
        if let Err(e) = fits(&doc, schema, data) {
            panic!("event {event} does not fit its schema: {e}\n{data}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_stream_event_fits_the_schema_the_openapi_document_names() {
    let app = spawn_app_configured(Strategy::Pessimistic, |s| s.queue.active_limit = 1).await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 2).await;
    let first = app.user("first").await;
    let second = app.user("second").await;
    let third = app.user("third").await;
    let held = expect_status(
        app.hold(&first, s.schedule_id, &s.seat_ids[..1], None)
            .await,
        StatusCode::CREATED,
    )
    .await;
    let mut events = Vec::new();
    let mut streams = Vec::new();
    for fan in [&second, &third] {
        enter(&app, fan, s.schedule_id).await;
        let ticket = stream_ticket(&app, fan, s.schedule_id).await;
        let mut stream = app
            .client
            .get(app.url(&format!(
                "/api/queue/events?scheduleId={}&ticket={ticket}",
                s.schedule_id
            )))
            .send()
            .await
            .unwrap();
        events.extend(read_events(&mut stream, 1).await);
        streams.push(stream);
    }
    // The first pays: the second gets a pass, then buys the last seat: the
    // third hears the sale is over.
    expect_status(
        app.pay(&first, held["id"].as_i64().unwrap(), None).await,
        StatusCode::CREATED,
    )
    .await;
    let admitted = read_until(&mut streams[0], |name, _| name == "admitted").await;
    let token = admitted.1["token"].as_str().unwrap().to_owned();
    events.push(admitted);
    let bought = expect_status(
        app.hold_with_token(
            &second,
            s.schedule_id,
            &s.seat_ids[1..2],
            None,
            Some(&token),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    expect_status(
        app.pay(&second, bought["id"].as_i64().unwrap(), None).await,
        StatusCode::CREATED,
    )
    .await;
    loop {
        let event = read_events(&mut streams[1], 1).await.remove(0);
        let end = event.0 == "sold-out";
        events.push(event);
        if end {
            break;
        }
    }
    events.push(("left".to_owned(), json!({})));
    assert_documented(&app, &events).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pre_queue_is_drawn_at_the_opening_and_later_arrivals_keep_their_order() {
    // Admission slow enough that the line can be read after the draw.
    let app = spawn_app_configured(Strategy::Pessimistic, |s| {
        s.queue.admit_rate_per_sec = 0.1;
    })
    .await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 2, 50).await;
    // Sign-ups hash passwords (slow on a loaded machine): all of them before
    // the opening is set, so the 30 entries surely come before it.
    let mut fans = Vec::new();
    for i in 0..30 {
        fans.push(app.user(&format!("early{i}")).await);
    }
    let opens_at = chrono::Utc::now() + chrono::Duration::seconds(3);
    expect_status(
        app.put(
            &format!("/api/admin/schedules/{}", s.schedule_id),
            &admin.token,
            &json!({"startsAt": "2030-01-01T20:00:00Z", "salesOpenAt": opens_at}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let mut early = Vec::new();
    for fan in fans {
        let status = enter(&app, &fan, s.schedule_id).await;
        assert_eq!(status["state"], "before-opening", "{status}");
        assert_eq!(status["position"], Value::Null, "no place before the draw");
        assert!(status["opensInSecs"].as_i64().unwrap() > 0, "{status}");
        early.push(fan);
    }
    let no_draw = app
        .get(
            &format!("/api/admin/schedules/{}/draw", s.schedule_id),
            Some(&admin.token),
        )
        .await;
    expect_problem(no_draw, StatusCode::NOT_FOUND).await;

    tokio::time::sleep((opens_at - chrono::Utc::now()).to_std().unwrap_or_default()).await;
    let mut late = Vec::new();
    for i in 0..3 {
        let fan = app.user(&format!("late{i}")).await;
        late.push(
            enter(&app, &fan, s.schedule_id).await["ticket"]
                .as_u64()
                .unwrap(),
        );
    }
    let draw = expect_status(
        app.get(
            &format!("/api/admin/schedules/{}/draw", s.schedule_id),
            Some(&admin.token),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let ids = |v: &Value| -> Vec<i64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_i64().unwrap())
            .collect()
    };
    let (arrivals, drawn) = (ids(&draw["arrivals"]), ids(&draw["drawn"]));
    let entered: Vec<i64> = early.iter().map(|fan| fan.id).collect();
    assert_eq!(arrivals, entered, "the record keeps the arrival order");
    let mut sorted = drawn.clone();
    sorted.sort_unstable();
    let mut expected = entered.clone();
    expected.sort_unstable();
    assert_eq!(
        sorted, expected,
        "the draw is a permutation of the pre-queue"
    );
    assert_ne!(drawn, entered, "30 early users were left in arrival order");
    let replayed: Vec<i64> =
        booking_domain::draw_order(draw["seed"].as_u64().unwrap(), arrivals.len())
            .into_iter()
            .map(|i| arrivals[i])
            .collect();
    assert_eq!(replayed, drawn, "anyone can replay the draw from its seed");
    assert!(
        late.windows(2).all(|w| w[0] < w[1]),
        "late arrivals keep their order: {late:?}"
    );
    // Every drawn user is ahead of every late one, in the drawn order.
    let mut tickets = Vec::new();
    for id in &drawn {
        let fan = early.iter().find(|fan| fan.id == *id).unwrap();
        let status = expect_status(
            app.get(
                &format!("/api/queue/position?scheduleId={}", s.schedule_id),
                Some(&fan.token),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        // Admission may have started: an admitted user stands before the rest.
        tickets.push(status["ticket"].as_u64().unwrap_or(0));
    }
    let in_line: Vec<u64> = tickets.iter().copied().filter(|t| *t > 0).collect();
    assert!(
        in_line.len() >= 20,
        "admission was meant to be slow: {tickets:?}"
    );
    assert!(in_line.windows(2).all(|w| w[0] < w[1]), "{tickets:?}");
    assert!(in_line.iter().all(|t| *t < late[0]), "{tickets:?} {late:?}");
}
