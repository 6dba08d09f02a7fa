//! A Redis for tests: from `REDIS_URL` when it is set (a native redis-server:
//! `just infra-up` starts one), else a container where a Docker engine runs.
//! Each `TestRedis` has its own key prefix, so tests share one server in
//! parallel; its keys are deleted on drop. With neither, the test fails and
//! says how to provide one.

use std::time::Duration;
use testcontainers_modules::redis::Redis;
use testcontainers_modules::testcontainers::runners::AsyncRunner;
use testcontainers_modules::testcontainers::ContainerAsync;

const HOW_TO_PROVIDE: &str = "\
Tests need a Redis server. Either
  - set REDIS_URL, e.g. REDIS_URL=redis://127.0.0.1:6379
    (`just infra-up` or deploy/local/up starts one natively; `just test` does both), or
  - run a Docker engine, and the tests start a redis container themselves.";

pub struct TestRedis {
    url: String,
    prefix: String,
    _container: Option<ContainerAsync<Redis>>,
}

impl std::fmt::Debug for TestRedis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestRedis")
            .field("url", &self.url)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl TestRedis {
    pub async fn new() -> TestRedis {
        let (url, container) = match std::env::var("REDIS_URL") {
            Ok(url) if !url.trim().is_empty() => (url, None),
            _ => {
                let container = Redis::default().start().await.unwrap_or_else(|e| {
                    panic!("REDIS_URL is not set and no redis container could be started ({e}).\n{HOW_TO_PROVIDE}")
                });
                let host = container.get_host().await.map(|h| h.to_string());
                let port = container.get_host_port_ipv4(6379).await;
                match (host, port) {
                    (Ok(host), Ok(port)) => (format!("redis://{host}:{port}"), Some(container)),
                    (h, p) => {
                        panic!("redis container has no address ({h:?}, {p:?}).\n{HOW_TO_PROVIDE}")
                    }
                }
            }
        };
        let client = redis::Client::open(url.as_str())
            .unwrap_or_else(|e| panic!("invalid REDIS_URL {url}: {e}\n{HOW_TO_PROVIDE}"));
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| panic!("cannot connect to Redis at {url}: {e}\n{HOW_TO_PROVIDE}"));
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .unwrap_or_else(|e| {
                panic!("Redis at {url} does not answer PING: {e}\n{HOW_TO_PROVIDE}")
            });
        let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
        TestRedis {
            url,
            prefix,
            _container: container,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Prepend to every key this test writes.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A shared, self-reconnecting connection, as the adapters take; each
    /// call opens a new one, as another API server would.
    pub async fn connection_manager(&self) -> redis::aio::ConnectionManager {
        let client = redis::Client::open(self.url.as_str())
            .unwrap_or_else(|e| panic!("invalid REDIS_URL {}: {e}", self.url));
        // As `booking_lock_redis::redis_connection` configures it, with
        // waits long enough for a loaded test machine: a test against a
        // stuck Redis fails instead of hanging.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(10))
            .set_response_timeout(Duration::from_secs(10))
            .set_number_of_retries(0)
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        redis::aio::ConnectionManager::new_with_config(client, config)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to Redis at {}: {e}", self.url))
    }

    /// A plain connection for assertions and fault injection.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url.as_str())
            .unwrap_or_else(|e| panic!("invalid REDIS_URL {}: {e}", self.url))
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| panic!("cannot connect to Redis at {}: {e}", self.url))
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let url = self.url.clone();
        let pattern = format!("{}*", self.prefix);
        // Drop runs inside the test's runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let client = redis::Client::open(url.as_str()).ok()?;
            let mut conn = client.get_connection().ok()?;
            let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query(&mut conn).ok()?;
            if !keys.is_empty() {
                redis::cmd("DEL").arg(keys).query::<()>(&mut conn).ok()?;
            }
            Some(())
        })
        .join();
    }
}
