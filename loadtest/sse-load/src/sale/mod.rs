//! `sse-load sale`: a ticket sale driven the way people would drive it, for
//! the H-on benchmark. N buyers arrive over a short window around the
//! schedule's `salesOpenAt` (most before it, in the pre-queue), enter the
//! waiting room, wait on its event stream (never polling), and when
//! admitted hold seats they believe free and pay at once. The report is the
//! issue's figures for a sale: seats sold, opening to last seat sold, the
//! admitted users' wait, how late `sold-out` reached the waiting, users
//! left without an answer, admission-order inversions, 5xx and connection
//! errors by endpoint.
//!
//! One tokio runtime and one HTTP client with connection reuse serve every
//! buyer: a stream's connection goes back to the pool when the server ends
//! it, and the hold and payment reuse it.
//!
//! `just bench-h-on` runs it as H-on (loadtest/bench/bench.py makes the
//! schedule and the users); by hand, against a schedule with `salesOpenAt`
//! a few seconds ahead and users 1..=10000 in the database:
//!
//! ```text
//! BOOKING_JWT_SECRET=... sse-load sale --base-url http://127.0.0.1:8081 \
//!     --base-url http://127.0.0.1:8082 --concert-id 1 --schedule-id 1 \
//!     --users 10000 --first-user-id 1 --out target/sse-load/sale.json
//! ```

mod api;
mod buyer;
mod events;
mod history;
mod report;
mod seats;

use anyhow::{bail, Context};
use api::Instance;
use buyer::{Buyer, Clock, Outcome, Progress, Sale, StreamAuthMode};
use chrono::{DateTime, Utc};
use jsonwebtoken::EncodingKey;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Client;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Never more buyers than this (10,000 streams plus their calls need most
/// of the 20,000 open files a process may have here).
const MAX_USERS: usize = 15_000;
/// After the stop, every buyer must report within this.
const JOIN_DEADLINE: Duration = Duration::from_secs(15);
/// The JWTs minted here outlive the longest run.
const JWT_TTL_SECS: i64 = 4 * 3600;
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, clap::Args)]
pub struct SaleArgs {
    /// An API instance; give it several times to spread the buyers over
    /// them (buyer i keeps to instance i mod n). Loopback only.
    #[arg(long = "base-url", default_value = "http://127.0.0.1:8080")]
    base_urls: Vec<String>,
    /// The concert of the schedule (for its seat map and `salesOpenAt`).
    #[arg(long)]
    concert_id: i64,
    #[arg(long)]
    schedule_id: i64,
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=MAX_USERS as i64))]
    users: u32,
    /// A JSON array of user JWTs (as loadtest/bench/bench.py writes for
    /// k6), one per buyer; without it, JWTs are minted for consecutive
    /// user ids from --first-user-id with --jwt-secret.
    #[arg(long)]
    tokens: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    first_user_id: i64,
    /// The server's HS256 secret, to mint JWTs.
    #[arg(long, env = "BOOKING_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// The opening, RFC 3339; by default the schedule's `salesOpenAt`.
    #[arg(long)]
    opens_at: Option<DateTime<Utc>>,
    /// Arrivals before the opening are spread over this many seconds.
    #[arg(long, default_value_t = 3.0)]
    pre_open_secs: f64,
    /// Arrivals after the opening are spread over this many seconds.
    #[arg(long, default_value_t = 1.0)]
    post_open_secs: f64,
    /// The share of the buyers that arrive before the opening.
    #[arg(long, default_value_t = 0.9)]
    pre_open_share: f64,
    /// Each admitted buyer waits this long before holding.
    #[arg(long, default_value_t = 0)]
    think_ms: u64,
    /// Each buyer wants 1 to this many seats (the per-buyer limit is 4).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=4))]
    seats_per_user: u8,
    /// Holds an admitted buyer tries before giving up.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=50))]
    hold_attempts: u32,
    /// How often a stream cut without a final event is reopened.
    #[arg(long, default_value_t = 3)]
    reconnects: u32,
    #[arg(long, value_enum, default_value_t = StreamAuthMode::Ticket)]
    stream_auth: StreamAuthMode,
    /// Admissions timed by the arrival of their event (a server without
    /// `admittedAt`) closer than this are not counted as inversions: that
    /// is delivery jitter within one tick.
    #[arg(long, default_value_t = 250)]
    order_tolerance_ms: u64,
    /// The whole run stops after this many seconds and reports.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(5..=1800))]
    deadline_secs: u64,
    /// Seeds the buyers' choices (seats wanted, seats tried).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where the JSON report goes.
    #[arg(long, default_value = "target/sse-load/sale.json")]
    out: PathBuf,
    /// Also write every buyer's outcome here (JSON array).
    #[arg(long)]
    per_user_out: Option<PathBuf>,
    /// Also write every hold and payment sent, with its answer, here (JSON
    /// lines) for the history checker (`history-check`, loadtest/history).
    #[arg(long)]
    history: Option<PathBuf>,
}

pub async fn main(args: SaleArgs) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.pre_open_share) {
        bail!("--pre-open-share must be between 0 and 1");
    }
    if args.pre_open_secs < 0.0 || args.post_open_secs < 0.0 {
        bail!("--pre-open-secs and --post-open-secs must not be negative");
    }
    let instances = args
        .base_urls
        .iter()
        .map(|raw| crate::loopback_base_url(raw).map(|base| Instance { base }))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (report, outcomes) = run(&args, instances).await?;
    print!("{}", report.summary());
    write_json(&args.out, &report)?;
    println!("results: {}", args.out.display());
    if let Some(path) = &args.per_user_out {
        write_json(path, &outcomes)?;
    }
    Ok(())
}

fn write_json(path: &PathBuf, value: &impl serde::Serialize) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let json = serde_json::to_vec_pretty(value)?;
    std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))
}

fn jwts(args: &SaleArgs) -> anyhow::Result<Vec<String>> {
    let users = args.users as usize;
    if let Some(path) = &args.tokens {
        let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let tokens: Vec<String> = serde_json::from_slice(&raw)
            .with_context(|| format!("{} is not a JSON array of strings", path.display()))?;
        if tokens.len() < users {
            bail!(
                "{} has {} tokens for {users} users",
                path.display(),
                tokens.len()
            );
        }
        return Ok(tokens.into_iter().take(users).collect());
    }
    let Some(secret) = &args.jwt_secret else {
        bail!("give --tokens, or --jwt-secret (BOOKING_JWT_SECRET) to mint JWTs");
    };
    let key = EncodingKey::from_secret(secret.as_bytes());
    (0..users)
        .map(|i| crate::connection::mint_jwt(&key, args.first_user_id + i as i64, JWT_TTL_SECS))
        .collect()
}

/// Arrival times, seconds since the start: `pre` of them spread evenly over
/// the `pre_secs` before `opening`, the rest over the `post_secs` after it.
fn arrival_times(
    users: usize,
    pre: usize,
    opening: f64,
    pre_secs: f64,
    post_secs: f64,
) -> Vec<f64> {
    let post = users - pre;
    let before = (0..pre).map(|i| opening - pre_secs + pre_secs * i as f64 / pre as f64);
    // The first later arrival comes just after the opening, not on it.
    let after = (1..=post).map(|j| opening + post_secs * j as f64 / post as f64);
    before.chain(after).collect()
}

async fn run(
    args: &SaleArgs,
    instances: Vec<Instance>,
) -> anyhow::Result<(report::SaleReport, Vec<Outcome>)> {
    let started_at = Utc::now().to_rfc3339();
    let client = Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .build()?;
    for at in &instances {
        api::check_live(&client, at)
            .await
            .map_err(|f| anyhow::anyhow!("{} does not answer: {}", at.base, f.kind.label()))?;
    }
    let jwts = jwts(args)?;
    let (free, capacity) = api::free_seats(
        &client,
        &instances[0],
        &jwts[0],
        args.concert_id,
        args.schedule_id,
    )
    .await
    .map_err(|f| anyhow::anyhow!("reading the seat map: {}", f.kind.label()))?;
    let from_schedule =
        api::sales_open_at(&client, &instances[0], args.concert_id, args.schedule_id)
            .await
            .map_err(|f| anyhow::anyhow!("reading the schedule: {}", f.kind.label()))?;

    let clock = Clock::now();
    let (opening_wall, source) = match (args.opens_at, from_schedule) {
        (Some(at), _) => (at, "--opens-at"),
        (None, Some(at)) => (at, "schedule"),
        (None, None) => (clock.start_wall, "none"),
    };
    let opening = clock.wall_secs(opening_wall);
    // Open already: the arrivals still come in the planned window, from now.
    let planned_opening = if source == "none" {
        args.pre_open_secs
    } else {
        opening
    };
    if planned_opening - args.pre_open_secs < 0.0 {
        eprintln!(
            "the opening is {opening:.1} s away: the first {:.1} s of arrivals start at once",
            args.pre_open_secs - opening
        );
    }
    eprintln!(
        "sale: {} buyers, {} free seats of {capacity}, opening {opening_wall} ({source}), in {opening:.1} s",
        args.users,
        free.len()
    );

    let users = args.users as usize;
    let pre = (users as f64 * args.pre_open_share).round() as usize;
    let arrivals = arrival_times(
        users,
        pre,
        planned_opening,
        args.pre_open_secs,
        args.post_open_secs,
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let free_at_start = free.len();
    let sale = Arc::new(Sale {
        client,
        instances,
        schedule: args.schedule_id,
        stream_auth: args.stream_auth,
        think: Duration::from_millis(args.think_ms),
        hold_attempts: args.hold_attempts,
        reconnects: args.reconnects,
        seats: seats::SeatPool::new(free),
        clock,
        progress: Progress::default(),
        stop: stop_rx,
        run_tag: format!("sale-{}", clock.start_wall.timestamp_millis()),
        history: history::History::default(),
    });

    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut tasks = JoinSet::new();
    for (index, (jwt, arrives_at)) in jwts.into_iter().zip(arrivals).enumerate() {
        let buyer = Buyer {
            index,
            user: history::user_of(&jwt),
            jwt,
            arrives_at,
            wants: rng.gen_range(1..=usize::from(args.seats_per_user)),
            rng: StdRng::seed_from_u64(rng.gen()),
        };
        let sale = sale.clone();
        tasks.spawn(async move { buyer::run(&sale, buyer).await });
    }

    let deadline = sale.clock.instant(args.deadline_secs as f64);
    let mut outcomes = Vec::with_capacity(users);
    let mut progress = tokio::time::interval(PROGRESS_EVERY);
    let mut deadline_hit = false;
    loop {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(Ok(outcome)) => outcomes.push(outcome),
                Some(Err(e)) => eprintln!("a buyer task failed: {e}"),
                None => break,
            },
            _ = tokio::time::sleep_until(deadline.into()) => {
                deadline_hit = true;
                break;
            }
            _ = progress.tick() => print_progress(&sale, outcomes.len()),
        }
    }
    let _ = stop_tx.send(true);
    let join_deadline = tokio::time::Instant::now() + JOIN_DEADLINE;
    while let Ok(Some(joined)) = tokio::time::timeout_at(join_deadline, tasks.join_next()).await {
        match joined {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => eprintln!("a buyer task failed: {e}"),
        }
    }
    let unreported = users - outcomes.len();
    tasks.abort_all();
    if let Some(path) = &args.history {
        let n = sale.history.write(path)?;
        println!("history: {n} operations in {}", path.display());
    }
    let finished_at = sale.clock.secs();
    print_progress(&sale, outcomes.len());
    outcomes.sort_by_key(|o| o.index);

    let report = report::build(report::Inputs {
        started_at,
        settings: report::Settings {
            base_urls: sale.instances.iter().map(|i| i.base.to_string()).collect(),
            concert_id: args.concert_id,
            schedule_id: args.schedule_id,
            users,
            pre_open_secs: args.pre_open_secs,
            post_open_secs: args.post_open_secs,
            pre_open_share: args.pre_open_share,
            think_ms: args.think_ms,
            seats_per_user: usize::from(args.seats_per_user),
            hold_attempts: args.hold_attempts,
            reconnects: args.reconnects,
            stream_auth: format!("{:?}", args.stream_auth).to_lowercase(),
            order_tolerance_ms: args.order_tolerance_ms,
            deadline_secs: args.deadline_secs,
        },
        opening: report::Opening {
            at: opening_wall.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            source: source.into(),
            at_secs: opening,
        },
        capacity,
        free_at_start,
        outcomes: &outcomes,
        unreported,
        order_tolerance_secs: args.order_tolerance_ms as f64 / 1e3,
        finished_at,
        deadline_hit,
    });
    Ok((report, outcomes))
}

fn print_progress(sale: &Sale, done: usize) {
    let p = &sale.progress;
    eprintln!(
        "{:>6.1} s  arrived {:>6}  streaming {:>6}  admitted {:>5}  seats sold {:>5}  sold-out told {:>6}  done {:>6}  seats believed free {:>5}",
        sale.clock.secs(),
        p.arrived.load(Ordering::Relaxed),
        p.streaming.load(Ordering::Relaxed),
        p.admitted.load(Ordering::Relaxed),
        p.seats_sold.load(Ordering::Relaxed),
        p.sold_out.load(Ordering::Relaxed),
        done,
        sale.seats.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_straddle_the_opening() {
        let t = arrival_times(10, 8, 5.0, 4.0, 2.0);
        assert_eq!(t.len(), 10);
        assert!(t[..8].iter().all(|&a| (1.0..5.0).contains(&a)));
        assert!(t[8..].iter().all(|&a| a > 5.0 && a <= 7.0));
        assert!(t.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(arrival_times(3, 0, 1.0, 0.0, 0.0), vec![1.0, 1.0, 1.0]);
    }
}
