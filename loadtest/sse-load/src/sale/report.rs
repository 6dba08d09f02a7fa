//! The figures of a sale run, from what every buyer saw: the issue's H-on
//! figures (seats sold, opening to last seat, admitted users' wait, the
//! `sold-out` lag, users without an answer, admission-order inversions,
//! 5xx and connection errors by endpoint) and the aims they are held to.

use super::api::FailureKind;
use super::buyer::{End, HoldTally, Outcome};
use serde::Serialize;
use std::collections::BTreeMap;

/// The issue's "done when" for H-on.
const AIM_LAST_SEAT_SECS: f64 = 15.0;
const AIM_SOLD_OUT_LAG_SECS: f64 = 2.0;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub base_urls: Vec<String>,
    pub concert_id: i64,
    pub schedule_id: i64,
    pub users: usize,
    pub pre_open_secs: f64,
    pub post_open_secs: f64,
    pub pre_open_share: f64,
    pub think_ms: u64,
    pub seats_per_user: usize,
    pub hold_attempts: u32,
    pub reconnects: u32,
    pub stream_auth: String,
    pub order_tolerance_ms: u64,
    pub deadline_secs: u64,
}

/// When the sale opened, and who said so.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Opening {
    pub at: String,
    /// `schedule` (its `salesOpenAt`), `--opens-at`, or `none` (no
    /// `salesOpenAt`: open from the start of the run).
    pub source: String,
    /// Seconds since the start of the run.
    pub at_secs: f64,
}

/// p50/p95/max of some seconds or milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Stats {
    pub count: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub avg: f64,
}

impl Stats {
    pub fn of(mut values: Vec<f64>) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        // Nearest rank: the smallest value with at least p% at or below it.
        let rank = |p: f64| values[((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1];
        Some(Self {
            count: n,
            p50: rank(50.0),
            p95: rank(95.0),
            p99: rank(99.0),
            max: values[n - 1],
            avg: values.iter().sum::<f64>() / n as f64,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Users {
    pub planned: usize,
    pub arrived: usize,
    /// Sent their enter before the opening by this tool's clock.
    pub arrived_before_opening: usize,
    /// Answered `before-opening` by the server: the pre-queue.
    pub pre_queue: usize,
    pub entered: usize,
    pub streams_opened: u64,
    pub stream_reopens: u64,
    /// Tasks that did not report within the join deadline.
    pub unreported: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sold {
    pub capacity: usize,
    pub free_at_start: usize,
    /// Seats in 201 holds: more than `capacity` would be an oversell.
    pub seats_held: usize,
    pub seats_sold: usize,
    pub buyers_paid: usize,
    /// Seconds from the opening to the first and the last payment answered.
    pub first_seat_sold_secs: Option<f64>,
    pub last_seat_sold_secs: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Admission {
    pub admitted: usize,
    /// From the opening or the arrival, whichever is later, to `admitted`.
    pub wait_secs: Option<Stats>,
    /// Users ordered by the server's `admittedAt`, and by the moment their
    /// `admitted` arrived (a server without `admittedAt`).
    pub ordered_by_server_time: usize,
    pub ordered_by_arrival_of_event: usize,
    /// Pairs of admitted users where the one ahead in the queue was
    /// admitted later (see `inversions`). A user's place is the server's
    /// `ticket` (status or `admitted` event); without one, a pre-queue
    /// user's first position after the opening.
    pub inversions: u64,
    /// Admitted users the count could place in the queue.
    pub ranked: usize,
    pub position_increases: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SoldOut {
    /// Users told "sold out", by where they heard it.
    pub told: BTreeMap<String, usize>,
    /// Stream `sold-out` events, seconds after the last seat sold
    /// (negative: before this tool had the last payment's answer).
    pub after_last_seat_secs: Option<Stats>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Holds {
    pub attempts: usize,
    #[serde(flatten)]
    pub tally: HoldTally,
    pub ms: Option<Stats>,
    pub payments: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Errors {
    pub server_errors: u64,
    /// Refused, reset or timed-out connections, and streams cut without a
    /// final event.
    pub connection_errors: u64,
    /// Statuses the protocol does not give for the call.
    pub unexpected: u64,
    /// endpoint -> what -> how many.
    pub by_endpoint: BTreeMap<String, BTreeMap<String, u64>>,
}

/// The issue's "done when", each `true` when met.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Aims {
    pub all_seats_sold: bool,
    pub last_seat_within_15s: bool,
    pub sold_out_within_2s: bool,
    pub no_user_unanswered: bool,
    pub no_inversion: bool,
    pub no_5xx: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SaleReport {
    pub started_at: String,
    pub settings: Settings,
    pub opening: Opening,
    pub users: Users,
    pub sold: Sold,
    pub admission: Admission,
    pub sold_out: SoldOut,
    /// Neither admitted nor told "sold out" by the end.
    pub unanswered: usize,
    pub unanswered_by_end: BTreeMap<String, usize>,
    pub ends: BTreeMap<String, usize>,
    pub holds: Holds,
    pub requests: u64,
    pub errors: Errors,
    pub aims: Aims,
    /// Seconds since the start: when it stopped, and whether the deadline
    /// stopped it.
    pub finished_at: f64,
    pub deadline_hit: bool,
}

pub struct Inputs<'a> {
    pub started_at: String,
    pub settings: Settings,
    pub opening: Opening,
    pub capacity: usize,
    pub free_at_start: usize,
    pub outcomes: &'a [Outcome],
    pub unreported: usize,
    /// See `inversions`.
    pub order_tolerance_secs: f64,
    pub finished_at: f64,
    pub deadline_hit: bool,
}

/// A user's place in the queue, as far as this tool can know it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Place {
    /// The server's ticket: the place in the line, drawn at the opening
    /// for the pre-queue, given on arrival after it.
    Drawn(u64),
    /// Arrived after the opening: the enter was sent at `sent` and answered
    /// at `answered`.
    Arrived { sent: f64, answered: f64 },
}

impl Place {
    /// Whether `self` is certainly ahead of `other`: the pre-queue is ahead
    /// of every later arrival; a later arrival is ahead of another only when
    /// its enter was answered before the other's was sent (concurrent
    /// enters may be ordered either way).
    pub fn ahead_of(self, other: Place) -> bool {
        match (self, other) {
            (Place::Drawn(a), Place::Drawn(b)) => a < b,
            (Place::Drawn(_), Place::Arrived { .. }) => true,
            (Place::Arrived { .. }, Place::Drawn(_)) => false,
            (Place::Arrived { answered, .. }, Place::Arrived { sent, .. }) => answered < sent,
        }
    }

    fn of(o: &Outcome) -> Option<Place> {
        if let Some(ticket) = o.drawn_position {
            return Some(Place::Drawn(ticket));
        }
        if o.pre_queue {
            return None;
        }
        Some(Place::Arrived {
            sent: o.arrived_at?,
            answered: o.entered_at?,
        })
    }
}

/// An admitted user: its place and when it was admitted, `exact` when
/// that is the server's `admittedAt` rather than when the event arrived.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Admitted {
    pub place: Place,
    pub at: f64,
    pub exact: bool,
}

/// Pairs (a, b) of admitted users, a ahead of b, where a was admitted
/// later. Times taken from the event's arrival carry delivery jitter: such
/// a pair counts only when apart by more than `tolerance` seconds.
/// Quadratic: a few thousand admitted users at most.
pub fn inversions(admitted: &[Admitted], tolerance: f64) -> u64 {
    let later = |x: &Admitted, y: &Admitted| {
        let slack = if x.exact && y.exact { 0.0 } else { tolerance };
        x.place.ahead_of(y.place) && x.at > y.at + slack
    };
    let mut count = 0;
    for (i, a) in admitted.iter().enumerate() {
        for b in &admitted[i + 1..] {
            if later(a, b) || later(b, a) {
                count += 1;
            }
        }
    }
    count
}

fn end_label(end: &End) -> String {
    match end {
        End::NotArrived => "not-arrived".into(),
        End::Paid => "paid".into(),
        End::NoSeatLeft => "admitted-no-seat-left".into(),
        End::HoldSoldOut => "admitted-hold-sold-out".into(),
        End::GaveUp(why) => format!("admitted-gave-up: {why}"),
        End::SoldOut => "sold-out".into(),
        End::Left => "left".into(),
        End::Failed(why) => format!("failed: {why}"),
        End::StillWaiting => "still-waiting".into(),
    }
}

pub fn build(input: Inputs<'_>) -> SaleReport {
    let outcomes = input.outcomes;
    let opening = input.opening.at_secs;
    let count = |f: &dyn Fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();

    let streams_opened: u64 = outcomes.iter().map(|o| u64::from(o.streams_opened)).sum();
    let users = Users {
        planned: input.settings.users,
        arrived: count(&|o| o.arrived_at.is_some()),
        arrived_before_opening: count(&|o| o.arrived_at.is_some_and(|t| t < opening)),
        pre_queue: count(&|o| o.pre_queue),
        entered: count(&|o| o.entered_at.is_some()),
        streams_opened,
        stream_reopens: outcomes
            .iter()
            .map(|o| u64::from(o.streams_opened.saturating_sub(1)))
            .sum(),
        unreported: input.unreported,
    };

    let paid: Vec<f64> = outcomes.iter().filter_map(|o| o.paid_at).collect();
    let last_sold = paid.iter().copied().reduce(f64::max);
    let sold = Sold {
        capacity: input.capacity,
        free_at_start: input.free_at_start,
        seats_held: outcomes.iter().map(|o| o.seats_held).sum(),
        seats_sold: outcomes.iter().map(|o| o.seats_paid).sum(),
        buyers_paid: paid.len(),
        first_seat_sold_secs: paid.iter().copied().reduce(f64::min).map(|t| t - opening),
        last_seat_sold_secs: last_sold.map(|t| t - opening),
    };

    let admitted: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.admitted_at.is_some())
        .collect();
    let waits = admitted
        .iter()
        .filter_map(|o| Some(o.admitted_at? - o.arrived_at?.max(opening)))
        .collect();
    let ranked: Vec<Admitted> = admitted
        .iter()
        .filter_map(|o| {
            Some(Admitted {
                place: Place::of(o)?,
                at: o.server_admitted_at.or(o.admitted_at)?,
                exact: o.server_admitted_at.is_some(),
            })
        })
        .collect();
    let admission = Admission {
        admitted: admitted.len(),
        wait_secs: Stats::of(waits),
        ordered_by_server_time: admitted
            .iter()
            .filter(|o| o.server_admitted_at.is_some())
            .count(),
        ordered_by_arrival_of_event: admitted
            .iter()
            .filter(|o| o.server_admitted_at.is_none())
            .count(),
        inversions: inversions(&ranked, input.order_tolerance_secs),
        ranked: ranked.len(),
        position_increases: outcomes
            .iter()
            .map(|o| u64::from(o.position_increases))
            .sum(),
    };

    let mut told = BTreeMap::new();
    for o in outcomes {
        if let Some(via) = o.sold_out_via {
            *told.entry(via.name().to_owned()).or_insert(0) += 1;
        }
    }
    let lags = outcomes
        .iter()
        .filter(|o| o.sold_out_via == Some(super::api::Endpoint::Events))
        .filter_map(|o| Some(o.sold_out_at? - last_sold?))
        .collect();
    let sold_out = SoldOut {
        told,
        after_last_seat_secs: Stats::of(lags),
    };

    let mut ends = BTreeMap::new();
    let mut unanswered_by_end = BTreeMap::new();
    for o in outcomes {
        let label = end_label(&o.end);
        if !o.answered() {
            *unanswered_by_end.entry(label.clone()).or_insert(0) += 1;
        }
        *ends.entry(label).or_insert(0) += 1;
    }
    let unanswered = outcomes.iter().filter(|o| !o.answered()).count() + input.unreported;

    let mut tally = HoldTally::default();
    for h in outcomes.iter().map(|o| &o.holds) {
        tally.created += h.created;
        tally.seat_taken += h.seat_taken;
        tally.sold_out += h.sold_out;
        tally.contention += h.contention;
        tally.refused += h.refused;
        tally.failed += h.failed;
    }
    let hold_ms: Vec<f64> = outcomes
        .iter()
        .flat_map(|o| o.hold_ms.iter().copied())
        .collect();
    let holds = Holds {
        attempts: hold_ms.len(),
        tally,
        ms: Stats::of(hold_ms),
        payments: paid.len(),
    };

    let mut errors = Errors {
        server_errors: 0,
        connection_errors: 0,
        unexpected: 0,
        by_endpoint: BTreeMap::new(),
    };
    for f in outcomes.iter().flat_map(|o| &o.failures) {
        match f.kind {
            FailureKind::ServerError(_) => errors.server_errors += 1,
            FailureKind::Connection(_) | FailureKind::StreamCut(_) => errors.connection_errors += 1,
            FailureKind::Unexpected(..) => errors.unexpected += 1,
        }
        *errors
            .by_endpoint
            .entry(f.endpoint.name().to_owned())
            .or_default()
            .entry(f.kind.label())
            .or_insert(0) += 1;
    }

    let aims = Aims {
        all_seats_sold: sold.seats_sold == sold.capacity,
        last_seat_within_15s: sold
            .last_seat_sold_secs
            .is_some_and(|t| t <= AIM_LAST_SEAT_SECS),
        sold_out_within_2s: sold_out
            .after_last_seat_secs
            .is_some_and(|s| s.max <= AIM_SOLD_OUT_LAG_SECS),
        no_user_unanswered: unanswered == 0,
        no_inversion: admission.inversions == 0,
        no_5xx: errors.server_errors == 0,
    };

    SaleReport {
        started_at: input.started_at,
        settings: input.settings,
        opening: input.opening,
        users,
        sold,
        admission,
        sold_out,
        unanswered,
        unanswered_by_end,
        ends,
        holds,
        requests: outcomes.iter().map(|o| u64::from(o.requests)).sum(),
        errors,
        aims,
        finished_at: input.finished_at,
        deadline_hit: input.deadline_hit,
    }
}

fn secs(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:.2} s"))
}

fn spread(s: Option<Stats>, unit: &str) -> String {
    s.map_or("—".into(), |s| {
        format!(
            "p50 {:.2}{unit}, p95 {:.2}{unit}, max {:.2}{unit} (n={})",
            s.p50, s.p95, s.max, s.count
        )
    })
}

impl SaleReport {
    /// The human summary printed after a run.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        let mark = |ok: bool| if ok { "ok" } else { "MISSED" };
        line(format!(
            "sale: {} users on {} instance(s), schedule {}; opening {} ({}), {:.1} s after the start",
            self.settings.users,
            self.settings.base_urls.len(),
            self.settings.schedule_id,
            self.opening.at,
            self.opening.source,
            self.opening.at_secs
        ));
        line(format!(
            "  arrived {} ({} before the opening; pre-queue {}), entered {}, streams opened {} ({} reopened)",
            self.users.arrived,
            self.users.arrived_before_opening,
            self.users.pre_queue,
            self.users.entered,
            self.users.streams_opened,
            self.users.stream_reopens
        ));
        line(format!(
            "  seats sold {} of {} ({} free at the start) by {} buyers [{}]",
            self.sold.seats_sold,
            self.sold.capacity,
            self.sold.free_at_start,
            self.sold.buyers_paid,
            mark(self.aims.all_seats_sold)
        ));
        line(format!(
            "  opening -> first seat sold {}, -> last seat sold {} [{} <= 15 s]",
            secs(self.sold.first_seat_sold_secs),
            secs(self.sold.last_seat_sold_secs),
            mark(self.aims.last_seat_within_15s)
        ));
        line(format!(
            "  admitted {}: wait {}",
            self.admission.admitted,
            spread(self.admission.wait_secs, " s")
        ));
        line(format!(
            "  sold-out told {:?}; stream sold-out after the last seat: {} [{} <= 2 s]",
            self.sold_out.told,
            spread(self.sold_out.after_last_seat_secs, " s"),
            mark(self.aims.sold_out_within_2s)
        ));
        line(format!(
            "  users without an answer: {} {:?} [{}]",
            self.unanswered,
            self.unanswered_by_end,
            mark(self.aims.no_user_unanswered)
        ));
        line(format!(
            "  admission-order inversions: {} among {} ranked ({} by admittedAt, {} by event arrival) [{}]",
            self.admission.inversions,
            self.admission.ranked,
            self.admission.ordered_by_server_time,
            self.admission.ordered_by_arrival_of_event,
            mark(self.aims.no_inversion)
        ));
        let h = &self.holds;
        line(format!(
            "  holds {}: 201 {}, seat-taken {}, sold-out {}, contention {}, refused {}, failed {}; hold {}; paid {}",
            h.attempts,
            h.tally.created,
            h.tally.seat_taken,
            h.tally.sold_out,
            h.tally.contention,
            h.tally.refused,
            h.tally.failed,
            spread(h.ms, " ms"),
            h.payments
        ));
        line(format!(
            "  5xx {} [{}], connection errors {}, unexpected answers {}",
            self.errors.server_errors,
            mark(self.aims.no_5xx),
            self.errors.connection_errors,
            self.errors.unexpected
        ));
        for (endpoint, kinds) in &self.errors.by_endpoint {
            for (kind, n) in kinds {
                line(format!("    {endpoint}: {kind} x{n}"));
            }
        }
        line(format!("  ends: {:?}", self.ends));
        line(format!(
            "  {} requests; finished at {:.1} s{}",
            self.requests,
            self.finished_at,
            if self.deadline_hit {
                " (the deadline stopped it)"
            } else {
                ""
            }
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrived(sent: f64, answered: f64) -> Place {
        Place::Arrived { sent, answered }
    }

    #[test]
    fn the_pre_queue_is_ahead_of_every_later_arrival() {
        assert!(Place::Drawn(9_000).ahead_of(arrived(0.0, 0.1)));
        assert!(!arrived(0.0, 0.1).ahead_of(Place::Drawn(1)));
        assert!(Place::Drawn(1).ahead_of(Place::Drawn(2)));
        assert!(!Place::Drawn(2).ahead_of(Place::Drawn(2)));
    }

    #[test]
    fn concurrent_enters_have_no_order() {
        // b was sent before a was answered: either may be first.
        assert!(!arrived(1.0, 1.2).ahead_of(arrived(1.1, 1.3)));
        assert!(!arrived(1.1, 1.3).ahead_of(arrived(1.0, 1.2)));
        assert!(arrived(1.0, 1.2).ahead_of(arrived(1.25, 1.3)));
    }

    fn exact(place: Place, at: f64) -> Admitted {
        Admitted {
            place,
            at,
            exact: true,
        }
    }

    #[test]
    fn admission_in_queue_order_has_no_inversion() {
        let admitted = [
            exact(Place::Drawn(1), 10.0),
            exact(Place::Drawn(2), 10.0),
            exact(Place::Drawn(3), 10.25),
            exact(arrived(5.0, 5.1), 10.5),
        ];
        assert_eq!(inversions(&admitted, 0.25), 0);
    }

    #[test]
    fn every_pair_out_of_order_counts_once() {
        // 3 before 1 and 2; the late arrival before 2.
        let admitted = [
            exact(Place::Drawn(1), 10.5),
            exact(Place::Drawn(2), 11.0),
            exact(Place::Drawn(3), 10.0),
            exact(arrived(5.0, 5.1), 10.75),
        ];
        assert_eq!(inversions(&admitted, 0.25), 3);
    }

    #[test]
    fn event_arrival_jitter_within_the_tolerance_is_no_inversion() {
        let by_event = |place, at| Admitted {
            place,
            at,
            exact: false,
        };
        let admitted = [
            by_event(Place::Drawn(1), 10.1),
            by_event(Place::Drawn(2), 10.0),
            by_event(Place::Drawn(3), 9.5),
        ];
        // 1 after 3 and 2 after 3 by more than 0.25 s; 1 after 2 by 0.1 s.
        assert_eq!(inversions(&admitted, 0.25), 2);
        // With the server's times, no slack.
        let exact: Vec<Admitted> = admitted.iter().map(|a| exact(a.place, a.at)).collect();
        assert_eq!(inversions(&exact, 0.25), 3);
    }

    fn settings(users: usize) -> Settings {
        Settings {
            base_urls: vec!["http://127.0.0.1:8081/".into()],
            concert_id: 1,
            schedule_id: 1,
            users,
            pre_open_secs: 3.0,
            post_open_secs: 1.0,
            pre_open_share: 0.9,
            think_ms: 0,
            seats_per_user: 2,
            hold_attempts: 5,
            reconnects: 3,
            stream_auth: "ticket".into(),
            order_tolerance_ms: 250,
            deadline_secs: 120,
        }
    }

    #[test]
    fn a_small_sale_gives_the_issue_figures() {
        use super::super::api::{Endpoint, Failure};
        // Opening at 5 s. 0 and 1 waited in the pre-queue, 2, 3 and 4 came
        // later; 0, 1 and 2 bought the seats (the last sold at 9 s); 3 heard
        // "sold out" at 9.5 s; 4 was still waiting at the deadline.
        let mut o: Vec<Outcome> = (0..5).map(|i| Outcome::new(i, i % 2, 1)).collect();
        for (u, arrived) in [(0, 3.0), (1, 3.5), (2, 6.0), (3, 6.5), (4, 7.0)] {
            o[u].arrived_at = Some(arrived);
            o[u].entered_at = Some(arrived + 0.01);
            o[u].pre_queue = arrived < 5.0;
        }
        o[0].drawn_position = Some(2);
        o[1].drawn_position = Some(1);
        for (u, admitted, paid) in [(0, 6.0, 8.0), (1, 6.0, 8.5), (2, 7.0, 9.0)] {
            o[u].admitted_at = Some(admitted + 0.05);
            o[u].server_admitted_at = Some(admitted);
            o[u].seats_held = 1;
            o[u].seats_paid = 1;
            o[u].paid_at = Some(paid);
            o[u].hold_ms = vec![20.0];
            o[u].holds.created = 1;
            o[u].end = End::Paid;
        }
        o[3].sold_out_at = Some(9.5);
        o[3].sold_out_via = Some(Endpoint::Events);
        o[3].end = End::SoldOut;
        o[4].end = End::StillWaiting;
        o[4].failures.push(Failure {
            endpoint: Endpoint::Events,
            kind: FailureKind::ServerError(503),
        });
        let r = build(Inputs {
            started_at: "now".into(),
            settings: settings(5),
            opening: Opening {
                at: "then".into(),
                source: "schedule".into(),
                at_secs: 5.0,
            },
            capacity: 3,
            free_at_start: 3,
            outcomes: &o,
            unreported: 0,
            order_tolerance_secs: 0.25,
            finished_at: 10.0,
            deadline_hit: true,
        });
        assert_eq!((r.sold.seats_sold, r.sold.seats_held), (3, 3));
        assert_eq!(r.sold.last_seat_sold_secs, Some(4.0));
        assert_eq!(r.users.arrived_before_opening, 2);
        // Waits to the event, from the opening (0, 1) or the arrival (2).
        let wait = r.admission.wait_secs.unwrap();
        assert!((wait.max - 1.05).abs() < 1e-9 && (wait.p50 - 1.05).abs() < 1e-9);
        // 1 (drawn 1) and 0 (drawn 2) admitted together: no inversion.
        assert_eq!((r.admission.inversions, r.admission.ranked), (0, 3));
        assert_eq!(r.sold_out.after_last_seat_secs.unwrap().max, 0.5);
        assert_eq!(r.unanswered, 1);
        assert_eq!(r.unanswered_by_end.get("still-waiting"), Some(&1));
        assert_eq!(r.errors.server_errors, 1);
        assert_eq!(r.errors.by_endpoint["events"]["HTTP 503"], 1);
        assert!(r.aims.all_seats_sold && r.aims.last_seat_within_15s && r.aims.sold_out_within_2s);
        assert!(!r.aims.no_user_unanswered && !r.aims.no_5xx && r.aims.no_inversion);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let s = Stats::of((1..=100).map(f64::from).collect()).unwrap();
        assert_eq!((s.p50, s.p95, s.p99, s.max), (50.0, 95.0, 99.0, 100.0));
        assert_eq!(Stats::of(vec![7.0]).unwrap().p95, 7.0);
        assert!(Stats::of(Vec::new()).is_none());
    }
}
