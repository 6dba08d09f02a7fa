//! The one-shot commands of the `booking` binary. Each opens only what it
//! touches: `create-admin` needs the database alone, never Redis or Kafka.

use crate::auth::Argon2Hasher;
use crate::config::Settings;
use crate::connect::{connect_postgres, pool_settings, redis_connection_from, redis_seat_lock};
use crate::startup_error::StartupError;
use booking_domain::{Accounts, User};
use booking_store_postgres::PgStore;
use std::sync::Arc;

/// Applies pending migrations; returns their versions.
pub async fn migrate(settings: &Settings) -> anyhow::Result<Vec<String>> {
    let url = settings
        .database
        .url
        .as_deref()
        .ok_or(StartupError::NoDatabase)?;
    Ok(booking_store_postgres::run_migrations(url).await?)
}

/// Resyncs the redis strategy's state of every schedule from the
/// database; returns how many schedules.
pub async fn reconcile_stock(settings: &Settings) -> anyhow::Result<usize> {
    let url = settings
        .database
        .url
        .as_deref()
        .ok_or(StartupError::NoDatabase)?;
    let store = PgStore::connect(&pool_settings(settings, url))?;
    let redis = redis_connection_from(settings)
        .await?
        .ok_or(StartupError::NoRedis)?;
    let lock = redis_seat_lock(settings, &store, redis);
    Ok(lock.reconcile_all_stock().await?)
}

/// Re-publishes every dead-lettered record (up to the end each dead-letter
/// topic has now) to the topic it came from; the consumers deduplicate.
pub async fn replay_dead_letters(
    settings: &Settings,
) -> anyhow::Result<booking_events_kafka::ReplayReport> {
    let brokers = settings
        .events
        .kafka_brokers
        .as_deref()
        .ok_or(StartupError::NoKafka)?;
    let bus = crate::wiring::kafka_bus(settings, brokers)?;
    Ok(bus.replay_dead_letters(&crate::wiring::ALL_TOPICS).await?)
}

/// Creates an admin account, or promotes an existing one.
pub async fn create_admin(
    settings: &Settings,
    email: &str,
    password: &str,
) -> anyhow::Result<User> {
    let url = settings
        .database
        .url
        .as_deref()
        .ok_or(StartupError::NoDatabase)?;
    let store = connect_postgres(settings, url).await?;
    let hasher = Argon2Hasher::new().map_err(StartupError::Hasher)?;
    let accounts = Accounts::new(Arc::new(store), Arc::new(hasher));
    Ok(accounts.ensure_admin(email, password).await?)
}
