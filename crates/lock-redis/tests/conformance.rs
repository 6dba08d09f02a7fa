//! The shared SeatLock conformance suite against PostgreSQL and Redis, and
//! the failures only a distributed lock has: stale holders and a wrong stock.

use booking_domain::*;
use booking_lock_redis::{
    claim_seats, read_requested_seats, redis_pool, RedisLockSettings, RedisSeatLock,
};
use booking_store_postgres::tx::TxError;
use booking_testkit::conformance::{request, LockFixture};
use booking_testkit::{TestDb, TestRedis};
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::AsyncConnection;
use std::sync::Arc;
use std::time::Duration;

fn instance(db: &TestDb, redis: &TestRedis, lease: Duration) -> RedisSeatLock {
    let pool = redis_pool(redis.url(), 16, Duration::from_secs(5)).unwrap();
    let settings = RedisLockSettings {
        lease,
        key_prefix: redis.prefix().to_owned(),
    };
    RedisSeatLock::new(db.store(), pool, settings)
}

async fn redis_fixture() -> LockFixture {
    let (db, redis) = (TestDb::new().await, TestRedis::new().await);
    let store = db.store();
    LockFixture::on_postgres(
        &store,
        Arc::new(instance(&db, &redis, Duration::from_secs(5))),
        Arc::new(instance(&db, &redis, Duration::from_secs(5))),
        (db, redis),
    )
}

booking_testkit::seat_lock_conformance_suite!(redis_fixture);

/// A holder whose lease runs out while its transaction is paused must not
/// write: by then another server has locked and held the seat, and the stale
/// claim names a version that no longer exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stale_lock_holder_cannot_write() {
    let (db, redis) = (TestDb::new().await, TestRedis::new().await);
    let slow = instance(&db, &redis, Duration::from_millis(200));
    let other = instance(&db, &redis, Duration::from_secs(5));
    let store = db.store();
    let f = LockFixture::on_postgres(&store, Arc::new(slow.clone()), Arc::new(other.clone()), ());
    let (schedule, seats) = f.schedule_with_seats(2).await;
    let users = f.users(2).await;
    let stale_request = request(users[0], schedule, &seats[..1]);

    let stale_locks = slow.acquire_locks(&stale_request).await.unwrap();
    let mut conn = store.conn().await.unwrap();
    let stale = conn
        .transaction::<_, TxError<HoldError>, _>(|conn| {
            let (req, other) = (&stale_request, &other);
            async move {
                let read = read_requested_seats(conn, req).await?;
                // Paused past the lease; meanwhile another server holds the seat.
                tokio::time::sleep(Duration::from_millis(400)).await;
                let theirs = other
                    .hold_seats(&request(users[1], schedule, &seats[..1]))
                    .await;
                assert!(
                    theirs.is_ok(),
                    "the lease ran out, so the other server gets the seat: {theirs:?}"
                );
                claim_seats(conn, req, &read).await
            }
            .scope_boxed()
        })
        .await;
    assert!(
        matches!(stale, Err(TxError::Abort(HoldError::SeatTaken(_)))),
        "the stale claim is refused: {stale:?}"
    );
    // Its release touches nothing: the lock it wrote expired long ago.
    assert_eq!(slow.release_locks(&stale_locks).await.unwrap(), 0);

    let report = f.audit(schedule).await;
    assert_eq!(
        (report.active_reservations, report.held),
        (1, 1),
        "one holder, from the database"
    );
    assert!(report.violations().is_empty(), "{:?}", report.violations());
    drop((conn, db, redis));
}

/// Release deletes only the locks the request still owns.
#[tokio::test(flavor = "multi_thread")]
async fn release_never_deletes_another_owners_lock() {
    let (db, redis) = (TestDb::new().await, TestRedis::new().await);
    // Long enough that b's first try always finds a's locks, even on a loaded machine.
    let a = instance(&db, &redis, Duration::from_millis(800));
    let b = instance(&db, &redis, Duration::from_secs(5));
    let store = db.store();
    let f = LockFixture::on_postgres(&store, Arc::new(a.clone()), Arc::new(b.clone()), ());
    let (schedule, seats) = f.schedule_with_seats(2).await;
    let user = f.users(1).await[0];
    let req = request(user, schedule, &seats);
    let a_locks = a.acquire_locks(&req).await.unwrap();
    assert!(
        matches!(b.acquire_locks(&req).await, Err(HoldError::SeatTaken(_))),
        "all or nothing: both busy"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let b_locks = b.acquire_locks(&req).await.unwrap();
    assert!(b_locks.token > a_locks.token, "fencing tokens only grow");
    assert_eq!(a.release_locks(&a_locks).await.unwrap(), 0);
    assert_eq!(b.release_locks(&b_locks).await.unwrap(), 2);
    drop((db, redis));
}

/// The stock is advisory: when it says "sold out" no database work is done,
/// when it is too low the refusal is corrected by reconciliation, and it is
/// never what decides a success.
#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_stock_only_refuses_and_reconcile_corrects_it() {
    let (db, redis) = (TestDb::new().await, TestRedis::new().await);
    let lock = instance(&db, &redis, Duration::from_secs(5));
    let store = db.store();
    let f = LockFixture::on_postgres(&store, Arc::new(lock.clone()), Arc::new(lock.clone()), ());
    let (schedule, seats) = f.schedule_with_seats(4).await;
    let users = f.users(3).await;
    let mut conn = redis.connection().await;
    let stock_key = lock.keys(schedule).stock();

    // Too low: refused as sold out, nothing written.
    redis::cmd("SET")
        .arg(&stock_key)
        .arg(0)
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    let err = f
        .lock
        .hold_seats(&request(users[0], schedule, &seats[..1]))
        .await
        .unwrap_err();
    assert!(matches!(err, HoldError::SoldOut), "{err}");
    assert_eq!(f.audit(schedule).await.held, 0);

    assert_eq!(lock.reconcile_stock(schedule).await.unwrap(), 4);
    f.lock
        .hold_seats(&request(users[0], schedule, &seats[..1]))
        .await
        .unwrap();
    let stock: i64 = redis::cmd("GET")
        .arg(&stock_key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(stock, 3);

    // Too high: the database still refuses the taken seat, and the failed
    // request gives its stock back.
    redis::cmd("SET")
        .arg(&stock_key)
        .arg(100)
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    let err = f
        .lock
        .hold_seats(&request(users[1], schedule, &seats[..1]))
        .await
        .unwrap_err();
    assert!(matches!(err, HoldError::SeatTaken(_)), "{err}");
    let stock: i64 = redis::cmd("GET")
        .arg(&stock_key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(stock, 100);
    let report = f.audit(schedule).await;
    assert_eq!((report.held, report.active_reservations), (1, 1));

    // Lost entirely (Redis restarted): loaded again from the database.
    redis::cmd("DEL")
        .arg(&stock_key)
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    f.lock
        .hold_seats(&request(users[2], schedule, &seats[1..2]))
        .await
        .unwrap();
    let stock: i64 = redis::cmd("GET")
        .arg(&stock_key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(stock, 2, "3 AVAILABLE when loaded, 1 taken since");
    drop((db, redis));
}

/// The seat-release consumer may deliver a release twice, or retry it after
/// a failure: the seats go back to the stock once.
#[tokio::test(flavor = "multi_thread")]
async fn a_release_told_twice_gives_the_stock_back_once() {
    let (db, redis) = (TestDb::new().await, TestRedis::new().await);
    let lock = instance(&db, &redis, Duration::from_secs(5));
    let store = db.store();
    let f = LockFixture::on_postgres(&store, Arc::new(lock.clone()), Arc::new(lock.clone()), ());
    let (schedule, seats) = f.schedule_with_seats(4).await;
    let user = f.users(1).await[0];
    let held = f
        .lock
        .hold_seats(&request(user, schedule, &seats[..2]))
        .await
        .unwrap();
    let mut conn = redis.connection().await;
    let stock_key = lock.keys(schedule).stock();
    assert_eq!(stock(&mut conn, &stock_key).await, 2, "2 of 4 held");

    assert!(
        lock.release_stock(&held).await.unwrap(),
        "first: given back"
    );
    assert!(!lock.release_stock(&held).await.unwrap(), "second: no-op");
    lock.seats_released(&held).await.unwrap();
    assert_eq!(stock(&mut conn, &stock_key).await, 4, "2 seats back, once");
    drop((db, redis));
}

async fn stock(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("GET").arg(key).query_async(conn).await.unwrap()
}
