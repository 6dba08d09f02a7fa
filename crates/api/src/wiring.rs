//! The composition root: builds the adapters the settings name and wires
//! them into the use cases. Only the store differs between PostgreSQL and
//! embedded mode; everything above it is assembled once, by `assemble`.

use crate::auth::{Argon2Hasher, JwtKeys, MIN_SECRET_LEN};
use crate::config::{Secrets, Settings, Strategy};
use crate::connect::{connect_postgres, redis_connection_from, redis_seat_lock, RedisReady};
use crate::jobs::{instance_id, JobStores, Jobs};
use crate::metrics::Metrics;
use crate::seat_maps::SeatMaps;
use crate::sse::{HubSettings, QueueHub};
use crate::startup_error::StartupError;
use crate::state::AppState;
use crate::timed_lock::TimedSeatLock;
use booking_domain::*;
use booking_events_kafka::{KafkaEventBus, KafkaSettings};
use booking_lock_optimistic::{OptimisticSeatLock, RetryPolicy};
use booking_lock_pessimistic::PessimisticSeatLock;
use booking_memory::{seed_demo, MemoryEventBus, MemoryQueue, MemorySeatLock, MemoryStore};
use booking_queue_redis::RedisQueue;
use booking_store_postgres::PgStore;
use rand::distributions::Alphanumeric;
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;

/// The wired application and the keys its tokens are signed with.
#[derive(Debug, Clone)]
pub struct Components {
    pub state: AppState,
    pub keys: JwtKeys,
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

/// What differs between PostgreSQL and embedded mode.
struct StoreParts<S> {
    store: S,
    kind: &'static str,
    lock: Arc<dyn SeatLock>,
    /// `None` when the waiting room is off.
    queue: Option<Arc<dyn Queue>>,
    readiness: Arc<dyn Readiness>,
    pool: Option<Arc<dyn PoolStats>>,
}

async fn postgres_parts(
    settings: &Settings,
    url: &str,
) -> Result<StoreParts<PgStore>, StartupError> {
    let store = connect_postgres(settings, url).await?;
    let redis = redis_connection_from(settings).await?;
    let lock: Arc<dyn SeatLock> = match settings.booking.strategy {
        Strategy::Pessimistic => Arc::new(PessimisticSeatLock::new(store.clone())),
        Strategy::Optimistic => {
            let retry = RetryPolicy {
                max_retries: settings.booking.optimistic_max_retries,
                base_backoff: Duration::from_millis(settings.booking.optimistic_backoff_ms),
            };
            Arc::new(OptimisticSeatLock::new(store.clone(), retry))
        }
        Strategy::Redis => {
            let conn = redis.clone().ok_or(StartupError::NoRedis)?;
            let lock = redis_seat_lock(settings, &store, conn);
            let schedules = lock
                .reconcile_all_stock()
                .await
                .map_err(|e| StartupError::Redis(e.to_string()))?;
            tracing::info!(schedules, "redis stock resynced from the database");
            Arc::new(lock)
        }
    };
    let queue: Option<Arc<dyn Queue>> = match (&redis, settings.queue.enabled) {
        (_, false) => None,
        (Some(conn), true) => Some(Arc::new(RedisQueue::new(
            conn.clone(),
            settings.redis.key_prefix.clone(),
            chrono::Duration::seconds(settings.queue.token_ttl_secs),
        ))),
        (None, true) => return Err(StartupError::NoRedisForQueue),
    };
    let mut ready: Vec<Arc<dyn Readiness>> = vec![Arc::new(store.clone())];
    ready.extend(redis.map(|conn| Arc::new(RedisReady(conn)) as Arc<dyn Readiness>));
    Ok(StoreParts {
        kind: "postgres",
        lock,
        queue,
        readiness: Arc::new(AllReady(ready)),
        pool: Some(Arc::new(store.clone())),
        store,
    })
}

async fn memory_parts(settings: &Settings) -> Result<StoreParts<MemoryStore>, StartupError> {
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
    let queue = settings.queue.enabled.then(|| {
        let ttl = chrono::Duration::seconds(settings.queue.token_ttl_secs);
        Arc::new(MemoryQueue::new(ttl)) as Arc<dyn Queue>
    });
    Ok(StoreParts {
        kind: "memory",
        lock: Arc::new(MemorySeatLock::new(store.clone())),
        queue,
        readiness: Arc::new(store.clone()),
        pool: None,
        store,
    })
}

/// The use cases over the adapters the settings name.
pub async fn build_state(settings: &Settings) -> Result<AppState, StartupError> {
    match settings.database.url.as_deref() {
        Some(url) => assemble(settings, postgres_parts(settings, url).await?).await,
        None => assemble(settings, memory_parts(settings).await?).await,
    }
}

/// Everything above the store, the same for both stores.
async fn assemble<S>(settings: &Settings, parts: StoreParts<S>) -> Result<AppState, StartupError>
where
    S: UserRepository
        + CatalogRepository
        + ReservationRepository
        + OutboxRepository
        + JobLeaseRepository
        + ProcessedEvents
        + InvariantAudit
        + Clone
        + 'static,
{
    let StoreParts {
        store,
        kind,
        lock,
        queue,
        readiness,
        pool,
    } = parts;
    let metrics = Metrics::new().map_err(|e| StartupError::Metrics(e.to_string()))?;
    let hasher: Arc<dyn PasswordHasher> =
        Arc::new(Argon2Hasher::new().map_err(StartupError::Hasher)?);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let lock: Arc<dyn SeatLock> = Arc::new(TimedSeatLock::new(lock, metrics.clone()));
    let jobs = jobs_over(settings, &store, lock.clone(), queue.clone()).await?;
    let room = waiting_room(settings, queue);
    let audit: Arc<dyn InvariantAudit> = Arc::new(store.clone());
    let monitor = SaleMonitor::new(
        Arc::new(store.clone()),
        audit.clone(),
        room.clone(),
        clock.clone(),
    );
    let ports = Ports {
        users: Arc::new(store.clone()),
        catalog: Arc::new(store.clone()),
        reservations: Arc::new(store.clone()),
        seat_lock: lock,
        hasher,
        clock: clock.clone(),
        waiting_room: room.clone(),
    };
    let hold_ttl = chrono::Duration::seconds(settings.booking.hold_ttl_secs);
    let service = BookingService::new(ports, hold_ttl);
    let seat_maps = SeatMaps::new(
        Arc::new(service.catalogue.clone()),
        Duration::from_millis(settings.catalog.seat_map_max_age_ms),
        settings.catalog.seat_map_capacity,
    );
    let hub = service
        .waiting_room_enabled()
        .then(|| hub_for(settings, &service));
    Ok(AppState {
        service,
        seat_maps,
        readiness,
        store_kind: kind,
        hub,
        stream_ticket_ttl: chrono::Duration::seconds(settings.queue.stream_ticket_secs.max(1)),
        jobs,
        clock,
        metrics,
        audit,
        monitor,
        pool,
    })
}

/// Every topic the relay publishes and the consumers read.
pub const ALL_TOPICS: [&str; 3] = [
    topics::RESERVATION_HELD,
    topics::RESERVATION_COMPLETED,
    topics::RESERVATION_CANCELLED,
];

/// The Kafka bus of `settings` at `brokers` (no I/O yet).
pub fn kafka_bus(settings: &Settings, brokers: &str) -> Result<KafkaEventBus, StartupError> {
    let events = &settings.events;
    let kafka = KafkaSettings {
        brokers: brokers.to_owned(),
        attempts: events.consumer_attempts,
        backoff: Duration::from_millis(events.consumer_backoff_ms),
        delivery_timeout: Duration::from_secs(10),
        prefix: events.kafka_prefix.clone(),
    };
    KafkaEventBus::connect(kafka).map_err(|e| StartupError::Kafka(e.to_string()))
}

/// The bus: Kafka when brokers are configured, else in-process.
async fn event_bus(settings: &Settings) -> Result<Arc<dyn EventBus>, StartupError> {
    let events = &settings.events;
    let Some(brokers) = events.kafka_brokers.as_deref() else {
        tracing::warn!("no events.kafka_brokers: events are delivered in-process only");
        return Ok(Arc::new(MemoryEventBus::new()));
    };
    let bus = kafka_bus(settings, brokers)?;
    // A broker that is down now is not fatal: the outbox keeps the events
    // until it is back.
    if let Err(e) = bus.ensure_topics(&ALL_TOPICS, 3).await {
        tracing::warn!(error = %e, "could not create the Kafka topics now");
    }
    Ok(Arc::new(bus))
}

/// The relay, the expirer, the pruner and the consumers over one store.
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
    let bus = event_bus(settings).await?;
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
    let subscriptions: [(&str, &str, Arc<dyn EventHandler>); 2] = [
        (
            topics::RESERVATION_CANCELLED,
            SeatReleaseHandler::CONSUMER,
            Arc::new(release),
        ),
        (
            topics::RESERVATION_COMPLETED,
            CompletedHandler::CONSUMER,
            Arc::new(completed),
        ),
    ];
    for (topic, group, handler) in subscriptions {
        bus.subscribe(topic, group, handler)
            .await
            .map_err(|e| StartupError::Kafka(e.to_string()))?;
    }
    let stores = JobStores {
        outbox: Arc::new(store.clone()),
        reservations: Arc::new(store.clone()),
        leases: Arc::new(store.clone()),
        processed,
    };
    Ok(Jobs::new(settings, &instance_id(), stores, bus, counters))
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
    let q = &settings.queue;
    Some(WaitingRoom {
        queue,
        rules: AdmissionRules {
            rate_per_sec: q.admit_rate_per_sec,
            tick: chrono::Duration::milliseconds(q.tick_ms.max(10) as i64),
            active_limit: q.active_limit,
            passes_per_free_seat: q.passes_per_free_seat,
        },
    })
}

fn hub_for(settings: &Settings, service: &BookingService) -> QueueHub {
    let hub = HubSettings {
        heartbeat: Duration::from_secs(settings.queue.sse_heartbeat_secs.max(1)),
    };
    QueueHub::new(service.admissions.clone(), hub)
}

fn random_string(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

impl Components {
    /// Checks the secrets, wires the state, and makes sure the first admin
    /// exists.
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
        let state = build_state(settings).await?;
        let accounts = &state.service.accounts;
        match (&secrets.admin, embedded) {
            (Some((email, password)), _) => {
                let admin = accounts
                    .ensure_admin(email, password)
                    .await
                    .map_err(StartupError::Admin)?;
                tracing::info!(email = %admin.email, "admin account ready");
            }
            (None, true) => {
                let password = random_string(16);
                let admin = accounts
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
