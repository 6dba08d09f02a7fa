//! The timers of the background jobs every instance runs: the outbox relay
//! (backing off while the broker is down), the hold expirer and the row
//! pruner (one instance a period, by lease), admission to the waiting room,
//! and the oversell audit.

use crate::config::Settings;
use crate::sse::QueueHub;
use booking_domain::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The jobs of one instance, built by the composition root.
#[derive(Clone)]
pub struct Jobs {
    pub relay: OutboxRelay,
    pub expirer: HoldExpirer,
    pub pruner: RowPruner,
    pub bus: Arc<dyn EventBus>,
    pub counters: Arc<JobCounters>,
    pub relay_poll: Duration,
    pub relay_max_backoff: Duration,
    pub expiry_period: Duration,
    pub prune_period: Duration,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs")
            .field("relay", &self.relay)
            .field("expirer", &self.expirer)
            .field("pruner", &self.pruner)
            .finish()
    }
}

/// A name for this instance in leases and claims: host, process, random.
pub fn instance_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
    format!(
        "{host}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

impl Jobs {
    pub fn new(
        settings: &Settings,
        owner: &str,
        stores: JobStores,
        bus: Arc<dyn EventBus>,
        counters: Arc<JobCounters>,
    ) -> Self {
        let events = &settings.events;
        let period = chrono::Duration::seconds(settings.expiry.period_secs.max(1));
        let retention = &settings.retention;
        let prune_every = retention.period_secs.max(1);
        Self {
            pruner: RowPruner {
                outbox: stores.outbox.clone(),
                processed: stores.processed,
                leases: stores.leases.clone(),
                owner: owner.to_owned(),
                period: chrono::Duration::seconds(prune_every),
                keep: chrono::Duration::days(retention.keep_days.max(1)),
                batch: retention.batch.max(1),
                counters: counters.clone(),
            },
            relay: OutboxRelay {
                outbox: stores.outbox,
                bus: bus.clone(),
                owner: owner.to_owned(),
                batch: events.relay_batch.max(1),
                claim_for: chrono::Duration::seconds(events.relay_claim_secs),
                counters: counters.clone(),
            },
            expirer: HoldExpirer {
                reservations: stores.reservations,
                leases: stores.leases,
                owner: owner.to_owned(),
                period,
                batch: settings.expiry.batch.max(1),
                counters: counters.clone(),
            },
            bus,
            counters,
            relay_poll: Duration::from_millis(events.relay_poll_ms),
            relay_max_backoff: Duration::from_millis(events.relay_max_backoff_ms),
            expiry_period: Duration::from_secs(settings.expiry.period_secs.max(1).unsigned_abs()),
            prune_period: Duration::from_secs(prune_every.unsigned_abs()),
        }
    }

    /// Starts every loop; they end when `stopped` turns true.
    pub fn spawn(&self, clock: Arc<dyn Clock>, stopped: watch::Receiver<bool>) {
        tokio::spawn(relay_continuously(
            self.clone(),
            clock.clone(),
            stopped.clone(),
        ));
        tokio::spawn(expire_continuously(
            self.clone(),
            clock.clone(),
            stopped.clone(),
        ));
        tokio::spawn(prune_continuously(self.clone(), clock, stopped));
    }
}

/// The stores the jobs read and write.
#[allow(missing_debug_implementations)]
pub struct JobStores {
    pub outbox: Arc<dyn OutboxRepository>,
    pub reservations: Arc<dyn ReservationRepository>,
    pub leases: Arc<dyn JobLeaseRepository>,
    pub processed: Arc<dyn ProcessedEvents>,
}

/// Sleeps `pause`, or returns true at once if the instance is stopping.
async fn stopping_within(stopped: &mut watch::Receiver<bool>, pause: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(pause) => *stopped.borrow(),
        _ = stopped.changed() => true,
    }
}

async fn relay_continuously(jobs: Jobs, clock: Arc<dyn Clock>, mut stopped: watch::Receiver<bool>) {
    let mut backoff = jobs.relay_poll;
    loop {
        let pause = match jobs.relay.relay_once(clock.now()).await {
            // A full batch: more may be waiting, go again at once.
            Ok(n) if n as i64 >= jobs.relay.batch => {
                backoff = jobs.relay_poll;
                Duration::ZERO
            }
            Ok(_) => {
                backoff = jobs.relay_poll;
                jobs.relay_poll
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "outbox relay: publish failed, backing off");
                let pause = backoff;
                backoff = (backoff * 2).min(jobs.relay_max_backoff);
                pause
            }
        };
        if stopping_within(&mut stopped, pause).await {
            return;
        }
    }
}

async fn expire_continuously(
    jobs: Jobs,
    clock: Arc<dyn Clock>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        match jobs.expirer.expire_overdue_holds(clock.now()).await {
            Ok(Some(expired)) if !expired.is_empty() => {
                tracing::info!(expired = expired.len(), "expired overdue holds");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "hold expiry failed; next period retries"),
        }
        if stopping_within(&mut stopped, jobs.expiry_period).await {
            return;
        }
    }
}

async fn prune_continuously(jobs: Jobs, clock: Arc<dyn Clock>, mut stopped: watch::Receiver<bool>) {
    loop {
        match jobs.pruner.prune(clock.now()).await {
            Ok(Some(pruned)) if pruned != Pruned::default() => {
                tracing::info!(
                    outbox = pruned.outbox,
                    processed = pruned.processed,
                    "pruned old rows"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "pruning failed; next period retries"),
        }
        if stopping_within(&mut stopped, jobs.prune_period).await {
            return;
        }
    }
}

/// The sale ticker: every tick, one admission step per open room (atomic in
/// the queue, so instances do not race), whose update also goes to this
/// instance's streams; and the streams' heartbeat.
pub async fn run_sales(
    admissions: Admissions,
    hub: Option<QueueHub>,
    every: Duration,
    admitted: prometheus::IntCounter,
    mut stopped: watch::Receiver<bool>,
) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut cursors: HashMap<ScheduleId, String> = HashMap::new();
    let mut last_heartbeat = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stopped.changed() => return,
        }
        let mut rooms = match admissions.open_rooms().await {
            Ok(rooms) => rooms,
            Err(e) => {
                tracing::warn!(error = %e, "open rooms unavailable; retrying next tick");
                Vec::new()
            }
        };
        if let Some(hub) = &hub {
            rooms.extend(hub.schedules());
        }
        rooms.sort_unstable();
        rooms.dedup();
        for schedule in rooms {
            let cursor = cursors.get(&schedule).map(String::as_str);
            match admissions.tick(schedule, cursor).await {
                Ok(update) => {
                    admitted.inc_by(update.tick.handed_out);
                    if let Some(hub) = &hub {
                        hub.publish(schedule, &update).await;
                    }
                    if update.sold_out() {
                        cursors.remove(&schedule);
                    } else {
                        cursors.insert(schedule, update.tick.cursor);
                    }
                }
                Err(e) => {
                    tracing::warn!(%schedule, error = %e, "admission failed; retrying next tick")
                }
            }
        }
        if let Some(hub) = &hub {
            if last_heartbeat.elapsed() >= hub.heartbeat_every() {
                last_heartbeat = tokio::time::Instant::now();
                hub.heartbeat();
            }
        }
    }
}

/// The oversell guard: every 30 s, audit every schedule from the tables and
/// export how many seats are in two active reservations (must stay 0).
pub async fn audit_continuously(
    catalogue: Catalogue,
    audit: Arc<dyn InvariantAudit>,
    oversold: prometheus::IntGauge,
    mut stopped: watch::Receiver<bool>,
) {
    let mut interval = tokio::time::interval(Duration::from_secs(30));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stopped.changed() => return,
        }
        let ids = match catalogue.all_schedules().await {
            Ok(all) => all.into_iter().map(|s| s.id).collect::<Vec<_>>(),
            Err(e) => {
                tracing::warn!(error = %e, "oversell audit: schedules unavailable");
                continue;
            }
        };
        match crate::metrics::oversold_seats(audit.as_ref(), &ids).await {
            Ok(0) => oversold.set(0),
            Ok(n) => {
                tracing::error!(
                    oversold_seats = n,
                    "OVERSELL: seats in two active reservations"
                );
                oversold.set(n);
            }
            Err(e) => tracing::warn!(error = %e, "oversell audit failed"),
        }
    }
}
