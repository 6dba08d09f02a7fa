//! The waiting room: enter, status, pass (entry token), stream ticket, and
//! the live SSE stream.

use crate::auth::{authenticate, AdminUser, AuthenticatedUser, JwtKeys};
use crate::dto::QueueStatusResponse;
use crate::error::{ApiError, Problem};
use crate::sse::Frame;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use booking_domain::{QueueError, ScheduleId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnterQueueRequest {
    pub schedule_id: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ScheduleQuery {
    pub schedule_id: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    pub schedule_id: i64,
    /// A stream ticket from `POST /api/queue/stream-ticket`, for clients
    /// that cannot send a header (a browser's `EventSource`).
    pub ticket: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntryTokenResponse {
    pub schedule_id: i64,
    /// Send as `X-Queue-Token` with `POST /api/reservations`; single use.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamTicketResponse {
    pub schedule_id: i64,
    /// Pass as `ticket` to `GET /api/queue/events`; good for that alone.
    pub ticket: String,
    pub expires_at: DateTime<Utc>,
}

/// Joins the schedule's waiting room; entering again keeps one's place.
/// Before the sale opens, entrants join a pre-queue whose order is drawn at
/// the opening; after it, they join the end of the line.
#[utoipa::path(
    tag = "queue",
    request_body = EnterQueueRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = QueueStatusResponse),
        (status = 404, description = "Unknown schedule, or the waiting room is off", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "Sold out (`sold-out`): no seat is free or held", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/api/queue/enter")]
pub async fn enter(
    state: web::Data<AppState>,
    user: AuthenticatedUser,
    body: web::Json<EnterQueueRequest>,
) -> Result<HttpResponse, ApiError> {
    let schedule = ScheduleId(body.schedule_id);
    let status = state
        .service
        .admissions
        .enter_queue(user.id, schedule)
        .await?;
    Ok(HttpResponse::Ok().json(QueueStatusResponse::new(schedule, &status)))
}

#[utoipa::path(
    tag = "queue",
    params(ScheduleQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = QueueStatusResponse),
        (status = 404, description = "Not in this waiting room", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "Sold out (`sold-out`)", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/api/queue/position")]
pub async fn position(
    state: web::Data<AppState>,
    user: AuthenticatedUser,
    query: web::Query<ScheduleQuery>,
) -> Result<HttpResponse, ApiError> {
    let schedule = ScheduleId(query.schedule_id);
    let status = state
        .service
        .admissions
        .queue_status(user.id, schedule)
        .await?;
    Ok(HttpResponse::Ok().json(QueueStatusResponse::new(schedule, &status)))
}

/// The pass (entry token), once admitted.
#[utoipa::path(
    tag = "queue",
    params(ScheduleQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = EntryTokenResponse),
        (status = 404, description = "Not in this waiting room", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not admitted yet (`not-admitted`), or the pass was used by a hold (`token-used`)", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "Sold out (`sold-out`)", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/api/queue/token")]
pub async fn entry_token(
    state: web::Data<AppState>,
    user: AuthenticatedUser,
    query: web::Query<ScheduleQuery>,
) -> Result<HttpResponse, ApiError> {
    let schedule = ScheduleId(query.schedule_id);
    let token = state
        .service
        .admissions
        .entry_token(user.id, schedule)
        .await?;
    Ok(HttpResponse::Ok().json(EntryTokenResponse {
        schedule_id: schedule.0,
        token: token.token,
        expires_at: token.expires_at,
    }))
}

/// A short-lived ticket that opens the caller's stream for one schedule:
/// a browser's `EventSource` cannot send an `Authorization` header, and the
/// long-lived login token must not go into a URL.
#[utoipa::path(
    tag = "queue",
    request_body = EnterQueueRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = StreamTicketResponse),
        (status = 404, description = "The waiting room is off", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/api/queue/stream-ticket")]
pub async fn stream_ticket(
    state: web::Data<AppState>,
    keys: web::Data<JwtKeys>,
    user: AuthenticatedUser,
    body: web::Json<EnterQueueRequest>,
) -> Result<HttpResponse, ApiError> {
    if state.hub.is_none() {
        return Err(QueueError::Disabled.into());
    }
    let schedule = ScheduleId(body.schedule_id);
    let expires_at = state.clock.now() + state.stream_ticket_ttl;
    let ticket = keys.issue_stream_ticket(user.id, schedule, state.clock.now(), expires_at)?;
    Ok(HttpResponse::Ok().json(StreamTicketResponse {
        schedule_id: schedule.0,
        ticket,
        expires_at,
    }))
}

/// Server-Sent Events, authenticated by `Authorization: Bearer` or by a
/// `ticket` from `POST /api/queue/stream-ticket`. Events (the extension
/// `x-sse-events` names each one's `data` schema):
///
/// - `position`: a `QueueStatusResponse`, first at once, then whenever it
///   changes (at most once a tick, `queue.tick_ms`);
/// - `admitted`: an `AdmittedEvent`, the pass; the stream ends;
/// - `sold-out`: a `SoldOutEvent`, nothing is left; the stream ends;
/// - `left`: a `LeftEvent`, no longer in the room (the pass expired
///   unused); the stream ends;
/// - `: heartbeat` comments every `queue.sse_heartbeat_secs`.
#[utoipa::path(
    tag = "queue",
    params(StreamQuery),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream", body = String),
        (status = 401, description = "No valid bearer token or stream ticket", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not in this waiting room", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The pass was used by a hold (`token-used`)", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "Sold out (`sold-out`)", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/api/queue/events")]
pub async fn events(
    req: HttpRequest,
    state: web::Data<AppState>,
    keys: web::Data<JwtKeys>,
    query: web::Query<StreamQuery>,
) -> Result<HttpResponse, ApiError> {
    let schedule = ScheduleId(query.schedule_id);
    let user = match &query.ticket {
        Some(ticket) => keys.verify_stream_ticket(ticket, schedule)?,
        None => authenticate(&req)?.id,
    };
    let hub = state
        .hub
        .as_ref()
        .ok_or_else(|| ApiError::from(QueueError::Disabled))?;
    let start = state
        .service
        .admissions
        .stream_start(user, schedule)
        .await?;
    let rx = hub.subscribe(schedule, user, start);
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|frame| (Ok::<Frame, actix_web::Error>(frame), rx))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // Proxies (nginx) must pass events through as they come.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream))
}

/// The recorded draw of a schedule's pre-queue: replaying
/// `draw_order(seed, arrivals.len())` over `arrivals` gives `drawn`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrawResponse {
    pub schedule_id: i64,
    /// Seeds the Park-Miller generator (multiplier 48271, modulus 2^31 - 1)
    /// that drives a Fisher-Yates shuffle from the last place down.
    pub seed: u64,
    pub drawn_at: DateTime<Utc>,
    /// User ids of the pre-queue in arrival order.
    pub arrivals: Vec<i64>,
    /// The same users in the drawn order: the head of the line first.
    pub drawn: Vec<i64>,
}

/// The draw that ordered the pre-queue at the opening, for an audit.
#[utoipa::path(
    tag = "admin",
    params(("id" = i64, Path, description = "Schedule id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = DrawResponse),
        (status = 404, description = "No draw yet (the sale has not opened), or the waiting room is off", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/api/admin/schedules/{id}/draw")]
pub async fn draw(
    state: web::Data<AppState>,
    _admin: AdminUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let record = state
        .service
        .admissions
        .draw_record(ScheduleId(*id))
        .await?;
    Ok(HttpResponse::Ok().json(DrawResponse {
        schedule_id: record.schedule.0,
        seed: record.seed,
        drawn_at: record.drawn_at,
        arrivals: record.arrivals.iter().map(|u| u.0).collect(),
        drawn: record.drawn.iter().map(|u| u.0).collect(),
    }))
}
