//! `/metrics` for Prometheus.

use crate::error::ApiError;
use crate::state::AppState;
use actix_web::{get, web, HttpResponse};

/// Prometheus text format. Gauges of state kept elsewhere are read now,
/// through the use cases and the ports.
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let m = &state.metrics;
    let service = &state.service;
    m.strategy_totals(service.strategy(), &service.bookings.strategy_counters());
    m.job_totals(&state.jobs.counters, &state.jobs.bus.counters());
    m.consumer_lags(&state.jobs.bus.consumer_lags());
    m.consumer_recoveries(&state.jobs.bus.consumer_recoveries());
    m.seat_maps(state.seat_maps.rebuilds(), state.seat_maps.cached());
    if let Some(hub) = &state.hub {
        m.sse(hub.connections());
    }
    m.reset_queues();
    for (schedule, stats) in service.admissions.queue_stats().await? {
        m.queue(schedule.0, stats.waiting, stats.active);
    }
    let backlog = state.jobs.relay.outbox.backlog(state.clock.now()).await?;
    m.outbox(backlog.unpublished, backlog.oldest_age);
    if let Some(pool) = &state.pool {
        let usage = pool.pool_usage();
        m.db_pool(usage.size, usage.available, usage.waiting);
    }
    let body = m.encode().map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(body))
}
