//! The use cases, one struct per area over the ports it needs:
//! [`Accounts`], [`Catalogue`], [`Bookings`] (holds and payments),
//! [`Admissions`] (the waiting room), [`CatalogueAdmin`] and
//! [`SaleMonitor`] (the operator's live view of a sale). None does I/O of
//! its own. [`BookingService`] bundles the others for the HTTP API; the
//! monitor also reads the `InvariantAudit` and is built beside it.

mod accounts;
mod admin;
mod admissions;
mod bookings;
mod catalogue;
mod monitor;
mod payments;

pub use accounts::Accounts;
pub use admin::CatalogueAdmin;
pub use admissions::{Admissions, QueueStatus, RoomState, SaleUpdate, StreamStart};
pub use bookings::{Bookings, HoldCommand, Idempotent};
pub use catalogue::Catalogue;
pub use monitor::{MonitorError, SaleMonitor, SalePhase, SaleSnapshot};

use crate::*;
use chrono::Duration;
use std::sync::Arc;

/// The adapters the use cases run on.
#[derive(Clone)]
pub struct Ports {
    pub users: Arc<dyn UserRepository>,
    pub catalog: Arc<dyn CatalogRepository>,
    pub reservations: Arc<dyn ReservationRepository>,
    pub seat_lock: Arc<dyn SeatLock>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub clock: Arc<dyn Clock>,
    /// `None` only when the waiting room is switched off (raw-strategy
    /// benchmarks): then a reservation needs no entry token.
    pub waiting_room: Option<WaitingRoom>,
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ports")
            .field("seat_lock", &self.seat_lock.strategy())
            .finish_non_exhaustive()
    }
}

/// The waiting room and its admission rules.
#[derive(Clone)]
pub struct WaitingRoom {
    pub queue: Arc<dyn Queue>,
    pub rules: AdmissionRules,
}

impl std::fmt::Debug for WaitingRoom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitingRoom")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

/// How fast and how far admission lets users in (see ADR 0008).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdmissionRules {
    /// Passes handed out per second, across all instances.
    pub rate_per_sec: f64,
    /// How often each instance ticks.
    pub tick: Duration,
    /// At most this many users hold a pass or a hold at once.
    pub active_limit: u64,
    /// At most this many unused passes per free seat.
    pub passes_per_free_seat: f64,
}

impl AdmissionRules {
    /// Unused credit is capped at two ticks' worth, so a late tick catches
    /// up without a flood after a pause.
    pub fn burst(&self) -> u32 {
        let per_tick = self.rate_per_sec * self.tick.num_milliseconds() as f64 / 1000.0;
        (per_tick * 2.0).ceil().clamp(1.0, 10_000.0) as u32
    }
}

/// Every use case of the HTTP API, over one set of ports.
#[derive(Debug, Clone)]
pub struct BookingService {
    pub accounts: Accounts,
    pub catalogue: Catalogue,
    pub bookings: Bookings,
    pub admissions: Admissions,
    pub admin: CatalogueAdmin,
}

impl BookingService {
    /// The hold lifetime of ARCHITECTURE.md: 5 minutes.
    pub const DEFAULT_HOLD_TTL: Duration = Duration::minutes(5);

    pub fn new(ports: Ports, hold_ttl: Duration) -> Self {
        let Ports {
            users,
            catalog,
            reservations,
            seat_lock,
            hasher,
            clock,
            waiting_room,
        } = ports;
        Self {
            accounts: Accounts::new(users, hasher),
            catalogue: Catalogue::new(catalog.clone()),
            bookings: Bookings {
                seat_lock,
                reservations,
                catalog: catalog.clone(),
                clock: clock.clone(),
                waiting_room: waiting_room.clone(),
                hold_ttl,
            },
            admissions: Admissions {
                waiting_room,
                catalog: catalog.clone(),
                clock,
                recent: Default::default(),
            },
            admin: CatalogueAdmin::new(catalog),
        }
    }

    /// The seat-locking strategy's name.
    pub fn strategy(&self) -> &'static str {
        self.bookings.seat_lock.strategy()
    }

    pub fn waiting_room_enabled(&self) -> bool {
        self.admissions.enabled()
    }
}
