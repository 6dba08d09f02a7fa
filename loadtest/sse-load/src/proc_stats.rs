//! Memory and CPU of a process, read from Linux's `/proc` (no agent, no
//! extra crate): `VmRSS`/`VmHWM` from `status`, `utime + stime` from `stat`.

use std::time::Instant;

/// One reading of a process.
#[derive(Debug, Clone, Copy)]
pub struct ProcReading {
    pub at: Instant,
    pub rss_kib: u64,
    /// The kernel's own peak resident size since the process started.
    pub hwm_kib: u64,
    /// User + system CPU time, in clock ticks.
    pub cpu_ticks: u64,
}

/// `self` or a pid.
#[derive(Debug, Clone, Copy)]
pub enum Proc {
    Current,
    Pid(u32),
}

impl Proc {
    fn path(self, file: &str) -> String {
        match self {
            Proc::Current => format!("/proc/self/{file}"),
            Proc::Pid(pid) => format!("/proc/{pid}/{file}"),
        }
    }

    /// `None` once the process is gone (or on a system without `/proc`).
    pub fn read(self) -> Option<ProcReading> {
        let status = std::fs::read_to_string(self.path("status")).ok()?;
        let stat = std::fs::read_to_string(self.path("stat")).ok()?;
        Some(ProcReading {
            at: Instant::now(),
            rss_kib: status_kib(&status, "VmRSS:")?,
            hwm_kib: status_kib(&status, "VmHWM:")?,
            cpu_ticks: stat_cpu_ticks(&stat)?,
        })
    }
}

/// A `Vm...:   1234 kB` line of `/proc/<pid>/status`.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// `utime + stime` (fields 14 and 15) of `/proc/<pid>/stat`. The command
/// name (field 2) may contain spaces and parentheses, so fields are counted
/// after its last `)`.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11); // field 3 is index 0
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The whole machine's CPU time from `/proc/stat`: busy and total ticks,
/// summed over all cores, and the number of cores.
#[derive(Debug, Clone, Copy)]
pub struct MachineCpu {
    pub busy: u64,
    pub total: u64,
    pub cores: usize,
}

impl MachineCpu {
    pub fn read() -> Option<Self> {
        parse_proc_stat(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    /// Busy share between two readings, in percent of one core (200 = two busy cores).
    pub fn percent_since(&self, before: &MachineCpu) -> f64 {
        let total = self.total.saturating_sub(before.total);
        if total == 0 {
            return 0.0;
        }
        let busy = self.busy.saturating_sub(before.busy);
        busy as f64 / total as f64 * self.cores as f64 * 100.0
    }
}

/// `cpu  user nice system idle iowait irq softirq steal ...`: idle and
/// iowait are not busy.
fn parse_proc_stat(stat: &str) -> Option<MachineCpu> {
    let mut lines = stat.lines();
    let fields: Vec<u64> = lines
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let total: u64 = fields.iter().sum();
    let idle = fields.get(3)? + fields.get(4)?;
    let cores = lines
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count();
    Some(MachineCpu {
        busy: total - idle,
        total,
        cores: cores.max(1),
    })
}

/// CPU ticks of every thread of `pid`: (thread id, thread name, ticks).
/// Threads that end while being read are skipped.
pub fn thread_ticks(pid: u32) -> Vec<(u32, String, u64)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let tid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            Some((tid, stat_name(&stat)?.to_owned(), stat_cpu_ticks(&stat)?))
        })
        .collect()
}

/// The command (thread) name: between the first `(` and the last `)`.
fn stat_name(stat: &str) -> Option<&str> {
    stat.get(stat.find('(')? + 1..stat.rfind(')')?)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on every common Linux).
pub fn clock_ticks_per_sec() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// CPU used between two readings, in percent of one core (200 = two cores busy).
pub fn cpu_percent(before: &ProcReading, after: &ProcReading, ticks_per_sec: u64) -> f64 {
    let wall = after.at.duration_since(before.at).as_secs_f64();
    if wall <= 0.0 {
        return 0.0;
    }
    let cpu = after.cpu_ticks.saturating_sub(before.cpu_ticks) as f64 / ticks_per_sec as f64;
    cpu / wall * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_read_after_a_name_with_spaces() {
        let stat = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 9 0 100 1000000 500 18446744073709551615";
        assert_eq!(stat_cpu_ticks(stat), Some(325));
        assert_eq!(stat_name(stat), Some("my (odd) name"));
    }

    #[test]
    fn status_lines_are_read_in_kib() {
        let status = "Name:\tbooking\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(102_400));
        assert_eq!(status_kib(status, "VmHWM:"), Some(204_800));
        assert_eq!(status_kib(status, "VmSwap:"), None);
    }

    #[test]
    fn machine_cpu_counts_idle_and_iowait_as_not_busy() {
        let before =
            parse_proc_stat("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1\ncpu1 1\nintr 5\n").unwrap();
        assert_eq!((before.busy, before.total, before.cores), (200, 1000, 2));
        let after = parse_proc_stat("cpu  200 0 200 1200 200 0 0 0 0 0\ncpu0 1\ncpu1 1\n").unwrap();
        // 200 busy of 800 ticks on two cores: half a core.
        assert!((after.percent_since(&before) - 50.0).abs() < 1e-9);
    }

    #[test]
    fn this_process_can_be_read() {
        let reading = Proc::Current
            .read()
            .expect("/proc/self is readable on Linux");
        assert!(reading.rss_kib > 0 && reading.hwm_kib >= reading.rss_kib);
        assert!(!thread_ticks(std::process::id()).is_empty());
    }
}
