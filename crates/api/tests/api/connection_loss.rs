//! A database connection lost mid-request (`pg_terminate_backend`, a
//! restart, a failover) is a 503 with `Retry-After`, never a 500; and the
//! pool heals: the next requests work on new connections.

use crate::helpers::*;
use diesel::sql_types::{Array, BigInt, Integer, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use reqwest::{Response, StatusCode};
use std::time::{Duration, Instant};

/// Ends every session of the test database but the caller's and those
/// spared (`$1`): the app's pooled connections and whatever they were running.
const TERMINATE_OTHERS: &str = "\
SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity
 WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> ALL($1)";

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn terminate_app_backends(conn: &mut AsyncPgConnection, spared: &[i32]) -> i64 {
    let killed: Count = diesel::sql_query(TERMINATE_OTHERS)
        .bind::<Array<Integer>, _>(spared)
        .get_result(conn)
        .await
        .expect("pg_terminate_backend");
    killed.n
}

/// Waits until some other session of the database waits for a lock.
async fn wait_for_a_lock_waiter(conn: &mut AsyncPgConnection) {
    #[derive(QueryableByName)]
    struct Waiting {
        #[diesel(sql_type = Text)]
        #[allow(dead_code)]
        query: String,
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let waiting: Vec<Waiting> = diesel::sql_query(
            "SELECT query FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid()
                AND wait_event_type = 'Lock'",
        )
        .load(conn)
        .await
        .expect("pg_stat_activity");
        if !waiting.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the hold never waited for the lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A 503 problem that tells the client when to retry.
async fn expect_unavailable(response: Response) {
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let problem = expect_problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(problem["type"], "/problems/unavailable", "{problem}");
    assert!(retry_after.is_some_and(|s| s > 0), "no Retry-After");
}

/// Asserts `response` is `ok` or a 503 with `Retry-After`; true if `ok`.
async fn ok_or_unavailable(response: Response, ok: StatusCode) -> bool {
    if response.status() == ok {
        return true;
    }
    expect_unavailable(response).await;
    false
}

/// `locker` locks the schedule's first seat in an open transaction; then
/// `fan`'s hold of it is sent and left waiting on that lock, in flight.
async fn hold_behind_a_locked_seat(
    app: &TestApp,
    s: &TestSchedule,
    fan: &TestUser,
    locker: &mut AsyncPgConnection,
) -> tokio::task::JoinHandle<Response> {
    locker
        .batch_execute(&format!(
            "BEGIN; SELECT id FROM seats WHERE id = {} FOR UPDATE",
            s.seat_ids[0]
        ))
        .await
        .expect("lock the seat");
    let client = app.client.clone();
    let url = app.url("/api/reservations");
    let token = fan.token.clone();
    let body = serde_json::json!({"scheduleId": s.schedule_id, "seatIds": [s.seat_ids[0]]});
    let hold = tokio::spawn(async move {
        client
            .post(url)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request sent")
    });
    wait_for_a_lock_waiter(locker).await;
    hold
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_terminated_mid_hold_is_a_503_and_the_next_hold_works() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 2).await;
    let fan = app.user("fan").await;
    let db = app.db.as_ref().expect("a database-backed app");

    // The test's own session locks the seat, so the app's hold statement is
    // in flight (waiting for it) when its backend is terminated.
    let mut locker = db.connection().await;
    #[derive(QueryableByName)]
    struct Pid {
        #[diesel(sql_type = Integer)]
        pid: i32,
    }
    let locker_pid: Pid = diesel::sql_query("SELECT pg_backend_pid() AS pid")
        .get_result(&mut locker)
        .await
        .expect("own pid");
    let hold = hold_behind_a_locked_seat(&app, &s, &fan, &mut locker).await;
    let mut killer = db.connection().await;
    assert!(terminate_app_backends(&mut killer, &[locker_pid.pid]).await >= 1);
    expect_unavailable(hold.await.expect("hold task")).await;
    locker.batch_execute("ROLLBACK").await.expect("unlock");
    assert_eq!(app.active_reservations_of_seat(s.seat_ids[0]).await, 0);

    // The pool drops the dead connections and opens new ones: within a few
    // attempts (each a 503 at worst), the same hold succeeds.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = app.hold(&fan, s.schedule_id, &s.seat_ids[..1], None).await;
        if ok_or_unavailable(response, StatusCode::CREATED).await {
            break;
        }
        assert!(Instant::now() < deadline, "holds never worked again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.active_reservations_of_seat(s.seat_ids[0]).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_racing_terminated_backends_get_a_503_never_a_500() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 4).await;
    let fan = app.user("fan").await;
    let db = app.db.as_ref().expect("a database-backed app");
    let mut killer = db.connection().await;
    let path = format!("/api/concerts/{}/schedules", s.concert_id);

    for _round in 0..5 {
        let requests: Vec<_> = (0..12)
            .map(|i| {
                let client = app.client.clone();
                let token = fan.token.clone();
                let url = if i % 2 == 0 {
                    app.url("/api/reservations/my")
                } else {
                    app.url(&path)
                };
                tokio::spawn(async move {
                    client
                        .get(url)
                        .bearer_auth(token)
                        .send()
                        .await
                        .expect("request sent")
                })
            })
            .collect();
        terminate_app_backends(&mut killer, &[]).await;
        for request in requests {
            ok_or_unavailable(request.await.expect("request task"), StatusCode::OK).await;
        }
    }

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = app.get("/api/reservations/my", Some(&fan.token)).await;
        if ok_or_unavailable(response, StatusCode::OK).await {
            break;
        }
        assert!(Instant::now() < deadline, "reads never worked again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An operator cancelling a statement (`pg_cancel_backend`) keeps the
/// connection but ends the statement: the request is a 503 too, not a 500.
#[tokio::test(flavor = "multi_thread")]
async fn a_statement_cancelled_by_an_operator_is_a_503() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 2).await;
    let fan = app.user("fan").await;
    let db = app.db.as_ref().expect("a database-backed app");

    let mut locker = db.connection().await;
    let hold = hold_behind_a_locked_seat(&app, &s, &fan, &mut locker).await;
    let mut operator = db.connection().await;
    let cancelled: Count = diesel::sql_query(
        "SELECT count(pg_cancel_backend(pid)) AS n FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .get_result(&mut operator)
    .await
    .expect("pg_cancel_backend");
    assert_eq!(cancelled.n, 1);
    expect_unavailable(hold.await.expect("hold task")).await;
    locker.batch_execute("ROLLBACK").await.expect("unlock");

    // The connection survived: the same hold works at once.
    expect_status(
        app.hold(&fan, s.schedule_id, &s.seat_ids[..1], None).await,
        StatusCode::CREATED,
    )
    .await;
}
