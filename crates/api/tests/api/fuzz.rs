//! Generated requests over every operation of the OpenAPI document (its
//! request bodies, query and path parameters, and the `Idempotency-Key`
//! header): control characters, huge and negative numbers, wrong types,
//! missing and unknown fields, very long strings, broken JSON. Whatever a
//! client sends, the answer is never a 5xx, on either store.
//!
//! Seeded (`FUZZ_SEED` replays a run; the seed is printed) and bounded:
//! `CASES_PER_OPERATION` requests per operation, a few at a time.

use crate::helpers::*;
use futures::{stream, StreamExt};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const CASES_PER_OPERATION: usize = 150;
const IN_FLIGHT: usize = 6;
/// The whole run of one store must stay well under a minute in CI.
const BUDGET: Duration = Duration::from_secs(45);

/// Real ids of each kind, so generated requests get past the
/// "not found" answers to the code behind them.
struct Fixture {
    admin: TestUser,
    fan: TestUser,
    concert: i64,
    schedule: i64,
    seats: Vec<i64>,
    reservation: i64,
}

/// One operation of the document.
#[derive(Debug, Clone)]
struct Operation {
    method: Method,
    path: String,
    /// (name, schema, required)
    query: Vec<(String, Value, bool)>,
    body: Option<Value>,
}

/// One generated request.
#[derive(Debug, Clone)]
struct Case {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    body: Option<String>,
    authorization: Option<String>,
    idempotency_key: Option<Vec<u8>>,
}

fn operations(doc: &Value) -> Vec<Operation> {
    let mut found = Vec::new();
    let paths = doc["paths"].as_object().expect("paths");
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            let query = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .map(|p| {
                    (
                        p["name"].as_str().expect("name").to_owned(),
                        resolve(doc, &p["schema"]),
                        p["required"].as_bool().unwrap_or(false),
                    )
                })
                .collect();
            let body = op["requestBody"]["content"]["application/json"]["schema"]
                .as_object()
                .map(|s| resolve(doc, &Value::Object(s.clone())));
            found.push(Operation {
                method,
                path: path.clone(),
                query,
                body,
            });
        }
    }
    // Deletes last: they may take the fixtures away.
    found.sort_by_key(|op| op.method == Method::DELETE);
    found
}

/// The schema with every `$ref` replaced by what it names.
fn resolve(doc: &Value, schema: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            if let Some(name) = map.get("$ref").and_then(Value::as_str) {
                let name = name.trim_start_matches("#/components/schemas/");
                return resolve(doc, &doc["components"]["schemas"][name]);
            }
            Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), resolve(doc, v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve(doc, v)).collect()),
        other => other.clone(),
    }
}

/// The schema's type, looking through `oneOf` / `allOf` / `["t", "null"]`.
fn type_of(schema: &Value) -> (&str, &Value) {
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(options) = schema[key].as_array() {
            if let Some(s) = options.iter().find(|s| type_of(s).0 != "null") {
                return type_of(s);
            }
        }
    }
    let t = match &schema["type"] {
        Value::String(t) => t.as_str(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema["properties"].is_object() => "object",
        _ => "string",
    };
    (t, schema)
}

/// A value the schema accepts, using the fixture's ids where a field names one.
fn valid(name: &str, schema: &Value, f: &Fixture) -> Value {
    let (t, schema) = type_of(schema);
    match t {
        "object" => Value::Object(
            schema["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, s)| (k.clone(), valid(k, s, f)))
                .collect(),
        ),
        "array" if name == "seatIds" => json!([f.seats[0]]),
        "array" => json!([valid(name, &schema["items"], f)]),
        "integer" | "number" => match name {
            "scheduleId" => json!(f.schedule),
            "concertId" => json!(f.concert),
            "reservationId" => json!(f.reservation),
            "rows" | "seatsPerRow" => json!(2),
            "price" => json!(1500),
            _ => schema.get("example").cloned().unwrap_or(json!(1)),
        },
        "boolean" => json!(true),
        _ => match (name, schema["format"].as_str()) {
            (_, Some("date-time")) => json!("2031-06-01T20:00:00Z"),
            ("email", _) => json!(format!("fuzz-{}@example.com", uuid::Uuid::new_v4())),
            ("password", _) => json!("password-123"),
            _ => schema.get("example").cloned().unwrap_or(json!("text")),
        },
    }
}

/// Strings a careless server chokes on.
fn nasty_string(rng: &mut StdRng) -> String {
    let fixed = [
        "\u{0}",
        "a\u{0}b",
        "\u{1}\u{1f}\u{7f}",
        "\u{85}\u{9b}",
        "\t",
        "line\nbreak",
        "\r\n",
        "",
        " ",
        "\u{feff}",
        "\u{202e}evil",
        "💥",
        "null",
        "1e400",
        "-0",
        "9223372036854775808",
        "'; DROP TABLE seats; --",
        "%00",
        "-262143-01-01T00:00:00Z",
        "+262142-12-31T23:59:59Z",
        "0000-01-01T00:00:00Z",
        "4714-11-24T00:00:00-00:00",
        "2031-02-30T20:00:00Z",
    ];
    match rng.gen_range(0..4) {
        0 => {
            // Random characters, half of them controls.
            let len = rng.gen_range(1..40);
            (0..len)
                .map(|_| {
                    if rng.gen_bool(0.5) {
                        char::from_u32(rng.gen_range(0..0xa0)).unwrap_or('?')
                    } else {
                        char::from_u32(rng.gen_range(0xa0..0x3_0000)).unwrap_or('é')
                    }
                })
                .collect()
        }
        1 => {
            let unit = ["x", "é", "\u{0}", "💥"]
                .choose(rng)
                .copied()
                .unwrap_or("x");
            unit.repeat(rng.gen_range(200..20_000))
        }
        _ => fixed.choose(rng).copied().unwrap_or("").to_owned(),
    }
}

/// `valid` with one control character put in somewhere: a value every
/// other check would pass.
fn with_a_control(valid: &str, rng: &mut StdRng) -> String {
    let control = char::from_u32(rng.gen_range(0..0xa0))
        .filter(|c| c.is_control())
        .unwrap_or('\u{0}');
    let mut chars: Vec<char> = valid.chars().collect();
    let at = rng.gen_range(0..=chars.len());
    chars.insert(at, control);
    chars.into_iter().collect()
}

/// Numbers at and past the edges of every integer type a field may have.
fn nasty_number(rng: &mut StdRng) -> Value {
    let numbers = [
        json!(i64::MIN),
        json!(-1),
        json!(0),
        json!(i64::from(i32::MAX) + 1),
        json!(i64::MAX),
        json!(u64::MAX),
        json!(booking_domain::MAX_SEAT_PRICE + 1),
        json!(1.5),
        json!(-1e308),
        json!(1e308),
    ];
    numbers.choose(rng).cloned().unwrap_or(Value::Null)
}

/// A value of any type, often out of range or of the wrong type.
fn nasty_value(rng: &mut StdRng) -> Value {
    match rng.gen_range(0..12) {
        0..=3 => Value::String(nasty_string(rng)),
        4 | 5 => nasty_number(rng),
        6 => Value::Null,
        7 => json!(rng.gen_bool(0.5)),
        8 => json!([]),
        9 => json!({}),
        10 => Value::Array((0..rng.gen_range(5..2_000)).map(|i| json!(i)).collect()),
        _ => json!([[[[null]]], {"a": {"b": "\u{0}"}}]),
    }
}

/// A body text: the valid body with one thing broken (a field replaced,
/// removed or added), or broken JSON.
fn body_text(schema: &Value, f: &Fixture, rng: &mut StdRng) -> String {
    let mut body = valid("", schema, f);
    match rng.gen_range(0..10) {
        0 => {
            let raw = [
                "",
                "{",
                "null",
                "[]",
                "\"text\"",
                "1e400",
                "{\"a\":1e400}",
                "{\"scheduleId\": 123456789012345678901234567890}",
                "\u{0}",
            ];
            return raw.choose(rng).copied().unwrap_or("").to_owned();
        }
        1 => body = nasty_value(rng),
        _ => mutate_somewhere(&mut body, rng),
    }
    body.to_string()
}

/// Changes one field somewhere in `value` (objects and arrays, nested).
fn mutate_somewhere(value: &mut Value, rng: &mut StdRng) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let key = keys.choose(rng).cloned().unwrap_or_default();
            match rng.gen_range(0..8) {
                0 => {
                    map.remove(&key);
                }
                1 => {
                    map.insert(
                        nasty_string(rng).chars().take(30).collect(),
                        nasty_value(rng),
                    );
                }
                2 | 3 => {
                    if let Some(inner) = map.get_mut(&key) {
                        if inner.is_object() || inner.is_array() {
                            return mutate_somewhere(inner, rng);
                        }
                    }
                    map.insert(key, nasty_value(rng));
                }
                4 | 5 => {
                    // Same type, worst value: what gets past deserialising.
                    let worse = match map.get(&key) {
                        Some(Value::String(valid)) if rng.gen_bool(0.5) => {
                            Value::String(with_a_control(valid, rng))
                        }
                        Some(Value::String(_)) => Value::String(nasty_string(rng)),
                        Some(Value::Number(_)) => nasty_number(rng),
                        _ => nasty_value(rng),
                    };
                    map.insert(key, worse);
                }
                _ => {
                    map.insert(key, nasty_value(rng));
                }
            }
        }
        Value::Array(items) if !items.is_empty() && rng.gen_bool(0.6) => {
            let i = rng.gen_range(0..items.len());
            mutate_somewhere(&mut items[i], rng);
        }
        other => *other = nasty_value(rng),
    }
}

fn query_value(schema: &Value, name: &str, f: &Fixture, rng: &mut StdRng) -> String {
    if rng.gen_bool(0.3) {
        return match valid(name, schema, f) {
            Value::String(s) => s,
            v => v.to_string(),
        };
    }
    let value = match nasty_value(rng) {
        Value::String(s) => s,
        v => v.to_string(),
    };
    // Past a few kilobytes a URL is refused before any handler sees it.
    value.chars().take(2_000).collect()
}

fn path_segment(name: &str, f: &Fixture, rng: &mut StdRng) -> String {
    if rng.gen_bool(0.6) {
        let id = match name {
            "scheduleId" => f.schedule,
            _ => *[f.concert, f.schedule, f.reservation]
                .choose(rng)
                .unwrap_or(&1),
        };
        return id.to_string();
    }
    let nasty = [
        "0",
        "-1",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "1.5",
        "1e3",
        "abc",
        "%00",
        "%0A",
        "%E2%80%AE",
        "%FF",
        "%C0%80",
    ];
    if rng.gen_bool(0.1) {
        return "9".repeat(rng.gen_range(20..3000));
    }
    nasty.choose(rng).copied().unwrap_or("0").to_owned()
}

fn case(op: &Operation, f: &Fixture, rng: &mut StdRng) -> Case {
    let path = op
        .path
        .split('/')
        .map(
            |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => path_segment(name, f, rng),
                None => seg.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("/");
    let mut query = Vec::new();
    for (name, schema, required) in &op.query {
        // Optional ones half the time, required ones nearly always.
        let sent = if *required {
            rng.gen_range(0..10) != 0
        } else {
            rng.gen_bool(0.5)
        };
        if sent {
            query.push((name.clone(), query_value(schema, name, f, rng)));
        }
    }
    let body = op.body.as_ref().map(|schema| body_text(schema, f, rng));
    let authorization = match rng.gen_range(0..10) {
        0 => None,
        1 => Some(format!("bearer {}", f.fan.token)),
        2 => Some(format!("Bearer {}", nasty_string(rng))),
        3 | 4 => Some(format!("Bearer {}", f.fan.token)),
        _ => Some(format!("Bearer {}", f.admin.token)),
    };
    let idempotency_key =
        (op.method == Method::POST && rng.gen_bool(0.4)).then(|| match rng.gen_range(0..5) {
            0 => b"key\tone".to_vec(),
            1 => "k".repeat(rng.gen_range(150..400)).into_bytes(),
            2 => "ключ".as_bytes().to_vec(),
            3 => b" ".to_vec(),
            _ => format!("fuzz-{}", rng.gen::<u32>()).into_bytes(),
        });
    Case {
        method: op.method.clone(),
        path,
        query,
        body,
        authorization,
        idempotency_key,
    }
}

/// Sends the case: the status, or what went wrong (a 5xx, no answer).
async fn send(app: &TestApp, case: Case) -> Result<Option<StatusCode>, String> {
    let mut req = app
        .client
        .request(case.method.clone(), app.url(&case.path))
        .query(&case.query)
        .timeout(Duration::from_secs(20));
    if let Some(body) = &case.body {
        req = req
            .header("content-type", "application/json")
            .body(body.clone());
    }
    if let Some(auth) = case
        .authorization
        .as_deref()
        .and_then(|a| reqwest::header::HeaderValue::from_str(a).ok())
    {
        req = req.header("authorization", auth);
    }
    if let Some(key) = case
        .idempotency_key
        .as_deref()
        .and_then(|k| reqwest::header::HeaderValue::from_bytes(k).ok())
    {
        req = req.header("idempotency-key", key);
    }
    let response = match req.send().await {
        Ok(r) => r,
        // Refused by the client itself (a URL it will not build): not sent.
        Err(e) if e.is_builder() => return Ok(None),
        Err(e) => {
            let shown: String = e.to_string().chars().take(300).collect();
            return Err(format!("{} {}: no answer: {shown}", case.method, case.path));
        }
    };
    let status = response.status();
    if !status.is_server_error() {
        // Bodies are not read: a stream (`/api/queue/events`) never ends.
        return Ok(Some(status));
    }
    let text = response.text().await.unwrap_or_default();
    let shown_body: String = case.body.unwrap_or_default().chars().take(300).collect();
    let shown_query: String = format!("{:?}", case.query).chars().take(300).collect();
    Err(format!(
        "{status} for {} {} query {shown_query} body {shown_body:?}: {text}",
        case.method, case.path
    ))
}

async fn fixture(app: &TestApp) -> Fixture {
    let admin = app.admin().await;
    let s = app.schedule(&admin, 2, 4).await;
    let fan = app.user("fuzz-fan").await;
    let held = expect_status(
        app.hold(&fan, s.schedule_id, &s.seat_ids[..1], None).await,
        StatusCode::CREATED,
    )
    .await;
    Fixture {
        admin,
        fan,
        concert: s.concert_id,
        schedule: s.schedule_id,
        seats: s.seat_ids,
        reservation: held["id"].as_i64().expect("reservation id"),
    }
}

async fn no_generated_request_gets_a_5xx(app: &TestApp) {
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    println!("FUZZ_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let doc = expect_status(app.get("/api/openapi.json", None).await, StatusCode::OK).await;
    let ops = operations(&doc);
    assert!(
        ops.len() >= 25,
        "the document lists {} operations",
        ops.len()
    );
    assert!(
        ops.iter().filter(|op| op.body.is_some()).count() >= 8,
        "request bodies found"
    );
    let f = fixture(app).await;
    let cases: Vec<Case> = ops
        .iter()
        .flat_map(|op| {
            (0..CASES_PER_OPERATION)
                .map(|_| op.clone())
                .collect::<Vec<_>>()
        })
        .map(|op| case(&op, &f, &mut rng))
        .collect();
    let started = Instant::now();
    let sent = cases.len();
    let answers: Vec<Result<Option<StatusCode>, String>> = stream::iter(cases)
        .map(|c| send(app, c))
        .buffered(IN_FLIGHT)
        .collect()
        .await;
    let took = started.elapsed();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for status in answers
        .iter()
        .filter_map(|a| a.as_ref().ok().copied().flatten())
    {
        *statuses.entry(status.as_u16()).or_default() += 1;
    }
    println!("{sent} generated requests in {took:?}; answers by status: {statuses:?}");
    let failures: Vec<String> = answers.into_iter().filter_map(Result::err).collect();
    assert!(
        failures.is_empty(),
        "{} of {sent} generated requests got a 5xx (FUZZ_SEED={seed}):\n{}",
        failures.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(took < BUDGET, "the run took {took:?}");
    // The server still answers after all that.
    expect_status(app.get("/health/ready", None).await, StatusCode::OK).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_generated_request_gets_a_5xx_on_postgres() {
    // The waiting room off: every reservation path is reachable.
    let app = spawn_app().await;
    no_generated_request_gets_a_5xx(&app).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_generated_request_gets_a_5xx_in_memory() {
    // The waiting room on, as embedded mode runs: its paths are reached too.
    let app = spawn_embedded_app().await;
    no_generated_request_gets_a_5xx(&app).await;
}
