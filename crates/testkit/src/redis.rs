//! A Redis for tests: from `REDIS_URL` when it is set (a native redis-server:
//! `just infra-up` starts one), else a container where a Docker engine runs.
//! Each `TestRedis` has its own key prefix, so tests share one server in
//! parallel; its keys are deleted on drop. With neither, the test fails and
//! says how to provide one. A test that stops or pauses Redis runs a
//! `RedisProcess` of its own instead.

use std::process::{Child, Command, Stdio};
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

/// A redis-server of one test's own, on a free port, that the test stops,
/// pauses and restarts (by its pid) to see what the adapters do meanwhile.
/// Needs `redis-server` on the PATH (`deploy/local/up` installs it).
pub struct RedisProcess {
    port: u16,
    child: Option<Child>,
}

impl std::fmt::Debug for RedisProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisProcess")
            .field("port", &self.port)
            .field("pid", &self.child.as_ref().map(Child::id))
            .finish()
    }
}

impl RedisProcess {
    pub async fn start() -> RedisProcess {
        // A port found free can be taken by another test before the server
        // binds it: then try another.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .unwrap_or_else(|e| panic!("no free port for a redis-server: {e}"));
            let mut server = RedisProcess { port, child: None };
            if server.try_restart().await {
                return server;
            }
        }
        panic!("no redis-server could keep a free port");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it; the port stays this test's, for `restart`.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it (again) on the same port, empty as a Redis restarted
    /// without persistence; returns once it accepts connections.
    pub async fn restart(&mut self) {
        assert!(
            self.try_restart().await,
            "redis-server on port {}: another process holds the port",
            self.port
        );
    }

    /// `restart`; false when the port answers for another process.
    async fn try_restart(&mut self) -> bool {
        self.stop();
        let port = self.port.to_string();
        let dir = std::env::temp_dir();
        let mut child = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}): install it (deploy/local/up does)")
            });
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        for _ in 0..250 {
            if let Ok(Some(_)) = child.try_wait() {
                // It could not bind: the port went to someone else.
                return false;
            }
            if std::net::TcpStream::connect_timeout(&address, Duration::from_millis(100)).is_ok() {
                if !answers_as(&self.url(), child.id()) {
                    let _ = child.kill();
                    let _ = child.wait();
                    return false;
                }
                self.child = Some(child);
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server on port {port} does not accept connections");
    }

    /// Freezes it (SIGSTOP): connections stay open, nothing answers.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a paused server (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("redis-server is running").id();
        let sent = Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()
            .is_ok_and(|s| s.success());
        assert!(sent, "kill {signal} {pid} failed");
    }
}

/// Whether the Redis at `url` is the process `pid` (not another test's).
fn answers_as(url: &str, pid: u32) -> bool {
    let info: Option<String> = redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .and_then(|mut c| redis::cmd("INFO").arg("server").query(&mut c))
        .ok();
    info.is_some_and(|info| {
        info.lines()
            .any(|line| line.trim() == format!("process_id:{pid}"))
    })
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
