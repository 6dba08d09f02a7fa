//! The redis strategy's settings, the instance's Redis connection, the key
//! layout of a schedule (every key shares the hash tag `{s:<id>}`), and the
//! readiness check.

use crate::{redis_down, RedisSeatLock};
use async_trait::async_trait;
use booking_domain::{Readiness, RepoError, ReservationId, ScheduleId, SeatId};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::io::tcp::TcpSettings;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RedisLockSettings {
    /// How long a seat lock lives if its holder never releases it (crash).
    /// Longer than a hold transaction takes; a holder that outlives it is
    /// refused by the database, not trusted.
    pub lease: Duration,
    /// Prepended to every key; lets tests (or tenants) share one Redis.
    pub key_prefix: String,
    /// A schedule in use is resynced from the database at least this often,
    /// whatever happened to its Redis state meanwhile.
    pub resync_every: Duration,
    /// At most one resync per schedule in this time because a refusal
    /// disagreed with the stock (all instances together).
    pub resync_gap: Duration,
    /// How long a schedule's stock and marks live in Redis without being
    /// used; a hold after that loads them from the database again.
    pub state_lifetime: Duration,
}

impl Default for RedisLockSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(5),
            key_prefix: String::new(),
            resync_every: Duration::from_secs(10),
            resync_gap: Duration::from_millis(250),
            state_lifetime: Duration::from_secs(24 * 3600),
        }
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    #[error("invalid Redis configuration: {0}")]
    Config(String),
    #[error("cannot connect to Redis: {0}")]
    Connect(String),
}

/// The instance's one Redis connection, shared by every clone (the redis
/// strategy and the waiting room): commands from all tasks are pipelined on
/// it, with no checkout and no PING per call. Connects now, or fails within
/// `timeout`.
///
/// Every command fails after `timeout` without an answer (Redis stalled).
/// A command that finds the connection broken fails, and the connection is
/// rebuilt in the background; commands meanwhile wait for that one attempt
/// (at most `timeout`), never for a retry schedule: redis-rs waits at least
/// a second between retries, so there are none.
pub async fn redis_connection(
    url: &str,
    timeout: Duration,
) -> Result<ConnectionManager, RedisSetupError> {
    let client = redis::Client::open(url).map_err(|e| RedisSetupError::Config(e.to_string()))?;
    // Many small commands share one socket: Nagle would hold each behind
    // the previous one's ACK.
    let tcp = TcpSettings::default().set_nodelay(true);
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(timeout)
        .set_response_timeout(timeout)
        .set_number_of_retries(0)
        .set_tcp_settings(tcp);
    ConnectionManager::new_with_config(client, config)
        .await
        .map_err(|e| RedisSetupError::Connect(e.to_string()))
}

/// The Redis keys of one schedule; all share the hash tag `{s:<id>}`.
#[derive(Debug, Clone)]
pub struct Keys {
    pub(crate) prefix: String,
    pub(crate) schedule: ScheduleId,
}

impl Keys {
    fn key(&self, name: &str) -> String {
        format!("{}{name}:{{s:{}}}", self.prefix, self.schedule)
    }

    /// Seats free and unlocked, as far as Redis knows.
    pub fn stock(&self) -> String {
        self.key("stock")
    }

    pub fn fence(&self) -> String {
        self.key("fence")
    }

    /// One seat: missing (free), a lock `<owner>:<token>` (a hold in
    /// flight), or a mark `held:<reservationId>` (the database has it).
    pub fn lock(&self, seat: SeatId) -> String {
        format!("{}:{seat}", self.key("lock"))
    }

    /// Set once a reservation's seats went back to the stock.
    pub fn released(&self, reservation: ReservationId) -> String {
        format!("{}:{reservation}", self.key("released"))
    }

    /// Lives one resync period after the last resync.
    pub fn synced(&self) -> String {
        self.key("synced")
    }

    /// Taken (`SET NX`) by the one request that loads or resyncs now.
    pub fn syncing(&self) -> String {
        self.key("syncing")
    }
}

/// The mark of a seat the database has: whose it is, if known.
pub fn held_mark(reservation: Option<ReservationId>) -> String {
    reservation.map_or_else(|| "held:".to_owned(), |r| format!("held:{r}"))
}

impl RedisSeatLock {
    /// Redis answers a PING.
    pub async fn ping(&self) -> Result<(), RepoError> {
        redis::cmd("PING")
            .query_async::<String>(&mut self.redis())
            .await
            .map(drop)
            .map_err(redis_down)
    }
}

#[async_trait]
impl Readiness for RedisSeatLock {
    async fn check_ready(&self) -> Result<(), RepoError> {
        self.ping().await
    }
}
