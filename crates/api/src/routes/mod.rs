//! HTTP handlers, one module per resource. Handlers parse, call one use
//! case, and shape the response; errors map to HTTP in `crate::error`.

pub mod admin;
pub mod auth;
pub mod concerts;
pub mod health;
pub mod metrics;
pub mod payments;
pub mod queue;
pub mod reservations;

use crate::error::ApiError;
use actix_web::HttpRequest;
use booking_domain::IdempotencyKey;

pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// The waiting room's entry token on `POST /api/reservations`.
pub const QUEUE_TOKEN: &str = "X-Queue-Token";
/// Set on a response that replays the first result of an idempotent request.
pub const IDEMPOTENT_REPLAYED: &str = "Idempotent-Replayed";

/// The optional `Idempotency-Key` header, parsed.
pub fn idempotency_key(req: &HttpRequest) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = req.headers().get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let raw = value
        .to_str()
        .map_err(|_| ApiError::BadRequest("Idempotency-Key must be printable ASCII".into()))?;
    IdempotencyKey::parse(raw)
        .map(Some)
        .map_err(ApiError::BadRequest)
}
