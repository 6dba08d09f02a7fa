//! The web client in a real browser: starts the `booking` binary (embedded
//! mode) and runs the Playwright tests of `crates/api/web/e2e` with Node's
//! own runner against it, in Debian's headless Chromium. Missing tools fail
//! the test, never skip it.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const JWT_SECRET: &str = "browser-test-secret-browser-test-secret-0123";
pub const ADMIN_EMAIL: &str = "admin@browser.test";
pub const ADMIN_PASSWORD: &str = "admin-password-123";
/// This harness's ports (shared machine): the servers bind inside them.
const PORTS: std::ops::Range<u16> = 18000..18100;
/// The short-TTL server's holds, long enough to be seen counting down.
const SHORT_HOLD_SECS: &str = "6";

/// Every browser test the suite must run (and pass), by its name in the
/// e2e files. The harness fails if one of them did not run.
const EXPECTED: &[&str] = &[
    "/ loads with no console error and nothing from elsewhere",
    "/operator loads with no console error and nothing from elsewhere",
    "a buyer signs up, holds two seats and pays for them",
    "two buyers race for one seat: one holds it, the other sees it taken within a second",
    "a waiting buyer sees the sale end sold out",
    "before the opening the waiting room counts down, then lets the buyer in",
    "a hold's countdown reaching zero shows the hold expired",
    "the main views have no serious or critical accessibility violation",
    "at 360 px the page does not overflow sideways",
    "a buyer holds a seat with the keyboard alone",
    "an admin creates a concert and a schedule and watches holds and a payment on the monitor",
    "the operator page works at 360 px, with the keyboard, and passes axe-core",
    "a user who is not an admin is told how to become one",
    "the monitor draws a 20,000-seat schedule on a canvas and repaints only changed seats",
];

/// A `booking` process, killed by pid when dropped (also when a test panics).
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port of this harness's range.
fn free_port(taken: &[u16]) -> u16 {
    PORTS
        .clone()
        .filter(|p| !taken.contains(p))
        .find(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port in 18000-18099")
}

/// Starts the binary embedded (no database, nothing else), with `extra`
/// settings, and waits until it is ready.
fn start_server(port: u16, extra: &[(&str, &str)]) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_booking"));
    // Settings of the caller's shell (a database URL) must not leak in.
    for (name, _) in std::env::vars() {
        if name.starts_with("BOOKING") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command
        .arg("serve")
        .env("BOOKING__SERVER__HOST", "127.0.0.1")
        .env("BOOKING__SERVER__PORT", port.to_string())
        .env("BOOKING__SERVER__WORKERS", "2")
        .env("BOOKING__QUEUE__TICK_MS", "100")
        .env("BOOKING__LOG__FILTER", "warn")
        .env("BOOKING_JWT_SECRET", JWT_SECRET)
        .env("BOOKING_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("BOOKING_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (name, value) in extra {
        command.env(name, value);
    }
    let child = command.spawn().expect("the booking binary starts");
    let server = Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    wait_ready(port);
    server
}

/// Polls `/health/ready` with a bare HTTP/1.1 request (no client needed).
fn wait_ready(port: u16) {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let request =
                "GET /health/ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
            let mut answer = String::new();
            if stream.write_all(request.as_bytes()).is_ok()
                && stream.read_to_string(&mut answer).is_ok()
                && answer.starts_with("HTTP/1.1 200")
            {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the booking server on port {port} was not ready within 30 s");
}

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("web/e2e")
}

/// Fails with how to provide whatever the browser tests need and is missing.
fn check_tools(e2e: &Path) {
    const HOW: &str = "deploy/local/test installs them; by hand: \
`apt-get install chromium nodejs npm` and `npm ci --prefix crates/api/web/e2e`";
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "the browser tests need Node.js (`node` on PATH): {HOW}"
    );
    assert!(
        Path::new(CHROMIUM).exists(),
        "the browser tests need Debian's Chromium at {CHROMIUM}: {HOW}"
    );
    for package in ["playwright-core", "axe-core"] {
        assert!(
            e2e.join("node_modules").join(package).exists(),
            "the browser tests need {package} in crates/api/web/e2e/node_modules: {HOW}"
        );
    }
}

/// The names of the tests a TAP report says passed, and those it says
/// failed or skipped.
fn read_tap(report: &str) -> (Vec<String>, Vec<String>) {
    let (mut passed, mut other) = (Vec::new(), Vec::new());
    for line in report.lines().map(str::trim_start) {
        let (ok, rest) = if let Some(rest) = line.strip_prefix("not ok ") {
            (false, rest)
        } else if let Some(rest) = line.strip_prefix("ok ") {
            (true, rest)
        } else {
            continue;
        };
        // "<n> - <name>[ # SKIP|TODO ...]"
        let name = rest.split_once(" - ").map_or(rest, |(_, name)| name);
        let (name, directive) = name.split_once(" # ").unwrap_or((name, ""));
        let skipped = directive.starts_with("SKIP") || directive.starts_with("TODO");
        match ok && !skipped {
            true => passed.push(name.to_owned()),
            false => other.push(format!("{name} {directive}").trim().to_owned()),
        }
    }
    (passed, other)
}

/// `SCREENSHOT_DIR`, a relative one taken from the workspace root (Node
/// runs in the e2e directory).
fn screenshot_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("SCREENSHOT_DIR")?);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    Some(if dir.is_absolute() {
        dir
    } else {
        root.join(dir)
    })
}

/// Straight to stderr, past the test harness's capture: the browser tests
/// are slow, and which of them ran must show on a pass too.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

#[test]
fn the_web_client_works_in_a_real_browser() {
    let e2e = e2e_dir();
    check_tools(&e2e);
    let port = free_port(&[]);
    let server = start_server(port, &[]);
    let short_port = free_port(&[port]);
    // Holds of seconds, expired every second; and no waiting room, so the
    // page's way straight to the seats is tested too.
    let short = start_server(
        short_port,
        &[
            ("BOOKING__BOOKING__HOLD_TTL_SECS", SHORT_HOLD_SECS),
            ("BOOKING__EXPIRY__PERIOD_SECS", "1"),
            ("BOOKING__QUEUE__ENABLED", "false"),
        ],
    );
    let report = std::env::temp_dir().join(format!("booking-e2e-{}.tap", std::process::id()));
    let mut node = Command::new("node");
    node.current_dir(&e2e)
        .args(["--test", "--test-concurrency=1"])
        .args(["--test-reporter=spec", "--test-reporter-destination=stdout"])
        .arg("--test-reporter=tap")
        .arg(format!("--test-reporter-destination={}", report.display()))
        .env("BASE_URL", &server.url)
        .env("SHORT_HOLD_URL", &short.url)
        .env("SHORT_HOLD_SECS", SHORT_HOLD_SECS)
        .env("ADMIN_EMAIL", ADMIN_EMAIL)
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("CHROMIUM_PATH", CHROMIUM)
        .envs(screenshot_dir().map(|dir| ("SCREENSHOT_DIR", dir)))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = node.spawn().expect("node starts");
    // Node's own report, line by line, as it comes.
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            say(&line);
        }
    }
    let status = child.wait().expect("node ran");
    let tap = std::fs::read_to_string(&report).unwrap_or_default();
    let _ = std::fs::remove_file(&report);
    let (passed, other) = read_tap(&tap);
    say(&format!("browser tests passed ({}):", passed.len()));
    for name in &passed {
        say(&format!("  ok      {name}"));
    }
    for name in &other {
        say(&format!("  NOT OK  {name}"));
    }
    assert!(status.success(), "the browser tests failed: {other:?}");
    let missing: Vec<_> = EXPECTED
        .iter()
        .filter(|name| !passed.iter().any(|p| p == *name))
        .collect();
    assert!(
        missing.is_empty(),
        "browser tests that did not run: {missing:?}"
    );
}
