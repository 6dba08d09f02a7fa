//! The background work around reservations: the outbox relay, the hold
//! expirer and the row pruner (one instance at a time, by lease), and the
//! event consumers.
//! Each is one step here; the timers that repeat them live in `api`.

use crate::*;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Counters the jobs keep; exported as metrics.
#[derive(Debug, Default)]
pub struct JobCounters {
    pub published: AtomicU64,
    pub publish_failures: AtomicU64,
    pub expiry_runs: AtomicU64,
    pub expired: AtomicU64,
    pub seats_released: AtomicU64,
    pub duplicates_skipped: AtomicU64,
    pub completed_seen: AtomicU64,
    /// Rows deleted by the pruner (published outbox rows and processed marks).
    pub pruned: AtomicU64,
}

impl JobCounters {
    fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Publishes committed outbox rows through the event bus, at least once.
#[derive(Clone)]
pub struct OutboxRelay {
    pub outbox: Arc<dyn OutboxRepository>,
    pub bus: Arc<dyn EventBus>,
    /// Unique per instance: whose claims these are.
    pub owner: String,
    pub batch: i64,
    /// How long a claim protects a batch from other relays.
    pub claim_for: Duration,
    pub counters: Arc<JobCounters>,
}

impl std::fmt::Debug for OutboxRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxRelay")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl OutboxRelay {
    /// Claims one batch and publishes it with `EventBus::publish_batch`
    /// (pipelined where the bus can). Every row the broker acknowledged is
    /// marked published. If it refused one, the rest of the batch (the
    /// refused rows and any not sent) is given back at once and the first
    /// refusal returned, so the caller backs off. Returns how many were
    /// published.
    pub async fn relay_once(&self, now: DateTime<Utc>) -> Result<usize, RepoError> {
        let until = now + self.claim_for;
        let batch = self
            .outbox
            .claim_unpublished(&self.owner, self.batch, now, until)
            .await?;
        if batch.is_empty() {
            return Ok(0);
        }
        let mut outcomes = self.bus.publish_batch(&batch).await.into_iter();
        let mut published = Vec::with_capacity(batch.len());
        let mut rest = Vec::new();
        let mut refusal = None;
        for event in &batch {
            match outcomes.next() {
                Some(Ok(())) => published.push(event.id),
                Some(Err(e)) => {
                    refusal.get_or_insert(e);
                    rest.push(event.id);
                }
                None => rest.push(event.id), // not sent
            }
        }
        if !published.is_empty() {
            self.outbox.mark_published(&published, now).await?;
            JobCounters::add(&self.counters.published, published.len());
        }
        if rest.is_empty() {
            return Ok(published.len());
        }
        JobCounters::add(&self.counters.publish_failures, 1);
        self.outbox.release_claims(&self.owner, &rest).await?;
        Err(refusal.unwrap_or_else(|| {
            RepoError::unexpected(format!(
                "the event bus left {} of {} events unsent without a refusal",
                rest.len(),
                batch.len()
            ))
        }))
    }
}

/// Expires overdue holds; guarded by a lease so one instance runs a period.
#[derive(Clone)]
pub struct HoldExpirer {
    pub reservations: Arc<dyn ReservationRepository>,
    pub leases: Arc<dyn JobLeaseRepository>,
    pub owner: String,
    /// The scheduler's period; the lease lasts one period.
    pub period: Duration,
    pub batch: i64,
    pub counters: Arc<JobCounters>,
}

impl std::fmt::Debug for HoldExpirer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HoldExpirer")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl HoldExpirer {
    pub const LEASE: &'static str = "expire-overdue-holds";

    /// `None` if another instance holds this period's lease; else the holds
    /// expired. The lease is not released afterwards: it marks the period
    /// as done, and it runs out on its own if this instance dies.
    pub async fn expire_overdue_holds(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<Reservation>>, RepoError> {
        if !take_period(&*self.leases, Self::LEASE, &self.owner, now, self.period).await? {
            return Ok(None);
        }
        JobCounters::add(&self.counters.expiry_runs, 1);
        let mut expired = Vec::new();
        loop {
            let batch = self
                .reservations
                .expire_overdue_holds(now, self.batch)
                .await?;
            let done = (batch.len() as i64) < self.batch;
            expired.extend(batch);
            if done {
                break;
            }
        }
        JobCounters::add(&self.counters.expired, expired.len());
        Ok(Some(expired))
    }
}

/// Takes a periodic job's lease for this period. It lasts slightly less than
/// the period, so its owner renews on time; it is not released after the
/// run: it marks the period as done, and runs out if the owner dies.
async fn take_period(
    leases: &dyn JobLeaseRepository,
    name: &str,
    owner: &str,
    now: DateTime<Utc>,
    period: Duration,
) -> Result<bool, RepoError> {
    let until = now + period - Duration::milliseconds(period.num_milliseconds() / 10);
    leases.try_acquire(name, owner, now, until).await
}

/// Deletes what nobody reads again: outbox rows published, and consumers'
/// processed-event marks written, longer than `keep` ago. One instance a
/// period, by lease; in batches, so no run holds a long transaction.
#[derive(Clone)]
pub struct RowPruner {
    pub outbox: Arc<dyn OutboxRepository>,
    pub processed: Arc<dyn ProcessedEvents>,
    pub leases: Arc<dyn JobLeaseRepository>,
    pub owner: String,
    pub period: Duration,
    /// Longer than a record can be delivered again (Kafka keeps records 7
    /// days by default): a mark pruned sooner would let a late duplicate act.
    pub keep: Duration,
    pub batch: i64,
    pub counters: Arc<JobCounters>,
}

impl std::fmt::Debug for RowPruner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowPruner")
            .field("owner", &self.owner)
            .field("keep", &self.keep)
            .finish_non_exhaustive()
    }
}

/// What one pruner run deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub outbox: u64,
    pub processed: u64,
}

impl RowPruner {
    pub const LEASE: &'static str = "prune-old-rows";

    /// `None` if another instance holds this period's lease.
    pub async fn prune(&self, now: DateTime<Utc>) -> Result<Option<Pruned>, RepoError> {
        if !take_period(&*self.leases, Self::LEASE, &self.owner, now, self.period).await? {
            return Ok(None);
        }
        let before = now - self.keep;
        let mut pruned = Pruned::default();
        loop {
            let n = self.outbox.prune_published(before, self.batch).await?;
            pruned.outbox += n;
            if (n as i64) < self.batch {
                break;
            }
        }
        loop {
            let n = self.processed.prune_processed(before, self.batch).await?;
            pruned.processed += n;
            if (n as i64) < self.batch {
                break;
            }
        }
        self.counters
            .pruned
            .fetch_add(pruned.outbox + pruned.processed, Ordering::Relaxed);
        Ok(Some(pruned))
    }
}

/// The reservation an event speaks of, rebuilt from its payload.
pub fn reservation_of(event: &OutboxEvent) -> Result<Reservation, BoxError> {
    let e: ReservationEvent = serde_json::from_value(event.payload.clone())
        .map_err(|err| format!("event {} has no reservation payload: {err}", event.id))?;
    Ok(Reservation {
        id: ReservationId(e.reservation_id),
        user_id: UserId(e.user_id),
        schedule_id: ScheduleId(e.schedule_id),
        status: e.status,
        seat_ids: e.seat_ids.into_iter().map(SeatId).collect(),
        total_amount: e.total_amount,
        expires_at: e.occurred_at,
        created_at: e.occurred_at,
    })
}

/// `seat-release`: on `reservation.cancelled` (cancel or expiry), gives the
/// seats back outside the database (the Redis stock, the hold markers).
/// The database released them in the transaction that wrote the event.
/// Idempotent: an event delivered twice releases once.
#[derive(Clone)]
pub struct SeatReleaseHandler {
    pub processed: Arc<dyn ProcessedEvents>,
    pub seat_lock: Arc<dyn SeatLock>,
    pub queue: Option<Arc<dyn Queue>>,
    pub counters: Arc<JobCounters>,
}

impl std::fmt::Debug for SeatReleaseHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SeatReleaseHandler")
    }
}

impl SeatReleaseHandler {
    pub const CONSUMER: &'static str = "seat-release";
}

#[async_trait]
impl EventHandler for SeatReleaseHandler {
    async fn handle(&self, event: &OutboxEvent) -> Result<(), BoxError> {
        let reservation = reservation_of(event)?;
        if reservation.status.is_active() {
            return Ok(()); // not a release
        }
        // Both effects are idempotent per reservation, so they come before
        // the mark: one that fails is retried with the record, never skipped
        // as already processed. The mark only keeps the counts exact.
        self.seat_lock.seats_released(&reservation).await?;
        if let Some(queue) = &self.queue {
            queue
                .clear_held(
                    reservation.schedule_id,
                    &reservation.seat_ids,
                    reservation.id,
                )
                .await?;
        }
        if self
            .processed
            .mark_processed(Self::CONSUMER, &event.id.to_string())
            .await?
        {
            JobCounters::add(&self.counters.seats_released, reservation.seat_ids.len());
        } else {
            JobCounters::add(&self.counters.duplicates_skipped, 1);
        }
        Ok(())
    }
}

/// `notification`: on `reservation.completed`, tells the buyer (a log line
/// stands in for the e-mail) and counts sales. Idempotent.
#[derive(Clone)]
pub struct CompletedHandler {
    pub processed: Arc<dyn ProcessedEvents>,
    pub counters: Arc<JobCounters>,
}

impl std::fmt::Debug for CompletedHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CompletedHandler")
    }
}

impl CompletedHandler {
    pub const CONSUMER: &'static str = "notification";
}

#[async_trait]
impl EventHandler for CompletedHandler {
    async fn handle(&self, event: &OutboxEvent) -> Result<(), BoxError> {
        let reservation = reservation_of(event)?;
        if self
            .processed
            .mark_processed(Self::CONSUMER, &event.id.to_string())
            .await?
        {
            tracing::info!(
                reservation = %reservation.id,
                user = %reservation.user_id,
                seats = reservation.seat_ids.len(),
                "booking confirmed: notify the buyer"
            );
            JobCounters::add(&self.counters.completed_seen, 1);
        }
        Ok(())
    }
}
