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
