//! The `booking` binary: `serve` (the default), `migrate`, `reconcile-stock`,
//! `create-admin`.

use anyhow::Context;
use booking_api::{commands, telemetry, Application, Secrets, Settings, Strategy};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "booking",
    version,
    about = "concert-booking: sells seats, never one twice"
)]
struct Cli {
    /// A TOML settings file; `BOOKING__*` environment variables override it.
    #[arg(long, global = true, env = "BOOKING_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (the default). Without a database URL it runs
    /// embedded, on in-memory adapters with a demo concert.
    Serve {
        /// The seat-locking strategy (overrides `booking.strategy`).
        #[arg(long, value_enum)]
        strategy: Option<Strategy>,
        /// Overrides `server.port`.
        #[arg(long)]
        port: Option<u16>,
        /// Overrides `server.host`.
        #[arg(long)]
        host: Option<String>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Resync the `redis` strategy's Redis state (seat marks and stock) of
    /// every schedule from the database. Never needed: the strategy resyncs
    /// on its own, and at start-up.
    ReconcileStock,
    /// Dead-letter topics: `booking dlt replay` re-publishes every
    /// dead-lettered record to its topic once (consumers deduplicate).
    Dlt {
        #[command(subcommand)]
        action: DltAction,
    },
    /// Create an admin account, or promote an existing one.
    CreateAdmin {
        #[arg(long, env = "BOOKING_ADMIN_EMAIL")]
        email: String,
        #[arg(long, env = "BOOKING_ADMIN_PASSWORD", hide_env_values = true)]
        password: String,
    },
}

#[derive(Debug, Subcommand)]
enum DltAction {
    /// Re-publish the records of every dead-letter topic, up to its end now.
    Replay,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut settings = Settings::load(cli.config.as_deref()).context("loading settings")?;
    telemetry::init(&settings.log);
    match cli.command.unwrap_or(Command::Serve {
        strategy: None,
        port: None,
        host: None,
    }) {
        Command::Serve {
            strategy,
            port,
            host,
        } => {
            if let Some(s) = strategy {
                settings.booking.strategy = s;
            }
            if let Some(p) = port {
                settings.server.port = p;
            }
            if let Some(h) = host {
                settings.server.host = h;
            }
            let app = Application::build(settings, Secrets::from_env()).await?;
            app.run_until_stopped().await?;
        }
        Command::Migrate => {
            let applied = commands::migrate(&settings).await?;
            println!("applied {} migration(s): {applied:?}", applied.len());
        }
        Command::Dlt {
            action: DltAction::Replay,
        } => {
            let report = commands::replay_dead_letters(&settings).await?;
            for (topic, n) in &report.replayed {
                println!("{topic}: {n} record(s) re-published");
            }
            println!("replayed {} dead-lettered record(s)", report.total());
        }
        Command::ReconcileStock => {
            let schedules = commands::reconcile_stock(&settings).await?;
            println!("stock resynced for {schedules} schedule(s)");
        }
        Command::CreateAdmin { email, password } => {
            let admin = commands::create_admin(&settings, &email, &password).await?;
            println!("admin account ready: {} (id {})", admin.email, admin.id);
        }
    }
    Ok(())
}
