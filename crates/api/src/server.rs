//! The HTTP server: middleware, extractor settings, the route table from
//! `routes`, and the running application with its background loops.

use crate::config::{Secrets, ServerSettings, Settings};
use crate::error::ApiError;
use crate::jobs::{audit_continuously, run_sales};
use crate::openapi::ApiDoc;
use crate::routes;
use crate::startup_error::StartupError;
use crate::wiring::Components;
use actix_web::dev::{Server, Service};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::DefaultHeaders;
use actix_web::HttpMessage;
use actix_web::{web, App, HttpRequest, HttpServer};
use booking_domain::{BookingService, EventBus};
use std::sync::Arc;
use std::time::Duration;
use tracing_actix_web::{RequestId, TracingLogger};
use utoipa_swagger_ui::SwaggerUi;

/// A running server: its port, and the use cases (tests use them to set up).
pub struct Application {
    port: u16,
    server: Server,
    components: Components,
    /// The sale ticker's period.
    tick: Duration,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Application {
    pub async fn build(settings: Settings, secrets: Secrets) -> Result<Self, StartupError> {
        let components = Components::build(&settings, &secrets).await?;
        let address = format!("{}:{}", settings.server.host, settings.server.port);
        let (server, port) = serve(&address, &components, &settings.server)
            .map_err(|e| StartupError::Bind(address, e))?;
        tracing::info!(
            port,
            strategy = components.state.service.strategy(),
            store = components.state.store_kind,
            "listening; OpenAPI at /api/openapi.json, Swagger UI at /swagger-ui/"
        );
        Ok(Self {
            port,
            server,
            components,
            tick: Duration::from_millis(settings.queue.tick_ms.max(10)),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn service(&self) -> &BookingService {
        &self.components.state.service
    }

    /// The event bus the outbox relay publishes to (tests subscribe to it).
    pub fn events(&self) -> Arc<dyn EventBus> {
        self.components.state.jobs.bus.clone()
    }

    pub fn keys(&self) -> &crate::auth::JwtKeys {
        &self.components.keys
    }

    /// Serves until SIGINT/SIGTERM; then ends the SSE streams, lets
    /// in-flight requests finish, and stops the background loops.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let state = &self.components.state;
        let service = &state.service;
        state.metrics.describe_instance(
            service.strategy(),
            state.store_kind,
            service.waiting_room_enabled(),
        );
        state.jobs.spawn(state.clock.clone(), stopped.clone());
        if service.waiting_room_enabled() {
            tokio::spawn(run_sales(
                service.admissions.clone(),
                state.hub.clone(),
                self.tick,
                state.metrics.queue_admitted.clone(),
                stopped.clone(),
            ));
        }
        tokio::spawn(audit_continuously(
            service.catalogue.clone(),
            state.audit.clone(),
            state.metrics.oversold_seats.clone(),
            stopped,
        ));
        let handle = self.server.handle();
        let hub = state.hub.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutting down: closing event streams, finishing requests");
            if let Some(hub) = hub {
                hub.shutdown();
            }
            let _ = stop.send(true);
            handle.stop(true).await;
        });
        self.server.await
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

/// The server bound to `address`, and the port it got (port 0 picks one).
fn serve(
    address: &str,
    components: &Components,
    settings: &ServerSettings,
) -> std::io::Result<(Server, u16)> {
    let state = web::Data::new(components.state.clone());
    let keys = web::Data::new(components.keys.clone());
    let strategy = components.state.service.strategy();
    let metrics = components.state.metrics.clone();
    let openapi = ApiDoc::document();
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(DefaultHeaders::new().add(("X-Booking-Strategy", strategy)))
            .wrap_fn({
                let metrics = metrics.clone();
                move |req, srv| {
                    let started = std::time::Instant::now();
                    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
                    let method = req.method().to_string();
                    let metrics = metrics.clone();
                    let response = srv.call(req);
                    async move {
                        let response = response.await;
                        if let Ok(r) = &response {
                            let status = r.status().as_u16();
                            metrics.observe_http(&route, &method, status, started.elapsed());
                        }
                        response
                    }
                }
            })
            // Inside TracingLogger, so the request id it made is known here;
            // handlers hand the same id to the use cases (`routes::request_id`).
            .wrap_fn(|req, srv| {
                let id = req.extensions().get::<RequestId>().map(|id| id.to_string());
                let response = srv.call(req);
                async move {
                    let mut response = response.await?;
                    if let Some(value) = id.and_then(|id| HeaderValue::from_str(&id).ok()) {
                        response
                            .headers_mut()
                            .insert(HeaderName::from_static("x-request-id"), value);
                    }
                    Ok(response)
                }
            })
            .wrap(TracingLogger::default())
            .app_data(state.clone())
            .app_data(keys.clone())
            .app_data(json_config())
            .app_data(path_config())
            .app_data(query_config())
            .configure(routes::register)
            .configure(crate::web::register)
            .service(SwaggerUi::new("/swagger-ui/{_:.*}").url("/api/openapi.json", openapi.clone()))
            .default_service(web::to(not_found))
    })
    // Room for thousands of SSE clients connecting at once (set before bind).
    .backlog(4096)
    .keep_alive(Duration::from_secs(settings.keep_alive_secs))
    .bind(address)?
    // Signals are handled by `run_until_stopped`, which closes SSE streams first.
    .disable_signals()
    .shutdown_timeout(10);
    if let Some(n) = settings.workers {
        server = server.workers(n);
    }
    let port = server.addrs().first().map(|a| a.port()).unwrap_or_default();
    Ok((server.run(), port))
}

fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(64 * 1024)
        .error_handler(|err, _req| ApiError::BadRequest(format!("invalid JSON body: {err}")).into())
}

fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        ApiError::BadRequest(format!("invalid query string: {err}")).into()
    })
}

fn path_config() -> web::PathConfig {
    web::PathConfig::default()
        .error_handler(|err, _req| ApiError::NotFound(format!("no such resource: {err}")).into())
}

async fn not_found(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    )))
}
