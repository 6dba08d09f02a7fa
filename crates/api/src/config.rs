//! Typed settings: defaults, then an optional TOML file, then `BOOKING__*`
//! environment variables (`BOOKING__DATABASE__URL=...`). Secrets come from
//! the environment only (`BOOKING_JWT_SECRET`), never from the file.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub queue: QueueSettings,
    pub events: EventsSettings,
    pub expiry: ExpirySettings,
    pub retention: RetentionSettings,
    pub booking: BookingSettings,
    pub catalog: CatalogSettings,
    pub auth: AuthSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ServerSettings {
    pub host: String,
    /// 0 picks a free port (tests).
    pub port: u16,
    /// HTTP worker threads; defaults to the number of cores.
    pub workers: Option<usize>,
    /// How long an idle keep-alive connection stays open. Longer than a
    /// proxy's upstream idle timeout (nginx: 60 s), so the server never
    /// closes a connection the client is about to reuse (a POST on it would
    /// fail with no answer).
    pub keep_alive_secs: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            workers: None,
            keep_alive_secs: 75,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// No URL means embedded mode: in-memory adapters, nothing persisted.
    pub url: Option<String>,
    pub pool_size: usize,
    pub pool_wait_ms: u64,
    pub lock_timeout_ms: u64,
    pub statement_timeout_ms: u64,
    /// Apply pending migrations at start-up.
    pub migrate_on_start: bool,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: None,
            pool_size: 16,
            pool_wait_ms: 1_000,
            lock_timeout_ms: 3_000,
            statement_timeout_ms: 10_000,
            migrate_on_start: true,
        }
    }
}

/// The seat-locking strategy, picked at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// `SELECT ... FOR UPDATE` on the seat rows (crates/lock-pessimistic).
    #[default]
    Pessimistic,
    /// Per-seat version check, bounded retry (crates/lock-optimistic).
    Optimistic,
    /// Redis seat locks and stock before the DB write (crates/lock-redis).
    Redis,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pessimistic => "pessimistic",
            Self::Optimistic => "optimistic",
            Self::Redis => "redis",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RedisSettings {
    /// Required by the `redis` strategy and by the waiting room (unless embedded).
    pub url: Option<String>,
    /// The longest wait for Redis, to connect and for the answer to one
    /// command, before the call fails (a 503).
    pub timeout_ms: u64,
    /// Seat lock lease of the `redis` strategy.
    pub lock_lease_ms: u64,
    /// Prepended to every key.
    pub key_prefix: String,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: None,
            timeout_ms: 1_000,
            lock_lease_ms: 5_000,
            key_prefix: String::new(),
        }
    }
}

/// The event path: outbox relay and consumers.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct EventsSettings {
    /// Kafka bootstrap servers, e.g. `127.0.0.1:9092`. Without them events
    /// are delivered in-process to this instance's consumers (embedded mode,
    /// single-instance development).
    pub kafka_brokers: Option<String>,
    /// Prepended to every topic and consumer group.
    pub kafka_prefix: String,
    /// How often the relay looks for new outbox rows when idle.
    pub relay_poll_ms: u64,
    pub relay_batch: i64,
    /// How long a relay's claim on a batch keeps other relays off it.
    pub relay_claim_secs: i64,
    /// The longest pause between relay attempts while the broker is down.
    pub relay_max_backoff_ms: u64,
    /// Consumer retries: attempts before a record goes to `<topic>.DLT`.
    pub consumer_attempts: u32,
    pub consumer_backoff_ms: u64,
}

impl Default for EventsSettings {
    fn default() -> Self {
        Self {
            kafka_brokers: None,
            kafka_prefix: String::new(),
            relay_poll_ms: 200,
            relay_batch: 500,
            relay_claim_secs: 30,
            relay_max_backoff_ms: 5_000,
            consumer_attempts: 3,
            consumer_backoff_ms: 200,
        }
    }
}

/// The hold-expiry scheduler.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ExpirySettings {
    /// Every this many seconds one instance (by lease) expires overdue holds.
    pub period_secs: i64,
    pub batch: i64,
}

impl Default for ExpirySettings {
    fn default() -> Self {
        Self {
            period_secs: 30,
            batch: 100,
        }
    }
}

/// The row pruner: published outbox rows and processed-event marks.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RetentionSettings {
    /// Rows older than this are deleted. Keep it longer than the broker
    /// keeps records (Kafka: 7 days), or a late redelivery could act twice.
    pub keep_days: i64,
    /// Every this many seconds one instance (by lease) prunes.
    pub period_secs: i64,
    pub batch: i64,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            keep_days: 8,
            period_secs: 3600,
            batch: 1000,
        }
    }
}

/// The waiting room and its admission rules (ADR 0008).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct QueueSettings {
    /// Off only for benchmarks of the raw strategies: then reservations need
    /// no entry token (logged loudly, and reported by /health/ready).
    pub enabled: bool,
    /// Passes (entry tokens) handed out per second per schedule, across all
    /// instances.
    pub admit_rate_per_sec: f64,
    /// At most this many users of a schedule hold a pass or a hold at once.
    pub active_limit: u64,
    /// At most this many unused passes per free seat.
    pub passes_per_free_seat: f64,
    /// How often each instance runs admission and updates its streams.
    pub tick_ms: u64,
    /// Entry token (pass) lifetime.
    pub token_ttl_secs: i64,
    /// SSE: a comment line this often keeps proxies from closing the stream.
    pub sse_heartbeat_secs: u64,
    /// How long a stream ticket (`POST /api/queue/stream-ticket`) lives.
    pub stream_ticket_secs: i64,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            admit_rate_per_sec: 200.0,
            active_limit: 500,
            passes_per_free_seat: 2.0,
            tick_ms: 250,
            token_ttl_secs: 300,
            sse_heartbeat_secs: 15,
            stream_ticket_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct BookingSettings {
    pub strategy: Strategy,
    /// How long a hold (PENDING reservation) lives.
    pub hold_ttl_secs: i64,
    /// `optimistic`: retries after a lost race before answering "try again".
    pub optimistic_max_retries: u32,
    /// `optimistic`: first backoff, doubled per retry, jittered.
    pub optimistic_backoff_ms: u64,
}

impl Default for BookingSettings {
    fn default() -> Self {
        Self {
            strategy: Strategy::default(),
            hold_ttl_secs: 300,
            optimistic_max_retries: 3,
            optimistic_backoff_ms: 5,
        }
    }
}

/// The public catalogue's seat maps, served from memory.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CatalogSettings {
    /// A schedule's seat map is rebuilt when a request comes this long
    /// after its statuses were read: the most a map can lag behind the
    /// database. `0` rebuilds for every request that finds no rebuild
    /// started after it arrived (read-your-writes).
    pub seat_map_max_age_ms: u64,
    /// At most this many schedules' maps are kept per instance; the least
    /// recently read goes first.
    pub seat_map_capacity: usize,
}

impl Default for CatalogSettings {
    fn default() -> Self {
        Self {
            seat_map_max_age_ms: 250,
            seat_map_capacity: 256,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AuthSettings {
    pub token_ttl_secs: i64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            token_ttl_secs: 3600,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: String,
    /// An `EnvFilter` directive; `RUST_LOG` wins when set.
    pub filter: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: "text".into(),
            filter: "info,booking_api=info".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: {0}")]
    Load(#[from] config::ConfigError),
}

impl Settings {
    /// Defaults, then `file` (required when given), then the environment.
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            builder = builder.add_source(config::File::from(path).required(true));
        }
        let settings = builder
            .add_source(
                config::Environment::with_prefix("BOOKING")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()?
            .try_deserialize()?;
        Ok(settings)
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
