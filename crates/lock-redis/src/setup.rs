//! The redis strategy's settings, its Redis pool, and the key layout of a
//! schedule (every key shares the hash tag `{s:<id>}`), and the readiness
//! check.

use crate::{redis_down, RedisSeatLock};
use async_trait::async_trait;
use booking_domain::{Readiness, RepoError, ReservationId, ScheduleId, SeatId};
use deadpool_redis::{Pool, PoolConfig, Runtime, Timeouts};
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
}

/// A Redis pool of `max_size` connections that waits at most `wait`.
pub fn redis_pool(url: &str, max_size: usize, wait: Duration) -> Result<Pool, RedisSetupError> {
    let mut config = deadpool_redis::Config::from_url(url);
    let mut pool = PoolConfig::new(max_size);
    pool.timeouts = Timeouts {
        wait: Some(wait),
        create: Some(wait),
        recycle: Some(wait),
    };
    config.pool = Some(pool);
    config
        .create_pool(Some(Runtime::Tokio1))
        .map_err(|e| RedisSetupError::Config(e.to_string()))
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
        let mut conn = self.redis().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
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
