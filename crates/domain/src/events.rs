//! Domain events. Every reservation state change writes one to the outbox in
//! the same transaction; a relay publishes them through the `EventBus`.

use crate::{RequestId, Reservation, ReservationStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Topic names (Kafka topics in production).
pub mod topics {
    /// A hold was placed (PENDING).
    pub const RESERVATION_HELD: &str = "reservation.held";
    /// A hold was paid (CONFIRMED).
    pub const RESERVATION_COMPLETED: &str = "reservation.completed";
    /// A hold was cancelled by its user or expired: its seats go back.
    pub const RESERVATION_CANCELLED: &str = "reservation.cancelled";
}

/// The payload of every reservation event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReservationEvent {
    pub reservation_id: i64,
    pub user_id: i64,
    pub schedule_id: i64,
    pub seat_ids: Vec<i64>,
    pub status: ReservationStatus,
    pub total_amount: i64,
    pub occurred_at: DateTime<Utc>,
}

/// An event about to be written to the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOutboxEvent {
    pub topic: &'static str,
    pub key: String,
    pub payload: serde_json::Value,
    /// The request whose transaction writes it; `None` for the jobs.
    pub request_id: Option<RequestId>,
}

impl NewOutboxEvent {
    /// The event for `reservation` having just entered its current status,
    /// caused by `request_id`.
    pub fn for_reservation(
        reservation: &Reservation,
        occurred_at: DateTime<Utc>,
        request_id: Option<&RequestId>,
    ) -> Self {
        let topic = match reservation.status {
            ReservationStatus::Pending => topics::RESERVATION_HELD,
            ReservationStatus::Confirmed => topics::RESERVATION_COMPLETED,
            ReservationStatus::Cancelled | ReservationStatus::Expired => {
                topics::RESERVATION_CANCELLED
            }
        };
        let payload = ReservationEvent {
            reservation_id: reservation.id.0,
            user_id: reservation.user_id.0,
            schedule_id: reservation.schedule_id.0,
            seat_ids: reservation.seat_ids.iter().map(|s| s.0).collect(),
            status: reservation.status,
            total_amount: reservation.total_amount,
            occurred_at,
        };
        Self {
            topic,
            key: reservation.id.to_string(),
            // A struct of plain fields always serialises.
            payload: serde_json::to_value(payload).unwrap_or(serde_json::Value::Null),
            request_id: request_id.cloned(),
        }
    }
}

/// A stored outbox row.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    pub id: i64,
    pub topic: String,
    pub key: String,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    /// The id of the HTTP request whose transaction wrote the event, for
    /// following one booking through logs and consumers.
    pub request_id: Option<String>,
}
