//! Mapping diesel errors to the domain's `RepoError`.

use booking_domain::RepoError;
use diesel::result::{DatabaseErrorKind, Error};

/// A failure that is not the caller's fault: unreachable database versus
/// anything else.
pub fn repo_error(e: Error) -> RepoError {
    if is_transient_conflict(&e) {
        return RepoError::Unavailable(format!("database busy: {e}"));
    }
    match e {
        Error::DatabaseError(
            DatabaseErrorKind::UnableToSendCommand | DatabaseErrorKind::ClosedConnection,
            info,
        ) => RepoError::Unavailable(info.message().to_owned()),
        other => RepoError::unexpected(other),
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
