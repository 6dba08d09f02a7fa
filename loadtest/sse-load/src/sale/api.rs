//! The HTTP calls of a sale, each answer sorted into what the buyer does
//! next; anything unexpected comes back as a `Failure` to count.

use super::events::QueueStatus;
use crate::connection::root_cause;
use chrono::{DateTime, Utc};
use reqwest::{header, Client, Response, StatusCode, Url};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long any call but the stream may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stream may take to answer with its headers.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest pause a 409 `contention` can ask for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(2);

/// What a failure is counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Endpoint {
    Health,
    Schedules,
    SeatMap,
    Enter,
    StreamTicket,
    Events,
    Hold,
    Pay,
}

impl Endpoint {
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Health => "health",
            Endpoint::Schedules => "schedules",
            Endpoint::SeatMap => "seat-map",
            Endpoint::Enter => "enter",
            Endpoint::StreamTicket => "stream-ticket",
            Endpoint::Events => "events",
            Endpoint::Hold => "hold",
            Endpoint::Pay => "pay",
        }
    }
}

/// An answer nobody should get: a 5xx, a broken connection, or a status
/// the protocol does not have for this call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub endpoint: Endpoint,
    pub kind: FailureKind,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailureKind {
    ServerError(u16),
    /// No answer: refused, reset, timed out (the innermost cause).
    Connection(String),
    /// A 4xx the protocol does not give here, with its problem type if any.
    Unexpected(u16, String),
    /// A stream that ended, or went silent, without a final event.
    StreamCut(String),
}

impl Failure {
    /// The HTTP status the failure was answered with; 0 when there was none.
    pub fn status(&self) -> u16 {
        match &self.kind {
            FailureKind::ServerError(status) | FailureKind::Unexpected(status, _) => *status,
            FailureKind::Connection(_) | FailureKind::StreamCut(_) => 0,
        }
    }
}

impl FailureKind {
    /// The label a failure is counted under in the report.
    pub fn label(&self) -> String {
        match self {
            FailureKind::ServerError(status) => format!("HTTP {status}"),
            FailureKind::Connection(cause) => format!("connection: {cause}"),
            FailureKind::Unexpected(status, kind) if kind.is_empty() => format!("HTTP {status}"),
            FailureKind::Unexpected(status, kind) => format!("HTTP {status} {kind}"),
            FailureKind::StreamCut(why) => format!("stream cut: {why}"),
        }
    }
}

impl Failure {
    fn transport(endpoint: Endpoint, e: &reqwest::Error) -> Self {
        let cause = if e.is_timeout() {
            "timed out".to_owned()
        } else {
            root_cause(e)
        };
        Self {
            endpoint,
            kind: FailureKind::Connection(cause),
        }
    }

    /// Transport failures may be retried; a 5xx of an idempotent call too.
    pub fn retryable(&self) -> bool {
        matches!(
            self.kind,
            FailureKind::Connection(_) | FailureKind::ServerError(_)
        )
    }
}

/// The problem type's last segment (`/problems/seat-taken` -> `seat-taken`)
/// and the seats it names.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Problem {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    seat_ids: Vec<i64>,
}

async fn problem(response: Response) -> Problem {
    let mut p: Problem = response.json().await.unwrap_or_default();
    if let Some(slug) = p.kind.rsplit('/').next() {
        p.kind = slug.to_owned();
    }
    p
}

async fn unexpected(endpoint: Endpoint, response: Response) -> Failure {
    let status = response.status().as_u16();
    let kind = if status >= 500 {
        FailureKind::ServerError(status)
    } else {
        FailureKind::Unexpected(status, problem(response).await.kind)
    };
    Failure { endpoint, kind }
}

/// One instance of the API.
#[derive(Debug, Clone)]
pub struct Instance {
    pub base: Url,
}

impl Instance {
    fn url(&self, path: &str) -> Url {
        // The base was checked at start: a path always joins.
        self.base.join(path).expect("a path joins a base URL")
    }
}

pub async fn check_live(client: &Client, at: &Instance) -> Result<(), Failure> {
    let response = client
        .get(at.url("/health/live"))
        .timeout(CALL_TIMEOUT)
        .send()
        .await
        .map_err(|e| Failure::transport(Endpoint::Health, &e))?;
    if !response.status().is_success() {
        return Err(unexpected(Endpoint::Health, response).await);
    }
    Ok(())
}

/// The seats the map shows free, and how many the schedule has.
pub async fn free_seats(
    client: &Client,
    at: &Instance,
    jwt: &str,
    concert: i64,
    schedule: i64,
) -> Result<(Vec<i64>, usize), Failure> {
    #[derive(Deserialize)]
    struct Seat {
        id: i64,
        available: bool,
    }
    #[derive(Deserialize)]
    struct SeatMap {
        seats: Vec<Seat>,
    }
    let url = at.url(&format!(
        "/api/concerts/{concert}/schedules/{schedule}/seats"
    ));
    let response = client
        .get(url)
        .bearer_auth(jwt)
        .timeout(CALL_TIMEOUT)
        .send()
        .await
        .map_err(|e| Failure::transport(Endpoint::SeatMap, &e))?;
    if response.status() != StatusCode::OK {
        return Err(unexpected(Endpoint::SeatMap, response).await);
    }
    let map: SeatMap = response
        .json()
        .await
        .map_err(|e| Failure::transport(Endpoint::SeatMap, &e))?;
    let total = map.seats.len();
    let free = map
        .seats
        .into_iter()
        .filter(|s| s.available)
        .map(|s| s.id)
        .collect();
    Ok((free, total))
}

/// The schedule's `salesOpenAt`: `None` when it has none (open now) or the
/// server does not know the field.
pub async fn sales_open_at(
    client: &Client,
    at: &Instance,
    concert: i64,
    schedule: i64,
) -> Result<Option<DateTime<Utc>>, Failure> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Schedule {
        id: i64,
        #[serde(default)]
        sales_open_at: Option<DateTime<Utc>>,
    }
    let response = client
        .get(at.url(&format!("/api/concerts/{concert}/schedules")))
        .timeout(CALL_TIMEOUT)
        .send()
        .await
        .map_err(|e| Failure::transport(Endpoint::Schedules, &e))?;
    if response.status() != StatusCode::OK {
        return Err(unexpected(Endpoint::Schedules, response).await);
    }
    let schedules: Vec<Schedule> = response
        .json()
        .await
        .map_err(|e| Failure::transport(Endpoint::Schedules, &e))?;
    match schedules.into_iter().find(|s| s.id == schedule) {
        Some(s) => Ok(s.sales_open_at),
        None => Err(Failure {
            endpoint: Endpoint::Schedules,
            kind: FailureKind::Unexpected(404, format!("no schedule {schedule} in the concert")),
        }),
    }
}

/// An answer of the waiting room: in (with the status), or sold out (410).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomAnswer<T> {
    Ok(T),
    SoldOut,
}

pub async fn enter(
    client: &Client,
    at: &Instance,
    jwt: &str,
    schedule: i64,
) -> Result<RoomAnswer<QueueStatus>, Failure> {
    let response = client
        .post(at.url("/api/queue/enter"))
        .bearer_auth(jwt)
        .json(&serde_json::json!({ "scheduleId": schedule }))
        .timeout(CALL_TIMEOUT)
        .send()
        .await
        .map_err(|e| Failure::transport(Endpoint::Enter, &e))?;
    match response.status() {
        StatusCode::OK => response
            .json()
            .await
            .map(RoomAnswer::Ok)
            .map_err(|e| Failure::transport(Endpoint::Enter, &e)),
        StatusCode::GONE => Ok(RoomAnswer::SoldOut),
        _ => Err(unexpected(Endpoint::Enter, response).await),
    }
}

pub async fn stream_ticket(
    client: &Client,
    at: &Instance,
    jwt: &str,
    schedule: i64,
) -> Result<RoomAnswer<String>, Failure> {
    #[derive(Deserialize)]
    struct Ticket {
        ticket: String,
    }
    let response = client
        .post(at.url("/api/queue/stream-ticket"))
        .bearer_auth(jwt)
        .json(&serde_json::json!({ "scheduleId": schedule }))
        .timeout(CALL_TIMEOUT)
        .send()
        .await
        .map_err(|e| Failure::transport(Endpoint::StreamTicket, &e))?;
    match response.status() {
        StatusCode::OK => response
            .json::<Ticket>()
            .await
            .map(|t| RoomAnswer::Ok(t.ticket))
            .map_err(|e| Failure::transport(Endpoint::StreamTicket, &e)),
        StatusCode::GONE => Ok(RoomAnswer::SoldOut),
        _ => Err(unexpected(Endpoint::StreamTicket, response).await),
    }
}

/// How a stream proves who is listening.
#[derive(Debug, Clone)]
pub enum StreamAuth {
    /// `?ticket=`, as a browser's `EventSource` must.
    Ticket(String),
    Bearer(String),
}

/// Opens the event stream: the response, its body still to read.
pub async fn open_events(
    client: &Client,
    at: &Instance,
    schedule: i64,
    auth: &StreamAuth,
) -> Result<RoomAnswer<Response>, Failure> {
    let mut url = at.url("/api/queue/events");
    url.query_pairs_mut()
        .append_pair("scheduleId", &schedule.to_string());
    let request = match auth {
        StreamAuth::Ticket(ticket) => {
            url.query_pairs_mut().append_pair("ticket", ticket);
            client.get(url)
        }
        StreamAuth::Bearer(jwt) => client.get(url).bearer_auth(jwt),
    };
    let sent = request.header(header::ACCEPT, "text/event-stream").send();
    let response = match tokio::time::timeout(OPEN_TIMEOUT, sent).await {
        Err(_) => {
            return Err(Failure {
                endpoint: Endpoint::Events,
                kind: FailureKind::Connection("no headers within 30 s".into()),
            })
        }
        Ok(r) => r.map_err(|e| Failure::transport(Endpoint::Events, &e))?,
    };
    match response.status() {
        StatusCode::OK => Ok(RoomAnswer::Ok(response)),
        StatusCode::GONE => Ok(RoomAnswer::SoldOut),
        _ => Err(unexpected(Endpoint::Events, response).await),
    }
}

/// The answers to a hold that the buyer acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldAnswer {
    Held {
        reservation: i64,
    },
    SeatTaken {
        seats: Vec<i64>,
    },
    SoldOut,
    Contention {
        retry_after: Duration,
    },
    /// Any other refusal (403 pass refused, 409 buyer-limit, 422...): the
    /// buyer stops.
    Refused {
        status: u16,
        kind: String,
    },
}

pub struct HoldRequest<'a> {
    pub jwt: &'a str,
    pub queue_token: &'a str,
    pub idempotency_key: &'a str,
    pub schedule: i64,
    pub seats: &'a [i64],
}

pub async fn hold(
    client: &Client,
    at: &Instance,
    request: &HoldRequest<'_>,
) -> Result<HoldAnswer, Failure> {
    #[derive(Deserialize)]
    struct Reservation {
        id: i64,
    }
    let response = client
        .post(at.url("/api/reservations"))
        .bearer_auth(request.jwt)
        .header("X-Queue-Token", request.queue_token)
        .header("Idempotency-Key", request.idempotency_key)
        .json(&serde_json::json!({ "scheduleId": request.schedule, "seatIds": request.seats }))
        .timeout(CALL_TIMEOUT)
        .send()
        .await
        .map_err(|e| Failure::transport(Endpoint::Hold, &e))?;
    let status = response.status();
    if status == StatusCode::CREATED {
        return response
            .json::<Reservation>()
            .await
            .map(|r| HoldAnswer::Held { reservation: r.id })
            .map_err(|e| Failure::transport(Endpoint::Hold, &e));
    }
    if status.is_server_error() {
        return Err(unexpected(Endpoint::Hold, response).await);
    }
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(Duration::from_millis(200), Duration::from_secs)
        .min(MAX_RETRY_AFTER);
    let p = problem(response).await;
    Ok(match (status, p.kind.as_str()) {
        (StatusCode::CONFLICT, "seat-taken") => HoldAnswer::SeatTaken { seats: p.seat_ids },
        (StatusCode::CONFLICT | StatusCode::GONE, "sold-out") => HoldAnswer::SoldOut,
        (StatusCode::CONFLICT, "contention") => HoldAnswer::Contention { retry_after },
        _ => HoldAnswer::Refused {
            status: status.as_u16(),
            kind: p.kind,
        },
    })
}

/// Pays a hold at once; a refusal (expired, not pending) is a failure too.
pub async fn pay(
    client: &Client,
    at: &Instance,
    jwt: &str,
    idempotency_key: &str,
    reservation: i64,
) -> Result<(), Failure> {
    let response = client
        .post(at.url("/api/payments"))
        .bearer_auth(jwt)
        .header("Idempotency-Key", idempotency_key)
        .json(&serde_json::json!({ "reservationId": reservation }))
        .timeout(CALL_TIMEOUT)
        .send()
        .await
        .map_err(|e| Failure::transport(Endpoint::Pay, &e))?;
    match response.status() {
        StatusCode::CREATED | StatusCode::OK => Ok(()),
        _ => Err(unexpected(Endpoint::Pay, response).await),
    }
}
