//! Embedded migrations, run over diesel-async (no libpq at run time).

use diesel_async::{AsyncConnection, AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] diesel::ConnectionError),
    #[error("migration failed: {0}")]
    Run(String),
    #[error("migration task failed: {0}")]
    Join(#[source] tokio::task::JoinError),
}

/// Applies pending migrations; returns the versions applied. Runs the
/// harness on a blocking thread because it blocks (`block_in_place` would
/// fail on a current-thread runtime).
pub async fn run_migrations(url: &str) -> Result<Vec<String>, MigrationError> {
    // Instances starting together take turns: one migrates, the others then
    // find nothing pending. The lock ends with its session at the latest.
    let mut guard = AsyncPgConnection::establish(url)
        .await
        .map_err(MigrationError::Connect)?;
    diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
        .execute(&mut guard)
        .await
        .map_err(|e| MigrationError::Run(e.to_string()))?;
    let applied = migrate(url).await;
    let _ = diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
        .execute(&mut guard)
        .await;
    applied
}

/// An arbitrary key for `pg_advisory_lock`, the same for every instance.
const MIGRATION_LOCK: i64 = 0x0062_6f6f_6b69_6e67;

async fn migrate(url: &str) -> Result<Vec<String>, MigrationError> {
    let conn = AsyncPgConnection::establish(url)
        .await
        .map_err(MigrationError::Connect)?;
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let _guard = handle.enter();
        let mut harness = AsyncMigrationHarness::new(conn);
        harness
            .run_pending_migrations(MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect())
            .map_err(|e| MigrationError::Run(e.to_string()))
    })
    .await
    .map_err(MigrationError::Join)?
}
