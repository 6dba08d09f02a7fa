//! Liveness and readiness probes.

use crate::dto::HealthResponse;
use crate::state::AppState;
use actix_web::{get, web, HttpResponse};

/// The process is up and serving HTTP.
#[utoipa::path(tag = "health", responses((status = 200, body = HealthResponse)))]
#[get("/health/live")]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(HealthResponse {
        status: "UP",
        strategy: None,
        store: None,
        waiting_room: None,
        detail: None,
    })
}

/// Ready to take traffic: the database (or the in-memory store) and, when
/// configured, Redis answer. Names the active strategy, the store and whether
/// the waiting room is on.
#[utoipa::path(
    tag = "health",
    responses(
        (status = 200, body = HealthResponse),
        (status = 503, description = "The database or, when configured, Redis does not answer", body = HealthResponse)
    )
)]
#[get("/health/ready")]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let strategy = Some(state.service.strategy());
    let store = Some(state.store_kind);
    let waiting_room = Some(if state.service.waiting_room_enabled() {
        "enabled"
    } else {
        "disabled"
    });
    match state.readiness.check_ready().await {
        Ok(()) => HttpResponse::Ok().json(HealthResponse {
            status: "UP",
            strategy,
            store,
            waiting_room,
            detail: None,
        }),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            HttpResponse::ServiceUnavailable()
                .insert_header((actix_web::http::header::RETRY_AFTER, "5"))
                .json(HealthResponse {
                    status: "DOWN",
                    strategy,
                    store,
                    waiting_room,
                    detail: Some(e.to_string()),
                })
        }
    }
}
