//! `/metrics` for Prometheus.

use crate::error::ApiError;
use crate::startup::AppState;
use actix_web::{get, web, HttpResponse};

/// Prometheus text format. Gauges of state kept elsewhere are read now.
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let m = &state.metrics;
    let now = state.clock.now();
    m.strategy_totals(
        state.service.strategy(),
        &state.service.ports().seat_lock.counters(),
    );
    let kafka = state.jobs.kafka_stats.as_ref().map(|k| {
        let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        (load(&k.retries), load(&k.dead_lettered))
    });
    m.job_totals(&state.jobs.counters, kafka);
    if let Some(hub) = &state.hub {
        m.sse(hub.connections());
    }
    if let Some(room) = &state.service.ports().waiting_room {
        m.reset_queues();
        for schedule in room.queue.schedules_waiting().await? {
            let stats = room.queue.stats(schedule, now).await?;
            m.queue(schedule.0, stats.waiting, stats.active);
        }
    }
    let backlog = state.jobs.relay.outbox.backlog(now).await?;
    m.outbox(backlog.unpublished, backlog.oldest_age);
    if let Some(pg) = &state.pg {
        let status = pg.pool().status();
        m.db_pool(status.size, status.available, status.waiting);
    }
    let body = m.encode().map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(body))
}
