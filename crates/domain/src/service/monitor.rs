//! The operator's live view of one schedule's sale: its seats, its waiting
//! room, how fast passes and holds go out, and the oversell guard. Polled
//! every second by every operator's page while a benchmark runs, so one
//! answer is a few indexed reads (the schedule, one counting query, one
//! Redis script) and is shared for `SaleMonitor::FRESH` by every caller
//! of this instance.

use crate::*;
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Where a schedule's sale stands, as its operator sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SalePhase {
    /// `salesOpenAt` is ahead and the pre-queue has not been drawn.
    BeforeOpening,
    Open,
    /// No seat is free but some are held: they may come back.
    Paused,
    /// No seat is free or held.
    SoldOut,
}

impl SalePhase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BeforeOpening => "before-opening",
            Self::Open => "open",
            Self::Paused => "paused",
            Self::SoldOut => "sold-out",
        }
    }

    fn of(
        schedule: &Schedule,
        seats: SeatCounts,
        room: Option<&RoomOverview>,
        now: DateTime<Utc>,
    ) -> Self {
        let drawn = room.is_some_and(|r| r.sale.opened);
        if seats.sold_out() || room.is_some_and(|r| r.sale.sold_out) {
            Self::SoldOut
        } else if !drawn && schedule.sales_open_at.is_some_and(|t| t > now) {
            Self::BeforeOpening
        } else if seats.available == 0 {
            Self::Paused
        } else {
            Self::Open
        }
    }
}

/// One reading of the monitor.
#[derive(Debug, Clone, PartialEq)]
pub struct SaleSnapshot {
    pub schedule: Schedule,
    pub phase: SalePhase,
    pub seats: SeatWatch,
    /// Holds made per second over the last `SaleMonitor::HOLD_WINDOW`.
    pub holds_per_sec: f64,
    /// `None` when the waiting room is switched off.
    pub room: Option<RoomOverview>,
    pub read_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("schedule not found")]
    ScheduleNotFound,
    #[error(transparent)]
    Repo(#[from] RepoError),
}

#[derive(Clone)]
pub struct SaleMonitor {
    catalog: Arc<dyn CatalogRepository>,
    audit: Arc<dyn InvariantAudit>,
    waiting_room: Option<WaitingRoom>,
    clock: Arc<dyn Clock>,
    recent: Arc<Mutex<HashMap<ScheduleId, SaleSnapshot>>>,
}

impl std::fmt::Debug for SaleMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaleMonitor").finish_non_exhaustive()
    }
}

impl SaleMonitor {
    /// How long one reading answers every caller of this instance: half
    /// the page's poll period, so a poll never sees a reading older than
    /// its previous one.
    pub const FRESH: Duration = Duration::milliseconds(500);
    /// Holds per second count the reservations made in this window, as the
    /// admission rate counts the passes of the last 5 s.
    pub const HOLD_WINDOW: Duration = Duration::seconds(5);

    pub fn new(
        catalog: Arc<dyn CatalogRepository>,
        audit: Arc<dyn InvariantAudit>,
        waiting_room: Option<WaitingRoom>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            catalog,
            audit,
            waiting_room,
            clock,
            recent: Arc::default(),
        }
    }

    /// The schedule's sale now, or as read less than `FRESH` ago.
    pub async fn snapshot(&self, schedule: ScheduleId) -> Result<SaleSnapshot, MonitorError> {
        let now = self.clock.now();
        let cached = self
            .recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&schedule)
            .filter(|s| now - s.read_at < Self::FRESH)
            .cloned();
        if let Some(snapshot) = cached {
            return Ok(snapshot);
        }
        let snapshot = self.read(schedule, now).await?;
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        // Forget schedules nobody watches any more (deleted ones, too).
        recent.retain(|_, s| now - s.read_at < Duration::minutes(1));
        recent.insert(schedule, snapshot.clone());
        Ok(snapshot)
    }

    async fn read(&self, id: ScheduleId, now: DateTime<Utc>) -> Result<SaleSnapshot, MonitorError> {
        let schedule = self
            .catalog
            .find_schedule(id)
            .await?
            .ok_or(MonitorError::ScheduleNotFound)?;
        let seats = self
            .audit
            .watch_schedule(id, now - Self::HOLD_WINDOW)
            .await?
            .ok_or(MonitorError::ScheduleNotFound)?;
        let room = match &self.waiting_room {
            Some(room) => Some(room.queue.overview(id, now).await?),
            None => None,
        };
        let window = Self::HOLD_WINDOW.num_milliseconds() as f64 / 1000.0;
        Ok(SaleSnapshot {
            phase: SalePhase::of(&schedule, seats.seats, room.as_ref(), now),
            holds_per_sec: seats.holds_since as f64 / window,
            schedule,
            seats,
            room,
            read_at: now,
        })
    }
}
