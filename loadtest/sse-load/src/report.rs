//! What the run measured: the JSON written to `--out` and the summary
//! printed at the end, computed from every stream's outcome and the
//! `/proc` samples.

use crate::connection::{StreamEnd, StreamOutcome};
use serde::Serialize;
use std::collections::BTreeMap;

/// The settings of the run, echoed into the report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSettings {
    pub base_url: String,
    pub schedule_id: i64,
    pub connections: usize,
    pub hold_secs: u64,
    pub connect_rate: u32,
    pub first_user_id: i64,
    pub server_pid: Option<u32>,
    pub shutdown_server: bool,
    pub order_tolerance_ms: u64,
}

/// One second of the run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    pub at: f64,
    pub open_streams: usize,
    pub server_rss_mib: Option<f64>,
    pub server_cpu_percent: Option<f64>,
    /// The server thread that used the most CPU in this second.
    pub busiest_thread: Option<String>,
    pub busiest_thread_percent: Option<f64>,
    pub client_rss_mib: Option<f64>,
    pub client_cpu_percent: Option<f64>,
    /// `--also-sample` processes, by label.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub others_cpu_percent: BTreeMap<String, f64>,
    /// Every process on the machine (server, this tool, Redis, PostgreSQL, kernel).
    pub machine_cpu_percent: Option<f64>,
}

/// Moments of the run, seconds since it started.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    /// The last enter was answered.
    pub arrivals_done_at: f64,
    /// The last stream opened (or `arrivals_done_at` when none did).
    pub last_open_at: f64,
    pub hold_ended_at: f64,
    pub finished_at: f64,
}

/// What the server did on SIGTERM (`--shutdown-server`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShutdownSeen {
    pub sigterm_at: f64,
    pub open_at_sigterm: usize,
    /// Ended by the server with a clean end of stream after the signal.
    pub ended_cleanly: usize,
    pub ended_with_error: usize,
    /// Still open when the wait ran out (then closed by this tool).
    pub still_open_after_wait: usize,
    /// From the signal to the last stream's end, when all ended.
    pub all_ended_after_ms: Option<f64>,
    /// The server process was gone when the wait ended.
    pub server_exited: bool,
}

/// Server readings from `/proc/<pid>`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerUse {
    pub pid: u32,
    pub baseline_rss_mib: f64,
    pub peak_rss_mib: f64,
    /// The kernel's own high-water mark (`VmHWM`), read at the last sample.
    pub hwm_mib: f64,
    /// (peak - baseline) / the most streams open at once. RSS rarely
    /// shrinks (the allocator keeps freed pages), so this is per stream at
    /// full load.
    pub kib_per_stream: Option<f64>,
    /// From the first enter to the end of the hold; 100 = one core busy.
    pub cpu_avg_percent: f64,
    /// While users were entering and opening streams.
    pub cpu_avg_arrivals_percent: f64,
    /// From the last open to the end of the hold (streams only).
    pub cpu_avg_hold_percent: f64,
    /// The busiest one-second sample.
    pub cpu_peak_percent: f64,
    /// "thread name (tid)" -> its busiest second (threads above 5% only).
    pub thread_peak_percent: BTreeMap<String, f64>,
}

/// The whole machine (`/proc/stat`), 100 = one core.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineUse {
    pub cores: usize,
    pub cpu_avg_arrivals_percent: f64,
    pub cpu_avg_hold_percent: f64,
    pub cpu_peak_percent: f64,
}

/// An `--also-sample` process (Redis, say).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OtherUse {
    pub peak_rss_mib: f64,
    pub cpu_avg_arrivals_percent: f64,
    pub cpu_avg_hold_percent: f64,
    pub cpu_peak_percent: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientUse {
    pub peak_rss_mib: f64,
    pub cpu_avg_percent: f64,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub p99: f64,
    pub max: f64,
}

impl Spread {
    fn of(mut values: Vec<f64>) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
        Some(Self {
            min: values[0],
            median: at(0.5),
            p99: at(0.99),
            max: values[values.len() - 1],
        })
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionCounts {
    pub attempted: usize,
    pub entered: usize,
    pub enter_failed: usize,
    pub enter_retries: u32,
    pub opened: usize,
    pub open_failed: usize,
    /// Failure reason -> count (enters and opens).
    pub failures: BTreeMap<String, usize>,
    /// Open when the hold ended.
    pub open_at_hold_end: usize,
    /// Ended by the server after their `admitted` event (the normal end).
    pub completed_admitted: usize,
    /// Ended by the server without an `admitted` event before the hold ended.
    pub ended_early_without_admission: usize,
    /// Broke with a read error before the hold ended.
    pub errored_before_hold_end: usize,
    /// Still open when this tool closed them.
    pub closed_by_client: usize,
    /// Stream tasks that did not report in time (left out of every count).
    pub unreported: usize,
    pub time_to_open_all_secs: f64,
    pub arrival_rate_per_sec: f64,
    /// `POST /api/queue/enter`, one at a time.
    pub enter_latency_ms: Option<Spread>,
    /// The same per 1,000 arrivals (the first entry is arrivals 0..999).
    pub enter_latency_ms_per_1000: Vec<Spread>,
    pub open_latency_ms: Option<Spread>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateCounts {
    pub position_updates: u64,
    /// Position updates per opened stream.
    pub per_stream: Option<Spread>,
    pub heartbeats: u64,
    pub left_events: usize,
    pub other_events: u64,
    /// Times a waiting user's place went up (must be 0).
    pub position_increases: u64,
}

/// One burst of `admitted` events (one admission window, as seen by the client).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    pub first_at: f64,
    /// Last event minus first event of the burst.
    pub spread_ms: f64,
    pub size: usize,
    pub min_arrival: usize,
    pub max_arrival: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionOrder {
    pub admitted: usize,
    pub admitted_without_token: usize,
    /// Admitted before the stream opened: the `admitted` event was the
    /// stream's first answer. Left out of the order measures below.
    pub admitted_on_open: usize,
    pub admitted_on_open_arrivals: Vec<usize>,
    /// Pairs of users admitted while waiting on an open stream whose
    /// `admitted` events the client read out of arrival order (includes the
    /// jitter of delivering one window).
    pub inversions_raw: u64,
    /// Those pairs where the later arrival was admitted more than the
    /// tolerance before the earlier one.
    pub inversions_beyond_tolerance: u64,
    /// The same, counting the users admitted on open too.
    pub inversions_beyond_tolerance_all: u64,
    /// Pairs compared (users admitted while waiting).
    pub pairs: u64,
    /// The admitted users are exactly the earliest arrivals among the
    /// opened streams.
    pub admitted_are_earliest_arrivals: bool,
    /// Opened streams that arrived before the last admitted user but were
    /// not admitted.
    pub skipped_arrivals: usize,
    pub windows: usize,
    /// Every window's arrivals come after the previous window's.
    pub windows_in_arrival_order: bool,
    pub window_sizes: Option<Spread>,
    pub window_spread_ms: Option<Spread>,
    pub window_list: Vec<Window>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub started_at: String,
    pub settings: RunSettings,
    pub timings: Timings,
    pub connections: ConnectionCounts,
    pub updates: UpdateCounts,
    pub admission: AdmissionOrder,
    pub shutdown: Option<ShutdownSeen>,
    pub server: Option<ServerUse>,
    pub client: Option<ClientUse>,
    pub others: BTreeMap<String, OtherUse>,
    pub machine: Option<MachineUse>,
    pub timeline: Vec<Sample>,
}

/// An enter that did not succeed.
#[derive(Debug, Clone)]
pub struct EnterFailure {
    pub reason: String,
}

pub struct Inputs<'a> {
    pub started_at: String,
    pub settings: RunSettings,
    pub timings: Timings,
    pub attempted: usize,
    pub enter_failures: &'a [EnterFailure],
    pub enter_retries: u32,
    pub enter_latencies_ms: &'a [f64],
    pub outcomes: &'a [StreamOutcome],
    pub unreported: usize,
    pub shutdown: Option<ShutdownSeen>,
    pub server: Option<ServerUse>,
    pub client: Option<ClientUse>,
    pub others: BTreeMap<String, OtherUse>,
    pub machine: Option<MachineUse>,
    pub timeline: Vec<Sample>,
}

pub fn build(inputs: Inputs<'_>) -> Report {
    let Inputs {
        started_at,
        settings,
        timings,
        attempted,
        enter_failures,
        enter_retries,
        enter_latencies_ms,
        outcomes,
        unreported,
        shutdown,
        server,
        client,
        others,
        machine,
        timeline,
    } = inputs;
    let hold_end = timings.hold_ended_at;
    let opened: Vec<&StreamOutcome> = outcomes.iter().filter(|o| o.opened_at.is_some()).collect();
    let mut failures = BTreeMap::new();
    for reason in enter_failures
        .iter()
        .map(|f| f.reason.clone())
        .chain(outcomes.iter().filter_map(|o| o.failure.clone()))
    {
        *failures.entry(reason).or_insert(0) += 1;
    }
    let ended_before_hold = |o: &&&StreamOutcome| o.ended_at.is_some_and(|t| t < hold_end);
    let connections = ConnectionCounts {
        attempted,
        entered: outcomes.len(),
        enter_failed: enter_failures.len(),
        enter_retries,
        opened: opened.len(),
        open_failed: outcomes.len() - opened.len(),
        failures,
        open_at_hold_end: opened.iter().filter(|o| !ended_before_hold(o)).count(),
        completed_admitted: opened
            .iter()
            .filter(|o| o.end == StreamEnd::ClosedByServer && o.admitted_at.is_some())
            .count(),
        ended_early_without_admission: opened
            .iter()
            .filter(ended_before_hold)
            .filter(|o| o.end == StreamEnd::ClosedByServer && o.admitted_at.is_none())
            .count(),
        errored_before_hold_end: opened
            .iter()
            .filter(ended_before_hold)
            .filter(|o| matches!(o.end, StreamEnd::Error(_)))
            .count(),
        closed_by_client: opened
            .iter()
            .filter(|o| o.end == StreamEnd::ClosedByClient)
            .count(),
        unreported,
        time_to_open_all_secs: timings.last_open_at,
        arrival_rate_per_sec: if timings.arrivals_done_at > 0.0 {
            attempted as f64 / timings.arrivals_done_at
        } else {
            0.0
        },
        enter_latency_ms: Spread::of(enter_latencies_ms.to_vec()),
        enter_latency_ms_per_1000: enter_latencies_ms
            .chunks(1000)
            .filter_map(|chunk| Spread::of(chunk.to_vec()))
            .collect(),
        open_latency_ms: Spread::of(opened.iter().filter_map(|o| o.open_latency_ms).collect()),
    };
    let updates = UpdateCounts {
        position_updates: opened.iter().map(|o| u64::from(o.positions)).sum(),
        per_stream: Spread::of(opened.iter().map(|o| f64::from(o.positions)).collect()),
        heartbeats: opened.iter().map(|o| u64::from(o.heartbeats)).sum(),
        left_events: opened.iter().filter(|o| o.left_at.is_some()).count(),
        other_events: opened.iter().map(|o| u64::from(o.other_events)).sum(),
        position_increases: opened.iter().map(|o| u64::from(o.position_increases)).sum(),
    };
    let admission = admission_order(&opened, settings.order_tolerance_ms as f64 / 1e3);
    Report {
        started_at,
        settings,
        timings,
        connections,
        updates,
        admission,
        shutdown,
        server,
        client,
        others,
        machine,
        timeline,
    }
}

fn admission_order(opened: &[&StreamOutcome], tolerance_secs: f64) -> AdmissionOrder {
    // (arrival, admitted at), in the order the client saw the events.
    let by_time = |streams: &mut dyn Iterator<Item = &&StreamOutcome>| {
        let mut admitted: Vec<(usize, f64)> = streams
            .filter_map(|o| Some((o.arrival, o.admitted_at?)))
            .collect();
        admitted.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        admitted
    };
    // A user admitted between its enter and its stream's start hears of it
    // on open, up to one SSE tick before the users admitted with it hear of
    // it from the ticker: its time is not comparable, so order is judged on
    // the users that were waiting on an open stream.
    let on_open = |o: &&&StreamOutcome| o.admitted_at.is_some() && o.positions == 0;
    let all = by_time(&mut opened.iter());
    let waited = by_time(&mut opened.iter().filter(|o| !on_open(o)));
    let (inversions_raw, inversions_beyond_tolerance) = inversions(&waited, tolerance_secs);
    let (_, inversions_beyond_tolerance_all) = inversions(&all, tolerance_secs);

    let mut arrivals: Vec<usize> = opened.iter().map(|o| o.arrival).collect();
    arrivals.sort_unstable();
    let mut admitted_arrivals: Vec<usize> = all.iter().map(|a| a.0).collect();
    admitted_arrivals.sort_unstable();
    let earliest = &arrivals[..admitted_arrivals.len()];
    let last_admitted = admitted_arrivals.last().copied();
    let skipped_arrivals = last_admitted.map_or(0, |last| {
        arrivals.iter().filter(|&&a| a <= last).count() - admitted_arrivals.len()
    });

    let windows = windows(&waited, tolerance_secs);
    let windows_in_arrival_order = windows
        .windows(2)
        .all(|pair| pair[0].max_arrival < pair[1].min_arrival);
    let n = waited.len() as u64;
    let mut admitted_on_open_arrivals: Vec<usize> =
        opened.iter().filter(on_open).map(|o| o.arrival).collect();
    admitted_on_open_arrivals.sort_unstable();
    AdmissionOrder {
        admitted: all.len(),
        admitted_without_token: opened
            .iter()
            .filter(|o| o.admitted_at.is_some() && !o.admitted_with_token)
            .count(),
        admitted_on_open: admitted_on_open_arrivals.len(),
        admitted_on_open_arrivals,
        inversions_raw,
        inversions_beyond_tolerance,
        inversions_beyond_tolerance_all,
        pairs: n * n.saturating_sub(1) / 2,
        admitted_are_earliest_arrivals: earliest == admitted_arrivals.as_slice(),
        skipped_arrivals,
        windows: windows.len(),
        windows_in_arrival_order,
        window_sizes: Spread::of(windows.iter().map(|w| w.size as f64).collect()),
        window_spread_ms: Spread::of(windows.iter().map(|w| w.spread_ms).collect()),
        window_list: windows,
    }
}

/// Pairs (earlier arrival, later arrival) that the client saw admitted the
/// other way round: all of them, and those more than `tolerance` apart.
/// `admitted` is sorted by time. Quadratic, which is fine for the few
/// thousand admissions of a run.
fn inversions(admitted: &[(usize, f64)], tolerance: f64) -> (u64, u64) {
    let mut raw = 0;
    let mut beyond = 0;
    for (i, &(arrival_i, at_i)) in admitted.iter().enumerate() {
        for &(arrival_j, at_j) in &admitted[i + 1..] {
            // i was admitted no later than j.
            if arrival_i > arrival_j {
                raw += 1;
                if at_j - at_i > tolerance {
                    beyond += 1;
                }
            }
        }
    }
    (raw, beyond)
}

/// Groups time-sorted admissions into bursts separated by more than `gap`.
fn windows(admitted: &[(usize, f64)], gap: f64) -> Vec<Window> {
    let mut windows: Vec<Window> = Vec::new();
    let mut last_at = f64::NEG_INFINITY;
    for &(arrival, at) in admitted {
        match windows.last_mut() {
            Some(w) if at - last_at <= gap => {
                w.spread_ms = (at - w.first_at) * 1e3;
                w.size += 1;
                w.min_arrival = w.min_arrival.min(arrival);
                w.max_arrival = w.max_arrival.max(arrival);
            }
            _ => windows.push(Window {
                first_at: at,
                spread_ms: 0.0,
                size: 1,
                min_arrival: arrival,
                max_arrival: arrival,
            }),
        }
        last_at = at;
    }
    windows
}

fn opt<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn spread(s: Option<Spread>, digits: usize) -> String {
    s.map_or_else(
        || "-".to_owned(),
        |s| {
            format!(
                "min {:.d$} / median {:.d$} / p99 {:.d$} / max {:.d$}",
                s.min,
                s.median,
                s.p99,
                s.max,
                d = digits
            )
        },
    )
}

impl Report {
    /// The readable summary.
    pub fn summary(&self) -> String {
        let c = &self.connections;
        let u = &self.updates;
        let a = &self.admission;
        let t = &self.timings;
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line(format!(
            "sse-load: {} streams to {} (schedule {}), held {} s after the last opened",
            self.settings.connections,
            self.settings.base_url,
            self.settings.schedule_id,
            self.settings.hold_secs
        ));
        line("connections".into());
        line(format!(
            "  attempted {}  entered {}  opened {}  failed {} (enter {}, open {})  enter retries {}",
            c.attempted,
            c.entered,
            c.opened,
            c.enter_failed + c.open_failed,
            c.enter_failed,
            c.open_failed,
            c.enter_retries
        ));
        for (reason, count) in &c.failures {
            line(format!("    {count} x {reason}"));
        }
        line(format!(
            "  arrivals done at {:.1} s ({:.0}/s); all open at {:.1} s",
            t.arrivals_done_at, c.arrival_rate_per_sec, c.time_to_open_all_secs,
        ));
        line(format!(
            "  enter latency ms: {}",
            spread(c.enter_latency_ms, 1)
        ));
        if let (Some(first), Some(last)) = (
            c.enter_latency_ms_per_1000.first(),
            c.enter_latency_ms_per_1000.last(),
        ) {
            line(format!(
                "    first 1000 arrivals: median {:.1} / p99 {:.1};  last 1000: median {:.1} / p99 {:.1}",
                first.median, first.p99, last.median, last.p99
            ));
        }
        line(format!(
            "  stream open latency ms: {}",
            spread(c.open_latency_ms, 1)
        ));
        line(format!(
            "  open at the end of the hold {}  completed after admitted {}  ended early without admission {}  errored {}  closed by this tool {}  unreported {}",
            c.open_at_hold_end,
            c.completed_admitted,
            c.ended_early_without_admission,
            c.errored_before_hold_end,
            c.closed_by_client,
            c.unreported
        ));
        line("updates".into());
        line(format!(
            "  position updates {} (per stream: {})  heartbeats {}  left {}  other {}  position increases {}",
            u.position_updates,
            spread(u.per_stream, 0),
            u.heartbeats,
            u.left_events,
            u.other_events,
            u.position_increases
        ));
        line("admission".into());
        line(format!(
            "  admitted {} (without token {}, on open {} {:?}) in {} windows (sizes: {})",
            a.admitted,
            a.admitted_without_token,
            a.admitted_on_open,
            &a.admitted_on_open_arrivals[..a.admitted_on_open_arrivals.len().min(10)],
            a.windows,
            spread(a.window_sizes, 0)
        ));
        line(format!(
            "  inversions among those admitted while waiting: {} raw, {} beyond {} ms ({} counting those admitted on open), of {} pairs",
            a.inversions_raw,
            a.inversions_beyond_tolerance,
            self.settings.order_tolerance_ms,
            a.inversions_beyond_tolerance_all,
            a.pairs,
        ));
        line(format!(
            "  windows in arrival order: {}; admitted = earliest arrivals: {} (skipped {})",
            a.windows_in_arrival_order, a.admitted_are_earliest_arrivals, a.skipped_arrivals
        ));
        line(format!(
            "  delivery spread of one window, ms: {}",
            spread(a.window_spread_ms, 0)
        ));
        if let Some(s) = &self.shutdown {
            line("server shutdown (SIGTERM)".into());
            line(format!(
                "  open at signal {}  ended cleanly {}  with error {}  still open after wait {}  all ended after {} ms  server exited {}",
                s.open_at_sigterm,
                s.ended_cleanly,
                s.ended_with_error,
                s.still_open_after_wait,
                opt(s.all_ended_after_ms.map(|v| format!("{v:.0}"))),
                s.server_exited
            ));
        }
        if let Some(s) = &self.server {
            line(format!("server (pid {})", s.pid));
            line(format!(
                "  RSS baseline {:.1} MiB, peak {:.1} MiB (VmHWM {:.1} MiB), {} KiB per stream",
                s.baseline_rss_mib,
                s.peak_rss_mib,
                s.hwm_mib,
                opt(s.kib_per_stream.map(|v| format!("{v:.1}"))),
            ));
            line(format!(
                "  CPU (100% = one core): avg {:.0}% (arrivals {:.0}%, hold {:.0}%), peak second {:.0}%",
                s.cpu_avg_percent,
                s.cpu_avg_arrivals_percent,
                s.cpu_avg_hold_percent,
                s.cpu_peak_percent
            ));
            for (thread, peak) in &s.thread_peak_percent {
                line(format!("    thread {thread}: peak {peak:.0}%"));
            }
        }
        for (label, o) in &self.others {
            line(format!(
                "{label}: peak RSS {:.1} MiB; CPU arrivals {:.0}%, hold {:.0}%, peak second {:.0}%",
                o.peak_rss_mib,
                o.cpu_avg_arrivals_percent,
                o.cpu_avg_hold_percent,
                o.cpu_peak_percent
            ));
        }
        if let Some(m) = &self.machine {
            line(format!(
                "machine ({} cores, all processes): CPU arrivals {:.0}%, hold {:.0}%, peak second {:.0}% of {}%",
                m.cores,
                m.cpu_avg_arrivals_percent,
                m.cpu_avg_hold_percent,
                m.cpu_peak_percent,
                m.cores * 100
            ));
        }
        if let Some(c) = &self.client {
            line(format!(
                "client: peak RSS {:.1} MiB, CPU avg {:.0}%",
                c.peak_rss_mib, c.cpu_avg_percent
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admissions_in_arrival_order_have_no_inversions() {
        let admitted = [(0, 1.0), (1, 1.0), (2, 2.0), (3, 2.1)];
        assert_eq!(inversions(&admitted, 0.5), (0, 0));
    }

    #[test]
    fn jitter_within_a_window_is_told_apart_from_a_late_window() {
        // 1 and 0 swapped by 10 ms inside a window; 3 admitted a full
        // window before 2.
        let admitted = [(1, 1.00), (0, 1.01), (3, 2.0), (2, 3.0)];
        assert_eq!(inversions(&admitted, 0.5), (2, 1));
    }

    #[test]
    fn bursts_become_windows() {
        let admitted = [(0, 1.0), (1, 1.02), (2, 6.0), (4, 6.01), (3, 6.03)];
        let w = windows(&admitted, 0.5);
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].size, w[0].min_arrival, w[0].max_arrival), (2, 0, 1));
        assert_eq!((w[1].size, w[1].min_arrival, w[1].max_arrival), (3, 2, 4));
        assert!((w[1].spread_ms - 30.0).abs() < 1e-6);
    }

    fn stream(arrival: usize, positions: u32, admitted_at: Option<f64>) -> StreamOutcome {
        StreamOutcome {
            arrival,
            user: arrival as i64,
            entered_position: arrival as u64 + 1,
            entered_admitted: false,
            failure: None,
            opened_at: Some(0.0),
            open_latency_ms: Some(1.0),
            positions,
            position_increases: 0,
            heartbeats: 0,
            other_events: 0,
            admitted_at,
            admitted_with_token: admitted_at.is_some(),
            left_at: None,
            ended_at: admitted_at,
            end: StreamEnd::ClosedByServer,
        }
    }

    #[test]
    fn a_user_admitted_before_its_stream_opened_is_judged_apart() {
        // 1 was admitted with 0 and 2 but heard of it on open, a second
        // before the ticker told the others; 3 is still waiting.
        let streams = [
            stream(0, 1, Some(1.0)),
            stream(1, 0, Some(0.05)),
            stream(2, 1, Some(1.01)),
            stream(3, 2, None),
        ];
        let opened: Vec<&StreamOutcome> = streams.iter().collect();
        let order = admission_order(&opened, 0.5);
        assert_eq!(order.admitted, 3);
        assert_eq!(order.admitted_on_open_arrivals, vec![1]);
        assert_eq!(order.inversions_beyond_tolerance, 0);
        assert_eq!(order.inversions_beyond_tolerance_all, 1);
        assert!(order.admitted_are_earliest_arrivals);
        assert!(order.windows_in_arrival_order);
    }

    #[test]
    fn a_skipped_arrival_is_noticed() {
        let streams = [stream(0, 1, None), stream(1, 1, Some(1.0))];
        let opened: Vec<&StreamOutcome> = streams.iter().collect();
        let order = admission_order(&opened, 0.5);
        assert!(!order.admitted_are_earliest_arrivals);
        assert_eq!(order.skipped_arrivals, 1);
    }

    #[test]
    fn spread_takes_min_median_and_max() {
        let s = Spread::of(vec![3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.min, s.median, s.max), (1.0, 2.0, 3.0));
        assert!(Spread::of(Vec::new()).is_none());
    }
}
