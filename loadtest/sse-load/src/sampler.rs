//! Once a second: the server's and this tool's memory and CPU, the server's
//! busiest thread, and the number of open streams.

use crate::connection::Shared;
use crate::proc_stats::{self, cpu_percent, MachineCpu, Proc, ProcReading};
use crate::report::{ClientUse, MachineUse, OtherUse, Sample, ServerUse};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

const KIB_PER_MIB: f64 = 1024.0;
/// Threads that never got this busy are left out of the report.
const THREAD_REPORT_PERCENT: f64 = 5.0;

/// The readings of a run, each with its time in seconds since the start.
#[derive(Debug, Default)]
pub struct Samples {
    pub timeline: Vec<Sample>,
    server: Vec<(f64, ProcReading)>,
    client: Vec<(f64, ProcReading)>,
    /// `--also-sample` processes: label -> readings.
    others: BTreeMap<String, Vec<(f64, ProcReading)>>,
    /// "name (tid)" -> its busiest second, in percent of one core.
    thread_peaks: BTreeMap<String, f64>,
    peak_rss_kib: u64,
    most_open: usize,
    machine: Vec<(f64, MachineCpu)>,
}

/// The reading closest to `at`.
fn nearest(readings: &[(f64, ProcReading)], at: f64) -> Option<ProcReading> {
    readings
        .iter()
        .min_by(|a, b| (a.0 - at).abs().total_cmp(&(b.0 - at).abs()))
        .map(|(_, r)| *r)
}

fn cpu_between(readings: &[(f64, ProcReading)], from: f64, to: f64, ticks: u64) -> f64 {
    match (nearest(readings, from), nearest(readings, to)) {
        (Some(a), Some(b)) => cpu_percent(&a, &b, ticks),
        _ => 0.0,
    }
}

/// Moments that split the run into phases, seconds since the start.
#[derive(Debug, Clone, Copy)]
pub struct Phases {
    pub arrivals_done: f64,
    pub last_open: f64,
    pub hold_end: f64,
}

impl Samples {
    pub fn server_use(&self, pid: Option<u32>, ticks: u64, phases: Phases) -> Option<ServerUse> {
        let pid = pid?;
        let (start, first) = *self.server.first()?;
        let last = self.server.last()?.1;
        let baseline = first.rss_kib as f64;
        let grown = self.peak_rss_kib as f64 - baseline;
        let busy = |from: f64, to: f64| cpu_between(&self.server, from, to, ticks);
        Some(ServerUse {
            pid,
            baseline_rss_mib: baseline / KIB_PER_MIB,
            peak_rss_mib: self.peak_rss_kib as f64 / KIB_PER_MIB,
            hwm_mib: last.hwm_kib as f64 / KIB_PER_MIB,
            kib_per_stream: (self.most_open > 0).then(|| grown / self.most_open as f64),
            cpu_avg_percent: busy(start, phases.hold_end),
            cpu_avg_arrivals_percent: busy(start, phases.arrivals_done),
            cpu_avg_hold_percent: busy(phases.last_open, phases.hold_end),
            cpu_peak_percent: self
                .timeline
                .iter()
                .filter_map(|s| s.server_cpu_percent)
                .fold(0.0, f64::max),
            thread_peak_percent: self
                .thread_peaks
                .iter()
                .filter(|(_, &p)| p >= THREAD_REPORT_PERCENT)
                .map(|(name, &p)| (name.clone(), p))
                .collect(),
        })
    }

    /// The `--also-sample` processes (Redis, say) over the same phases.
    pub fn others_use(&self, ticks: u64, phases: Phases) -> BTreeMap<String, OtherUse> {
        self.others
            .iter()
            .filter_map(|(label, readings)| {
                let (start, _) = *readings.first()?;
                let busy = |from: f64, to: f64| cpu_between(readings, from, to, ticks);
                let peak = readings
                    .windows(2)
                    .map(|w| cpu_percent(&w[0].1, &w[1].1, ticks))
                    .fold(0.0, f64::max);
                let use_ = OtherUse {
                    peak_rss_mib: readings.iter().map(|(_, r)| r.rss_kib).max()? as f64
                        / KIB_PER_MIB,
                    cpu_avg_arrivals_percent: busy(start, phases.arrivals_done),
                    cpu_avg_hold_percent: busy(phases.last_open, phases.hold_end),
                    cpu_peak_percent: peak,
                };
                Some((label.clone(), use_))
            })
            .collect()
    }

    /// The whole machine's CPU, 100 = one core: (arrivals, hold, peak second).
    pub fn machine_use(&self, phases: Phases) -> Option<MachineUse> {
        let near = |at: f64| {
            self.machine
                .iter()
                .min_by(|a, b| (a.0 - at).abs().total_cmp(&(b.0 - at).abs()))
                .map(|(_, m)| *m)
        };
        let between = |from: f64, to: f64| Some(near(to)?.percent_since(&near(from)?));
        let (start, first) = *self.machine.first()?;
        Some(MachineUse {
            cores: first.cores,
            cpu_avg_arrivals_percent: between(start, phases.arrivals_done)?,
            cpu_avg_hold_percent: between(phases.last_open, phases.hold_end)?,
            cpu_peak_percent: self
                .machine
                .windows(2)
                .map(|w| w[1].1.percent_since(&w[0].1))
                .fold(0.0, f64::max),
        })
    }

    pub fn client_use(&self, ticks: u64) -> Option<ClientUse> {
        let (_, first) = *self.client.first()?;
        let (_, last) = *self.client.last()?;
        Some(ClientUse {
            peak_rss_mib: last.hwm_kib as f64 / KIB_PER_MIB,
            cpu_avg_percent: cpu_percent(&first, &last, ticks),
        })
    }
}

/// Samples until `stopped` turns true; `others` are (label, pid) pairs
/// sampled like the server, without the per-thread view.
pub async fn sample_every_second(
    server_pid: Option<u32>,
    others: Vec<(String, u32)>,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) -> Samples {
    let ticks = proc_stats::clock_ticks_per_sec();
    let mut samples = Samples::default();
    let mut threads_before: HashMap<u32, u64> = HashMap::new();
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut previous: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stopped.wait_for(|&s| s) => break,
        }
        let now = Instant::now();
        let at = shared.secs(now);
        let open_streams = shared.open_now.load(Ordering::SeqCst);
        let server = server_pid.and_then(|pid| Proc::Pid(pid).read());
        let client = Proc::Current.read();
        let machine = MachineCpu::read();
        let machine_cpu = machine
            .zip(samples.machine.last())
            .map(|(now, (_, prev))| now.percent_since(prev));
        if let Some(m) = machine {
            samples.machine.push((at, m));
        }
        let server_cpu = server
            .zip(samples.server.last())
            .map(|(now, (_, prev))| cpu_percent(prev, &now, ticks));
        let client_cpu = client
            .zip(samples.client.last())
            .map(|(now, (_, prev))| cpu_percent(prev, &now, ticks));

        let mut busiest: Option<(String, f64)> = None;
        if let (Some(pid), Some(since)) = (server_pid.filter(|_| server.is_some()), previous) {
            let wall = now.duration_since(since).as_secs_f64();
            let mut threads_now = HashMap::new();
            for (tid, name, used) in proc_stats::thread_ticks(pid) {
                threads_now.insert(tid, used);
                let Some(&before) = threads_before.get(&tid) else {
                    continue;
                };
                let percent = used.saturating_sub(before) as f64 / ticks as f64 / wall * 100.0;
                let label = format!("{name} ({tid})");
                let peak = samples.thread_peaks.entry(label.clone()).or_insert(0.0);
                *peak = peak.max(percent);
                if busiest.as_ref().is_none_or(|(_, p)| percent > *p) {
                    busiest = Some((label, percent));
                }
            }
            threads_before = threads_now;
        } else if let Some(pid) = server_pid {
            threads_before = proc_stats::thread_ticks(pid)
                .into_iter()
                .map(|(tid, _, used)| (tid, used))
                .collect();
        }
        previous = Some(now);

        if let Some(reading) = server {
            samples.peak_rss_kib = samples.peak_rss_kib.max(reading.rss_kib);
            samples.most_open = samples.most_open.max(open_streams);
            samples.server.push((at, reading));
        }
        if let Some(reading) = client {
            samples.client.push((at, reading));
        }
        let mut others_cpu_percent = BTreeMap::new();
        for (label, pid) in &others {
            let Some(reading) = Proc::Pid(*pid).read() else {
                continue;
            };
            let readings = samples.others.entry(label.clone()).or_default();
            if let Some((_, prev)) = readings.last() {
                others_cpu_percent.insert(label.clone(), cpu_percent(prev, &reading, ticks));
            }
            readings.push((at, reading));
        }
        let mib = |r: ProcReading| r.rss_kib as f64 / KIB_PER_MIB;
        let (busiest_thread, busiest_thread_percent) = busiest.unzip();
        samples.timeline.push(Sample {
            at,
            open_streams,
            server_rss_mib: server.map(mib),
            server_cpu_percent: server_cpu,
            busiest_thread,
            busiest_thread_percent,
            client_rss_mib: client.map(mib),
            client_cpu_percent: client_cpu,
            others_cpu_percent,
            machine_cpu_percent: machine_cpu,
        });
    }
    samples
}
