//! The history checker: what a load driver was told, held against what the
//! database kept.
//!
//! A history is one JSON line per operation the driver sent (hold, pay,
//! cancel): when it was sent and answered, by whom, for which seats and
//! reservation, and the HTTP status (0: no answer). An operation answered
//! 2xx is *acknowledged*: the client was told it happened. From the history
//! and the schedule's final tables the checker proves:
//!
//! - no seat had two acknowledged active holds at the same time: a hold is
//!   surely active from its answer until the earliest moment it could have
//!   ended (its start plus the hold TTL, an acknowledged cancel's start, the
//!   time the database ended it), or for good once paid;
//! - every acknowledged hold exists, for its user, with exactly the seats it
//!   was acknowledged with; every acknowledged payment exists and its
//!   reservation is CONFIRMED with its seats RESERVED; every acknowledged
//!   cancel left its reservation CANCELLED: nothing acknowledged was lost;
//! - the final tables put no seat in two active reservations.

pub mod tables;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// What an operation asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Hold,
    Pay,
    Cancel,
}

/// One line of a history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The user id, when the driver knows it.
    #[serde(default)]
    pub user: Option<i64>,
    pub op: Kind,
    /// The seats a hold asked for (empty for pay and cancel).
    #[serde(default)]
    pub seats: Vec<i64>,
    /// The reservation a hold created, or a pay or cancel named.
    #[serde(default)]
    pub reservation: Option<i64>,
    /// The HTTP status of the answer; 0 when there was none.
    pub status: u16,
}

impl Operation {
    pub fn acknowledged(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Reads a history: one JSON object per line, blank lines skipped.
pub fn parse_history(text: &str) -> Result<Vec<Operation>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| format!("history line {}: {e}", i + 1))
        })
        .collect()
}

/// A reservation as the database has it at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalReservation {
    pub user: i64,
    /// PENDING, CONFIRMED, CANCELLED or EXPIRED.
    pub status: String,
    pub expires_at: DateTime<Utc>,
    /// When it last changed: for CANCELLED and EXPIRED, when it ended.
    pub updated_at: DateTime<Utc>,
    /// Its seats, ascending.
    pub seats: Vec<i64>,
}

impl FinalReservation {
    pub fn active(&self) -> bool {
        self.status == "PENDING" || self.status == "CONFIRMED"
    }
}

/// A schedule's final tables, as the checker needs them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tables {
    pub reservations: BTreeMap<i64, FinalReservation>,
    /// Seat id -> AVAILABLE, HELD or RESERVED.
    pub seats: BTreeMap<i64, String>,
    /// Reservation ids with a payment row.
    pub payments: BTreeSet<i64>,
}

/// Something the history and the tables cannot both be right about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Anomaly {
    /// Two reservations surely held one seat at the same moment.
    DoubleHold {
        seat: i64,
        first: i64,
        second: i64,
        at: DateTime<Utc>,
    },
    /// An acknowledged hold whose reservation the database does not have.
    LostHold { reservation: Option<i64> },
    /// An acknowledged hold the database has with other seats or another user.
    HoldDiffers {
        reservation: i64,
        acknowledged: Vec<i64>,
        stored: Vec<i64>,
    },
    /// An acknowledged payment with no payment row or no CONFIRMED
    /// reservation with its seats RESERVED.
    LostPayment {
        reservation: Option<i64>,
        detail: String,
    },
    /// An acknowledged cancel whose reservation is not CANCELLED.
    LostCancel {
        reservation: Option<i64>,
        status: Option<String>,
    },
    /// The final tables have a seat in two active reservations.
    DoubleBooked { seat: i64, reservations: Vec<i64> },
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DoubleHold {
                seat,
                first,
                second,
                at,
            } => write!(
                f,
                "double hold: seat {seat} held by reservations {first} and {second} at {at}"
            ),
            Self::LostHold { reservation } => write!(
                f,
                "lost hold: acknowledged reservation {} is not stored",
                named(*reservation)
            ),
            Self::HoldDiffers {
                reservation,
                acknowledged,
                stored,
            } => write!(
                f,
                "hold differs: reservation {reservation} acknowledged seats {acknowledged:?}, stored {stored:?}"
            ),
            Self::LostPayment {
                reservation,
                detail,
            } => write!(
                f,
                "lost payment: reservation {} was acknowledged paid but {detail}",
                named(*reservation)
            ),
            Self::LostCancel {
                reservation,
                status,
            } => write!(
                f,
                "lost cancel: reservation {} was acknowledged cancelled but is {}",
                named(*reservation),
                status.as_deref().unwrap_or("not stored")
            ),
            Self::DoubleBooked { seat, reservations } => write!(
                f,
                "double booked: seat {seat} is in active reservations {reservations:?}"
            ),
        }
    }
}

/// A reservation id as a verdict names it (the history may name none).
fn named(reservation: Option<i64>) -> String {
    reservation.map_or_else(|| "(none named)".into(), |id| id.to_string())
}

/// The checker's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub operations: usize,
    pub acknowledged: usize,
    pub anomalies: Vec<Anomaly>,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.anomalies.is_empty()
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} operations ({} acknowledged), {} anomalies",
            self.operations,
            self.acknowledged,
            self.anomalies.len()
        )?;
        for a in &self.anomalies {
            write!(f, "\n  {a}")?;
        }
        Ok(())
    }
}

/// One acknowledged hold, merged over its replays (same reservation).
#[derive(Debug, Clone)]
struct AckedHold {
    reservation: i64,
    seats: Vec<i64>,
    /// Earliest start and earliest answer among its acknowledgements.
    start: DateTime<Utc>,
    answered: DateTime<Utc>,
}

/// Checks `history` against `tables`; `hold_ttl` is the server's hold lifetime.
pub fn check(history: &[Operation], tables: &Tables, hold_ttl: Duration) -> Verdict {
    let mut anomalies = Vec::new();
    let acked: Vec<&Operation> = history.iter().filter(|o| o.acknowledged()).collect();

    let mut holds: BTreeMap<i64, AckedHold> = BTreeMap::new();
    let mut paid: BTreeSet<i64> = BTreeSet::new();
    let mut cancels: BTreeMap<i64, DateTime<Utc>> = BTreeMap::new();
    for op in &acked {
        match (op.op, op.reservation) {
            (Kind::Hold, None) => anomalies.push(Anomaly::LostHold { reservation: None }),
            (Kind::Hold, Some(id)) => {
                let mut seats = op.seats.clone();
                seats.sort_unstable();
                let entry = holds.entry(id).or_insert_with(|| AckedHold {
                    reservation: id,
                    seats,
                    start: op.start,
                    answered: op.end,
                });
                entry.start = entry.start.min(op.start);
                entry.answered = entry.answered.min(op.end);
            }
            (Kind::Pay, Some(id)) => {
                paid.insert(id);
            }
            (Kind::Cancel, Some(id)) => {
                let at = cancels.entry(id).or_insert(op.start);
                *at = (*at).min(op.start);
            }
            (Kind::Pay, None) => anomalies.push(Anomaly::LostPayment {
                reservation: None,
                detail: "the history names no reservation".into(),
            }),
            (Kind::Cancel, None) => anomalies.push(Anomaly::LostCancel {
                reservation: None,
                status: None,
            }),
        }
    }

    // Every acknowledged hold is stored, as acknowledged.
    for op in acked.iter().filter(|o| o.op == Kind::Hold) {
        let Some(id) = op.reservation else { continue };
        match tables.reservations.get(&id) {
            None => anomalies.push(Anomaly::LostHold {
                reservation: Some(id),
            }),
            Some(r) => {
                let mut wanted = op.seats.clone();
                wanted.sort_unstable();
                if r.seats != wanted || op.user.is_some_and(|u| u != r.user) {
                    anomalies.push(Anomaly::HoldDiffers {
                        reservation: id,
                        acknowledged: wanted,
                        stored: r.seats.clone(),
                    });
                }
            }
        }
    }
    // Every acknowledged payment is stored, its reservation sold.
    for &id in &paid {
        let detail = match tables.reservations.get(&id) {
            _ if !tables.payments.contains(&id) => Some("no payment row exists".to_owned()),
            None => Some("the reservation does not exist".to_owned()),
            Some(r) if r.status != "CONFIRMED" => Some(format!("the reservation is {}", r.status)),
            Some(r) => r
                .seats
                .iter()
                .find(|s| tables.seats.get(s).map(String::as_str) != Some("RESERVED"))
                .map(|s| format!("its seat {s} is not RESERVED")),
        };
        if let Some(detail) = detail {
            anomalies.push(Anomaly::LostPayment {
                reservation: Some(id),
                detail,
            });
        }
    }
    // Every acknowledged cancel stuck.
    for &id in cancels.keys() {
        let status = tables.reservations.get(&id).map(|r| r.status.clone());
        if status.as_deref() != Some("CANCELLED") {
            anomalies.push(Anomaly::LostCancel {
                reservation: Some(id),
                status,
            });
        }
    }

    anomalies.extend(double_holds(&holds, &paid, &cancels, tables, hold_ttl));

    // The final tables: one active reservation per seat.
    let mut owners: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (id, r) in tables.reservations.iter().filter(|(_, r)| r.active()) {
        for &seat in &r.seats {
            owners.entry(seat).or_default().push(*id);
        }
    }
    for (seat, reservations) in owners {
        if reservations.len() > 1 {
            anomalies.push(Anomaly::DoubleBooked { seat, reservations });
        }
    }

    Verdict {
        operations: history.len(),
        acknowledged: acked.len(),
        anomalies,
    }
}

/// Seats that two acknowledged holds surely held at one moment. A hold is
/// surely active from its answer until the earliest moment it could have
/// ended: it took effect no earlier than its start, so it expires no
/// earlier than start + TTL; a cancel takes effect no earlier than its own
/// start; the database's end time bounds an end nobody acknowledged. Once
/// paid (acknowledged, or CONFIRMED in the tables) it never ends.
fn double_holds(
    holds: &BTreeMap<i64, AckedHold>,
    paid: &BTreeSet<i64>,
    cancels: &BTreeMap<i64, DateTime<Utc>>,
    tables: &Tables,
    hold_ttl: Duration,
) -> Vec<Anomaly> {
    let surely_until = |h: &AckedHold| -> Option<DateTime<Utc>> {
        let stored = tables.reservations.get(&h.reservation);
        if paid.contains(&h.reservation) || stored.is_some_and(|r| r.status == "CONFIRMED") {
            return None; // for good
        }
        let mut until = h.start + hold_ttl;
        if let Some(at) = cancels.get(&h.reservation) {
            until = until.min(*at);
        }
        if let Some(r) = stored.filter(|r| !r.active()) {
            until = until.min(r.updated_at);
        }
        Some(until)
    };
    // Per seat: each hold and when it surely ends (`None`: never).
    type Span<'a> = (&'a AckedHold, Option<DateTime<Utc>>);
    let mut by_seat: BTreeMap<i64, Vec<Span>> = BTreeMap::new();
    for h in holds.values() {
        let until = surely_until(h);
        for &seat in &h.seats {
            by_seat.entry(seat).or_default().push((h, until));
        }
    }
    let mut found = Vec::new();
    for (seat, mut list) in by_seat {
        list.sort_by_key(|(h, _)| h.answered);
        for (i, (a, a_until)) in list.iter().enumerate() {
            for (b, b_until) in &list[i + 1..] {
                // Both surely active at max(answers), before either surely ended.
                let from = a.answered.max(b.answered);
                let a_live = a_until.is_none_or(|u| from < u);
                let b_live = b_until.is_none_or(|u| from < u);
                if a_live && b_live {
                    found.push(Anomaly::DoubleHold {
                        seat,
                        first: a.reservation,
                        second: b.reservation,
                        at: from,
                    });
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0).unwrap() + Duration::seconds(secs)
    }

    fn op(
        kind: Kind,
        at: i64,
        user: i64,
        seats: &[i64],
        reservation: i64,
        status: u16,
    ) -> Operation {
        Operation {
            start: t(at),
            end: t(at) + Duration::milliseconds(50),
            user: Some(user),
            op: kind,
            seats: seats.to_vec(),
            reservation: Some(reservation),
            status,
        }
    }

    fn stored(user: i64, status: &str, at: i64, seats: &[i64]) -> FinalReservation {
        FinalReservation {
            user,
            status: status.into(),
            expires_at: t(at + 300),
            // An expiry ends it a little after its expiry time.
            updated_at: if status == "EXPIRED" {
                t(at + 330)
            } else {
                t(at)
            },
            seats: seats.to_vec(),
        }
    }

    /// A sale that went right: two buyers, one paid, one hold expired and
    /// its seat sold again later.
    fn clean() -> (Vec<Operation>, Tables) {
        let history = vec![
            op(Kind::Hold, 0, 1, &[10, 11], 100, 201),
            op(Kind::Hold, 1, 2, &[11], 0, 409),
            op(Kind::Pay, 2, 1, &[], 100, 201),
            op(Kind::Hold, 3, 2, &[12], 101, 201),
            op(Kind::Hold, 400, 3, &[12], 102, 201),
            op(Kind::Pay, 401, 3, &[], 102, 201),
        ];
        let mut tables = Tables::default();
        tables
            .reservations
            .insert(100, stored(1, "CONFIRMED", 0, &[10, 11]));
        let mut expired = stored(2, "EXPIRED", 3, &[12]);
        expired.updated_at = t(330);
        tables.reservations.insert(101, expired);
        tables
            .reservations
            .insert(102, stored(3, "CONFIRMED", 400, &[12]));
        for seat in [10, 11, 12] {
            tables.seats.insert(seat, "RESERVED".into());
        }
        tables.payments.extend([100, 102]);
        (
            history
                .into_iter()
                .map(|mut o| {
                    if o.status != 201 {
                        o.reservation = None;
                    }
                    o
                })
                .collect(),
            tables,
        )
    }

    #[test]
    fn a_clean_sale_has_no_anomalies() {
        let (history, tables) = clean();
        let verdict = check(&history, &tables, Duration::minutes(5));
        assert!(verdict.ok(), "{verdict}");
        assert_eq!(
            verdict.to_string(),
            "6 operations (5 acknowledged), 0 anomalies"
        );
    }

    #[test]
    fn a_planted_double_hold_is_flagged() {
        let (mut history, mut tables) = clean();
        // Seat 12 acknowledged to a fourth buyer while 101 surely held it.
        history.push(op(Kind::Hold, 60, 4, &[12], 103, 201));
        tables
            .reservations
            .insert(103, stored(4, "EXPIRED", 60, &[12]));
        let verdict = check(&history, &tables, Duration::minutes(5));
        assert_eq!(
            verdict.anomalies,
            vec![Anomaly::DoubleHold {
                seat: 12,
                first: 101,
                second: 103,
                at: t(60) + Duration::milliseconds(50),
            }],
            "{verdict}"
        );
    }

    #[test]
    fn a_hold_after_an_acknowledged_cancel_is_no_double_hold() {
        let (mut history, mut tables) = clean();
        history.push(op(Kind::Cancel, 30, 2, &[], 101, 200));
        history.push(op(Kind::Hold, 31, 4, &[12], 103, 201));
        tables.reservations.get_mut(&101).unwrap().status = "CANCELLED".into();
        tables.reservations.get_mut(&101).unwrap().updated_at = t(30);
        tables
            .reservations
            .insert(103, stored(4, "EXPIRED", 31, &[12]));
        let verdict = check(&history, &tables, Duration::minutes(5));
        assert!(verdict.ok(), "{verdict}");
    }

    #[test]
    fn a_seat_sold_and_then_held_again_is_a_double_hold() {
        let (mut history, mut tables) = clean();
        history.push(op(Kind::Hold, 900, 4, &[10], 103, 201));
        tables
            .reservations
            .insert(103, stored(4, "EXPIRED", 900, &[10]));
        let verdict = check(&history, &tables, Duration::minutes(5));
        assert!(
            matches!(
                verdict.anomalies[..],
                [Anomaly::DoubleHold {
                    seat: 10,
                    first: 100,
                    second: 103,
                    ..
                }]
            ),
            "{verdict}"
        );
    }

    #[test]
    fn a_lost_acknowledged_payment_is_flagged() {
        let (history, mut tables) = clean();
        // The database forgot the payment of 102: no row, still PENDING.
        tables.payments.remove(&102);
        tables.reservations.get_mut(&102).unwrap().status = "PENDING".into();
        tables.seats.insert(12, "HELD".into());
        let verdict = check(&history, &tables, Duration::minutes(5));
        assert!(
            matches!(
                &verdict.anomalies[..],
                [Anomaly::LostPayment {
                    reservation: Some(102),
                    ..
                }]
            ),
            "{verdict}"
        );
        assert!(verdict
            .to_string()
            .starts_with("6 operations (5 acknowledged), 1 anomalies\n  lost payment"));
    }

    #[test]
    fn a_lost_or_changed_hold_is_flagged() {
        let (history, mut tables) = clean();
        tables.reservations.get_mut(&100).unwrap().seats = vec![10];
        tables.reservations.remove(&101);
        let verdict = check(&history, &tables, Duration::minutes(5));
        assert_eq!(
            verdict.anomalies,
            vec![
                Anomaly::HoldDiffers {
                    reservation: 100,
                    acknowledged: vec![10, 11],
                    stored: vec![10],
                },
                Anomaly::LostHold {
                    reservation: Some(101)
                },
            ],
            "{verdict}"
        );
    }

    #[test]
    fn a_replayed_hold_is_one_hold() {
        let (mut history, tables) = clean();
        // A retry with the same key answered 200 with the same reservation.
        history.push(op(Kind::Hold, 1, 1, &[11, 10], 100, 200));
        let verdict = check(&history, &tables, Duration::minutes(5));
        assert!(verdict.ok(), "{verdict}");
    }

    #[test]
    fn unanswered_operations_prove_nothing() {
        let (mut history, tables) = clean();
        // No answer: the hold may or may not have happened.
        history.push(op(Kind::Hold, 10, 5, &[10], 999, 0));
        history.push(op(Kind::Pay, 11, 5, &[], 999, 503));
        let verdict = check(&history, &tables, Duration::minutes(5));
        assert!(verdict.ok(), "{verdict}");
        assert_eq!((verdict.operations, verdict.acknowledged), (8, 5));
    }

    #[test]
    fn a_double_booked_final_table_is_flagged() {
        let (history, mut tables) = clean();
        tables
            .reservations
            .insert(104, stored(9, "PENDING", 500, &[11]));
        let verdict = check(&history, &tables, Duration::minutes(5));
        assert_eq!(
            verdict.anomalies,
            vec![Anomaly::DoubleBooked {
                seat: 11,
                reservations: vec![100, 104]
            }]
        );
    }

    #[test]
    fn a_history_line_round_trips() {
        let line = r#"{"start":"2030-01-01T12:00:00Z","end":"2030-01-01T12:00:00.050Z","user":7,"op":"hold","seats":[3,4],"reservation":12,"status":201}"#;
        let ops = parse_history(&format!("{line}\n\n")).unwrap();
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].op, Kind::Hold);
        assert_eq!(serde_json::to_string(&ops[0]).unwrap(), line);
        assert!(parse_history("{}")
            .unwrap_err()
            .starts_with("history line 1"));
    }
}
