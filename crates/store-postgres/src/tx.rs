//! Transaction helpers shared by the repositories and the lock strategies.

use booking_domain::RepoError;
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use std::future::Future;
use std::time::Duration;

/// Per-transaction limits so a stuck transaction cannot hold seat rows
/// forever: a lock wait longer than `lock` or a statement longer than
/// `statement` aborts the transaction.
#[derive(Debug, Clone, Copy)]
pub struct TxTimeouts {
    pub lock: Duration,
    pub statement: Duration,
}

impl Default for TxTimeouts {
    fn default() -> Self {
        Self {
            lock: Duration::from_secs(3),
            statement: Duration::from_secs(10),
        }
    }
}

/// `SET LOCAL` both timeouts; only lasts until the transaction ends.
pub async fn set_local_timeouts(
    conn: &mut AsyncPgConnection,
    timeouts: TxTimeouts,
) -> diesel::QueryResult<()> {
    diesel::sql_query(
        "SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)",
    )
    .bind::<Text, _>(format!("{}ms", timeouts.lock.as_millis()))
    .bind::<Text, _>(format!("{}ms", timeouts.statement.as_millis()))
    .execute(conn)
    .await
    .map(drop)
}

tokio::task_local! {
    /// The current HTTP request's id; written into the outbox rows of its
    /// transactions (`headers.request-id`) and so onto the Kafka records.
    pub static REQUEST_ID: Option<String>;
}

/// The current request id, if the caller runs inside `REQUEST_ID.scope`.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok().flatten()
}

/// Runs `work` (which owns its pooled connection) on its own task, so a
/// caller that is dropped mid-way (client disconnect, timeout) cannot abort
/// a transaction between two statements: it commits or rolls back, and only
/// then is the connection returned to the pool.
pub async fn run_to_completion<T, F>(work: F) -> Result<T, RepoError>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    // The spawned task keeps the request id of its caller.
    let id = current_request_id();
    tokio::spawn(REQUEST_ID.scope(id, work))
        .await
        .map_err(RepoError::unexpected)
}

/// The error of a diesel-async transaction closure: a database error (the
/// transaction rolls back) or a domain outcome that aborts it.
#[derive(Debug)]
pub enum TxError<E> {
    Db(diesel::result::Error),
    Abort(E),
}

impl<E> From<diesel::result::Error> for TxError<E> {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e)
    }
}

impl<E> TxError<E> {
    /// Collapses into `E`, turning database errors into `E` with `db`.
    pub fn into_inner(self, db: impl FnOnce(diesel::result::Error) -> E) -> E {
        match self {
            Self::Db(e) => db(e),
            Self::Abort(e) => e,
        }
    }
}
