//! Mapping diesel errors to the domain's `RepoError`.

use booking_domain::RepoError;
use diesel::result::{DatabaseErrorKind, Error};

/// A failure that is not the caller's fault: a database that is busy or
/// unreachable, or whose connection was lost (`Unavailable`: 503, the client
/// retries), versus anything else.
pub fn repo_error(e: Error) -> RepoError {
    if is_transient_conflict(&e) {
        return RepoError::Unavailable(format!("database busy: {e}"));
    }
    if is_connection_lost(&e) {
        return RepoError::Unavailable(format!("database connection lost: {e}"));
    }
    if is_stopped_by_the_server(&e) {
        return RepoError::Unavailable(format!("database refused the work for now: {e}"));
    }
    RepoError::unexpected(e)
}

/// True when the server stopped a statement for its own reasons, not the
/// statement's: cancelled by an operator (`pg_cancel_backend`, SQLSTATE
/// 57014 "canceling statement due to user request") or by a standby's
/// replay ("... due to conflict with recovery", 40001 or 57014), a
/// serialization failure outside a hold (holds retry theirs:
/// `holds::is_lost_race`), or refused because the server became read-only
/// (25006, a failover to a replica in progress). The connection survives;
/// a retry may succeed.
pub fn is_stopped_by_the_server(e: &Error) -> bool {
    match e {
        Error::DatabaseError(
            DatabaseErrorKind::ReadOnlyTransaction | DatabaseErrorKind::SerializationFailure,
            _,
        ) => true,
        Error::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let msg = info.message();
            msg.contains("canceling statement due to user request")
                || msg.contains("canceling statement due to conflict with recovery")
        }
        _ => false,
    }
}

/// True for `lock_timeout` / `statement_timeout` cancellations and
/// deadlock aborts (SQLSTATE 55P03 / 57014 / 40P01), which diesel reports as
/// `Unknown`: the work was fine, the moment was not; retrying may succeed.
pub fn is_transient_conflict(e: &Error) -> bool {
    match e {
        Error::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let msg = info.message();
            msg.contains("lock timeout")
                || msg.contains("statement timeout")
                || msg.contains("deadlock detected")
        }
        _ => false,
    }
}

/// The server's messages for the SQLSTATEs that end or refuse a session
/// through no fault of the statement: 57P01 admin shutdown
/// (`pg_terminate_backend`, a fast shutdown), 57P02 crash shutdown, 57P05
/// idle-session timeout, 25P03 idle-in-transaction timeout (all "terminating
/// connection ..."), 57P03 cannot connect now ("the database system is
/// starting up / shutting down / in recovery mode"), 53300 too many
/// connections ("sorry, too many clients already", "remaining connection
/// slots are reserved ..."). diesel keeps the message but not the SQLSTATE.
const SESSION_LOST_MESSAGES: &[&str] = &[
    "terminating connection",
    "the database system is",
    "too many clients",
    "remaining connection slots are reserved",
];

/// True when the statement failed because its connection is gone or the
/// server would not serve it, not because of what it asked: the session
/// was terminated (see `SESSION_LOST_MESSAGES`), the socket broke
/// (diesel-async reports a tokio-postgres error without SQLSTATE as
/// `UnableToSendCommand`), or a transaction could not be closed on such a
/// connection. A retry on another connection may succeed.
pub fn is_connection_lost(e: &Error) -> bool {
    match e {
        Error::DatabaseError(
            DatabaseErrorKind::UnableToSendCommand | DatabaseErrorKind::ClosedConnection,
            _,
        ) => true,
        Error::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let msg = info.message();
            SESSION_LOST_MESSAGES.iter().any(|m| msg.contains(m))
        }
        // The transaction manager gave up on a connection whose commit or
        // rollback failed: only a lost connection does that here.
        Error::BrokenTransactionManager => true,
        Error::RollbackErrorOnCommit { commit_error, .. } => is_connection_lost(commit_error),
        _ => false,
    }
}

/// True when `e` violated the named unique or foreign-key constraint.
pub fn constraint_violated(e: &Error, constraint: &str) -> bool {
    match e {
        Error::DatabaseError(
            DatabaseErrorKind::UniqueViolation | DatabaseErrorKind::ForeignKeyViolation,
            info,
        ) => info.constraint_name() == Some(constraint),
        _ => false,
    }
}

/// True when a number did not fit a `bigint` (SQLSTATE 22003, e.g. a
/// `sum(price)::bigint` past `i64::MAX`), which diesel reports as `Unknown`.
pub fn is_bigint_overflow(e: &Error) -> bool {
    match e {
        Error::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            info.message().contains("bigint out of range")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(kind: DatabaseErrorKind, message: &str) -> Error {
        Error::DatabaseError(kind, Box::new(message.to_owned()))
    }

    #[test]
    fn a_terminated_broken_or_cancelled_session_is_unavailable() {
        for lost in [
            db(
                DatabaseErrorKind::Unknown,
                "terminating connection due to administrator command",
            ),
            db(
                DatabaseErrorKind::Unknown,
                "terminating connection because of crash of another server process",
            ),
            db(
                DatabaseErrorKind::Unknown,
                "the database system is shutting down",
            ),
            db(
                DatabaseErrorKind::Unknown,
                "sorry, too many clients already",
            ),
            db(DatabaseErrorKind::UnableToSendCommand, "connection closed"),
            db(DatabaseErrorKind::ClosedConnection, "closed"),
            db(
                DatabaseErrorKind::Unknown,
                "canceling statement due to user request",
            ),
            db(
                DatabaseErrorKind::ReadOnlyTransaction,
                "cannot execute INSERT in a read-only transaction",
            ),
            Error::BrokenTransactionManager,
            Error::RollbackErrorOnCommit {
                commit_error: Box::new(db(DatabaseErrorKind::UnableToSendCommand, "eof")),
                rollback_error: Box::new(Error::BrokenTransactionManager),
            },
        ] {
            let shown = lost.to_string();
            assert!(
                matches!(repo_error(lost), RepoError::Unavailable(_)),
                "{shown}"
            );
        }
    }

    #[test]
    fn a_statement_error_stays_unexpected() {
        for bug in [
            db(
                DatabaseErrorKind::Unknown,
                "syntax error at or near \"SELEC\"",
            ),
            db(DatabaseErrorKind::UniqueViolation, "duplicate key value"),
            Error::NotFound,
        ] {
            let shown = bug.to_string();
            assert!(
                matches!(repo_error(bug), RepoError::Unexpected(_)),
                "{shown}"
            );
        }
    }
}
