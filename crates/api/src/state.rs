//! What every handler shares: the use cases, and the ports `/health` and
//! `/metrics` read. Built by `wiring`; handlers only read it.

use crate::jobs::Jobs;
use crate::metrics::Metrics;
use crate::seat_maps::SeatMaps;
use crate::sse::QueueHub;
use booking_domain::{BookingService, Clock, InvariantAudit, PoolStats, Readiness, SaleMonitor};
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub service: BookingService,
    /// The public seat maps, served from memory.
    pub seat_maps: SeatMaps,
    pub readiness: Arc<dyn Readiness>,
    /// `postgres` or `memory`.
    pub store_kind: &'static str,
    /// The SSE streams of the waiting room; `None` when it is off.
    pub hub: Option<QueueHub>,
    /// How long a stream ticket opens a stream.
    pub stream_ticket_ttl: chrono::Duration,
    pub jobs: Jobs,
    pub clock: Arc<dyn Clock>,
    pub metrics: Metrics,
    pub audit: Arc<dyn InvariantAudit>,
    /// The operator's live view of a sale.
    pub monitor: SaleMonitor,
    /// The store's connection pool; `None` when embedded.
    pub pool: Option<Arc<dyn PoolStats>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("strategy", &self.service.strategy())
            .field("store", &self.store_kind)
            .finish()
    }
}
