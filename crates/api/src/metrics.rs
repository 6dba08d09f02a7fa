//! Prometheus metrics at `/metrics`. Request and hold timings are recorded
//! as they happen; gauges of state elsewhere (queue sizes, outbox backlog,
//! pool use, job totals) are read when scraped.

use booking_domain::{ConsumerLag, ConsumerRecoveries, HoldError, InvariantAudit, JobCounters};
use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Every series this service exports.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    http: HistogramVec,
    holds: IntCounterVec,
    hold_seconds: HistogramVec,
    strategy_events: IntCounterVec,
    queue_waiting: IntGaugeVec,
    queue_active: IntGaugeVec,
    pub queue_admitted: IntCounter,
    sse_connections: IntGauge,
    outbox_backlog: IntGauge,
    outbox_oldest_age: Gauge,
    job_events: IntCounterVec,
    db_pool: IntGaugeVec,
    consumer_lag: IntGaugeVec,
    consumer_offset_resets: IntCounterVec,
    consumer_gaps: IntCounterVec,
    consumer_rejoins: IntCounterVec,
    seat_map_rebuilds: IntCounter,
    seat_maps_cached: IntGauge,
    pub oversold_seats: IntGauge,
    info: IntGaugeVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// Holds' outcomes as a label.
pub fn hold_outcome(result: &Result<(), &HoldError>) -> &'static str {
    match result {
        Ok(()) => "success",
        Err(HoldError::SeatTaken(_)) => "seat_taken",
        Err(HoldError::SoldOut) => "sold_out",
        Err(HoldError::Contention) => "contention",
        Err(HoldError::Repo(_)) => "error",
        Err(_) => "rejected",
    }
}

fn register<T: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: T) -> T {
    // Names are fixed and distinct: registration cannot collide.
    let _ = registry.register(Box::new(metric.clone()));
    metric
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let r = Registry::new();
        let seconds = vec![
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ];
        Ok(Self {
            http: register(&r, HistogramVec::new(
                HistogramOpts::new("http_request_duration_seconds", "HTTP request latency by route and status")
                    .buckets(seconds.clone()),
                &["route", "method", "status"],
            )?),
            holds: register(&r, IntCounterVec::new(
                Opts::new("booking_holds_total", "Hold attempts by strategy and outcome"),
                &["strategy", "outcome"],
            )?),
            hold_seconds: register(&r, HistogramVec::new(
                HistogramOpts::new(
                    "booking_hold_duration_seconds",
                    "Time to hold seats (lock wait and transaction) by strategy and outcome",
                )
                .buckets(seconds),
                &["strategy", "outcome"],
            )?),
            strategy_events: register(&r, IntCounterVec::new(
                Opts::new("booking_strategy_events_total", "Strategy internals, e.g. optimistic retries"),
                &["strategy", "event"],
            )?),
            queue_waiting: register(&r, IntGaugeVec::new(
                Opts::new("booking_queue_waiting", "Users waiting in a schedule's waiting room"),
                &["schedule"],
            )?),
            queue_active: register(&r, IntGaugeVec::new(
                Opts::new("booking_queue_active", "Admitted users holding a slot (token or hold)"),
                &["schedule"],
            )?),
            queue_admitted: register(&r, IntCounter::new("booking_queue_admitted_total", "Users admitted by this instance")?),
            sse_connections: register(&r, IntGauge::new("booking_sse_connections", "Open waiting-room event streams")?),
            outbox_backlog: register(&r, IntGauge::new("booking_outbox_backlog", "Outbox rows not yet published")?),
            outbox_oldest_age: register(&r, Gauge::new("booking_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row")?),
            job_events: register(&r, IntCounterVec::new(
                Opts::new("booking_job_events_total", "Background jobs: published, publish_failures, expiry_runs, expired, seats_released, duplicates_skipped, completed_seen, pruned, consumer_retries, dead_lettered"),
                &["event"],
            )?),
            db_pool: register(&r, IntGaugeVec::new(
                Opts::new("booking_db_pool_connections", "Database pool: size, available, waiting"),
                &["state"],
            )?),
            consumer_lag: register(&r, IntGaugeVec::new(
                Opts::new("booking_consumer_lag_records", "Records each consumer group has not handled yet (high watermark minus committed offset), per topic (Kafka; measured every 5 s)"),
                &["topic", "group"],
            )?),
            consumer_offset_resets: register(&r, IntCounterVec::new(
                Opts::new("booking_consumer_offset_resets_total", "Times a consumer read a log again from its start: the group's offset was past the end of a log that came back shorter, or the topic vanished (a broker back empty)"),
                &["topic", "group"],
            )?),
            consumer_gaps: register(&r, IntCounterVec::new(
                Opts::new("booking_consumer_gaps_total", "Times the broker delivered a later record than a consumer expected and the consumer went back for the skipped ones"),
                &["topic", "group"],
            )?),
            consumer_rejoins: register(&r, IntCounterVec::new(
                Opts::new("booking_consumer_rejoins_total", "Times a consumer left its group and joined again because a partition with records to handle had no reader for seconds (a rebalance that left it to nobody)"),
                &["topic", "group"],
            )?),
            seat_map_rebuilds: register(&r, IntCounter::new(
                "booking_seat_map_rebuilds_total",
                "Reads of the store to rebuild a seat map (at most one per schedule per max age)",
            )?),
            seat_maps_cached: register(&r, IntGauge::new(
                "booking_seat_maps_cached",
                "Schedules whose seat map this instance keeps in memory",
            )?),
            oversold_seats: register(&r, IntGauge::new(
                "booking_oversold_seats",
                "Seats in more than one active reservation, from the periodic audit: must stay 0",
            )?),
            info: register(&r, IntGaugeVec::new(
                Opts::new("booking_info", "This instance: strategy, store, waiting room (always 1)"),
                &["strategy", "store", "waiting_room"],
            )?),
            registry: r,
        })
    }

    pub fn describe_instance(&self, strategy: &str, store: &str, waiting_room: bool) {
        let room = if waiting_room { "enabled" } else { "disabled" };
        self.info.with_label_values(&[strategy, store, room]).set(1);
    }

    /// Forgets the queue gauges, so a drained queue does not keep reporting.
    pub fn reset_queues(&self) {
        self.queue_waiting.reset();
        self.queue_active.reset();
    }

    pub fn observe_http(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        self.http
            .with_label_values(&[route, method, &status.to_string()])
            .observe(elapsed.as_secs_f64());
    }

    pub fn observe_hold(&self, strategy: &str, outcome: &str, elapsed: Duration) {
        self.holds.with_label_values(&[strategy, outcome]).inc();
        self.hold_seconds
            .with_label_values(&[strategy, outcome])
            .observe(elapsed.as_secs_f64());
    }

    /// Brings a counter up to a running total kept elsewhere.
    fn catch_up(counter: &IntCounter, total: u64) {
        let seen = counter.get();
        if total > seen {
            counter.inc_by(total - seen);
        }
    }

    pub fn strategy_totals(&self, strategy: &str, totals: &[(&'static str, u64)]) {
        for (event, total) in totals {
            Self::catch_up(
                &self.strategy_events.with_label_values(&[strategy, event]),
                *total,
            );
        }
    }

    /// The jobs' totals, and the bus's (e.g. Kafka retries, dead letters).
    pub fn job_totals(&self, jobs: &JobCounters, bus: &[(&'static str, u64)]) {
        let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        let mut totals = vec![
            ("published", load(&jobs.published)),
            ("publish_failures", load(&jobs.publish_failures)),
            ("expiry_runs", load(&jobs.expiry_runs)),
            ("expired", load(&jobs.expired)),
            ("seats_released", load(&jobs.seats_released)),
            ("duplicates_skipped", load(&jobs.duplicates_skipped)),
            ("completed_seen", load(&jobs.completed_seen)),
            ("pruned", load(&jobs.pruned)),
        ];
        totals.extend_from_slice(bus);
        for (event, total) in totals {
            Self::catch_up(&self.job_events.with_label_values(&[event]), total);
        }
    }

    pub fn consumer_lags(&self, lags: &[ConsumerLag]) {
        for lag in lags {
            self.consumer_lag
                .with_label_values(&[&lag.topic, &lag.group])
                .set(lag.records);
        }
    }

    pub fn consumer_recoveries(&self, recoveries: &[ConsumerRecoveries]) {
        for r in recoveries {
            let labels = [r.topic.as_str(), r.group.as_str()];
            Self::catch_up(
                &self.consumer_offset_resets.with_label_values(&labels),
                r.offset_resets,
            );
            Self::catch_up(&self.consumer_gaps.with_label_values(&labels), r.gaps);
            Self::catch_up(&self.consumer_rejoins.with_label_values(&labels), r.rejoins);
        }
    }

    pub fn queue(&self, schedule: i64, waiting: u64, active: u64) {
        let label = schedule.to_string();
        self.queue_waiting
            .with_label_values(&[&label])
            .set(i64::try_from(waiting).unwrap_or(i64::MAX));
        self.queue_active
            .with_label_values(&[&label])
            .set(i64::try_from(active).unwrap_or(i64::MAX));
    }

    pub fn sse(&self, connections: usize) {
        self.sse_connections
            .set(i64::try_from(connections).unwrap_or(i64::MAX));
    }

    pub fn outbox(&self, backlog: i64, oldest_age: Option<chrono::Duration>) {
        self.outbox_backlog.set(backlog);
        let age = oldest_age.map_or(0.0, |a| a.num_milliseconds() as f64 / 1000.0);
        self.outbox_oldest_age.set(age);
    }

    pub fn db_pool(&self, size: usize, available: usize, waiting: usize) {
        for (state, n) in [
            ("size", size),
            ("available", available),
            ("waiting", waiting),
        ] {
            self.db_pool
                .with_label_values(&[state])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// The seat-map cache's running total of rebuilds and its size.
    pub fn seat_maps(&self, rebuilds: u64, cached: usize) {
        Self::catch_up(&self.seat_map_rebuilds, rebuilds);
        self.seat_maps_cached
            .set(i64::try_from(cached).unwrap_or(i64::MAX));
    }

    pub fn encode(&self) -> Result<String, prometheus::Error> {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

/// The oversell guard: audits every schedule and reports seats held by two
/// active reservations (the audit reads the tables, not the requests).
pub async fn oversold_seats(
    audit: &dyn InvariantAudit,
    schedules: &[booking_domain::ScheduleId],
) -> Result<i64, booking_domain::RepoError> {
    let mut total = 0;
    for schedule in schedules {
        total += audit
            .audit_schedule(*schedule)
            .await?
            .double_booked_seats
            .len() as i64;
    }
    Ok(total)
}
