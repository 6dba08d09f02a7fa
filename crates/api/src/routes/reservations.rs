//! Holding seats (a PENDING reservation), reading and cancelling one's own.

use super::{idempotency_key, request_id, IDEMPOTENT_REPLAYED, QUEUE_TOKEN};
use crate::auth::AuthenticatedUser;
use crate::dto::{HoldSeatsRequest, ReservationResponse};
use crate::error::{ApiError, Problem};
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use booking_domain::{HoldCommand, ReservationId, ScheduleId, SeatId};

/// Holds 1 to 4 seats for 5 minutes, all or none, for a user admitted by the
/// waiting room (`X-Queue-Token`, used up by a successful hold; a failed one
/// leaves it usable). With an `Idempotency-Key`,
/// a retry returns the first reservation (header `Idempotent-Replayed: true`)
/// and changes nothing.
#[utoipa::path(
    tag = "reservations",
    request_body = HoldSeatsRequest,
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe"),
        ("X-Queue-Token" = Option<String>, Header, description = "The entry token from the waiting room; required unless the waiting room is off")
    ),
    security(("bearer" = [])),
    responses(
        (status = 201, body = ReservationResponse),
        (status = 400, description = "Malformed JSON, or a malformed `Idempotency-Key` (empty, over 200 characters, not printable ASCII)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token, or its user does not exist", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No valid entry token for this user and schedule", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown schedule", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Seat taken (`seat-taken`), sold out (`sold-out`), over the schedule's per-buyer limit counting the user's held and bought seats (`buyer-limit`), or contention (`contention`, retry after Retry-After)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "0 or more than 4 seats, duplicates, unknown seats, seats of another schedule, a reused `Idempotency-Key`, a control character in `Idempotency-Key`, seats whose prices add up past 2^63 - 1", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database or Redis is unreachable or lost the connection; retry after `Retry-After`", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/api/reservations")]
pub async fn hold_seats(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthenticatedUser,
    body: web::Json<HoldSeatsRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let command = HoldCommand {
        user_id: user.id,
        schedule_id: ScheduleId(body.schedule_id),
        seat_ids: body.seat_ids.into_iter().map(SeatId).collect(),
        idempotency_key: idempotency_key(&req)?,
        entry_token: req
            .headers()
            .get(QUEUE_TOKEN)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        request_id: request_id(&req),
    };
    let held = state.service.bookings.hold_seats(command).await?;
    let mut response = HttpResponse::Created();
    response.insert_header((
        header::LOCATION,
        format!("/api/reservations/{}", held.value.id),
    ));
    if held.replayed {
        response.insert_header((IDEMPOTENT_REPLAYED, "true"));
    }
    Ok(response.json(ReservationResponse::from(held.value)))
}

/// The caller's reservations, newest first.
#[utoipa::path(
    tag = "reservations",
    security(("bearer" = [])),
    responses((status = 200, body = [ReservationResponse]), (status = 401, body = Problem, content_type = "application/problem+json"))
)]
#[get("/api/reservations/my")]
pub async fn my_reservations(
    state: web::Data<AppState>,
    user: AuthenticatedUser,
) -> Result<HttpResponse, ApiError> {
    let list = state.service.bookings.my_reservations(user.id).await?;
    Ok(HttpResponse::Ok().json(
        list.into_iter()
            .map(ReservationResponse::from)
            .collect::<Vec<_>>(),
    ))
}

/// One of the caller's reservations; another user's is a 404.
#[utoipa::path(
    tag = "reservations",
    params(("id" = i64, Path, description = "Reservation id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = ReservationResponse),
        (status = 404, body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/api/reservations/{id}")]
pub async fn get_reservation(
    state: web::Data<AppState>,
    user: AuthenticatedUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let reservation = state
        .service
        .bookings
        .reservation_of(user.id, ReservationId(*id))
        .await?;
    Ok(HttpResponse::Ok().json(ReservationResponse::from(reservation)))
}

/// Cancels a PENDING reservation; its seats become AVAILABLE.
#[utoipa::path(
    tag = "reservations",
    params(("id" = i64, Path, description = "Reservation id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The cancelled reservation", body = ReservationResponse),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not PENDING", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The hold has expired", body = Problem, content_type = "application/problem+json")
    )
)]
#[delete("/api/reservations/{id}")]
pub async fn cancel_reservation(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthenticatedUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let reservation = state
        .service
        .bookings
        .cancel(user.id, ReservationId(*id), request_id(&req))
        .await?;
    Ok(HttpResponse::Ok().json(ReservationResponse::from(reservation)))
}
