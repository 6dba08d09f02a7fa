//! `sse-load`: opens thousands of waiting-room event streams
//! (`GET /api/queue/events`) to one API instance on this machine, holds them,
//! and reports what arrived: streams held, position updates, admission order
//! against arrival order, and the server's memory and CPU from `/proc`.
//!
//! k6 cannot read an SSE response while it is still arriving, hence this
//! tool. Every user is synthetic: a JWT signed with the server's secret for
//! a user id that need not exist (queueing needs no user row). Users enter
//! one after another, so arrival order is the order of the enters; each
//! stream is then read by its own task. Everything is bounded: the number
//! of streams, the arrival phase, every open, the hold, and the final wait.
//!
//! `sse-load sale ...` drives a whole sale instead (see `sale`).

mod connection;
mod frames;
mod proc_stats;
mod report;
mod sale;
mod sampler;

use anyhow::{bail, Context};
use clap::Parser;
use connection::{Entered, Shared, StreamEnd, StreamOutcome, Target};
use jsonwebtoken::EncodingKey;
use proc_stats::Proc;
use report::{EnterFailure, RunSettings, ShutdownSeen, Timings};
use reqwest::Url;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Never more streams than this (two processes on one machine share the
/// 28k ephemeral ports of 127.0.0.1 and the file-descriptor limit).
const MAX_CONNECTIONS: usize = 25_000;
/// The arrival phase (all enters) stops after this, whatever is left.
const ARRIVAL_DEADLINE: Duration = Duration::from_secs(600);
/// After the last task is told to stop, its result must come within this.
const JOIN_DEADLINE: Duration = Duration::from_secs(30);
/// The JWTs outlive the run by this much.
const JWT_SLACK_SECS: i64 = 3600;

#[derive(Debug, Parser)]
#[command(
    name = "sse-load",
    about = "Hold thousands of waiting-room SSE streams open against one local API instance, or drive a sale (`sse-load sale`)",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
    /// Without a subcommand: hold streams open.
    #[command(flatten)]
    streams: StreamsArgs,
}

#[derive(Debug, clap::Subcommand)]
enum Mode {
    /// A sale: buyers arrive around the opening, wait on the stream, hold and pay.
    Sale(sale::SaleArgs),
}

#[derive(Debug, clap::Args)]
struct StreamsArgs {
    /// The API; only 127.0.0.0/8 or localhost are accepted.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base_url: String,
    /// The schedule whose waiting room the users enter. (`Option` and
    /// `required`: clap leaves it out when a subcommand is given.)
    #[arg(long, required = true)]
    schedule_id: Option<i64>,
    /// Streams to open, one synthetic user each.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=MAX_CONNECTIONS as i64))]
    connections: u32,
    /// Seconds to keep the streams open after the last one opened.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    hold_secs: u64,
    /// New users (enter + stream) per second, so the listen backlog is not overrun.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=20_000))]
    connect_rate: u32,
    /// User ids are first-user-id, first-user-id + 1, ...
    #[arg(long, default_value_t = 1_000_000)]
    first_user_id: i64,
    /// The server's HS256 secret.
    #[arg(
        long,
        env = "BOOKING_JWT_SECRET",
        hide_env_values = true,
        required = true
    )]
    jwt_secret: Option<String>,
    /// The server's pid: its /proc is sampled every second for RSS and CPU.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Another process to sample like the server, as LABEL=PID (e.g.
    /// redis=1234); repeatable.
    #[arg(long = "also-sample", value_name = "LABEL=PID", value_parser = parse_labelled_pid)]
    also_sample: Vec<(String, u32)>,
    /// After the hold, send SIGTERM to --server-pid and watch the server end
    /// the streams (graceful shutdown with every stream open).
    #[arg(long, requires = "server_pid")]
    shutdown_server: bool,
    /// How long to wait for the streams to end after SIGTERM.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=120))]
    shutdown_wait_secs: u64,
    /// Seconds to wait for a stream's response headers.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=300))]
    open_timeout_secs: u64,
    /// Admissions closer in time than this are one window: their order
    /// among themselves is delivery jitter, not queue order.
    #[arg(long, default_value_t = 500)]
    order_tolerance_ms: u64,
    /// Where the JSON results go.
    #[arg(long, default_value = "target/sse-load/result.json")]
    out: PathBuf,
}

fn parse_labelled_pid(raw: &str) -> Result<(String, u32), String> {
    let (label, pid) = raw
        .split_once('=')
        .ok_or_else(|| format!("{raw:?} is not LABEL=PID"))?;
    let pid = pid
        .parse()
        .map_err(|_| format!("{pid:?} is not a process id"))?;
    if label.is_empty() {
        return Err("the label is empty".into());
    }
    Ok((label.to_owned(), pid))
}

/// Parses `raw` and refuses anything but plain HTTP to this machine.
fn loopback_base_url(raw: &str) -> anyhow::Result<Url> {
    let url = Url::parse(raw).with_context(|| format!("--base-url {raw:?} is not a URL"))?;
    if url.scheme() != "http" {
        bail!("--base-url must be http:// (this tool only talks to a local instance)");
    }
    // An IPv6 host comes back bracketed, so it parses as neither.
    let host = url.host_str().unwrap_or_default();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<Ipv4Addr>()
            .is_ok_and(|ip| ip.octets()[0] == Ipv4Addr::LOCALHOST.octets()[0]);
    if !loopback {
        bail!("--base-url must point at 127.0.0.0/8 or localhost, not {raw:?}");
    }
    Ok(url)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = match Cli::parse() {
        Cli {
            mode: Some(Mode::Sale(args)),
            ..
        } => return sale::main(args).await,
        Cli { streams, .. } => streams,
    };
    let base = loopback_base_url(&cli.base_url)?;
    let report = run(&cli, &base).await?;
    print!("{}", report.summary());
    if let Some(dir) = cli.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let json = serde_json::to_vec_pretty(&report)?;
    std::fs::write(&cli.out, json).with_context(|| format!("writing {}", cli.out.display()))?;
    println!("results: {}", cli.out.display());
    Ok(())
}

async fn run(cli: &StreamsArgs, base: &Url) -> anyhow::Result<report::Report> {
    let schedule_id = cli.schedule_id.context("--schedule-id is required")?;
    let jwt_secret = cli
        .jwt_secret
        .as_deref()
        .context("--jwt-secret is required")?;
    let started_at = chrono::Utc::now().to_rfc3339();
    let target = Arc::new(Target::new(
        base,
        schedule_id,
        Duration::from_secs(cli.open_timeout_secs),
    )?);
    check_live(&target, base).await?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        start: Instant::now(),
        open_now: AtomicUsize::new(0),
        settled: AtomicUsize::new(0),
        last_open_micros: AtomicU64::new(0),
        stop: stop_rx,
    });
    let (sampler_stop, sampler_stopped) = watch::channel(false);
    let sampler = tokio::spawn(sampler::sample_every_second(
        cli.server_pid,
        cli.also_sample.clone(),
        shared.clone(),
        sampler_stopped,
    ));

    // Arrivals: one enter at a time, paced, each followed by its stream task.
    let key = EncodingKey::from_secret(jwt_secret.as_bytes());
    let jwt_ttl = i64::try_from(cli.hold_secs).unwrap_or(3600) + JWT_SLACK_SECS;
    let rate = f64::from(cli.connect_rate);
    let total = cli.connections as usize;
    let mut tasks: Vec<JoinHandle<StreamOutcome>> = Vec::with_capacity(total);
    let mut enter_failures = Vec::new();
    let mut enter_retries = 0;
    let mut enter_latencies_ms = Vec::with_capacity(total);
    let mut attempted = 0;
    for arrival in 0..total {
        let due = shared.start + Duration::from_secs_f64(arrival as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        if shared.start.elapsed() > ARRIVAL_DEADLINE {
            eprintln!(
                "arrival phase passed {} s: stopping at {arrival} users",
                ARRIVAL_DEADLINE.as_secs()
            );
            break;
        }
        attempted += 1;
        let user = cli.first_user_id + arrival as i64;
        let jwt = connection::mint_jwt(&key, user, jwt_ttl)?;
        let sent = Instant::now();
        let (entered, retries) = connection::enter(&target, &jwt).await;
        enter_latencies_ms.push(sent.elapsed().as_secs_f64() * 1e3);
        enter_retries += retries;
        match entered {
            Ok(entered) => tasks.push(spawn_stream(&target, &shared, arrival, user, jwt, entered)),
            Err(reason) => enter_failures.push(EnterFailure { reason }),
        }
        if (arrival + 1) % 1000 == 0 {
            eprintln!(
                "{:>6.1} s  entered {:>6}  open {:>6}  enter failures {}",
                shared.start.elapsed().as_secs_f64(),
                arrival + 1 - enter_failures.len(),
                shared.open_now.load(Ordering::SeqCst),
                enter_failures.len()
            );
        }
    }
    let arrivals_done_at = shared.secs(Instant::now());

    // Every stream opened or failed to (each open is itself bounded).
    let settle_deadline = Instant::now() + target.open_timeout + Duration::from_secs(5);
    while shared.settled.load(Ordering::SeqCst) < tasks.len() && Instant::now() < settle_deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let last_open = match shared.last_open_micros.load(Ordering::SeqCst) {
        0 => Duration::from_secs_f64(arrivals_done_at),
        micros => Duration::from_micros(micros),
    };
    eprintln!(
        "{:>6.1} s  all settled: {} open; holding {} s after the last open (at {:.1} s)",
        shared.start.elapsed().as_secs_f64(),
        shared.open_now.load(Ordering::SeqCst),
        cli.hold_secs,
        last_open.as_secs_f64()
    );
    let hold_end = shared.start + last_open + Duration::from_secs(cli.hold_secs);
    tokio::time::sleep_until(hold_end.into()).await;
    let hold_ended_at = shared.secs(Instant::now());
    let open_at_hold_end = shared.open_now.load(Ordering::SeqCst);
    eprintln!("{hold_ended_at:>6.1} s  hold over: {open_at_hold_end} open");

    let sigterm = match (cli.shutdown_server, cli.server_pid) {
        (true, Some(pid)) => match terminate_and_wait(pid, &shared, cli.shutdown_wait_secs).await {
            Ok(sigterm) => Some(sigterm),
            Err(e) => {
                eprintln!("could not stop the server: {e:#}");
                None
            }
        },
        _ => None,
    };

    let _ = stop_tx.send(true);
    let mut outcomes = Vec::with_capacity(tasks.len());
    let join_deadline = tokio::time::Instant::now() + JOIN_DEADLINE;
    let mut unjoined = 0;
    for task in tasks {
        let abort = task.abort_handle();
        match tokio::time::timeout_at(join_deadline, task).await {
            Ok(Ok(outcome)) => outcomes.push(outcome),
            Ok(Err(e)) => {
                eprintln!("a stream task failed: {e}");
                unjoined += 1;
            }
            Err(_) => {
                abort.abort();
                unjoined += 1;
            }
        }
    }
    if unjoined > 0 {
        eprintln!("{unjoined} stream task(s) did not report within the deadline");
    }
    let finished_at = shared.secs(Instant::now());
    let _ = sampler_stop.send(true);
    let samples = sampler.await.context("the sampler task failed")?;

    let timings = Timings {
        arrivals_done_at,
        last_open_at: last_open.as_secs_f64(),
        hold_ended_at,
        finished_at,
    };
    let shutdown = sigterm.map(|t| shutdown_seen(&outcomes, t, open_at_hold_end));
    let ticks = proc_stats::clock_ticks_per_sec();
    let phases = sampler::Phases {
        arrivals_done: arrivals_done_at,
        last_open: last_open.as_secs_f64(),
        hold_end: hold_ended_at,
    };
    let settings = RunSettings {
        base_url: base.to_string(),
        schedule_id,
        connections: total,
        hold_secs: cli.hold_secs,
        connect_rate: cli.connect_rate,
        first_user_id: cli.first_user_id,
        server_pid: cli.server_pid,
        shutdown_server: cli.shutdown_server,
        order_tolerance_ms: cli.order_tolerance_ms,
    };
    Ok(report::build(report::Inputs {
        started_at,
        settings,
        server: samples.server_use(cli.server_pid, ticks, phases),
        others: samples.others_use(ticks, phases),
        machine: samples.machine_use(phases),
        client: samples.client_use(ticks),
        timeline: samples.timeline,
        timings,
        attempted,
        enter_failures: &enter_failures,
        enter_retries,
        enter_latencies_ms: &enter_latencies_ms,
        outcomes: &outcomes,
        unreported: unjoined,
        shutdown,
    }))
}

/// Fails fast, with a clear message, when nothing answers at `base`.
async fn check_live(target: &Target, base: &Url) -> anyhow::Result<()> {
    let url = base.join("/health/live")?;
    let response = target
        .enter_client
        .get(url.clone())
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .with_context(|| format!("the API does not answer at {url}"))?;
    if !response.status().is_success() {
        bail!("{url} answered {}", response.status());
    }
    Ok(())
}

fn spawn_stream(
    target: &Arc<Target>,
    shared: &Arc<Shared>,
    arrival: usize,
    user: i64,
    jwt: String,
    entered: Entered,
) -> JoinHandle<StreamOutcome> {
    let target = target.clone();
    let shared = shared.clone();
    tokio::spawn(async move {
        connection::hold_stream(&target, &shared, arrival, user, jwt, entered).await
    })
}

/// When the signal went out, and whether the server was gone afterwards.
#[derive(Debug, Clone, Copy)]
struct Sigterm {
    at: f64,
    server_exited: bool,
}

/// SIGTERM to `pid` (with `kill`, as this crate forbids `unsafe`), then
/// waits until every stream has ended or `wait_secs` have passed.
async fn terminate_and_wait(pid: u32, shared: &Shared, wait_secs: u64) -> anyhow::Result<Sigterm> {
    let at = shared.secs(Instant::now());
    let status = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .context("running kill")?;
    if !status.success() {
        bail!("kill -TERM {pid} failed: {status}");
    }
    eprintln!("{at:>6.1} s  SIGTERM sent to {pid}; waiting for the streams to end");
    let deadline = Instant::now() + Duration::from_secs(wait_secs);
    while shared.open_now.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Give the process a moment to exit after its last stream.
    let exit_deadline = Instant::now() + Duration::from_secs(wait_secs);
    while Proc::Pid(pid).read().is_some() && Instant::now() < exit_deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Sigterm {
        at,
        server_exited: Proc::Pid(pid).read().is_none(),
    })
}

fn shutdown_seen(outcomes: &[StreamOutcome], sigterm: Sigterm, open: usize) -> ShutdownSeen {
    let after = |o: &&StreamOutcome| o.ended_at.is_some_and(|t| t >= sigterm.at);
    let ended: Vec<&StreamOutcome> = outcomes.iter().filter(after).collect();
    let still_open = outcomes
        .iter()
        .filter(|o| o.end == StreamEnd::ClosedByClient)
        .count();
    let last_end = ended
        .iter()
        .filter_map(|o| o.ended_at)
        .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))));
    ShutdownSeen {
        sigterm_at: sigterm.at,
        open_at_sigterm: open,
        ended_cleanly: ended
            .iter()
            .filter(|o| o.end == StreamEnd::ClosedByServer)
            .count(),
        ended_with_error: ended
            .iter()
            .filter(|o| matches!(o.end, StreamEnd::Error(_)))
            .count(),
        still_open_after_wait: still_open,
        all_ended_after_ms: (still_open == 0)
            .then_some(last_end)
            .flatten()
            .map(|t| (t - sigterm.at) * 1e3),
        server_exited: sigterm.server_exited,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets_are_accepted() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://127.1.2.3:80/",
            "http://localhost:8080",
        ] {
            assert!(loopback_base_url(ok).is_ok(), "{ok}");
        }
        for refused in [
            "http://10.0.0.1:8080",
            "http://example.com",
            "https://127.0.0.1:8080",
            "http://[::1]:8080",
            "http://128.0.0.1",
            "not a url",
        ] {
            assert!(loopback_base_url(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn extra_processes_are_label_equals_pid() {
        assert_eq!(parse_labelled_pid("redis=42"), Ok(("redis".into(), 42)));
        assert!(parse_labelled_pid("redis").is_err());
        assert!(parse_labelled_pid("=42").is_err());
        assert!(parse_labelled_pid("redis=x").is_err());
    }

    #[test]
    fn the_defaults_parse() {
        let cli = Cli::try_parse_from([
            "sse-load",
            "--schedule-id",
            "1",
            "--jwt-secret",
            "x".repeat(32).as_str(),
        ])
        .unwrap();
        assert!(cli.mode.is_none());
        let cli = cli.streams;
        assert_eq!(
            (cli.connections, cli.hold_secs, cli.connect_rate),
            (10_000, 60, 1000)
        );
        assert!(
            Cli::try_parse_from(["sse-load", "--schedule-id", "1", "--connections", "0"]).is_err()
        );
    }

    #[test]
    fn the_sale_is_a_subcommand_with_its_own_flags() {
        let cli = Cli::try_parse_from([
            "sse-load",
            "sale",
            "--base-url",
            "http://127.0.0.1:8081",
            "--base-url",
            "http://127.0.0.1:8082",
            "--concert-id",
            "1",
            "--schedule-id",
            "2",
            "--tokens",
            "t.json",
        ])
        .unwrap();
        assert!(matches!(cli.mode, Some(Mode::Sale(_))));
        // The streams mode's flags do not mix with it.
        assert!(Cli::try_parse_from(["sse-load", "--connections", "5", "sale"]).is_err());
    }
}
