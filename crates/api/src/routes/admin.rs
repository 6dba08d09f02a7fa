//! Admin catalogue: concerts and schedules (with their generated seat grid),
//! and the live monitor of a schedule's sale.

use crate::auth::AdminUser;
use crate::dto::{
    ConcertRequest, ConcertResponse, CreateScheduleRequest, MonitorResponse, ScheduleResponse,
    UpdateScheduleRequest,
};
use crate::error::{ApiError, Problem};
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{delete, get, post, put, web, HttpResponse};
use booking_domain::{AdminError, ConcertId, ScheduleId};

fn invalid(msg: String) -> ApiError {
    AdminError::Invalid(msg).into()
}

#[utoipa::path(
    tag = "admin",
    request_body = ConcertRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, body = ConcertResponse),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A title, artist or venue empty or over 200 characters, a description over 4,000, or a control character in any of them (tab and line breaks are allowed in `description`); the detail names the field", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/api/admin/concerts")]
pub async fn create_concert(
    state: web::Data<AppState>,
    _admin: AdminUser,
    body: web::Json<ConcertRequest>,
) -> Result<HttpResponse, ApiError> {
    let concert = state
        .service
        .admin
        .create_concert(body.parse().map_err(invalid)?)
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/concerts/{}", concert.id)))
        .json(ConcertResponse::from(concert)))
}

#[utoipa::path(
    tag = "admin",
    params(("id" = i64, Path, description = "Concert id")),
    request_body = ConcertRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = ConcertResponse),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "As for creating a concert: the detail names the field", body = Problem, content_type = "application/problem+json")
    )
)]
#[put("/api/admin/concerts/{id}")]
pub async fn update_concert(
    state: web::Data<AppState>,
    _admin: AdminUser,
    id: web::Path<i64>,
    body: web::Json<ConcertRequest>,
) -> Result<HttpResponse, ApiError> {
    let details = body.parse().map_err(invalid)?;
    let concert = state
        .service
        .admin
        .update_concert(ConcertId(*id), details)
        .await?;
    Ok(HttpResponse::Ok().json(ConcertResponse::from(concert)))
}

/// Deletes a concert and its schedules; refused (409) once any of them has reservations.
#[utoipa::path(
    tag = "admin",
    params(("id" = i64, Path, description = "Concert id")),
    security(("bearer" = [])),
    responses(
        (status = 204),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")
    )
)]
#[delete("/api/admin/concerts/{id}")]
pub async fn delete_concert(
    state: web::Data<AppState>,
    _admin: AdminUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    state.service.admin.delete_concert(ConcertId(*id)).await?;
    // This instance's seat maps go now; the others' at their next rebuild.
    state.seat_maps.forget_concert(ConcertId(*id));
    Ok(HttpResponse::NoContent().finish())
}

/// Creates a schedule and generates its seat grid (every seat AVAILABLE),
/// with its sale settings: when the sale opens and the per-buyer limit.
#[utoipa::path(
    tag = "admin",
    params(("id" = i64, Path, description = "Concert id")),
    request_body = CreateScheduleRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, body = ScheduleResponse),
        (status = 400, description = "Malformed body, or a bad `startsAt` (a year outside 0000 to 9999) / `salesOpenAt` / `maxSeatsPerBuyer` (the detail names the field)", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid grid: no section, a section twice, rows or seats per row outside 1 to 200, over 20,000 seats, a section name empty, over 20 characters or with a control character (named as `sections[i].name`), a price outside 0 to 1,000,000,000,000", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/api/admin/concerts/{id}/schedules")]
pub async fn create_schedule(
    state: web::Data<AppState>,
    _admin: AdminUser,
    id: web::Path<i64>,
    body: web::Json<CreateScheduleRequest>,
) -> Result<HttpResponse, ApiError> {
    let starts_at = body.starts_at().map_err(ApiError::BadRequest)?;
    let sale = body.sale().map_err(ApiError::BadRequest)?;
    let grid = body.grid().map_err(invalid)?;
    let schedule = state
        .service
        .admin
        .create_schedule(ConcertId(*id), starts_at, grid, sale)
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!(
                "/api/concerts/{}/schedules/{}/seats",
                schedule.concert_id, schedule.id
            ),
        ))
        .json(ScheduleResponse::from(schedule)))
}

#[utoipa::path(
    tag = "admin",
    params(("id" = i64, Path, description = "Schedule id")),
    request_body = UpdateScheduleRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = ScheduleResponse),
        (status = 400, description = "Malformed body, or a bad `startsAt` (a year outside 0000 to 9999) / `salesOpenAt` / `maxSeatsPerBuyer` (the detail names the field)", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")
    )
)]
#[put("/api/admin/schedules/{id}")]
pub async fn update_schedule(
    state: web::Data<AppState>,
    _admin: AdminUser,
    id: web::Path<i64>,
    body: web::Json<UpdateScheduleRequest>,
) -> Result<HttpResponse, ApiError> {
    let change = body.change().map_err(ApiError::BadRequest)?;
    let schedule = state
        .service
        .admin
        .update_schedule(ScheduleId(*id), change)
        .await?;
    Ok(HttpResponse::Ok().json(ScheduleResponse::from(schedule)))
}

/// Deletes a schedule and its seats; refused (409) once it has reservations.
#[utoipa::path(
    tag = "admin",
    params(("id" = i64, Path, description = "Schedule id")),
    security(("bearer" = [])),
    responses(
        (status = 204),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json")
    )
)]
#[delete("/api/admin/schedules/{id}")]
pub async fn delete_schedule(
    state: web::Data<AppState>,
    _admin: AdminUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    state.service.admin.delete_schedule(ScheduleId(*id)).await?;
    state.seat_maps.forget_schedule(ScheduleId(*id));
    Ok(HttpResponse::NoContent().finish())
}

/// The live monitor of one schedule's sale: seats sold, held and free, the
/// waiting room, passes and holds per second, and the oversell guard (both
/// counts must read 0). Cheap enough to poll every second: one reading is
/// two indexed queries and one Redis script, shared by every caller of
/// this instance for 500 ms.
#[utoipa::path(
    tag = "admin",
    params(("id" = i64, Path, description = "Schedule id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = MonitorResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/api/admin/schedules/{id}/monitor")]
pub async fn monitor(
    state: web::Data<AppState>,
    _admin: AdminUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let snapshot = state.monitor.snapshot(ScheduleId(*id)).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(MonitorResponse::from(snapshot)))
}
