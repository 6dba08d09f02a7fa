//! Reservations (seat holds that may become purchases) and payments.

use crate::{PaymentId, RequestId, ReservationId, ScheduleId, SeatId, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The seats of one request: 1 to 4 distinct ids, kept in ascending order so
/// every strategy locks them in the same order (no deadlock).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeatIds(Vec<SeatId>);

impl SeatIds {
    pub const MAX: usize = 4;

    pub fn parse(ids: Vec<SeatId>) -> Result<Self, SeatIdsError> {
        if ids.is_empty() {
            return Err(SeatIdsError::Empty);
        }
        if ids.len() > Self::MAX {
            return Err(SeatIdsError::TooMany(ids.len()));
        }
        let mut sorted = ids;
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(SeatIdsError::Duplicate(w[0]));
        }
        Ok(Self(sorted))
    }

    /// Ascending, distinct, 1 to 4.
    pub fn as_slice(&self) -> &[SeatId] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn raw(&self) -> Vec<i64> {
        self.0.iter().map(|s| s.0).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeatIdsError {
    #[error("seatIds must name at least one seat")]
    Empty,
    #[error("a reservation holds at most 4 seats, {0} were requested")]
    TooMany(usize),
    #[error("seat {0} is requested twice")]
    Duplicate(SeatId),
}

/// Why an `Idempotency-Key` header was refused: a control character (the
/// same answer as in any other field), or a key of the wrong shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdempotencyKeyError {
    #[error(transparent)]
    Control(#[from] crate::ControlCharacter),
    #[error("{0}")]
    Malformed(&'static str),
}

/// A client-chosen key that makes a retried POST return the first result.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, IdempotencyKeyError> {
        crate::refuse_control_characters("Idempotency-Key", raw, crate::TextKind::Line)?;
        let key = raw.trim();
        if key.is_empty() || key.len() > 200 {
            return Err(IdempotencyKeyError::Malformed(
                "Idempotency-Key has 1 to 200 characters",
            ));
        }
        if !key.chars().all(|c| c.is_ascii_graphic()) {
            return Err(IdempotencyKeyError::Malformed(
                "Idempotency-Key is printable ASCII without spaces",
            ));
        }
        Ok(Self(key.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Reservation state machine: PENDING -> CONFIRMED (payment) | CANCELLED
/// (user) | EXPIRED (scheduler). Only PENDING moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationStatus {
    Pending,
    Confirmed,
    Cancelled,
    Expired,
}

impl ReservationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Confirmed => "CONFIRMED",
            Self::Cancelled => "CANCELLED",
            Self::Expired => "EXPIRED",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "PENDING" => Some(Self::Pending),
            "CONFIRMED" => Some(Self::Confirmed),
            "CANCELLED" => Some(Self::Cancelled),
            "EXPIRED" => Some(Self::Expired),
            _ => None,
        }
    }

    /// Whether this reservation still owns its seats.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Pending | Self::Confirmed)
    }

    /// The state after `next`, or the reason it is not allowed.
    pub fn transition(self, next: ReservationStatus) -> Result<ReservationStatus, StateConflict> {
        match (self, next) {
            (Self::Pending, Self::Confirmed | Self::Cancelled | Self::Expired) => Ok(next),
            _ => Err(StateConflict {
                from: self,
                to: next,
            }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("reservation is {}, it cannot become {}", from.as_str(), to.as_str())]
pub struct StateConflict {
    pub from: ReservationStatus,
    pub to: ReservationStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub id: ReservationId,
    pub user_id: UserId,
    pub schedule_id: ScheduleId,
    pub status: ReservationStatus,
    pub seat_ids: Vec<SeatId>,
    pub total_amount: i64,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl Reservation {
    /// A PENDING hold past its expiry can no longer be paid, even before the
    /// scheduler has marked it EXPIRED.
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        self.status == ReservationStatus::Pending && self.expires_at <= now
    }
}

/// What a `SeatLock` is asked to do: hold these seats of this schedule for
/// this user until `expires_at`, all or none.
#[derive(Debug, Clone)]
pub struct HoldRequest {
    pub user_id: UserId,
    pub schedule_id: ScheduleId,
    pub seat_ids: SeatIds,
    pub idempotency_key: Option<IdempotencyKey>,
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Written into the hold's outbox row.
    pub request_id: Option<RequestId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    Completed,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        "COMPLETED"
    }

    pub fn parse(raw: &str) -> Option<Self> {
        (raw == "COMPLETED").then_some(Self::Completed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub id: PaymentId,
    pub reservation_id: ReservationId,
    pub user_id: UserId,
    pub amount: i64,
    pub status: PaymentStatus,
    pub created_at: DateTime<Utc>,
}

/// A payment about to confirm a PENDING reservation.
#[derive(Debug, Clone)]
pub struct PaymentRequest {
    pub reservation_id: ReservationId,
    pub user_id: UserId,
    pub amount: i64,
    pub idempotency_key: Option<IdempotencyKey>,
    pub now: DateTime<Utc>,
    /// Written into the confirmation's outbox row.
    pub request_id: Option<RequestId>,
}

/// The outcome of a conditional state change done by a repository: either
/// it happened, or the row was not in the state the change needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition<T> {
    Done(T),
    /// The reservation is no longer PENDING (someone else moved it first).
    NotPending(ReservationStatus),
    /// The reservation is PENDING but its hold has run out.
    Overdue,
    NotFound,
    /// The idempotency key is already stored with another request.
    KeyReused,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(raw: &[i64]) -> Vec<SeatId> {
        raw.iter().copied().map(SeatId).collect()
    }

    #[test]
    fn seat_ids_are_sorted_and_bounded() {
        let parsed = SeatIds::parse(ids(&[9, 3, 5])).unwrap();
        assert_eq!(parsed.as_slice(), &ids(&[3, 5, 9])[..]);
        assert_eq!(SeatIds::parse(vec![]), Err(SeatIdsError::Empty));
        assert_eq!(
            SeatIds::parse(ids(&[1, 2, 3, 4, 5])),
            Err(SeatIdsError::TooMany(5))
        );
        assert_eq!(
            SeatIds::parse(ids(&[1, 1])),
            Err(SeatIdsError::Duplicate(SeatId(1)))
        );
    }

    #[test]
    fn only_pending_moves() {
        use ReservationStatus::*;
        assert_eq!(Pending.transition(Confirmed), Ok(Confirmed));
        assert_eq!(Pending.transition(Cancelled), Ok(Cancelled));
        assert_eq!(Pending.transition(Expired), Ok(Expired));
        for from in [Confirmed, Cancelled, Expired] {
            for to in [Pending, Confirmed, Cancelled, Expired] {
                assert!(from.transition(to).is_err(), "{from:?} -> {to:?}");
            }
        }
    }
}
