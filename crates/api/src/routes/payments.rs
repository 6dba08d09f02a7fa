//! Paying for a hold, which confirms it.

use super::{idempotency_key, request_id, IDEMPOTENT_REPLAYED};
use crate::auth::AuthenticatedUser;
use crate::dto::{PaymentRequestBody, PaymentResponse};
use crate::error::{ApiError, Problem};
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use booking_domain::{PaymentId, ReservationId};

/// Pays a PENDING, unexpired reservation of the caller: it becomes
/// CONFIRMED and its seats RESERVED. With an `Idempotency-Key`, a retry
/// returns the first payment.
#[utoipa::path(
    tag = "payments",
    request_body = PaymentRequestBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    security(("bearer" = [])),
    responses(
        (status = 201, body = PaymentResponse),
        (status = 400, description = "Malformed JSON, or a malformed `Idempotency-Key`", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not PENDING (already paid or cancelled)", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The hold expired", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A reused `Idempotency-Key`, or a control character in it", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unreachable or lost the connection; retry after `Retry-After`", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/api/payments")]
pub async fn pay(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthenticatedUser,
    body: web::Json<PaymentRequestBody>,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(&req)?;
    let paid = state
        .service
        .bookings
        .pay(
            user.id,
            ReservationId(body.reservation_id),
            key,
            request_id(&req),
        )
        .await?;
    let mut response = HttpResponse::Created();
    response.insert_header((header::LOCATION, format!("/api/payments/{}", paid.value.id)));
    if paid.replayed {
        response.insert_header((IDEMPOTENT_REPLAYED, "true"));
    }
    Ok(response.json(PaymentResponse::from(paid.value)))
}

/// One of the caller's payments; another user's is a 404.
#[utoipa::path(
    tag = "payments",
    params(("id" = i64, Path, description = "Payment id")),
    security(("bearer" = [])),
    responses((status = 200, body = PaymentResponse), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/api/payments/{id}")]
pub async fn get_payment(
    state: web::Data<AppState>,
    user: AuthenticatedUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let payment = state
        .service
        .bookings
        .payment_of(user.id, PaymentId(*id))
        .await?;
    Ok(HttpResponse::Ok().json(PaymentResponse::from(payment)))
}
