//! Public reads: concerts, their schedules, and a schedule's seat map.

use crate::dto::{ConcertResponse, ScheduleResponse, SeatMapResponse};
use crate::error::{ApiError, Problem};
use crate::state::AppState;
use actix_web::{get, web, HttpResponse};
use booking_domain::{ConcertId, ScheduleId};

#[utoipa::path(tag = "concerts", responses((status = 200, body = [ConcertResponse])))]
#[get("/api/concerts")]
pub async fn list_concerts(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let concerts = state.service.catalogue.list_concerts().await?;
    Ok(HttpResponse::Ok().json(
        concerts
            .into_iter()
            .map(ConcertResponse::from)
            .collect::<Vec<_>>(),
    ))
}

#[utoipa::path(
    tag = "concerts",
    params(("id" = i64, Path, description = "Concert id")),
    responses(
        (status = 200, body = ConcertResponse),
        (status = 404, body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/api/concerts/{id}")]
pub async fn get_concert(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let concert = state
        .service
        .catalogue
        .find_concert(ConcertId(*id))
        .await?
        .ok_or_else(|| ApiError::NotFound("concert not found".into()))?;
    Ok(HttpResponse::Ok().json(ConcertResponse::from(concert)))
}

#[utoipa::path(
    tag = "concerts",
    params(("id" = i64, Path, description = "Concert id")),
    responses(
        (status = 200, body = [ScheduleResponse]),
        (status = 404, body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/api/concerts/{id}/schedules")]
pub async fn list_schedules(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let schedules = state
        .service
        .catalogue
        .list_schedules(ConcertId(*id))
        .await?
        .ok_or_else(|| ApiError::NotFound("concert not found".into()))?;
    Ok(HttpResponse::Ok().json(
        schedules
            .into_iter()
            .map(ScheduleResponse::from)
            .collect::<Vec<_>>(),
    ))
}

/// Every seat of the schedule with its status, ordered by id.
#[utoipa::path(
    tag = "concerts",
    params(
        ("id" = i64, Path, description = "Concert id"),
        ("scheduleId" = i64, Path, description = "Schedule id")
    ),
    responses(
        (status = 200, body = SeatMapResponse),
        (status = 404, body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/api/concerts/{id}/schedules/{scheduleId}/seats")]
pub async fn seat_map(
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (concert, schedule) = path.into_inner();
    let map = state
        .service
        .catalogue
        .seat_map(ConcertId(concert), ScheduleId(schedule))
        .await?
        .ok_or_else(|| ApiError::NotFound("schedule not found for this concert".into()))?;
    Ok(HttpResponse::Ok().json(SeatMapResponse::new(&map.layout, &map.statuses)))
}
