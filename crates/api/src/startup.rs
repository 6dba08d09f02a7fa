//! The composition root: builds the adapters named by the settings, wires
//! them into the use cases, and starts the HTTP server.

use crate::auth::{Argon2Hasher, JwtKeys, MIN_SECRET_LEN};
use crate::config::{ServerSettings, Settings, Strategy};
use crate::error::ApiError;
use crate::jobs::{instance_id, JobStores, Jobs};
use crate::metrics::Metrics;
use crate::openapi::ApiDoc;
use crate::routes;
use crate::sse::{HubSettings, QueueHub};
use actix_web::dev::Server;
use actix_web::dev::Service;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::DefaultHeaders;
use actix_web::HttpMessage;
use actix_web::{web, App, HttpRequest, HttpServer};
use booking_domain::*;
use booking_events_kafka::{KafkaEventBus, KafkaSettings, KafkaStats};
use booking_lock_optimistic::{OptimisticSeatLock, RetryPolicy};
use booking_lock_pessimistic::PessimisticSeatLock;
use booking_lock_redis::{redis_pool, RedisLockSettings, RedisSeatLock};
use booking_memory::{seed_demo, MemoryEventBus, MemoryQueue, MemorySeatLock, MemoryStore};
use booking_queue_redis::RedisQueue;
use booking_store_postgres::tx::TxTimeouts;
use booking_store_postgres::tx::REQUEST_ID;
use booking_store_postgres::{run_migrations, PgStore, PoolSettings};
use deadpool_redis::Pool;
use rand::distributions::Alphanumeric;
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tracing_actix_web::{RequestId, TracingLogger};
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub service: BookingService,
    pub readiness: Arc<dyn Readiness>,
    /// `postgres` or `memory`.
    pub store_kind: &'static str,
    /// The SSE streams of the waiting room; `None` when it is off.
    pub hub: Option<QueueHub>,
    pub jobs: Jobs,
    pub clock: Arc<dyn Clock>,
    pub metrics: Metrics,
    pub audit: Arc<dyn InvariantAudit>,
    /// The PostgreSQL store, for pool metrics; `None` when embedded.
    pub pg: Option<PgStore>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("strategy", &self.service.strategy())
            .field("store", &self.store_kind)
            .finish()
    }
}

/// Secrets come from the environment only, never from a config file.
#[derive(Clone, Default)]
pub struct Secrets {
    /// `BOOKING_JWT_SECRET`: HS256 key, at least 32 bytes.
    pub jwt_secret: Option<String>,
    /// `BOOKING_ADMIN_EMAIL` / `BOOKING_ADMIN_PASSWORD`: the first admin,
    /// created (or promoted) at start-up.
    pub admin: Option<(String, String)>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("jwt_secret", &self.jwt_secret.as_ref().map(|_| "***"))
            .field("admin", &self.admin.as_ref().map(|(email, _)| email))
            .finish()
    }
}

impl Secrets {
    pub fn from_env() -> Self {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        Self {
            jwt_secret: var("BOOKING_JWT_SECRET"),
            admin: var("BOOKING_ADMIN_EMAIL").zip(var("BOOKING_ADMIN_PASSWORD")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("BOOKING_JWT_SECRET must be set (at least {MIN_SECRET_LEN} bytes) when a database is configured, so tokens survive restarts and work across instances")]
    MissingJwtSecret,
    #[error("BOOKING_JWT_SECRET must be at least {MIN_SECRET_LEN} bytes long")]
    ShortJwtSecret,
    #[error(transparent)]
    Migration(#[from] booking_store_postgres::MigrationError),
    #[error(transparent)]
    Store(#[from] booking_store_postgres::StoreError),
    #[error("the database at the configured URL is not reachable: {0}")]
    Database(RepoError),
    #[error("cannot create the admin account: {0}")]
    Admin(SignUpError),
    #[error("cannot seed the demo catalogue: {0}")]
    Seed(AdminError),
    #[error("cannot set up password hashing: {0}")]
    Hasher(BoxError),
    #[error("cannot bind {0}: {1}")]
    Bind(String, std::io::Error),
    #[error("this command needs a database: set BOOKING__DATABASE__URL")]
    NoDatabase,
    #[error(
        "the redis strategy needs Redis: set BOOKING__REDIS__URL (e.g. redis://127.0.0.1:6379)"
    )]
    NoRedis,
    #[error("Redis is not usable: {0}")]
    Redis(String),
    #[error("metrics: {0}")]
    Metrics(String),
    #[error("the event bus is not usable: {0}")]
    Kafka(String),
    #[error("the waiting room needs Redis: set BOOKING__REDIS__URL (e.g. redis://127.0.0.1:6379), or BOOKING__QUEUE__ENABLED=false for benchmarks of the raw strategies")]
    NoRedisForQueue,
}

/// The adapters chosen by the settings, wired into the use cases.
#[derive(Debug, Clone)]
pub struct Components {
    pub state: AppState,
    pub keys: JwtKeys,
}

pub fn pool_settings(settings: &Settings, url: &str) -> PoolSettings {
    let db = &settings.database;
    PoolSettings {
        url: url.to_owned(),
        max_size: db.pool_size,
        wait_timeout: Duration::from_millis(db.pool_wait_ms),
        connect_timeout: Duration::from_secs(5),
        tx_timeouts: TxTimeouts {
            lock: Duration::from_millis(db.lock_timeout_ms),
            statement: Duration::from_millis(db.statement_timeout_ms),
        },
    }
}

/// One Redis pool for the instance (strategy and waiting room), once Redis
/// answers; `None` when no Redis URL is configured.
pub async fn redis_pool_from(settings: &Settings) -> Result<Option<Pool>, StartupError> {
    let redis = &settings.redis;
    let Some(url) = redis.url.as_deref() else {
        return Ok(None);
    };
    let pool = redis_pool(
        url,
        redis.pool_size,
        Duration::from_millis(redis.pool_wait_ms),
    )
    .map_err(|e| StartupError::Redis(e.to_string()))?;
    RedisReady(pool.clone())
        .check_ready()
        .await
        .map_err(|e| StartupError::Redis(e.to_string()))?;
    Ok(Some(pool))
}

/// The `redis` strategy's adapter.
pub fn redis_seat_lock(settings: &Settings, store: &PgStore, pool: Pool) -> RedisSeatLock {
    RedisSeatLock::new(
        store.clone(),
        pool,
        RedisLockSettings {
            lease: Duration::from_millis(settings.redis.lock_lease_ms),
            key_prefix: settings.redis.key_prefix.clone(),
        },
    )
}

/// Redis answers a PING.
struct RedisReady(Pool);

#[async_trait::async_trait]
impl Readiness for RedisReady {
    async fn check_ready(&self) -> Result<(), RepoError> {
        let unavailable = |e: String| RepoError::Unavailable(format!("redis: {e}"));
        let mut conn = self.0.get().await.map_err(|e| unavailable(e.to_string()))?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(drop)
            .map_err(|e| unavailable(e.to_string()))
    }
}

/// The strategy's adapter.
async fn seat_lock(
    settings: &Settings,
    store: &PgStore,
    redis: Option<&Pool>,
) -> Result<Arc<dyn SeatLock>, StartupError> {
    match settings.booking.strategy {
        Strategy::Pessimistic => Ok(Arc::new(PessimisticSeatLock::new(store.clone()))),
        Strategy::Optimistic => {
            let retry = RetryPolicy {
                max_retries: settings.booking.optimistic_max_retries,
                base_backoff: Duration::from_millis(settings.booking.optimistic_backoff_ms),
            };
            Ok(Arc::new(OptimisticSeatLock::new(store.clone(), retry)))
        }
        Strategy::Redis => {
            let pool = redis.ok_or(StartupError::NoRedis)?.clone();
            let lock = redis_seat_lock(settings, store, pool);
            let schedules = lock
                .reconcile_all_stock()
                .await
                .map_err(|e| StartupError::Redis(e.to_string()))?;
            tracing::info!(schedules, "redis stock reconciled with the database");
            Ok(Arc::new(lock))
        }
    }
}

/// Ready when every dependency answers.
struct AllReady(Vec<Arc<dyn Readiness>>);

#[async_trait::async_trait]
impl Readiness for AllReady {
    async fn check_ready(&self) -> Result<(), RepoError> {
        for dependency in &self.0 {
            dependency.check_ready().await?;
        }
        Ok(())
    }
}

/// The use cases' ports over one store that implements every repository.
fn ports_over<S>(
    store: &S,
    seat_lock: Arc<dyn SeatLock>,
    hasher: Arc<dyn PasswordHasher>,
    clock: Arc<dyn Clock>,
    waiting_room: Option<WaitingRoom>,
) -> Ports
where
    S: UserRepository + CatalogRepository + ReservationRepository + Clone + 'static,
{
    Ports {
        users: Arc::new(store.clone()),
        catalog: Arc::new(store.clone()),
        reservations: Arc::new(store.clone()),
        seat_lock,
        hasher,
        clock,
        waiting_room,
    }
}

/// The event bus: Kafka when brokers are configured, else in-process.
fn metrics() -> Result<Metrics, StartupError> {
    Metrics::new().map_err(|e| StartupError::Metrics(e.to_string()))
}

/// The bus, and the Kafka consumers' stats when on Kafka.
async fn event_bus(
    settings: &Settings,
) -> Result<(Arc<dyn EventBus>, Option<Arc<KafkaStats>>), StartupError> {
    let events = &settings.events;
    match events.kafka_brokers.as_deref() {
        Some(brokers) => {
            let kafka = KafkaSettings {
                brokers: brokers.to_owned(),
                attempts: events.consumer_attempts,
                backoff: Duration::from_millis(events.consumer_backoff_ms),
                delivery_timeout: Duration::from_secs(10),
                prefix: events.kafka_prefix.clone(),
            };
            let bus =
                KafkaEventBus::connect(kafka).map_err(|e| StartupError::Kafka(e.to_string()))?;
            let all = [
                topics::RESERVATION_HELD,
                topics::RESERVATION_COMPLETED,
                topics::RESERVATION_CANCELLED,
            ];
            // A broker that is down now is not fatal: the outbox keeps the
            // events until it is back.
            if let Err(e) = bus.ensure_topics(&all, 3).await {
                tracing::warn!(error = %e, "could not create the Kafka topics now");
            }
            let stats = bus.stats();
            Ok((Arc::new(bus), Some(stats)))
        }
        None => {
            tracing::warn!("no events.kafka_brokers: events are delivered in-process only");
            Ok((Arc::new(MemoryEventBus::new()), None))
        }
    }
}

/// The relay, the expirer and the consumers over one store.
async fn jobs_over<S>(
    settings: &Settings,
    store: &S,
    seat_lock: Arc<dyn SeatLock>,
    queue: Option<Arc<dyn Queue>>,
) -> Result<Jobs, StartupError>
where
    S: OutboxRepository
        + ReservationRepository
        + JobLeaseRepository
        + ProcessedEvents
        + Clone
        + 'static,
{
    let counters = Arc::new(JobCounters::default());
    let (bus, kafka_stats) = event_bus(settings).await?;
    let processed: Arc<dyn ProcessedEvents> = Arc::new(store.clone());
    let release = SeatReleaseHandler {
        processed: processed.clone(),
        seat_lock,
        queue,
        counters: counters.clone(),
    };
    let completed = CompletedHandler {
        processed: processed.clone(),
        counters: counters.clone(),
    };
    let subscribe = |topic, group, handler: Arc<dyn EventHandler>| {
        let bus = bus.clone();
        async move { bus.subscribe(topic, group, handler).await }
    };
    subscribe(
        topics::RESERVATION_CANCELLED,
        SeatReleaseHandler::CONSUMER,
        Arc::new(release),
    )
    .await
    .map_err(|e| StartupError::Kafka(e.to_string()))?;
    subscribe(
        topics::RESERVATION_COMPLETED,
        CompletedHandler::CONSUMER,
        Arc::new(completed),
    )
    .await
    .map_err(|e| StartupError::Kafka(e.to_string()))?;
    let stores = JobStores {
        outbox: Arc::new(store.clone()),
        reservations: Arc::new(store.clone()),
        leases: Arc::new(store.clone()),
        processed,
    };
    let mut jobs = Jobs::new(settings, &instance_id(), stores, bus, counters);
    jobs.kafka_stats = kafka_stats;
    Ok(jobs)
}

/// The waiting room over `queue`, or `None` (loudly) when it is off.
fn waiting_room(settings: &Settings, queue: Option<Arc<dyn Queue>>) -> Option<WaitingRoom> {
    let Some(queue) = queue else {
        tracing::warn!("==================================================================");
        tracing::warn!("WAITING ROOM DISABLED (queue.enabled=false): reservations need no");
        tracing::warn!("entry token. For benchmarks of the raw strategies only.");
        tracing::warn!("==================================================================");
        return None;
    };
    Some(WaitingRoom {
        queue,
        active_limit: settings.queue.active_limit,
        expected_session: chrono::Duration::seconds(settings.queue.expected_session_secs),
    })
}

fn hub_for(
    settings: &Settings,
    room: Option<&WaitingRoom>,
    clock: &Arc<dyn Clock>,
) -> Option<QueueHub> {
    let q = &settings.queue;
    room.map(|room| {
        let hub = HubSettings {
            tick: Duration::from_millis(q.sse_tick_ms.max(10)),
            heartbeat: Duration::from_secs(q.sse_heartbeat_secs.max(1)),
            expected_session_secs: q.expected_session_secs,
            active_limit: q.active_limit,
        };
        QueueHub::new(room.queue.clone(), clock.clone(), hub)
    })
}

fn random_string(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// The use cases over the adapters the settings name; `true` when embedded.
pub async fn build_state(settings: &Settings) -> Result<(AppState, bool), StartupError> {
    let hasher: Arc<dyn PasswordHasher> =
        Arc::new(Argon2Hasher::new().map_err(StartupError::Hasher)?);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let hold_ttl = chrono::Duration::seconds(settings.booking.hold_ttl_secs);

    let (state, embedded) = match settings.database.url.as_deref() {
        Some(url) => {
            if settings.database.migrate_on_start {
                let applied = run_migrations(url).await?;
                tracing::info!(?applied, "migrations applied");
            }
            let store = PgStore::connect(&pool_settings(settings, url))?;
            store.check_ready().await.map_err(StartupError::Database)?;
            let redis = redis_pool_from(settings).await?;
            let lock = seat_lock(settings, &store, redis.as_ref()).await?;
            let queue: Option<Arc<dyn Queue>> = match (&redis, settings.queue.enabled) {
                (_, false) => None,
                (Some(pool), true) => Some(Arc::new(RedisQueue::new(
                    pool.clone(),
                    settings.redis.key_prefix.clone(),
                    chrono::Duration::seconds(settings.queue.token_ttl_secs),
                ))),
                (None, true) => return Err(StartupError::NoRedisForQueue),
            };
            let room = waiting_room(settings, queue.clone());
            let hub = hub_for(settings, room.as_ref(), &clock);
            let jobs = jobs_over(settings, &store, lock.clone(), queue).await?;
            let ports = ports_over(&store, lock, hasher, clock.clone(), room);
            let service = BookingService::new(ports, hold_ttl);
            let mut ready: Vec<Arc<dyn Readiness>> = vec![Arc::new(store.clone())];
            ready.extend(redis.map(|pool| Arc::new(RedisReady(pool)) as Arc<dyn Readiness>));
            (
                AppState {
                    service,
                    readiness: Arc::new(AllReady(ready)),
                    store_kind: "postgres",
                    hub,
                    jobs,
                    clock,
                    metrics: metrics()?,
                    audit: Arc::new(store.clone()),
                    pg: Some(store),
                },
                false,
            )
        }
        None => {
            tracing::warn!("==================================================================");
            tracing::warn!("EMBEDDED MODE: no database configured (BOOKING__DATABASE__URL).");
            tracing::warn!("All data lives in memory and is LOST when the process exits.");
            tracing::warn!("==================================================================");
            tracing::warn!(
                ignored = settings.booking.strategy.as_str(),
                "embedded mode always uses the in-memory strategy"
            );
            let store = MemoryStore::new();
            let demo = seed_demo(&store).await.map_err(StartupError::Seed)?;
            tracing::info!(concert = %demo.concert.id, schedule = %demo.schedule.id, "demo concert seeded");
            let lock: Arc<dyn SeatLock> = Arc::new(MemorySeatLock::new(store.clone()));
            let queue: Option<Arc<dyn Queue>> = settings.queue.enabled.then(|| {
                let ttl = chrono::Duration::seconds(settings.queue.token_ttl_secs);
                Arc::new(MemoryQueue::new(ttl)) as Arc<dyn Queue>
            });
            let room = waiting_room(settings, queue.clone());
            let hub = hub_for(settings, room.as_ref(), &clock);
            let jobs = jobs_over(settings, &store, lock.clone(), queue).await?;
            let ports = ports_over(&store, lock, hasher, clock.clone(), room);
            let service = BookingService::new(ports, hold_ttl);
            (
                AppState {
                    service,
                    readiness: Arc::new(store.clone()),
                    store_kind: "memory",
                    hub,
                    jobs,
                    clock,
                    metrics: metrics()?,
                    audit: Arc::new(store),
                    pg: None,
                },
                true,
            )
        }
    };
    Ok((state, embedded))
}

impl Components {
    pub async fn build(settings: &Settings, secrets: &Secrets) -> Result<Self, StartupError> {
        // Checked before anything touches the database.
        let embedded = settings.database.url.is_none();
        let secret = match (&secrets.jwt_secret, embedded) {
            (Some(s), _) if s.len() < MIN_SECRET_LEN => return Err(StartupError::ShortJwtSecret),
            (Some(s), _) => s.clone(),
            (None, false) => return Err(StartupError::MissingJwtSecret),
            (None, true) => {
                tracing::warn!("BOOKING_JWT_SECRET is not set: using a random key, tokens end with the process");
                random_string(48)
            }
        };
        let keys = JwtKeys::new(
            secret.as_bytes(),
            chrono::Duration::seconds(settings.auth.token_ttl_secs),
        );
        let (state, _) = build_state(settings).await?;

        match (&secrets.admin, embedded) {
            (Some((email, password)), _) => {
                let admin = state
                    .service
                    .ensure_admin(email, password)
                    .await
                    .map_err(StartupError::Admin)?;
                tracing::info!(email = %admin.email, "admin account ready");
            }
            (None, true) => {
                let password = random_string(16);
                let admin = state
                    .service
                    .ensure_admin("admin@example.com", &password)
                    .await
                    .map_err(StartupError::Admin)?;
                tracing::warn!(email = %admin.email, %password, "demo admin created (embedded mode only)");
            }
            (None, false) => {}
        }
        Ok(Self { state, keys })
    }
}

/// A running server: its port, and the use cases (tests use them to set up).
pub struct Application {
    port: u16,
    server: Server,
    components: Components,
    admit_interval: Duration,
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
            admit_interval: Duration::from_millis(settings.queue.admit_interval_ms.max(10)),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn service(&self) -> &BookingService {
        &self.components.state.service
    }

    pub fn keys(&self) -> &JwtKeys {
        &self.components.keys
    }

    /// Serves until SIGINT/SIGTERM; then ends the SSE streams, lets
    /// in-flight requests finish, and stops the admitter.
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
        if self.components.state.service.waiting_room_enabled() {
            let service = self.components.state.service.clone();
            let admitted = state.metrics.queue_admitted.clone();
            tokio::spawn(admit_continuously(
                service,
                self.admit_interval,
                admitted,
                stopped.clone(),
            ));
        }
        tokio::spawn(audit_continuously(state.clone(), stopped));
        let handle = self.server.handle();
        let hub = self.components.state.hub.clone();
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

/// Admission runs on a timer in every instance, whether or not anyone polls;
/// the queue makes each admission atomic, so instances do not race.
async fn admit_continuously(
    service: BookingService,
    every: Duration,
    admitted: prometheus::IntCounter,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stopped.changed() => return,
        }
        match service.admit_waiting().await {
            Ok(0) => {}
            Ok(n) => {
                admitted.inc_by(n as u64);
                tracing::debug!(admitted = n, "admitted from the waiting room");
            }
            Err(e) => tracing::warn!(error = %e, "admission failed; retrying next tick"),
        }
    }
}

/// The oversell guard: every 30 s, audit every schedule from the tables and
/// export how many seats are in two active reservations (must stay 0).
async fn audit_continuously(state: AppState, mut stopped: tokio::sync::watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(Duration::from_secs(30));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stopped.changed() => return,
        }
        let ids = match state.service.all_schedules().await {
            Ok(all) => all.into_iter().map(|s| s.id).collect::<Vec<_>>(),
            Err(e) => {
                tracing::warn!(error = %e, "oversell audit: schedules unavailable");
                continue;
            }
        };
        match crate::metrics::oversold_seats(state.audit.as_ref(), &ids).await {
            Ok(0) => state.metrics.oversold_seats.set(0),
            Ok(n) => {
                tracing::error!(
                    oversold_seats = n,
                    "OVERSELL: seats in two active reservations"
                );
                state.metrics.oversold_seats.set(n);
            }
            Err(e) => tracing::warn!(error = %e, "oversell audit failed"),
        }
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
    let openapi = ApiDoc::openapi();
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
            // Inside TracingLogger, so the request id it made is known here:
            // the outbox rows of this request carry it, and so does the reply.
            .wrap_fn(|req, srv| {
                let id = req.extensions().get::<RequestId>().map(|id| id.to_string());
                let response = srv.call(req);
                async move {
                    let mut response = REQUEST_ID.scope(id.clone(), response).await?;
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
            .configure(register_routes)
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

pub fn register_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(routes::health::live)
        .service(routes::health::ready)
        .service(routes::metrics::metrics)
        .service(routes::auth::sign_up)
        .service(routes::auth::log_in)
        .service(routes::concerts::list_concerts)
        .service(routes::concerts::get_concert)
        .service(routes::concerts::list_schedules)
        .service(routes::concerts::seat_map)
        // `/my` before `/{id}`.
        .service(routes::reservations::my_reservations)
        .service(routes::reservations::hold_seats)
        .service(routes::reservations::get_reservation)
        .service(routes::reservations::cancel_reservation)
        .service(routes::queue::enter)
        .service(routes::queue::position)
        .service(routes::queue::entry_token)
        .service(routes::queue::events)
        .service(routes::payments::pay)
        .service(routes::payments::get_payment)
        .service(routes::admin::create_concert)
        .service(routes::admin::update_concert)
        .service(routes::admin::delete_concert)
        .service(routes::admin::create_schedule)
        .service(routes::admin::update_schedule)
        .service(routes::admin::delete_schedule);
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
