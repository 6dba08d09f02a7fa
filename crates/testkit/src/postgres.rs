//! A fresh, migrated PostgreSQL database per test, so tests run in parallel
//! without seeing each other's rows.
//!
//! The server comes from `DATABASE_URL` when it is set (a native PostgreSQL:
//! `just infra-up` starts one), else from a container started with
//! testcontainers where a Docker engine runs. With neither, the test fails
//! and says how to provide one: it never passes by skipping.

use booking_store_postgres::{run_migrations, PgStore, PoolSettings};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use testcontainers_modules::postgres::Postgres;
use testcontainers_modules::testcontainers::runners::AsyncRunner;
use testcontainers_modules::testcontainers::ContainerAsync;

const HOW_TO_PROVIDE: &str = "\
Tests need a PostgreSQL server. Either
  - set DATABASE_URL to a server where the user may CREATE DATABASE, e.g.
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres
    (`just infra-up` or deploy/local/up starts one natively; `just test` does both), or
  - run a Docker engine, and the tests start a postgres container themselves.";

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
    /// Creates and migrates a database named `booking_test_<uuid>`.
    pub async fn new() -> TestDb {
        let (admin_url, container) = match std::env::var("DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => (url, None),
            _ => {
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
                    (h, p) => panic!(
                        "postgres container has no address ({h:?}, {p:?}).\n{HOW_TO_PROVIDE}"
                    ),
                }
            }
        };
        let name = format!("booking_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = AsyncPgConnection::establish(&admin_url)
            .await
            .unwrap_or_else(|e| {
                panic!("cannot connect to PostgreSQL at {admin_url}: {e}\n{HOW_TO_PROVIDE}")
            });
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}\n{HOW_TO_PROVIDE}"));
        let url = with_database(&admin_url, &name);
        run_migrations(&url)
            .await
            .unwrap_or_else(|e| panic!("migrations failed on {url}: {e}"));
        TestDb {
            url,
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
        settings.max_size = 20;
        settings.wait_timeout = std::time::Duration::from_secs(30);
        // Generous: a loaded CI machine must not turn slowness into contention.
        settings.tx_timeouts = booking_store_postgres::tx::TxTimeouts {
            lock: std::time::Duration::from_secs(10),
            statement: std::time::Duration::from_secs(30),
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
    use super::with_database;

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
