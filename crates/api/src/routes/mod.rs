//! HTTP handlers, one module per resource, and the route table. Handlers
//! parse, call one use case, and shape the response; errors map to HTTP in
//! `crate::error`. Handlers share `crate::state::AppState` and nothing of
//! the composition root.

pub mod admin;
pub mod auth;
pub mod concerts;
pub mod health;
pub mod metrics;
pub mod payments;
pub mod queue;
pub mod reservations;

use crate::error::ApiError;
use actix_web::{HttpMessage, HttpRequest};
use booking_domain::{IdempotencyKey, RequestId};

/// Lists each documented route once: `register` adds them to the server in
/// this order (`/my` before `/{id}`), and `Paths` is their OpenAPI document.
macro_rules! route_table {
    ($($module:ident :: $handler:ident),* $(,)?) => {
        /// Every route of the server. `/metrics` is for Prometheus and
        /// stays out of the API description.
        pub fn register(cfg: &mut actix_web::web::ServiceConfig) {
            cfg.service(metrics::metrics);
            $(cfg.service($module::$handler);)*
        }

        /// The documented routes, merged into `crate::openapi::ApiDoc`.
        #[derive(utoipa::OpenApi)]
        #[openapi(paths($($module::$handler),*))]
        #[derive(Debug)]
        pub struct Paths;
    };
}

route_table!(
    health::live,
    health::ready,
    auth::sign_up,
    auth::log_in,
    concerts::list_concerts,
    concerts::get_concert,
    concerts::list_schedules,
    concerts::seat_map,
    concerts::seat_layout,
    concerts::seat_statuses,
    reservations::my_reservations,
    reservations::hold_seats,
    reservations::get_reservation,
    reservations::cancel_reservation,
    queue::enter,
    queue::position,
    queue::entry_token,
    queue::stream_ticket,
    queue::events,
    queue::draw,
    payments::pay,
    payments::get_payment,
    admin::create_concert,
    admin::update_concert,
    admin::delete_concert,
    admin::create_schedule,
    admin::update_schedule,
    admin::delete_schedule,
    admin::monitor,
);

/// The id `TracingLogger` gave this request (also sent back as
/// `X-Request-Id`), for the use cases to carry into the outbox.
pub fn request_id(req: &HttpRequest) -> Option<RequestId> {
    req.extensions()
        .get::<tracing_actix_web::RequestId>()
        .map(|id| RequestId::new(id.to_string()))
}

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
    Ok(Some(IdempotencyKey::parse(raw)?))
}
