//! The waiting room's answers as the sale reads them: the queue status of
//! `enter` and of the `position` event, and the stream's final events
//! (`admitted`, `sold-out`, `left`), per /work/sale-spec.md.

use crate::frames::SseItem;
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// `state` of a queue status; `None` from a server without sale states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueueState {
    BeforeOpening,
    Waiting,
    Admitted,
    Paused,
    SoldOut,
    #[serde(other)]
    Unknown,
}

/// The fields of a queue status the driver uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueStatus {
    #[serde(default)]
    pub state: Option<QueueState>,
    /// `None` before the opening: the order is not drawn yet.
    #[serde(default)]
    pub position: Option<u64>,
    #[serde(default)]
    pub admitted: bool,
    /// The place in the line (`ticket`): fixed once drawn, or on arrival
    /// after the opening, and comparable across all buyers, unlike
    /// `position`, which falls as others are admitted.
    #[serde(default, rename = "ticket")]
    pub drawn_position: Option<u64>,
}

impl QueueStatus {
    pub fn is_before_opening(&self) -> bool {
        self.state == Some(QueueState::BeforeOpening)
    }
}

/// One thing read from a buyer's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaleEvent {
    Position(QueueStatus),
    /// `token` is `None` when the data did not carry one.
    Admitted {
        token: Option<String>,
        admitted_at: Option<DateTime<Utc>>,
        drawn_position: Option<u64>,
    },
    SoldOut,
    Left,
    Heartbeat,
    /// An unknown event, a comment other than a heartbeat, or data that did
    /// not parse: counted, never acted on.
    Other(String),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AdmittedData {
    token: String,
    #[serde(default)]
    admitted_at: Option<DateTime<Utc>>,
    #[serde(default, rename = "ticket")]
    drawn_position: Option<u64>,
}

impl From<SseItem> for SaleEvent {
    fn from(item: SseItem) -> Self {
        let (name, data) = match item {
            SseItem::Comment(text) if text == "heartbeat" => return SaleEvent::Heartbeat,
            SseItem::Comment(text) => return SaleEvent::Other(format!(": {text}")),
            SseItem::Event { name, data } => (name, data),
        };
        match name.as_str() {
            "position" => serde_json::from_str(&data)
                .map(SaleEvent::Position)
                .unwrap_or(SaleEvent::Other(name)),
            "admitted" => match serde_json::from_str::<AdmittedData>(&data) {
                Ok(a) => SaleEvent::Admitted {
                    token: Some(a.token).filter(|t| !t.is_empty()),
                    admitted_at: a.admitted_at,
                    drawn_position: a.drawn_position,
                },
                Err(_) => SaleEvent::Admitted {
                    token: None,
                    admitted_at: None,
                    drawn_position: None,
                },
            },
            "sold-out" => SaleEvent::SoldOut,
            "left" => SaleEvent::Left,
            _ => SaleEvent::Other(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::FrameReader;

    fn read(stream: &[u8]) -> Vec<SaleEvent> {
        let mut reader = FrameReader::default();
        let mut items = Vec::new();
        reader.feed(stream, &mut items).unwrap();
        items.into_iter().map(SaleEvent::from).collect()
    }

    #[test]
    fn a_sale_stream_reads_from_countdown_to_admission() {
        let events = read(
            b"event: position\n\
              data: {\"scheduleId\":1,\"state\":\"before-opening\",\"position\":null,\"waiting\":9000,\
              \"admitted\":false,\"estimatedWaitSecs\":null,\"seatsLeft\":1000,\
              \"opensAt\":\"2026-11-30T10:00:00Z\",\"opensInSecs\":3}\n\n\
              : heartbeat\n\n\
              event: position\n\
              data: {\"scheduleId\":1,\"state\":\"waiting\",\"position\":17,\"waiting\":9000,\
              \"admitted\":false,\"estimatedWaitSecs\":12,\"seatsLeft\":412,\"opensAt\":null,\"opensInSecs\":null}\n\n\
              event: admitted\n\
              data: {\"token\":\"t0k\",\"expiresAt\":\"2026-11-30T10:05:00Z\",\"admittedAt\":\"2026-11-30T10:00:01.250Z\"}\n\n",
        );
        let at = "2026-11-30T10:00:01.250Z".parse().unwrap();
        assert_eq!(
            events,
            vec![
                SaleEvent::Position(QueueStatus {
                    state: Some(QueueState::BeforeOpening),
                    position: None,
                    admitted: false,
                    drawn_position: None
                }),
                SaleEvent::Heartbeat,
                SaleEvent::Position(QueueStatus {
                    state: Some(QueueState::Waiting),
                    position: Some(17),
                    admitted: false,
                    drawn_position: None
                }),
                SaleEvent::Admitted {
                    token: Some("t0k".into()),
                    admitted_at: Some(at),
                    drawn_position: None
                },
            ]
        );
    }

    #[test]
    fn the_ticket_of_the_admitted_event_is_read() {
        let events = read(
            b"event: admitted\ndata: {\"token\":\"t\",\"expiresAt\":\"2026-11-30T10:05:00Z\",\"ticket\":42}\n\n",
        );
        assert!(matches!(
            events[..],
            [SaleEvent::Admitted {
                drawn_position: Some(42),
                ..
            }]
        ));
    }

    #[test]
    fn the_final_events_are_told_apart() {
        let events =
            read(b"event: sold-out\ndata: {\"scheduleId\":1}\n\nevent: left\ndata: {}\n\n");
        assert_eq!(events, vec![SaleEvent::SoldOut, SaleEvent::Left]);
    }

    #[test]
    fn a_status_without_sale_states_still_parses() {
        // The server before the sale protocol: no state, position a number.
        let events = read(
            b"event: position\ndata: {\"position\":3,\"waiting\":9,\"estimatedWaitSecs\":60}\n\n\
              event: admitted\ndata: {\"token\":\"ab\",\"expiresAt\":\"2025-01-01T00:00:00Z\"}\n\n",
        );
        assert_eq!(
            events,
            vec![
                SaleEvent::Position(QueueStatus {
                    state: None,
                    position: Some(3),
                    admitted: false,
                    drawn_position: None
                }),
                SaleEvent::Admitted {
                    token: Some("ab".into()),
                    admitted_at: None,
                    drawn_position: None
                },
            ]
        );
    }

    #[test]
    fn an_unknown_state_or_broken_data_is_not_fatal() {
        let events = read(
            b"event: position\ndata: {\"state\":\"intermission\",\"position\":null}\n\n\
              event: position\ndata: not json\n\n\
              event: admitted\ndata: {}\n\n",
        );
        assert_eq!(
            events,
            vec![
                SaleEvent::Position(QueueStatus {
                    state: Some(QueueState::Unknown),
                    position: None,
                    admitted: false,
                    drawn_position: None
                }),
                SaleEvent::Other("position".into()),
                SaleEvent::Admitted {
                    token: None,
                    admitted_at: None,
                    drawn_position: None
                },
            ]
        );
    }
}
