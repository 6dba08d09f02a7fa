//! `spawn_app()` and a `TestApp` whose helpers read like a user's actions.

use booking_api::{Application, Secrets, Settings, Strategy};
use booking_domain::{BookingService, EventBus};
use booking_testkit::{TestDb, TestKafka, TestRedis};
use diesel::sql_types::{BigInt, Text};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: Option<TestDb>,
    pub redis: Option<TestRedis>,
    pub kafka: Option<TestKafka>,
    /// Reservations need an entry token: `hold` fetches one first.
    pub queue_on: bool,
    pub service: BookingService,
    /// The bus the outbox relay publishes to.
    pub events: Arc<dyn EventBus>,
}

#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: i64,
    pub email: String,
    pub token: String,
}

/// A schedule made through the admin API: its ids and its seat ids.
#[derive(Debug, Clone)]
pub struct TestSchedule {
    pub concert_id: i64,
    pub schedule_id: i64,
    pub seat_ids: Vec<i64>,
}

/// Starts the API on a random port over a fresh, migrated database, with
/// the pessimistic strategy and the waiting room off: the booking rules
/// without the queue in front.
pub async fn spawn_app() -> TestApp {
    spawn_app_adjusted(|_| {}).await
}

/// `spawn_app`, with some settings changed.
pub async fn spawn_app_adjusted(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let db = TestDb::new().await;
    let mut settings = Settings::default();
    settings.database.url = Some(db.url().to_owned());
    settings.queue.enabled = false;
    read_your_writes(&mut settings);
    adjust(&mut settings);
    spawn_with(settings, Some(db), None).await
}

/// Most tests read the seat map right after a write and expect to see it:
/// a max age of 0 makes every read rebuild the map unless a rebuild started
/// after it arrived. The cache's own tests (`seat_map.rs`) set a real one.
fn read_your_writes(settings: &mut Settings) {
    settings.catalog.seat_map_max_age_ms = 0;
}

/// Starts the API as it runs in production: `strategy`, and the waiting
/// room on Redis (its own key prefix), admitting every 50 ms.
pub async fn spawn_app_with(strategy: Strategy) -> TestApp {
    spawn_app_configured(strategy, |_| {}).await
}

pub async fn spawn_app_configured(
    strategy: Strategy,
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    let db = TestDb::new().await;
    let redis = TestRedis::new().await;
    let mut settings = Settings::default();
    settings.database.url = Some(db.url().to_owned());
    settings.booking.strategy = strategy;
    settings.redis.url = Some(redis.url().to_owned());
    settings.redis.key_prefix = redis.prefix().to_owned();
    fast_queue(&mut settings);
    read_your_writes(&mut settings);
    adjust(&mut settings);
    spawn_with(settings, Some(db), Some(redis)).await
}

fn fast_queue(settings: &mut Settings) {
    settings.queue.tick_ms = 50;
}

/// Starts the API with no database: the embedded mode (waiting room on).
pub async fn spawn_embedded_app() -> TestApp {
    spawn_embedded_app_adjusted(|_| {}).await
}

/// `spawn_embedded_app`, with some settings changed.
pub async fn spawn_embedded_app_adjusted(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = Settings::default();
    fast_queue(&mut settings);
    read_your_writes(&mut settings);
    adjust(&mut settings);
    spawn_with(settings, None, None).await
}

async fn spawn_with(
    mut settings: Settings,
    db: Option<TestDb>,
    redis: Option<TestRedis>,
) -> TestApp {
    let queue_on = settings.queue.enabled;
    settings.server.port = 0;
    settings.server.workers = Some(2);
    let secrets = Secrets {
        jwt_secret: Some(JWT_SECRET.into()),
        admin: None,
    };
    let app = Application::build(settings, secrets)
        .await
        .expect("the app starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let service = app.service().clone();
    let events = app.events();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::new(),
        db,
        redis,
        kafka: None,
        queue_on,
        service,
        events,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request sent")
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        let mut req = self.client.post(self.url(path)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request sent")
    }

    pub async fn put(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .put(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn sign_up(&self, email: &str, password: &str) -> Response {
        self.post(
            "/api/auth/signup",
            None,
            &json!({"email": email, "password": password, "nickname": "fan"}),
        )
        .await
    }

    pub async fn log_in(&self, email: &str, password: &str) -> Response {
        self.post(
            "/api/auth/login",
            None,
            &json!({"email": email, "password": password}),
        )
        .await
    }

    /// Signs up and logs in a new user.
    pub async fn user(&self, name: &str) -> TestUser {
        let email = format!("{name}@example.com");
        let signed: Value = expect_status(
            self.sign_up(&email, "password-123").await,
            StatusCode::CREATED,
        )
        .await;
        let login: Value =
            expect_status(self.log_in(&email, "password-123").await, StatusCode::OK).await;
        TestUser {
            id: signed["id"].as_i64().expect("id"),
            email,
            token: login["token"].as_str().expect("token").to_owned(),
        }
    }

    pub async fn admin(&self) -> TestUser {
        let admin = self
            .service
            .accounts
            .ensure_admin("root@example.com", "admin-password")
            .await
            .expect("admin");
        let login: Value = expect_status(
            self.log_in("root@example.com", "admin-password").await,
            StatusCode::OK,
        )
        .await;
        TestUser {
            id: admin.id.0,
            email: admin.email,
            token: login["token"].as_str().expect("token").into(),
        }
    }

    /// A concert with one schedule of `rows` x `per_row` seats at 5000 each.
    pub async fn schedule(&self, admin: &TestUser, rows: i32, per_row: i32) -> TestSchedule {
        let (concert_id, schedule_id) = self.create_schedule(admin, rows, per_row).await;
        let seat_ids = self
            .seat_statuses(concert_id, schedule_id)
            .await
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        TestSchedule {
            concert_id,
            schedule_id,
            seat_ids,
        }
    }

    /// `schedule` without reading its seat map: (concert id, schedule id).
    pub async fn create_schedule(&self, admin: &TestUser, rows: i32, per_row: i32) -> (i64, i64) {
        let concert: Value = expect_status(
            self.post(
                "/api/admin/concerts",
                Some(&admin.token),
                &json!({"title": "Night", "artist": "Band", "venue": "Hall"}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        let concert_id = concert["id"].as_i64().expect("concert id");
        let schedule: Value = expect_status(
            self.post(
                &format!("/api/admin/concerts/{concert_id}/schedules"),
                Some(&admin.token),
                &json!({"startsAt": "2030-01-01T20:00:00Z",
                        "sections": [{"name": "A", "rows": rows, "seatsPerRow": per_row, "price": 5000}]}),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        (concert_id, schedule["id"].as_i64().expect("schedule id"))
    }

    /// (seat id, status) of every seat, as the public seat map shows them.
    pub async fn seat_statuses(&self, concert: i64, schedule: i64) -> Vec<(i64, String)> {
        let map: Value = expect_status(
            self.get(
                &format!("/api/concerts/{concert}/schedules/{schedule}/seats"),
                None,
            )
            .await,
            StatusCode::OK,
        )
        .await;
        map["seats"]
            .as_array()
            .expect("seats")
            .iter()
            .map(|s| {
                (
                    s["id"].as_i64().expect("id"),
                    s["status"].as_str().expect("status").to_owned(),
                )
            })
            .collect()
    }

    /// Holds seats; with the waiting room on, enters it and waits for the
    /// entry token first, as a client would.
    pub async fn hold(
        &self,
        user: &TestUser,
        schedule: i64,
        seats: &[i64],
        key: Option<&str>,
    ) -> Response {
        let token = match self.queue_on {
            true => self.wait_for_entry_token(user, schedule).await,
            false => None,
        };
        self.hold_with_token(user, schedule, seats, key, token.as_deref())
            .await
    }

    /// Enters the waiting room and polls until admitted; `None` if the
    /// schedule has no waiting room for this user (unknown schedule).
    pub async fn wait_for_entry_token(&self, user: &TestUser, schedule: i64) -> Option<String> {
        let entered = self
            .post(
                "/api/queue/enter",
                Some(&user.token),
                &json!({"scheduleId": schedule}),
            )
            .await;
        if entered.status() != StatusCode::OK {
            return None;
        }
        for _ in 0..200 {
            let response = self
                .get(
                    &format!("/api/queue/token?scheduleId={schedule}"),
                    Some(&user.token),
                )
                .await;
            if response.status() == StatusCode::OK {
                let body: Value = response.json().await.expect("token body");
                return body["token"].as_str().map(str::to_owned);
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!(
            "user {} was not admitted to schedule {schedule} within 5 s",
            user.email
        )
    }

    pub async fn hold_with_token(
        &self,
        user: &TestUser,
        schedule: i64,
        seats: &[i64],
        key: Option<&str>,
        entry_token: Option<&str>,
    ) -> Response {
        let mut req = self
            .client
            .post(self.url("/api/reservations"))
            .bearer_auth(&user.token)
            .json(&json!({"scheduleId": schedule, "seatIds": seats}));
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        if let Some(t) = entry_token {
            req = req.header("X-Queue-Token", t);
        }
        req.send().await.expect("request sent")
    }

    pub async fn pay(&self, user: &TestUser, reservation: i64, key: Option<&str>) -> Response {
        let mut req = self
            .client
            .post(self.url("/api/payments"))
            .bearer_auth(&user.token)
            .json(&json!({"reservationId": reservation}));
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        req.send().await.expect("request sent")
    }

    pub async fn cancel(&self, user: &TestUser, reservation: i64) -> Response {
        self.client
            .delete(self.url(&format!("/api/reservations/{reservation}")))
            .bearer_auth(&user.token)
            .send()
            .await
            .expect("request sent")
    }

    /// Everything a request could have changed, read from the database.
    pub async fn db_snapshot(&self) -> DbSnapshot {
        let db = self.db.as_ref().expect("a database-backed app");
        let mut conn = db.connection().await;
        diesel::sql_query(
            "SELECT (SELECT count(*) FROM reservations) AS reservations,
                    (SELECT count(*) FROM reservation_seats) AS reservation_seats,
                    (SELECT count(*) FROM payments) AS payments,
                    (SELECT count(*) FROM outbox) AS outbox,
                    (SELECT coalesce(string_agg(id || ':' || status || ':' || version, ',' ORDER BY id), '')
                       FROM seats) AS seats",
        )
        .get_result(&mut conn)
        .await
        .expect("snapshot query")
    }

    /// How many active (PENDING or CONFIRMED) reservations hold `seat`.
    pub async fn active_reservations_of_seat(&self, seat: i64) -> i64 {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let db = self.db.as_ref().expect("a database-backed app");
        let mut conn = db.connection().await;
        let c: Count = diesel::sql_query(
            "SELECT count(*) AS n FROM reservation_seats rs JOIN reservations r ON r.id = rs.reservation_id
              WHERE rs.seat_id = $1 AND r.status IN ('PENDING', 'CONFIRMED')",
        )
        .bind::<BigInt, _>(seat)
        .get_result(&mut conn)
        .await
        .expect("count query");
        c.n
    }

    /// The value of an unlabelled series at `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self
            .get("/metrics", None)
            .await
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .find_map(|line| {
                let (series, value) = line.split_once(' ')?;
                (series == name).then(|| value.parse().ok()).flatten()
            })
            .unwrap_or_else(|| panic!("no series {name} in /metrics"))
    }

    /// Runs a statement directly (to age a hold, say).
    pub async fn execute(&self, sql: &str) {
        let db = self.db.as_ref().expect("a database-backed app");
        let mut conn = db.connection().await;
        diesel::sql_query(sql)
            .execute(&mut conn)
            .await
            .expect("statement");
    }
}

#[derive(Debug, PartialEq, Eq, QueryableByName)]
pub struct DbSnapshot {
    #[diesel(sql_type = BigInt)]
    pub reservations: i64,
    #[diesel(sql_type = BigInt)]
    pub reservation_seats: i64,
    #[diesel(sql_type = BigInt)]
    pub payments: i64,
    #[diesel(sql_type = BigInt)]
    pub outbox: i64,
    #[diesel(sql_type = Text)]
    pub seats: String,
}

/// Asserts the status and returns the JSON body.
pub async fn expect_status(response: Response, status: StatusCode) -> Value {
    let got = response.status();
    let body = response.text().await.expect("body");
    assert_eq!(got, status, "unexpected status, body: {body}");
    if body.is_empty() {
        return Value::Null;
    }
    serde_json::from_str(&body).expect("a JSON body")
}

/// Asserts a problem+json error with this status; returns the problem.
pub async fn expect_problem(response: Response, status: StatusCode) -> Value {
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let problem = expect_status(response, status).await;
    assert_eq!(
        content_type, "application/problem+json",
        "problem: {problem}"
    );
    assert_eq!(problem["status"].as_u64(), Some(u64::from(status.as_u16())));
    assert!(problem["type"]
        .as_str()
        .is_some_and(|t| t.starts_with("/problems/")));
    assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
    problem
}
