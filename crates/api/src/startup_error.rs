//! Why the server or a one-shot command could not start: each says what
//! to set or fix.

use crate::auth::MIN_SECRET_LEN;
use booking_domain::{AdminError, BoxError, RepoError, SignUpError};

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
    #[error("this command needs Kafka: set BOOKING__EVENTS__KAFKA_BROKERS (e.g. 127.0.0.1:9092)")]
    NoKafka,
    #[error("Redis is not usable: {0}")]
    Redis(String),
    #[error("metrics: {0}")]
    Metrics(String),
    #[error("the event bus is not usable: {0}")]
    Kafka(String),
    #[error("the waiting room needs Redis: set BOOKING__REDIS__URL (e.g. redis://127.0.0.1:6379), or BOOKING__QUEUE__ENABLED=false for benchmarks of the raw strategies")]
    NoRedisForQueue,
}
