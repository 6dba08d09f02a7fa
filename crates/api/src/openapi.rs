//! The OpenAPI 3 document, generated from the handlers' annotations and
//! served at `/api/openapi.json` (Swagger UI at `/swagger-ui/`). Its paths
//! come from the route table in `crate::routes`.

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
    modifiers(&BearerAuth),
    components(schemas(
        crate::dto::QueueStatusResponse,
        crate::dto::AdmittedEvent,
        crate::dto::SoldOutEvent,
        crate::dto::LeftEvent
    )),
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

impl ApiDoc {
    /// The whole document: the info, tags and security here, and the paths
    /// of the route table.
    pub fn document() -> utoipa::openapi::OpenApi {
        let mut doc = Self::openapi();
        doc.merge(routes::Paths::openapi());
        StreamEvents.modify(&mut doc);
        doc
    }
}

/// Names the `data` schema of each event of the waiting-room stream, so a
/// client (or a test) can check a stream against the document.
struct StreamEvents;

impl Modify for StreamEvents {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let events: serde_json::Map<String, serde_json::Value> = crate::dto::STREAM_EVENTS
            .iter()
            .map(|(event, schema)| {
                let reference = format!("#/components/schemas/{schema}");
                (event.to_string(), serde_json::json!({ "$ref": reference }))
            })
            .collect();
        if let Some(get) = openapi
            .paths
            .paths
            .get_mut("/api/queue/events")
            .and_then(|item| item.get.as_mut())
        {
            get.extensions
                .get_or_insert_with(Default::default)
                .insert("x-sse-events".into(), events.into());
        }
    }
}

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
