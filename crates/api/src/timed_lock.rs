//! A `SeatLock` decorator that times the strategy alone: the lock wait and
//! the transaction, not the entry-token claim or an idempotent replay
//! around it. Applied to every strategy by the composition root.

use crate::metrics::{hold_outcome, Metrics};
use async_trait::async_trait;
use booking_domain::{HoldError, HoldRequest, RepoError, Reservation, SeatLock};
use std::sync::Arc;
use std::time::Instant;

pub struct TimedSeatLock {
    inner: Arc<dyn SeatLock>,
    metrics: Metrics,
}

impl std::fmt::Debug for TimedSeatLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimedSeatLock")
            .field("strategy", &self.inner.strategy())
            .finish()
    }
}

impl TimedSeatLock {
    pub fn new(inner: Arc<dyn SeatLock>, metrics: Metrics) -> Self {
        Self { inner, metrics }
    }
}

#[async_trait]
impl SeatLock for TimedSeatLock {
    fn strategy(&self) -> &'static str {
        self.inner.strategy()
    }

    async fn hold_seats(&self, request: &HoldRequest) -> Result<Reservation, HoldError> {
        let started = Instant::now();
        let held = self.inner.hold_seats(request).await;
        let outcome = hold_outcome(&held.as_ref().map(drop));
        self.metrics
            .observe_hold(self.inner.strategy(), outcome, started.elapsed());
        held
    }

    async fn seats_released(&self, reservation: &Reservation) -> Result<(), RepoError> {
        self.inner.seats_released(reservation).await
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        self.inner.counters()
    }
}
