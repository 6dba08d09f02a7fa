//! `demo` (`just demo`): N users race for the same seats with each seat-locking
//! strategy in turn, against the local PostgreSQL and Redis, with no HTTP
//! server in between. For each strategy it prints, live, the winners, the
//! refusals by reason and the time taken, then what the database itself says
//! (`InvariantAudit`). First every user wants one seat; then every user wants
//! two adjacent seats of a ring, so each request overlaps two others; then a
//! spike: as many seats as users (or `--spike-seats`), each user trying random seats until it
//! holds one, is told "sold out", or gives up, and the seats sold are counted.
//!
//! It works in its own database, `booking_demo` (dropped and re-created on
//! every run), and under the Redis key prefix `demo:` (deleted at the start
//! and the end). It exits non-zero if any seat had more than one winner, the
//! single seat did not have exactly one, a loser got anything but a refusal,
//! the audit found a violation, or the redis strategy's stock differs from
//! the AVAILABLE seats once its race is over.

mod race;
mod setup;

use anyhow::Context;
use booking_domain::{InvariantAudit, ScheduleId, SeatLock};
use booking_lock_optimistic::{OptimisticSeatLock, RetryPolicy};
use booking_lock_pessimistic::PessimisticSeatLock;
use booking_lock_redis::{redis_connection, RedisLockSettings, RedisSeatLock};
use booking_store_postgres::{PgStore, PoolSettings};
use clap::Parser;
use race::{Race, Shape};
use redis::aio::ConnectionManager;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Every Redis key the demo writes starts with this.
const KEY_PREFIX: &str = "demo:";

#[derive(Debug, Parser)]
#[command(
    name = "demo",
    about = "Race N users for the same seats with each seat-locking strategy and audit the database"
)]
struct Cli {
    /// Users racing in each race.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(2..=5_000))]
    users: u32,
    /// A PostgreSQL server where this user may create databases; the demo
    /// works in its own database on it.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    database_url: String,
    /// The demo's own database: dropped and re-created on every run.
    #[arg(long, default_value = "booking_demo")]
    database_name: String,
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// Seats in the spike (race 3); as many as users when not given.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=5_000))]
    spike_seats: Option<u32>,
    /// Connections per strategy (the API's default `database.pool_size`).
    #[arg(long, default_value_t = 16)]
    pool_size: usize,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("demo failed: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// One strategy, ready to race.
struct Contender {
    name: &'static str,
    lock: Arc<dyn SeatLock>,
    /// The redis strategy, whose stock is audited too.
    redis: Option<RedisSeatLock>,
}

async fn run(cli: &Cli) -> anyhow::Result<bool> {
    let users = cli.users as usize;
    println!("concert-booking demo: {users} users race for the same seats, once per strategy\n");

    let db_url = setup::recreate_database(&cli.database_url, &cli.database_name).await?;
    println!("database  {db_url} (dropped, re-created, migrated)");
    let redis = redis_connection(&cli.redis_url, Duration::from_secs(5))
        .await
        .with_context(|| format!("cannot reach Redis at {}", cli.redis_url))?;
    let stale = setup::delete_keys(&redis, KEY_PREFIX)
        .await
        .with_context(|| format!("cannot reach Redis at {}", cli.redis_url))?;
    println!(
        "redis     {} (keys under \"{KEY_PREFIX}\"; {stale} left from an earlier run deleted)",
        cli.redis_url
    );

    let store = pg_store(&db_url, cli.pool_size)?;
    let ids = setup::create_users(&store, users).await?;
    println!("users     {} created\n", ids.len());

    let redis_lock = RedisSeatLock::new(
        pg_store(&db_url, cli.pool_size)?,
        redis.clone(),
        RedisLockSettings {
            key_prefix: KEY_PREFIX.to_owned(),
            ..RedisLockSettings::default()
        },
    );
    let contenders = [
        Contender {
            name: PessimisticSeatLock::NAME,
            lock: Arc::new(PessimisticSeatLock::new(pg_store(&db_url, cli.pool_size)?)),
            redis: None,
        },
        Contender {
            name: OptimisticSeatLock::NAME,
            lock: Arc::new(OptimisticSeatLock::new(
                pg_store(&db_url, cli.pool_size)?,
                RetryPolicy::default(),
            )),
            redis: None,
        },
        Contender {
            name: RedisSeatLock::NAME,
            lock: Arc::new(redis_lock.clone()),
            redis: Some(redis_lock),
        },
    ];
    let audit: Arc<dyn InvariantAudit> = Arc::new(store.clone());

    println!(
        "Columns: won = a PENDING hold; seat-taken = refused, the seat is someone else's;\n\
         sold-out = refused by the redis strategy's stock, before the database;\n\
         contention = gave up waiting or retrying (the client may try again); other = a bug.\n\
         In the spike they count every attempt. elapsed = until the last answer;\n\
         median = one user's answer time (all its attempts, in the spike).\n"
    );
    let started = std::time::Instant::now();
    let mut all_ok = true;
    let spike = Shape::Spike {
        seats: cli.spike_seats.map_or(users, |s| s as usize),
    };
    for shape in [Shape::OneSeat, Shape::OverlappingPairs, spike] {
        println!("{}", shape.title(users));
        println!("{}", race::HEADER);
        for contender in &contenders {
            let (schedule, seats) = setup::create_schedule(&store, shape.seats(users)).await?;
            let race = Race {
                strategy: contender.name,
                lock: Arc::clone(&contender.lock),
                shape,
                schedule,
                seats,
                users: ids.clone(),
            };
            let outcome = race.run().await;
            let report = audit.audit_schedule(schedule).await.context("audit")?;
            all_ok &= outcome.print_with_audit(&report);
            if let Some(lock) = &contender.redis {
                all_ok &= audit_redis_stock(&redis, lock, schedule, report.available).await?;
            }
        }
        println!();
    }

    let deleted = setup::delete_keys(&redis, KEY_PREFIX).await.unwrap_or(0);
    println!(
        "cleaned up: {deleted} Redis keys under \"{KEY_PREFIX}\" deleted; the database {} stays for a look (psql {db_url})",
        cli.database_name
    );
    if all_ok {
        println!(
            "RESULT: OK in {:.1} s: every strategy sold every seat at most once, the single seat exactly once, and the database audit is clean.",
            started.elapsed().as_secs_f64()
        );
    } else {
        println!("RESULT: FAILED: see the lines marked FAIL above.");
    }
    Ok(all_ok)
}

/// The redis strategy's stock, once its race is over, counts exactly the
/// AVAILABLE seats: nothing it took is left out, nothing counted twice.
async fn audit_redis_stock(
    redis: &ConnectionManager,
    lock: &RedisSeatLock,
    schedule: ScheduleId,
    available: i64,
) -> anyhow::Result<bool> {
    let mut conn = redis.clone();
    let stock: Option<i64> = redis::cmd("GET")
        .arg(lock.keys(schedule).stock())
        .query_async(&mut conn)
        .await?;
    let ok = stock == Some(available);
    println!(
        "      redis stock: {}, AVAILABLE seats: {available}  {}",
        stock.map_or("none".to_owned(), |s| s.to_string()),
        if ok { "OK" } else { "FAIL" }
    );
    Ok(ok)
}

fn pg_store(url: &str, pool_size: usize) -> anyhow::Result<PgStore> {
    let mut settings = PoolSettings::new(url);
    settings.max_size = pool_size;
    settings.wait_timeout = Duration::from_secs(30);
    Ok(PgStore::connect(&settings)?)
}
