//! A stuck lock holder cannot block holds forever, and a dropped request
//! cannot leave a transaction open on a pooled connection.

use booking_domain::*;
use booking_lock_pessimistic::PessimisticSeatLock;
use booking_store_postgres::tx::TxTimeouts;
use booking_store_postgres::{PgStore, PoolSettings};
use booking_testkit::conformance::{request, LockFixture};
use booking_testkit::TestDb;
use diesel::sql_types::BigInt;
use diesel::QueryableByName;
use diesel_async::{AnsiTransactionManager, AsyncConnection, RunQueryDsl, TransactionManager};
use std::sync::Arc;
use std::time::Duration;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn store_with(db: &TestDb, lock_timeout: Duration, pool: usize) -> PgStore {
    let mut settings = PoolSettings::new(db.url());
    settings.max_size = pool;
    settings.tx_timeouts = TxTimeouts {
        lock: lock_timeout,
        statement: Duration::from_secs(10),
    };
    PgStore::connect(&settings).unwrap()
}

fn fixture(db: TestDb, store: PgStore) -> LockFixture {
    LockFixture::on_postgres(
        &store,
        Arc::new(PessimisticSeatLock::new(store.clone())),
        Arc::new(PessimisticSeatLock::new(store.clone())),
        db,
    )
}

/// Another session holds the seat's row lock and never lets go.
async fn lock_seat_elsewhere(db_url: &str, seat: SeatId) -> diesel_async::AsyncPgConnection {
    let mut blocker = diesel_async::AsyncPgConnection::establish(db_url)
        .await
        .unwrap();
    AnsiTransactionManager::begin_transaction(&mut blocker)
        .await
        .unwrap();
    diesel::sql_query("SELECT id FROM seats WHERE id = $1 FOR UPDATE")
        .bind::<BigInt, _>(seat.0)
        .execute(&mut blocker)
        .await
        .unwrap();
    blocker
}

#[tokio::test(flavor = "multi_thread")]
async fn stuck_lock_holder_times_out_as_contention() {
    let db = TestDb::new().await;
    let store = store_with(&db, Duration::from_millis(300), 4);
    let url = db.url().to_owned();
    let f = fixture(db, store);
    let (schedule, seats) = f.schedule_with_seats(2).await;
    let user = f.users(1).await[0];
    let _blocker = lock_seat_elsewhere(&url, seats[0]).await;

    let err = f
        .lock
        .hold_seats(&request(user, schedule, &seats[..1]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, HoldError::Contention),
        "lock_timeout must surface as Contention: {err}"
    );
    let report = f.audit(schedule).await;
    assert_eq!((report.held, report.active_reservations), (0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn dropped_request_leaves_no_open_transaction() {
    let db = TestDb::new().await;
    // One connection: whatever the dropped request leaves behind is what
    // the next request gets.
    let store = store_with(&db, Duration::from_secs(5), 1);
    let url = db.url().to_owned();
    let f = fixture(db, store.clone());
    let (schedule, seats) = f.schedule_with_seats(2).await;
    let user = f.users(2).await;
    let mut blocker = lock_seat_elsewhere(&url, seats[0]).await;

    // The client gives up while the hold waits for the row lock.
    let dropped = tokio::time::timeout(
        Duration::from_millis(200),
        f.lock.hold_seats(&request(user[0], schedule, &seats[..1])),
    )
    .await;
    assert!(
        dropped.is_err(),
        "the request was still waiting when dropped"
    );
    AnsiTransactionManager::rollback_transaction(&mut blocker)
        .await
        .unwrap();

    // The next request on the single pooled connection works and finds no
    // transaction left open by the dropped one.
    let next = f
        .lock
        .hold_seats(&request(user[1], schedule, &seats[1..2]))
        .await;
    assert!(next.is_ok(), "{next:?}");
    let mut conn = store.conn().await.unwrap();
    let open: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_stat_activity
          WHERE datname = current_database() AND state LIKE 'idle in transaction%'",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(open.n, 0, "no session is left idle in a transaction");
    drop(conn);
    let report = f.audit(schedule).await;
    assert!(report.violations().is_empty(), "{:?}", report.violations());
    // The dropped hold ran to completion: it committed rather than half-ran.
    assert_eq!(report.active_reservations, 2);
}

/// The hold is one statement: prepared on a connection's first hold and
/// reused by the next, with the timeouts set when the connection opened.
#[tokio::test(flavor = "multi_thread")]
async fn hold_is_one_statement_prepared_once_per_connection() {
    booking_testkit::conformance::hold_is_prepared_once_per_connection(
        TestDb::new().await,
        |store| Arc::new(PessimisticSeatLock::new(store)),
        "WITH locked AS",
    )
    .await;
}

/// The design document shows the hold statement as it runs.
#[test]
fn design_md_shows_the_hold_statement() {
    booking_testkit::docs::assert_design_shows_sql(
        "The pessimistic strategy",
        "HOLD",
        booking_lock_pessimistic::HOLD,
    );
}
