//! The shared SeatLock conformance suite, and the retry budget, against PostgreSQL.

use booking_domain::*;
use booking_lock_optimistic::{OptimisticSeatLock, RetryPolicy};
use booking_testkit::conformance::{race, request, LockFixture};
use booking_testkit::TestDb;
use diesel::sql_types::BigInt;
use diesel_async::{AnsiTransactionManager, AsyncConnection, RunQueryDsl, TransactionManager};
use std::sync::Arc;
use std::time::Duration;

fn fixture_with(db: TestDb, retry: RetryPolicy) -> LockFixture {
    let store = db.store();
    let second = db.store();
    LockFixture::on_postgres(
        &store,
        Arc::new(OptimisticSeatLock::new(store.clone(), retry)),
        Arc::new(OptimisticSeatLock::new(second, retry)),
        db,
    )
}

async fn optimistic() -> LockFixture {
    fixture_with(TestDb::new().await, RetryPolicy::default())
}

booking_testkit::seat_lock_conformance_suite!(optimistic);

/// When every attempt loses its race and the budget is spent, the caller
/// gets a clean "try again" (`Contention`, HTTP 409 with Retry-After), not
/// an internal error, and nothing is held.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exhausted_retry_budget_is_contention_not_an_error() {
    let db = TestDb::new().await;
    let url = db.url().to_owned();
    let f = fixture_with(
        db,
        RetryPolicy {
            max_retries: 0,
            base_backoff: Duration::from_millis(1),
        },
    );
    let (schedule, seats) = f.schedule_with_seats(1).await;
    let users = f.users(20).await;

    // Another session locks the seat; the racers read version 0 and queue
    // behind it; it then bumps the version without taking the seat.
    let mut other = diesel_async::AsyncPgConnection::establish(&url)
        .await
        .unwrap();
    AnsiTransactionManager::begin_transaction(&mut other)
        .await
        .unwrap();
    diesel::sql_query("UPDATE seats SET version = version + 1 WHERE id = $1")
        .bind::<BigInt, _>(seats[0].0)
        .execute(&mut other)
        .await
        .unwrap();
    let requests = users
        .iter()
        .map(|u| request(*u, schedule, &seats))
        .collect();
    let lock = Arc::clone(&f.lock);
    let racing = tokio::spawn(async move { race(&lock, requests).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    AnsiTransactionManager::commit_transaction(&mut other)
        .await
        .unwrap();
    let results = racing.await.unwrap();

    let contention = results
        .iter()
        .filter(|r| matches!(r, Err(HoldError::Contention)))
        .count();
    let unexpected: Vec<_> = results
        .iter()
        .filter(|r| {
            !matches!(
                r,
                Ok(_) | Err(HoldError::Contention | HoldError::SeatTaken(_))
            )
        })
        .map(|r| format!("{r:?}"))
        .collect();
    assert!(
        unexpected.is_empty(),
        "only wins, SeatTaken or Contention: {unexpected:?}"
    );
    assert!(
        contention > 0,
        "racers that read the old version ran out of retries"
    );
    assert!(results.iter().filter(|r| r.is_ok()).count() <= 1);
    let report = f.audit(schedule).await;
    assert!(report.violations().is_empty(), "{:?}", report.violations());
}

/// The hold is one statement: prepared on a connection's first hold and
/// reused by the next, with the timeouts set when the connection opened.
#[tokio::test(flavor = "multi_thread")]
async fn hold_is_one_statement_prepared_once_per_connection() {
    booking_testkit::conformance::hold_is_prepared_once_per_connection(
        TestDb::new().await,
        |store| Arc::new(OptimisticSeatLock::new(store, RetryPolicy::default())),
        "WITH seen AS",
    )
    .await;
}

/// The design document shows the hold statement as it runs.
#[test]
fn design_md_shows_the_hold_statement() {
    booking_testkit::docs::assert_design_shows_sql(
        "The optimistic strategy",
        "HOLD",
        booking_lock_optimistic::HOLD,
    );
}
