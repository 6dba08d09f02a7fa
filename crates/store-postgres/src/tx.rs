//! The one way a writer opens a transaction, `in_bounded_transaction`, and
//! what it needs: the timeouts that bound it (set on every pooled
//! connection, see `PgStore::connect`), the task that shields it from a
//! dropped caller, and its error type.

use crate::PgConn;
use booking_domain::RepoError;
use diesel_async::scoped_futures::ScopedBoxFuture;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use futures::TryFutureExt;
use std::future::Future;
use std::time::Duration;

/// Limits so a stuck transaction cannot hold seat rows forever: a lock wait
/// longer than `lock` or a statement longer than `statement` aborts the
/// transaction. Every pooled connection sets them for its session.
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

/// Runs `work` (which owns its pooled connection) on its own task, so a
/// caller that is dropped mid-way (client disconnect, timeout) cannot abort
/// a transaction between two statements: it commits or rolls back, and only
/// then is the connection returned to the pool.
pub async fn run_to_completion<T, F>(work: F) -> Result<T, RepoError>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    tokio::spawn(work).await.map_err(RepoError::unexpected)
}

/// Runs `work` in one transaction on `conn`, bounded by the session's
/// timeouts, on its own task
/// (`run_to_completion`): commits if `work` returns `Ok`, rolls back
/// otherwise. `work` borrows the connection for the transaction only, so
/// what it needs it owns (`move |conn| async move { .. }.scope_boxed()`).
///
/// A task that did not finish (it panicked) is `Abort(E::from(RepoError))`;
/// what a database error means is left to the caller.
pub async fn in_bounded_transaction<T, E, F>(mut conn: PgConn, work: F) -> Result<T, TxError<E>>
where
    T: Send + 'static,
    E: From<RepoError> + Send + 'static,
    F: for<'r> FnOnce(
            &'r mut AsyncPgConnection,
        ) -> ScopedBoxFuture<'static, 'r, Result<T, TxError<E>>>
        + Send
        + 'static,
{
    run_to_completion(async move {
        conn.transaction::<_, TxError<E>, _>(move |conn| work(conn))
            .await
    })
    .await
    .map_err(|lost| TxError::Abort(E::from(lost)))?
}

/// The row a writing statement returns when it runs outside a transaction,
/// read only once PostgreSQL has committed it. PostgreSQL commits such a
/// statement after sending its rows (at the protocol's Sync), and
/// diesel-async's `get_result` hands back the first row as soon as it
/// arrives, dropping the rest of the answer: an error after the row (the
/// backend terminated before that commit, a constraint checked at the end)
/// was lost, and a write that rolled back was acknowledged. A chaos run
/// caught a hold answered 201 that did not exist. `load` reads the answer
/// to its end (ReadyForQuery).
pub fn committed_row<'q, 'c, Q, U>(
    query: Q,
    conn: &'c mut AsyncPgConnection,
) -> impl Future<Output = diesel::QueryResult<Option<U>>> + Send + use<'q, 'c, Q, U>
where
    Q: diesel_async::methods::LoadQuery<'q, AsyncPgConnection, U> + 'q,
    U: Send + 'c,
    'q: 'c,
{
    // Not an `async fn`: its future would not be `Send` for every lifetime
    // of the borrowed binds, which `async_trait` methods need.
    diesel_async::RunQueryDsl::load(query, conn).map_ok(|rows: Vec<U>| rows.into_iter().next())
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
