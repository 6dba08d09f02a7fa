//! Connections to the services, shared by the server's wiring and the
//! one-shot commands: each opens only what it is asked for.

use crate::config::Settings;
use crate::startup_error::StartupError;
use booking_domain::{Readiness, RepoError};
use booking_lock_redis::{redis_connection, RedisLockSettings, RedisSeatLock};
use booking_store_postgres::tx::TxTimeouts;
use booking_store_postgres::{run_migrations, PgStore, PoolSettings};
use redis::aio::ConnectionManager;
use std::time::Duration;

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

/// Pending migrations (when `database.migrate_on_start`), then a pool
/// whose database answers.
pub async fn connect_postgres(settings: &Settings, url: &str) -> Result<PgStore, StartupError> {
    if settings.database.migrate_on_start {
        let applied = run_migrations(url).await?;
        tracing::info!(?applied, "migrations applied");
    }
    let store = PgStore::connect(&pool_settings(settings, url))?;
    store.check_ready().await.map_err(StartupError::Database)?;
    Ok(store)
}

/// The instance's one Redis connection (strategy and waiting room), once
/// Redis answers; `None` when no Redis URL is configured. Fails within
/// `redis.timeout_ms` (twice: to connect, then for the PING) when Redis does
/// not answer.
pub async fn redis_connection_from(
    settings: &Settings,
) -> Result<Option<ConnectionManager>, StartupError> {
    let redis = &settings.redis;
    let Some(url) = redis.url.as_deref() else {
        return Ok(None);
    };
    let conn = redis_connection(url, Duration::from_millis(redis.timeout_ms))
        .await
        .map_err(|e| StartupError::Redis(e.to_string()))?;
    RedisReady(conn.clone())
        .check_ready()
        .await
        .map_err(|e| StartupError::Redis(e.to_string()))?;
    Ok(Some(conn))
}

/// The `redis` strategy's adapter.
pub fn redis_seat_lock(
    settings: &Settings,
    store: &PgStore,
    redis: ConnectionManager,
) -> RedisSeatLock {
    RedisSeatLock::new(
        store.clone(),
        redis,
        RedisLockSettings {
            lease: Duration::from_millis(settings.redis.lock_lease_ms),
            key_prefix: settings.redis.key_prefix.clone(),
            ..RedisLockSettings::default()
        },
    )
}

/// Redis answers a PING on the shared connection (which reconnects first
/// if it broke).
pub(crate) struct RedisReady(pub ConnectionManager);

#[async_trait::async_trait]
impl Readiness for RedisReady {
    async fn check_ready(&self) -> Result<(), RepoError> {
        redis::cmd("PING")
            .query_async::<String>(&mut self.0.clone())
            .await
            .map(drop)
            .map_err(|e| RepoError::Unavailable(format!("redis: {e}")))
    }
}
