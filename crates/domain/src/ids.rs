//! Identifiers as newtypes, so a seat id can never be passed where a schedule
//! id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_newtype {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<i64> for $name {
            fn from(value: i64) -> Self {
                Self(value)
            }
        }
    )*};
}

/// The HTTP request that caused a change. The domain carries it into the
/// outbox row (`headers.request-id`), and so onto the Kafka record, to follow
/// one booking through logs and consumers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(String);

impl RequestId {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

id_newtype!(
    /// A registered user.
    UserId,
    /// A concert (the show).
    ConcertId,
    /// One performance of a concert, with its own seat map.
    ScheduleId,
    /// One seat of one schedule. Locks are always taken in ascending `SeatId` order.
    SeatId,
    /// A reservation (a hold that may become a purchase).
    ReservationId,
    /// A payment that confirmed a reservation.
    PaymentId,
);
