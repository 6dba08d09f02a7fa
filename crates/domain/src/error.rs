//! Typed errors: one enum per operation, mapped to HTTP once, in `api`.

use crate::{ControlCharacter, ReservationStatus, SeatId, SeatIdsError};
use std::error::Error as StdError;

pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A storage failure that is not the caller's fault.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The store is down or saturated (pool timeout, connection refused):
    /// the client may retry later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("unexpected storage error")]
    Unexpected(#[source] BoxError),
}

impl RepoError {
    pub fn unexpected(e: impl Into<BoxError>) -> Self {
        Self::Unexpected(e.into())
    }
}

/// Why seats could not be held. Every `SeatLock` returns exactly these.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    #[error("seats already taken: {}", join(.0))]
    SeatTaken(Vec<SeatId>),
    #[error("the schedule is sold out")]
    SoldOut,
    /// Lost too many races or waited too long for a lock: try again.
    #[error("too much contention on these seats, try again")]
    Contention,
    #[error("schedule not found")]
    ScheduleNotFound,
    #[error("seats not found: {}", join(.0))]
    SeatsNotFound(Vec<SeatId>),
    #[error("seats do not belong to this schedule: {}", join(.0))]
    ForeignSeats(Vec<SeatId>),
    #[error(transparent)]
    InvalidSeats(#[from] SeatIdsError),
    /// The hold would take the user past the schedule's per-buyer limit;
    /// `held` is what they have now (PENDING and CONFIRMED).
    #[error("you may hold at most {limit} seats of this schedule; you have {held}")]
    BuyerLimitReached { limit: i32, held: i32 },
    /// The waiting room is on and the request has no live entry token of
    /// this user for this schedule.
    #[error("a valid entry token (X-Queue-Token) from the waiting room is required: enter it with POST /api/queue/enter")]
    EntryTokenRequired,
    /// The same Idempotency-Key was already used for another request.
    #[error("Idempotency-Key was already used for a different request")]
    IdempotencyKeyReused,
    /// A concurrent request with the same Idempotency-Key won; the caller
    /// looks its result up.
    #[error("a request with this Idempotency-Key is already stored")]
    DuplicateIdempotencyKey,
    /// The caller's (validly signed) token names a user that does not exist:
    /// found by the hold's own write, which needs the user.
    #[error("the user of this token does not exist: sign up or log in again")]
    UnknownUser,
    /// The seats' prices add up past `i64::MAX` (prices written before
    /// `MAX_SEAT_PRICE` existed): nothing is held.
    #[error("the total price of these seats is out of range")]
    TotalOutOfRange,
    #[error(transparent)]
    Repo(#[from] RepoError),
}

fn join(ids: &[SeatId]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, thiserror::Error)]
pub enum SignUpError {
    #[error("{0}")]
    Invalid(String),
    #[error("an account with this e-mail already exists")]
    DuplicateEmail,
    #[error(transparent)]
    Repo(#[from] RepoError),
}

#[derive(Debug, thiserror::Error)]
pub enum LogInError {
    #[error("e-mail or password is wrong")]
    InvalidCredentials,
    /// No account has a control character in its e-mail or password.
    #[error(transparent)]
    Invalid(#[from] ControlCharacter),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Errors of cancel and pay.
#[derive(Debug, thiserror::Error)]
pub enum ReservationError {
    /// Unknown, or owned by someone else (we do not tell which).
    #[error("reservation not found")]
    NotFound,
    #[error("reservation is {}", .0.as_str())]
    NotPending(ReservationStatus),
    #[error("the hold has expired")]
    Expired,
    #[error("Idempotency-Key was already used for a different request")]
    IdempotencyKeyReused,
    #[error(transparent)]
    Repo(#[from] RepoError),
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Repo(#[from] RepoError),
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the waiting room is switched off on this server")]
    Disabled,
    #[error("schedule not found")]
    ScheduleNotFound,
    #[error("you are not in this schedule's waiting room: enter it first")]
    NotInQueue,
    #[error("not admitted yet: position {0} in the waiting room")]
    NotAdmittedYet(u64),
    #[error("your entry token was already used")]
    TokenUsed,
    #[error("the sale has not opened yet: the order of everyone who entered before the opening is drawn at the opening")]
    BeforeOpening,
    #[error("this schedule is sold out: no seat is free or held")]
    SoldOut,
    #[error("the sale has no draw yet: it is drawn at the opening")]
    NotDrawnYet,
    #[error(transparent)]
    Repo(#[from] RepoError),
}
