//! One synthetic user: a JWT minted locally, an entry into the waiting
//! room, then its event stream, held open and read as it arrives.

use crate::frames::{FrameReader, Received};
use anyhow::Context;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{header, Client, StatusCode, Url};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long one `POST /api/queue/enter` may take.
const ENTER_TIMEOUT: Duration = Duration::from_secs(10);
/// Transport failures of an enter are retried this often (entering is
/// idempotent: the first place is kept).
const ENTER_RETRIES: u32 = 2;

/// The claims the API expects (see crates/api/src/auth.rs).
#[derive(Debug, Serialize)]
struct Claims<'a> {
    sub: String,
    role: &'a str,
    iat: i64,
    exp: i64,
}

/// A USER token for `user`, valid for `ttl_secs`.
pub fn mint_jwt(key: &EncodingKey, user: i64, ttl_secs: i64) -> anyhow::Result<String> {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: user.to_string(),
        role: "USER",
        iat: now,
        exp: now + ttl_secs,
    };
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key).context("signing a JWT")
}

/// Where the streams go, and the two HTTP clients: one keep-alive client
/// for the enters, one that never reuses a connection for the streams.
#[derive(Debug)]
pub struct Target {
    pub enter_client: Client,
    pub stream_client: Client,
    pub enter_url: Url,
    pub events_url: Url,
    pub schedule_id: i64,
    pub open_timeout: Duration,
}

impl Target {
    pub fn new(base: &Url, schedule_id: i64, open_timeout: Duration) -> anyhow::Result<Self> {
        let enter_client = Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(4)
            .tcp_nodelay(true)
            .build()?;
        let stream_client = Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(0)
            .tcp_nodelay(true)
            .build()?;
        let mut events_url = base.join("/api/queue/events")?;
        events_url
            .query_pairs_mut()
            .append_pair("scheduleId", &schedule_id.to_string());
        Ok(Self {
            enter_client,
            stream_client,
            enter_url: base.join("/api/queue/enter")?,
            events_url,
            schedule_id,
            open_timeout,
        })
    }
}

/// The answer to an enter.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Entered {
    /// 1-based place at the moment of entering; 0 when already admitted.
    pub position: u64,
    pub admitted: bool,
}

/// Enters the waiting room; `Err` carries a short reason. Also returns how
/// many transport retries it took.
pub async fn enter(target: &Target, jwt: &str) -> (Result<Entered, String>, u32) {
    let body = serde_json::json!({ "scheduleId": target.schedule_id });
    let mut retries = 0;
    loop {
        let sent = target
            .enter_client
            .post(target.enter_url.clone())
            .bearer_auth(jwt)
            .json(&body)
            .timeout(ENTER_TIMEOUT)
            .send()
            .await;
        let result = match sent {
            Ok(response) if response.status() == StatusCode::OK => response
                .json::<Entered>()
                .await
                .map_err(|e| format!("enter: unreadable answer: {}", root_cause(&e))),
            Ok(response) => Err(format!("enter: HTTP {}", response.status().as_u16())),
            Err(e) if retries < ENTER_RETRIES && (e.is_connect() || e.is_request()) => {
                retries += 1;
                continue;
            }
            Err(e) => Err(format!("enter: {}", root_cause(&e))),
        };
        return (result, retries);
    }
}

/// Counters every stream task updates, read by the driver and the sampler.
#[derive(Debug)]
pub struct Shared {
    pub start: Instant,
    /// Streams open right now.
    pub open_now: AtomicUsize,
    /// Streams that opened or failed to open.
    pub settled: AtomicUsize,
    /// The latest moment a stream opened, in µs since `start`.
    pub last_open_micros: AtomicU64,
    /// `true`: every task closes its stream and reports.
    pub stop: watch::Receiver<bool>,
}

impl Shared {
    pub fn secs(&self, at: Instant) -> f64 {
        at.duration_since(self.start).as_secs_f64()
    }

    fn settle(&self) {
        self.settled.fetch_add(1, Ordering::SeqCst);
    }
}

/// How a stream ended.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", tag = "kind", content = "reason")]
pub enum StreamEnd {
    /// Never opened (see `failure`).
    NotOpened,
    /// Still open when this tool closed it.
    ClosedByClient,
    /// The server ended the response normally.
    ClosedByServer,
    /// A read error (reset, truncated chunk, unreadable bytes).
    Error(String),
}

/// Everything one stream saw.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamOutcome {
    /// 0-based arrival order: the order of the (sequential) enters.
    pub arrival: usize,
    pub user: i64,
    pub entered_position: u64,
    pub entered_admitted: bool,
    pub failure: Option<String>,
    /// When the response headers arrived, seconds since the run started.
    pub opened_at: Option<f64>,
    pub open_latency_ms: Option<f64>,
    pub positions: u32,
    /// A waiting user's place went up: the queue would have lost its order.
    pub position_increases: u32,
    pub heartbeats: u32,
    pub other_events: u32,
    pub admitted_at: Option<f64>,
    pub admitted_with_token: bool,
    pub left_at: Option<f64>,
    pub ended_at: Option<f64>,
    pub end: StreamEnd,
}

/// Opens the user's event stream and reads it until the server ends it or
/// `shared.stop` turns true.
pub async fn hold_stream(
    target: &Target,
    shared: &Shared,
    arrival: usize,
    user: i64,
    jwt: String,
    entered: Entered,
) -> StreamOutcome {
    let mut outcome = StreamOutcome {
        arrival,
        user,
        entered_position: entered.position,
        entered_admitted: entered.admitted,
        failure: None,
        opened_at: None,
        open_latency_ms: None,
        positions: 0,
        position_increases: 0,
        heartbeats: 0,
        other_events: 0,
        admitted_at: None,
        admitted_with_token: false,
        left_at: None,
        ended_at: None,
        end: StreamEnd::NotOpened,
    };
    let mut stop = shared.stop.clone();
    let requested = Instant::now();
    let request = target
        .stream_client
        .get(target.events_url.clone())
        .bearer_auth(&jwt)
        .header(header::ACCEPT, "text/event-stream")
        .send();
    let opened = tokio::select! {
        r = tokio::time::timeout(target.open_timeout, request) => r,
        _ = stop.wait_for(|&s| s) => {
            outcome.failure = Some("stopped before the stream opened".into());
            shared.settle();
            return outcome;
        }
    };
    let mut response = match opened {
        Err(_) => {
            outcome.failure = Some(format!(
                "open: no response within {} s",
                target.open_timeout.as_secs()
            ));
            shared.settle();
            return outcome;
        }
        Ok(Err(e)) => {
            outcome.failure = Some(format!("open: {}", root_cause(&e)));
            shared.settle();
            return outcome;
        }
        Ok(Ok(response)) if response.status() != StatusCode::OK => {
            outcome.failure = Some(format!("open: HTTP {}", response.status().as_u16()));
            shared.settle();
            return outcome;
        }
        Ok(Ok(response)) => response,
    };
    let now = Instant::now();
    outcome.opened_at = Some(shared.secs(now));
    outcome.open_latency_ms = Some(now.duration_since(requested).as_secs_f64() * 1e3);
    let micros = u64::try_from(now.duration_since(shared.start).as_micros()).unwrap_or(u64::MAX);
    shared.last_open_micros.fetch_max(micros, Ordering::SeqCst);
    shared.open_now.fetch_add(1, Ordering::SeqCst);
    shared.settle();

    let mut reader = FrameReader::default();
    let mut received = Vec::new();
    let mut last_position: Option<u64> = None;
    outcome.end = loop {
        let chunk = tokio::select! {
            biased;
            _ = stop.wait_for(|&s| s) => break StreamEnd::ClosedByClient,
            chunk = response.chunk() => chunk,
        };
        let bytes = match chunk {
            Ok(Some(bytes)) => bytes,
            Ok(None) => break StreamEnd::ClosedByServer,
            Err(e) => break StreamEnd::Error(root_cause(&e)),
        };
        if reader.feed(&bytes, &mut received).is_err() {
            break StreamEnd::Error("a line longer than 64 KiB".into());
        }
        let at = shared.secs(Instant::now());
        for item in received.drain(..) {
            match Received::from(item) {
                Received::Position { position, .. } => {
                    outcome.positions += 1;
                    if last_position.is_some_and(|last| position > last) {
                        outcome.position_increases += 1;
                    }
                    last_position = Some(position);
                }
                Received::Admitted { with_token } => {
                    outcome.admitted_at.get_or_insert(at);
                    outcome.admitted_with_token |= with_token;
                }
                Received::Left => outcome.left_at = Some(at),
                Received::Comment(text) if text == "heartbeat" => outcome.heartbeats += 1,
                Received::Comment(_) | Received::Other(_) => outcome.other_events += 1,
            }
        }
    };
    if outcome.end != StreamEnd::ClosedByClient {
        outcome.ended_at = Some(shared.secs(Instant::now()));
    }
    shared.open_now.fetch_sub(1, Ordering::SeqCst);
    outcome
}

/// The innermost cause: "Connection refused (os error 111)" rather than
/// reqwest's "error sending request for url (...)".
pub fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    let text = cause.to_string();
    if text.is_empty() {
        error.to_string()
    } else {
        text
    }
}
