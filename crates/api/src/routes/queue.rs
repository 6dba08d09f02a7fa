//! The waiting room: enter, position, entry token, and the live SSE stream.

use crate::auth::AuthenticatedUser;
use crate::error::{ApiError, Problem};
use crate::sse::Frame;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{get, post, web, HttpResponse};
use booking_domain::{QueueError, QueueView, ScheduleId};
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

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueuePositionResponse {
    pub schedule_id: i64,
    /// 1-based place among those waiting; 0 once admitted.
    pub position: u64,
    /// How many are waiting in all.
    pub waiting: u64,
    pub admitted: bool,
    /// A rough estimate, in seconds; 0 once admitted.
    pub estimated_wait_secs: i64,
}

impl QueuePositionResponse {
    fn new(schedule: ScheduleId, view: QueueView) -> Self {
        Self {
            schedule_id: schedule.0,
            position: view.position.position,
            waiting: view.position.waiting,
            admitted: view.position.admitted,
            estimated_wait_secs: view.estimated_wait.num_seconds(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntryTokenResponse {
    pub schedule_id: i64,
    /// Send as `X-Queue-Token` with `POST /api/reservations`; single use.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Joins the schedule's waiting room; entering again keeps the first place.
#[utoipa::path(
    tag = "queue",
    request_body = EnterQueueRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = QueuePositionResponse),
        (status = 404, description = "Unknown schedule, or the waiting room is off", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/api/queue/enter")]
pub async fn enter(
    state: web::Data<AppState>,
    user: AuthenticatedUser,
    body: web::Json<EnterQueueRequest>,
) -> Result<HttpResponse, ApiError> {
    let schedule = ScheduleId(body.schedule_id);
    let view = state
        .service
        .admissions
        .enter_queue(user.id, schedule)
        .await?;
    Ok(HttpResponse::Ok().json(QueuePositionResponse::new(schedule, view)))
}

#[utoipa::path(
    tag = "queue",
    params(ScheduleQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = QueuePositionResponse),
        (status = 404, description = "Not in this waiting room", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/api/queue/position")]
pub async fn position(
    state: web::Data<AppState>,
    user: AuthenticatedUser,
    query: web::Query<ScheduleQuery>,
) -> Result<HttpResponse, ApiError> {
    let schedule = ScheduleId(query.schedule_id);
    let view = state
        .service
        .admissions
        .queue_position(user.id, schedule)
        .await?;
    Ok(HttpResponse::Ok().json(QueuePositionResponse::new(schedule, view)))
}

/// The entry token, once admitted.
#[utoipa::path(
    tag = "queue",
    params(ScheduleQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = EntryTokenResponse),
        (status = 404, description = "Not in this waiting room", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not admitted yet, or the token was used", body = Problem, content_type = "application/problem+json")
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

/// Server-Sent Events: `position` events (`{position, waiting,
/// estimatedWaitSecs}`) when the position changes, at most once a second; a
/// `: heartbeat` comment every 15 s; then one `admitted` event (`{token,
/// expiresAt}`), after which the stream ends.
#[utoipa::path(
    tag = "queue",
    params(ScheduleQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream", body = String),
        (status = 404, description = "Not in this waiting room", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/api/queue/events")]
pub async fn events(
    state: web::Data<AppState>,
    user: AuthenticatedUser,
    query: web::Query<ScheduleQuery>,
) -> Result<HttpResponse, ApiError> {
    let schedule = ScheduleId(query.schedule_id);
    let hub = state
        .hub
        .as_ref()
        .ok_or_else(|| ApiError::from(QueueError::Disabled))?;
    let view = state
        .service
        .admissions
        .queue_position(user.id, schedule)
        .await?;
    let rx = if view.position.admitted {
        // Already in: the token, if still unused, and the stream ends.
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        if let Ok(token) = state
            .service
            .admissions
            .entry_token(user.id, schedule)
            .await
        {
            let _ = tx.try_send(crate::sse::admitted_frame(&token));
        }
        rx
    } else {
        hub.subscribe(schedule, user.id, view)
    };
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
