//! The invariant audit over `MemoryStore`: reads one schedule's seats,
//! counter and reservations under one lock, so the report is a consistent
//! snapshot, and lists every way they disagree.

use crate::store::{MemoryStore, Tables};
use async_trait::async_trait;
use booking_domain::{
    AuditReport, InvariantAudit, RepoError, ReservationStatus, ScheduleId, SeatCounts, SeatId,
    SeatStatus, SeatWatch,
};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

#[async_trait]
impl InvariantAudit for MemoryStore {
    /// An unknown schedule has nothing to audit: an all-zero report.
    async fn audit_schedule(&self, schedule: ScheduleId) -> Result<AuditReport, RepoError> {
        Ok(audit(&*self.tables()?, schedule).unwrap_or_default())
    }

    async fn watch_schedule(
        &self,
        schedule: ScheduleId,
        since: DateTime<Utc>,
    ) -> Result<Option<SeatWatch>, RepoError> {
        let t = self.tables()?;
        let Some(report) = audit(&t, schedule) else {
            return Ok(None);
        };
        let holds_since = t
            .reservations
            .values()
            .filter(|r| r.schedule_id == schedule && r.created_at >= since)
            .count() as i64;
        Ok(Some(SeatWatch {
            total_seats: report.total_seats,
            seats: SeatCounts {
                available: report.available,
                held: report.held,
                sold: report.reserved,
            },
            holds_since,
            double_booked: report.double_booked_seats.len() as i64,
            status_mismatches: report.status_mismatches.len() as i64,
        }))
    }
}

/// The audit of one schedule from one lock's view of the tables; `None`
/// for an unknown schedule.
fn audit(t: &Tables, schedule: ScheduleId) -> Option<AuditReport> {
    let counters = t.schedules.get(&schedule)?;
    let mut report = AuditReport {
        total_seats: i64::from(counters.total_seats),
        capacity: i64::from(counters.total_seats),
        reported_available: i64::from(counters.available_seats),
        ..AuditReport::default()
    };

    // Seat -> statuses of the active reservations that claim it.
    let mut claims: BTreeMap<SeatId, Vec<ReservationStatus>> = BTreeMap::new();
    let active = t
        .reservations
        .values()
        .filter(|r| r.schedule_id == schedule && r.status.is_active());
    for reservation in active {
        report.active_reservations += 1;
        if reservation.seat_ids.is_empty() {
            report.empty_reservations.push(reservation.id);
        }
        for seat in &reservation.seat_ids {
            claims.entry(*seat).or_default().push(reservation.status);
        }
    }

    for seat in t.seats.values().filter(|s| s.schedule_id == schedule) {
        match seat.status {
            SeatStatus::Available => report.available += 1,
            SeatStatus::Held => report.held += 1,
            SeatStatus::Reserved => report.reserved += 1,
        }
        let claimed_by = claims.get(&seat.id).map(Vec::as_slice).unwrap_or_default();
        if claimed_by.len() > 1 {
            report.double_booked_seats.push(seat.id);
        }
        let consistent = match claimed_by {
            [] => seat.status == SeatStatus::Available,
            statuses => statuses
                .iter()
                .all(|s| expected_seat_status(*s) == seat.status),
        };
        if !consistent {
            report.status_mismatches.push(seat.id);
        }
    }
    Some(report)
}

/// The seat status an active reservation implies.
fn expected_seat_status(reservation: ReservationStatus) -> SeatStatus {
    match reservation {
        ReservationStatus::Confirmed => SeatStatus::Reserved,
        // Only active reservations get here: PENDING holds its seats.
        _ => SeatStatus::Held,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use booking_domain::{CatalogRepository, ConcertDetails, SaleSettings, SeatGrid, SectionSpec};
    use chrono::Utc;

    #[tokio::test]
    async fn audit_reports_a_seat_held_without_a_reservation() {
        let store = MemoryStore::new();
        let concert = store
            .insert_concert(&ConcertDetails::parse("t", "a", "v", "").unwrap())
            .await
            .unwrap();
        let grid = SeatGrid::parse(vec![SectionSpec {
            name: "A".into(),
            rows: 1,
            seats_per_row: 3,
            price: 1,
        }])
        .unwrap();
        let schedule = store
            .insert_schedule(concert.id, Utc::now(), &grid, &SaleSettings::default())
            .await
            .unwrap()
            .unwrap();
        assert!(store
            .audit_schedule(schedule.id)
            .await
            .unwrap()
            .violations()
            .is_empty());

        // Corrupt the table behind the adapters' back.
        store
            .tables()
            .unwrap()
            .seats
            .get_mut(&SeatId(2))
            .unwrap()
            .status = SeatStatus::Held;
        let report = store.audit_schedule(schedule.id).await.unwrap();
        assert_eq!(report.status_mismatches, vec![SeatId(2)]);
        assert_eq!((report.available, report.reported_available), (2, 3));
        assert_eq!(report.violations().len(), 2);
    }
}
