//! The invariant audit: what the tables say about one schedule, and the
//! violations of ARCHITECTURE.md's invariants it shows. Tests, the
//! benchmark and the periodic oversell guard read it.

use crate::{RepoError, ReservationId, ScheduleId, SeatCounts, SeatId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// What the invariants look like for one schedule, read from the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditReport {
    pub total_seats: i64,
    pub available: i64,
    pub held: i64,
    pub reserved: i64,
    /// The schedule's capacity (`total_seats`).
    pub capacity: i64,
    /// Available seats as the catalogue reports them (`Schedule::available_seats`).
    pub reported_available: i64,
    pub active_reservations: i64,
    /// Seats that belong to more than one active reservation (oversell).
    pub double_booked_seats: Vec<SeatId>,
    /// Seats whose status disagrees with their active reservation (HELD or
    /// RESERVED without one, AVAILABLE with one, HELD under a CONFIRMED...).
    pub status_mismatches: Vec<SeatId>,
    /// Active reservations with no seats.
    pub empty_reservations: Vec<ReservationId>,
}

impl AuditReport {
    /// Human-readable invariant violations; empty when all hold.
    pub fn violations(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.double_booked_seats.is_empty() {
            out.push(format!(
                "seats in two active reservations: {:?}",
                self.double_booked_seats
            ));
        }
        if !self.status_mismatches.is_empty() {
            out.push(format!(
                "seat status disagrees with reservations: {:?}",
                self.status_mismatches
            ));
        }
        if !self.empty_reservations.is_empty() {
            out.push(format!(
                "active reservations without seats: {:?}",
                self.empty_reservations
            ));
        }
        if self.held + self.reserved > self.capacity {
            out.push(format!(
                "sold + held = {} exceeds capacity {}",
                self.held + self.reserved,
                self.capacity
            ));
        }
        if self.total_seats != self.capacity {
            out.push(format!(
                "{} seat rows for a capacity of {}",
                self.total_seats, self.capacity
            ));
        }
        if self.reported_available != self.available {
            out.push(format!(
                "the catalogue reports {} available seats but {} are AVAILABLE",
                self.reported_available, self.available
            ));
        }
        out
    }
}

/// One schedule's seats and its oversell guard, counted in one read for the
/// operator's monitor: the same definitions as `AuditReport`, counts only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeatWatch {
    pub total_seats: i64,
    pub seats: SeatCounts,
    /// Reservations of the schedule created at or after the `since` asked
    /// for: holds made, whatever became of them since.
    pub holds_since: i64,
    /// Seats in more than one active reservation (oversell): must be 0.
    pub double_booked: i64,
    /// Seats whose status disagrees with their reservations: must be 0.
    pub status_mismatches: i64,
}

#[async_trait]
pub trait InvariantAudit: Send + Sync {
    async fn audit_schedule(&self, schedule: ScheduleId) -> Result<AuditReport, RepoError>;

    /// The counts of `audit_schedule` and the holds made since `since`, in
    /// one consistent read cheap enough to poll; `None` for an unknown
    /// schedule.
    async fn watch_schedule(
        &self,
        schedule: ScheduleId,
        since: DateTime<Utc>,
    ) -> Result<Option<SeatWatch>, RepoError>;
}
