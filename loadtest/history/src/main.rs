//! `history-check`: checks a recorded history against a schedule's final
//! tables in PostgreSQL and prints the verdict ("N operations (M
//! acknowledged), K anomalies", then each anomaly). Exits 1 on an anomaly.

use anyhow::Context;
use booking_history::{check, parse_history, tables};
use clap::Parser;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    about = "Prove from a load driver's history and the final tables that no seat had two acknowledged holds at once and nothing acknowledged was lost"
)]
struct Args {
    /// The history: one JSON object per line (start, end, user, op, seats, reservation, status).
    #[arg(long)]
    history: PathBuf,
    /// The database the run wrote to.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// The schedule the run sold.
    #[arg(long)]
    schedule: i64,
    /// The server's hold lifetime, in seconds.
    #[arg(long, default_value_t = 300)]
    hold_ttl_secs: i64,
    /// Print the verdict as one JSON object instead.
    #[arg(long)]
    json: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let text = std::fs::read_to_string(&args.history)
        .with_context(|| format!("reading {}", args.history.display()))?;
    let history = parse_history(&text).map_err(anyhow::Error::msg)?;
    let tables = tables::load(&args.database_url, args.schedule)
        .await
        .context("reading the final tables")?;
    let verdict = check(
        &history,
        &tables,
        chrono::Duration::seconds(args.hold_ttl_secs),
    );
    if args.json {
        println!("{}", serde_json::to_string(&verdict)?);
    } else {
        println!("{verdict}");
    }
    if !verdict.ok() {
        std::process::exit(1);
    }
    Ok(())
}
