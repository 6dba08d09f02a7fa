//! A fresh, migrated PostgreSQL database per test, so tests run in parallel
//! without seeing each other's rows.
//!
//! The migrations run once per server, into a template database, and each
//! test gets a copy of it (`CREATE DATABASE ... TEMPLATE`, as crates.io's
//! test databases do) instead of migrating its own. The template's name
//! carries a hash of `migrations/` (see `build.rs`), so a changed migration
//! gets a new template, and binaries built from different migrations can
//! share a server.
//!
//! The server comes from `DATABASE_URL` when it is set (a native PostgreSQL:
//! `just infra-up` starts one), else from a container started with
//! testcontainers where a Docker engine runs. With neither, the test fails
//! and says how to provide one: it never passes by skipping.

use booking_store_postgres::{run_migrations, PgStore, PoolSettings};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;
use testcontainers_modules::postgres::Postgres;
use testcontainers_modules::testcontainers::runners::AsyncRunner;
use testcontainers_modules::testcontainers::ContainerAsync;

const HOW_TO_PROVIDE: &str = "\
Tests need a PostgreSQL server. Either
  - set DATABASE_URL to a server where the user may CREATE DATABASE, e.g.
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres
    (`just infra-up` or deploy/local/up starts one natively; `just test` does both), or
  - run a Docker engine, and the tests start a postgres container themselves.";

/// The migrated database every test database is copied from.
const TEMPLATE: &str = concat!("booking_template_", env!("BOOKING_MIGRATIONS_HASH"));

/// Where the template is migrated before it gets its name: a database named
/// `TEMPLATE` is always complete.
const TEMPLATE_UNDER_CONSTRUCTION: &str = concat!(
    "booking_template_",
    env!("BOOKING_MIGRATIONS_HASH"),
    "_partial"
);

/// `pg_advisory_lock` key on the server's admin database: several test
/// binaries start at once, and one of them builds the template.
const TEMPLATE_LOCK: i64 = 0x0062_6f6f_6b74_6d70;

/// Servers (admin URLs) whose template this process has seen complete.
static TEMPLATE_READY_ON: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// A database created for one test and dropped (forcefully) when the value
/// is dropped.
pub struct TestDb {
    url: String,
    admin_url: String,
    name: String,
    // Keeps the container alive as long as the URL is used.
    _container: Option<ContainerAsync<Postgres>>,
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb").field("url", &self.url).finish()
    }
}

impl TestDb {
    /// Creates a database named `booking_test_<uuid>`, a copy of the
    /// migrated template (built first if this server has none yet).
    pub async fn new() -> TestDb {
        let (admin_url, container) = server().await;
        let mut admin = AsyncPgConnection::establish(&admin_url)
            .await
            .unwrap_or_else(|e| {
                panic!("cannot connect to PostgreSQL at {admin_url}: {e}\n{HOW_TO_PROVIDE}")
            });
        ensure_template(&mut admin, &admin_url).await;
        let name = format!("booking_test_{}", uuid::Uuid::new_v4().simple());
        execute_once_template_is_free(
            &mut admin,
            &format!("CREATE DATABASE \"{name}\" TEMPLATE \"{TEMPLATE}\""),
        )
        .await
        .unwrap_or_else(|e| panic!("cannot create database {name}: {e}\n{HOW_TO_PROVIDE}"));
        TestDb {
            url: with_database(&admin_url, &name),
            admin_url,
            name,
            _container: container,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// A store with its own pool on this database; call it once per
    /// "server" you want to simulate.
    pub fn store(&self) -> PgStore {
        let mut settings = PoolSettings::new(&self.url);
        // Two stores a fixture, two tests at once: well under PostgreSQL's
        // default 100 connections, and still far fewer than the racers.
        settings.max_size = 10;
        settings.wait_timeout = Duration::from_secs(30);
        // Generous: a loaded CI machine must not turn slowness into contention.
        settings.tx_timeouts = booking_store_postgres::tx::TxTimeouts {
            lock: Duration::from_secs(10),
            statement: Duration::from_secs(30),
        };
        PgStore::connect(&settings).unwrap_or_else(|e| panic!("pool for {}: {e}", self.url))
    }

    /// A single connection for assertions read straight from the tables.
    pub async fn connection(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.url))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        // Drop runs inside the test's runtime: use a thread with its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut admin = AsyncPgConnection::establish(&admin_url).await.ok()?;
                diesel::sql_query(sql).execute(&mut admin).await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("warning: test database {} was not dropped", self.name);
        }
    }
}

/// The admin URL of the server: `DATABASE_URL`, else a fresh container
/// (returned too: it lives as long as the `TestDb`).
async fn server() -> (String, Option<ContainerAsync<Postgres>>) {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        if !url.trim().is_empty() {
            return (url, None);
        }
    }
    let container = Postgres::default().start().await.unwrap_or_else(|e| {
        panic!("DATABASE_URL is not set and no postgres container could be started ({e}).\n{HOW_TO_PROVIDE}")
    });
    let host = container.get_host().await.map(|h| h.to_string());
    let port = container.get_host_port_ipv4(5432).await;
    match (host, port) {
        (Ok(host), Ok(port)) => (
            format!("postgres://postgres:postgres@{host}:{port}/postgres"),
            Some(container),
        ),
        (h, p) => panic!("postgres container has no address ({h:?}, {p:?}).\n{HOW_TO_PROVIDE}"),
    }
}

/// Makes sure the server has a complete `TEMPLATE`: the first process to
/// take the lock builds it, the others wait for it and then find it.
async fn ensure_template(admin: &mut AsyncPgConnection, admin_url: &str) {
    if template_ready_on(admin_url) {
        return;
    }
    // A session lock: if this process dies, the server releases it.
    diesel::sql_query(format!("SELECT pg_advisory_lock({TEMPLATE_LOCK})"))
        .execute(admin)
        .await
        .unwrap_or_else(|e| panic!("cannot lock the template on {admin_url}: {e}"));
    let built = build_template_unless_present(admin, admin_url).await;
    let _ = diesel::sql_query(format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK})"))
        .execute(admin)
        .await;
    if let Err(e) = built {
        panic!(
            "cannot build the template database {TEMPLATE} on {admin_url}: {e}\n{HOW_TO_PROVIDE}"
        );
    }
    if let Ok(mut ready) = TEMPLATE_READY_ON.lock() {
        ready.insert(admin_url.to_owned());
    }
}

fn template_ready_on(admin_url: &str) -> bool {
    TEMPLATE_READY_ON
        .lock()
        .is_ok_and(|ready| ready.contains(admin_url))
}

/// Under the template lock. Migrates a scratch database, then closes it to
/// connections (a template must have none while it is copied) and renames
/// it: the rename is atomic, so `TEMPLATE` only ever names a migrated one.
async fn build_template_unless_present(
    admin: &mut AsyncPgConnection,
    admin_url: &str,
) -> Result<(), String> {
    if database_exists(admin, TEMPLATE)
        .await
        .map_err(|e| e.to_string())?
    {
        return Ok(());
    }
    let scratch = TEMPLATE_UNDER_CONSTRUCTION;
    // First, a scratch copy left by a process that died while building it.
    for sql in [
        format!("DROP DATABASE IF EXISTS \"{scratch}\" WITH (FORCE)"),
        format!("CREATE DATABASE \"{scratch}\""),
    ] {
        diesel::sql_query(sql)
            .execute(admin)
            .await
            .map_err(|e| e.to_string())?;
    }
    let url = with_database(admin_url, scratch);
    run_migrations(&url)
        .await
        .map_err(|e| format!("migrations failed on {url}: {e}"))?;
    diesel::sql_query(format!(
        "ALTER DATABASE \"{scratch}\" WITH ALLOW_CONNECTIONS false"
    ))
    .execute(admin)
    .await
    .map_err(|e| e.to_string())?;
    execute_once_template_is_free(
        admin,
        &format!("ALTER DATABASE \"{scratch}\" RENAME TO \"{TEMPLATE}\""),
    )
    .await
    .map_err(|e| e.to_string())
}

async fn database_exists(admin: &mut AsyncPgConnection, name: &str) -> diesel::QueryResult<bool> {
    #[derive(diesel::QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        found: bool,
    }
    diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS found")
        .bind::<diesel::sql_types::Text, _>(name)
        .get_result::<Found>(admin)
        .await
        .map(|f| f.found)
}

/// Runs `sql` (a copy or a rename of the template), again if PostgreSQL
/// says the template "is being accessed by other users": the migrations'
/// connections take a moment to end after they are closed. PostgreSQL
/// itself waits up to 5 s for them before refusing, so a few tries do.
async fn execute_once_template_is_free(
    admin: &mut AsyncPgConnection,
    sql: &str,
) -> diesel::QueryResult<()> {
    const ATTEMPTS: u32 = 3;
    let mut attempt = 1;
    loop {
        match diesel::sql_query(sql).execute(admin).await {
            Err(e) if attempt < ATTEMPTS && e.to_string().contains("accessed by other users") => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            done => return done.map(drop),
        }
    }
}

/// `url` with its database name replaced by `name` (query string kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{name}?{q}"),
        None => format!("{host_part}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test database is a migrated copy, not the template itself, and it
    /// is gone once its `TestDb` is dropped; the template stays.
    #[tokio::test(flavor = "multi_thread")]
    async fn each_test_gets_a_migrated_copy_dropped_with_it() {
        #[derive(diesel::QueryableByName)]
        struct Applied {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            migrations: i64,
        }
        let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations"))
            .unwrap()
            .count() as i64;
        let (db, other) = (TestDb::new().await, TestDb::new().await);
        assert_ne!(db.name, other.name);
        for test_db in [&db, &other] {
            let applied =
                diesel::sql_query("SELECT count(*) AS migrations FROM __diesel_schema_migrations")
                    .get_result::<Applied>(&mut test_db.connection().await)
                    .await
                    .unwrap();
            assert_eq!(applied.migrations, migrations);
        }

        let (admin_url, name) = (db.admin_url.clone(), db.name.clone());
        drop(db);
        let mut admin = AsyncPgConnection::establish(&admin_url).await.unwrap();
        assert!(!database_exists(&mut admin, &name).await.unwrap());
        assert!(database_exists(&mut admin, TEMPLATE).await.unwrap());
    }

    /// PostgreSQL refuses to copy a database someone is connected to once
    /// it has waited 5 s; the copy is tried again and succeeds when the
    /// session ends.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_copy_is_retried_until_the_sources_last_session_ends() {
        let source = TestDb::new().await;
        let session = source.connection().await;
        let session_ends = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(6)).await;
            drop(session);
        });
        let copy = format!("{}_copy", source.name);
        let mut admin = AsyncPgConnection::establish(&source.admin_url)
            .await
            .unwrap();
        let started = std::time::Instant::now();
        execute_once_template_is_free(
            &mut admin,
            &format!("CREATE DATABASE \"{copy}\" TEMPLATE \"{}\"", source.name),
        )
        .await
        .unwrap();
        assert!(
            started.elapsed() > Duration::from_secs(5),
            "the first copy should have been refused"
        );
        session_ends.await.unwrap();
        diesel::sql_query(format!("DROP DATABASE \"{copy}\""))
            .execute(&mut admin)
            .await
            .unwrap();
    }

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres", "t"),
            "postgres://u@h:5432/t"
        );
        assert_eq!(
            with_database("postgres://u@h:5432", "t"),
            "postgres://u@h:5432/t"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "t"),
            "postgres://u:p@h/t?sslmode=disable"
        );
    }
}
