//! The connection pool and the store that owns it.

use crate::tx::TxTimeouts;
use booking_domain::RepoError;
use diesel::ConnectionError;
use diesel_async::pooled_connection::deadpool::{Object, Pool, PoolError};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use futures::FutureExt;
use std::time::Duration;

pub type PgPool = Pool<AsyncPgConnection>;
pub type PgConn = Object<AsyncPgConnection>;

#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub url: String,
    pub max_size: usize,
    /// How long a request waits for a free connection before it is told the
    /// database is busy (503) instead of queueing without bound.
    pub wait_timeout: Duration,
    pub connect_timeout: Duration,
    pub tx_timeouts: TxTimeouts,
}

impl PoolSettings {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_size: 16,
            wait_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            tx_timeouts: TxTimeouts::default(),
        }
    }
}

/// Bounds every statement of the session, so a stuck one cannot hold seat
/// rows forever: a lock wait longer than `lock` or a statement longer than
/// `statement` is cancelled (and its transaction rolled back). Prepared
/// statements keep one generic plan instead of planning each call afresh
/// (PostgreSQL's default does that whenever a custom plan looks cheaper,
/// and planning the hold statement cost more than running it); the hold
/// statements filter seats by primary key, which no generic plan gets wrong.
fn session_timeouts(timeouts: TxTimeouts) -> String {
    format!(
        "SET lock_timeout = '{}ms'; SET statement_timeout = '{}ms'; SET plan_cache_mode = force_generic_plan",
        timeouts.lock.as_millis(),
        timeouts.statement.as_millis()
    )
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot build the connection pool: {0}")]
    Pool(String),
}

/// The PostgreSQL adapters share one pool; cloning is cheap.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("status", &self.pool.status())
            .finish()
    }
}

impl PgStore {
    /// Builds the pool; connections are opened lazily. Each new connection
    /// sets the session's timeouts once; a checkout costs no round trip (a
    /// broken connection is found by its first statement, and dropped).
    pub fn connect(settings: &PoolSettings) -> Result<Self, StoreError> {
        let timeouts = settings.tx_timeouts;
        let mut config = ManagerConfig::default();
        config.recycling_method = RecyclingMethod::Fast;
        config.custom_setup = Box::new(move |url| {
            async move {
                let mut conn = AsyncPgConnection::establish(url).await?;
                conn.batch_execute(&session_timeouts(timeouts))
                    .await
                    .map_err(ConnectionError::CouldntSetupConfiguration)?;
                Ok(conn)
            }
            .boxed()
        });
        let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
            &settings.url,
            config,
        );
        let pool = Pool::builder(manager)
            .max_size(settings.max_size)
            .wait_timeout(Some(settings.wait_timeout))
            .create_timeout(Some(settings.connect_timeout))
            .recycle_timeout(Some(settings.connect_timeout))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Pool(e.to_string()))?;
        Ok(Self { pool })
    }

    /// A pooled connection, or `Unavailable` when the database is down or
    /// every connection stayed busy for the wait timeout.
    pub async fn conn(&self) -> Result<PgConn, RepoError> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Timeout(_) => {
                RepoError::Unavailable("timed out waiting for a database connection".into())
            }
            other => RepoError::Unavailable(format!("database unreachable: {other}")),
        })
    }
}

impl booking_domain::PoolStats for PgStore {
    fn pool_usage(&self) -> booking_domain::PoolUsage {
        let status = self.pool.status();
        booking_domain::PoolUsage {
            size: status.size,
            available: status.available,
            waiting: status.waiting,
        }
    }
}
