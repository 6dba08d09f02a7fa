//! Public reads: concerts, their schedules, and a schedule's seat map.

use crate::dto::{
    ConcertResponse, ScheduleResponse, SeatLayoutResponse, SeatMapResponse, SeatStatusesResponse,
};
use crate::error::{ApiError, Problem};
use crate::seat_maps::{Encoded, SeatMapSnapshot};
use crate::state::AppState;
use actix_web::http::header::{ContentType, ETag, EntityTag, Header, IfNoneMatch, CACHE_CONTROL};
use actix_web::{get, web, HttpRequest, HttpResponse};
use booking_domain::{ConcertId, ScheduleId};
use std::sync::Arc;

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

/// How long a client may reuse a seat map or its statuses without asking:
/// not at all; it revalidates with `If-None-Match` every time, and a 304
/// costs the server a header compare, no body and no database.
const MAP_CACHE_CONTROL: &str = "no-cache";
/// The layout never changes while the schedule exists.
const LAYOUT_CACHE_CONTROL: &str = "public, max-age=3600";

/// Every seat of the schedule with its status, ordered by id. Served from
/// memory: the statuses may lag the database by up to
/// `catalog.seat_map_max_age_ms` (250 ms); the hold decides. Sends an
/// `ETag`; with a matching `If-None-Match` the answer is 304, no body.
#[utoipa::path(
    tag = "concerts",
    params(
        ("id" = i64, Path, description = "Concert id"),
        ("scheduleId" = i64, Path, description = "Schedule id"),
        ("If-None-Match" = Option<String>, Header, description = "The `ETag` of a map the client has: 304 if it is still current")
    ),
    responses(
        (status = 200, body = SeatMapResponse, headers(
            ("ETag" = String, description = "Strong tag of this body, e.g. `\"map-3f2a…\"`; the same on every instance for the same bytes"),
            ("Cache-Control" = String, description = "`no-cache`: keep it, but revalidate before reuse")
        )),
        (status = 304, description = "Not modified: the client's copy (named by `If-None-Match`) is current. No body", headers(
            ("ETag" = String), ("Cache-Control" = String)
        )),
        (status = 404, body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/api/concerts/{id}/schedules/{scheduleId}/seats")]
pub async fn seat_map(
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let snapshot = snapshot(&state, path.into_inner()).await?;
    Ok(conditional(&req, &snapshot.map, MAP_CACHE_CONTROL))
}

/// Where the schedule's seats are and what they cost, without statuses,
/// ordered by seat id: read it once, then poll `.../seats/statuses`.
#[utoipa::path(
    tag = "concerts",
    params(
        ("id" = i64, Path, description = "Concert id"),
        ("scheduleId" = i64, Path, description = "Schedule id"),
        ("If-None-Match" = Option<String>, Header, description = "The `ETag` of a layout the client has: 304 if it is still current")
    ),
    responses(
        (status = 200, body = SeatLayoutResponse, headers(
            ("ETag" = String, description = "Strong tag of this body, e.g. `\"layout-9c01…\"`"),
            ("Cache-Control" = String, description = "`public, max-age=3600`: a schedule's layout does not change")
        )),
        (status = 304, description = "Not modified. No body", headers(
            ("ETag" = String), ("Cache-Control" = String)
        )),
        (status = 404, body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/api/concerts/{id}/schedules/{scheduleId}/seats/layout")]
pub async fn seat_layout(
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let snapshot = snapshot(&state, path.into_inner()).await?;
    Ok(conditional(&req, &snapshot.layout, LAYOUT_CACHE_CONTROL))
}

/// Every seat's status in 2 bits, for clients that poll: seat `i` of the
/// layout (seat id order) is `(byte[i / 4] >> (2 * (i % 4))) & 3` of the
/// base64-decoded `statuses`, `0` AVAILABLE, `1` HELD, `2` RESERVED. As
/// fresh as the full map, with its own `ETag`.
#[utoipa::path(
    tag = "concerts",
    params(
        ("id" = i64, Path, description = "Concert id"),
        ("scheduleId" = i64, Path, description = "Schedule id"),
        ("If-None-Match" = Option<String>, Header, description = "The `ETag` of statuses the client has: 304 while no seat changed")
    ),
    responses(
        (status = 200, body = SeatStatusesResponse, headers(
            ("ETag" = String, description = "Strong tag of this body, e.g. `\"statuses-51be…\"`"),
            ("Cache-Control" = String, description = "`no-cache`: keep it, but revalidate before reuse")
        )),
        (status = 304, description = "Not modified: no seat changed since the client's copy. No body", headers(
            ("ETag" = String), ("Cache-Control" = String)
        )),
        (status = 404, body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/api/concerts/{id}/schedules/{scheduleId}/seats/statuses")]
pub async fn seat_statuses(
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let snapshot = snapshot(&state, path.into_inner()).await?;
    Ok(conditional(&req, &snapshot.statuses, MAP_CACHE_CONTROL))
}

/// The schedule's map from the cache, or 404.
async fn snapshot(
    state: &AppState,
    (concert, schedule): (i64, i64),
) -> Result<Arc<SeatMapSnapshot>, ApiError> {
    state
        .seat_maps
        .get(ConcertId(concert), ScheduleId(schedule))
        .await?
        .ok_or_else(|| ApiError::NotFound("schedule not found for this concert".into()))
}

/// 200 with the body, or 304 without it when `If-None-Match` names its tag
/// (weak comparison, as RFC 9110 asks for `If-None-Match`). A header that
/// does not parse is ignored.
fn conditional(req: &HttpRequest, encoded: &Encoded, cache_control: &'static str) -> HttpResponse {
    let tag = EntityTag::new_strong(encoded.etag.clone());
    let unchanged = match IfNoneMatch::parse(req) {
        Ok(IfNoneMatch::Any) => true,
        Ok(IfNoneMatch::Items(items)) => items.iter().any(|t| t.weak_eq(&tag)),
        Err(_) => false,
    };
    let mut response = match unchanged {
        true => HttpResponse::NotModified(),
        false => HttpResponse::Ok(),
    };
    response
        .insert_header(ETag(tag))
        .insert_header((CACHE_CONTROL, cache_control));
    match unchanged {
        true => response.finish(),
        false => response
            .content_type(ContentType::json())
            .body(encoded.body.clone()),
    }
}
