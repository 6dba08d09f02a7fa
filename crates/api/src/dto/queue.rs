//! The waiting room's answers that the live stream shares: the status (the
//! `position` event and the body of enter and position) and the other
//! events' `data`.

use booking_domain::{QueueStatus, ScheduleId};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// Where the caller stands: the body of enter and position, and the `data`
/// of every `position` event of the stream.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueStatusResponse {
    pub schedule_id: i64,
    /// `before-opening`: the order is drawn at the opening; `waiting`; `admitted`;
    /// `paused`: no seat is free but some are held, so seats may come back;
    /// `sold-out`.
    #[schema(example = "waiting")]
    pub state: &'static str,
    /// The place in the line, fixed once drawn (or on arrival after the
    /// opening): the line is served in ticket order. Null before the draw
    /// and once admitted.
    pub ticket: Option<u64>,
    /// 1-based place in line; null before the opening (not drawn yet); 0 once admitted.
    pub position: Option<u64>,
    /// How many wait: in the pre-queue before the opening, in line after it.
    pub waiting: u64,
    pub admitted: bool,
    /// From the measured admission rate; null when nothing was admitted lately.
    pub estimated_wait_secs: Option<i64>,
    /// Seats still free.
    pub seats_left: i64,
    /// When the sale opens; null when it is open.
    pub opens_at: Option<DateTime<Utc>>,
    /// Seconds until the opening; null once open.
    pub opens_in_secs: Option<i64>,
}

impl QueueStatusResponse {
    pub fn new(schedule: ScheduleId, status: &QueueStatus) -> Self {
        Self {
            schedule_id: schedule.0,
            state: status.state.as_str(),
            ticket: status.ticket,
            position: status.position,
            waiting: status.waiting,
            admitted: status.position == Some(0),
            estimated_wait_secs: status
                .estimated_wait
                .map(|d| (d.num_milliseconds() + 999) / 1000),
            seats_left: status.seats_left,
            opens_at: status.opens_at,
            opens_in_secs: status.opens_in_secs,
        }
    }
}

/// `data` of the stream's `admitted` event: the pass. The stream ends.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdmittedEvent {
    /// Send as `X-Queue-Token` with `POST /api/reservations`; single use.
    pub token: String,
    pub expires_at: String,
    /// When admission handed the pass out (milliseconds); null when the
    /// stream learned of it later.
    pub admitted_at: Option<String>,
    /// The place in line the pass was handed out for; null when the stream
    /// learned of it later. Passes go out in ticket order.
    pub ticket: Option<u64>,
}

/// `data` of the stream's `sold-out` event: no seat is free or held. The
/// stream ends.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SoldOutEvent {
    pub schedule_id: i64,
}

/// `data` of the stream's `left` event: no longer in the room (the pass
/// expired unused). The stream ends.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeftEvent {}

/// The stream's event types and the schema of each one's `data`, as the
/// `x-sse-events` extension of `GET /api/queue/events`.
pub const STREAM_EVENTS: [(&str, &str); 4] = [
    ("position", "QueueStatusResponse"),
    ("admitted", "AdmittedEvent"),
    ("sold-out", "SoldOutEvent"),
    ("left", "LeftEvent"),
];
