//! The OpenAPI 3 document, generated from the handlers' annotations and
//! served at `/api/openapi.json` (Swagger UI at `/swagger-ui/`).

use crate::routes;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "concert-booking",
        description = "Sells concert seats under heavy concurrency without ever selling one twice. \
Errors are application/problem+json. Authenticate with `Authorization: Bearer <token>` from /api/auth/login."
    ),
    paths(
        routes::health::live,
        routes::health::ready,
        routes::auth::sign_up,
        routes::auth::log_in,
        routes::concerts::list_concerts,
        routes::concerts::get_concert,
        routes::concerts::list_schedules,
        routes::concerts::seat_map,
        routes::reservations::hold_seats,
        routes::reservations::my_reservations,
        routes::reservations::get_reservation,
        routes::reservations::cancel_reservation,
        routes::queue::enter,
        routes::queue::position,
        routes::queue::entry_token,
        routes::queue::events,
        routes::payments::pay,
        routes::payments::get_payment,
        routes::admin::create_concert,
        routes::admin::update_concert,
        routes::admin::delete_concert,
        routes::admin::create_schedule,
        routes::admin::update_schedule,
        routes::admin::delete_schedule,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Sign up and log in"),
        (name = "concerts", description = "Public catalogue and seat maps"),
        (name = "queue", description = "The waiting room: enter, wait (SSE), get the entry token"),
        (name = "reservations", description = "Seat holds (5 minutes, 1 to 4 seats, all or none)"),
        (name = "payments", description = "Paying confirms a hold"),
        (name = "admin", description = "Catalogue management (ADMIN role)"),
        (name = "health", description = "Probes")
    )
)]
#[derive(Debug)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
