//! The shared SeatLock conformance suite against PostgreSQL and Redis, and
//! the failures only a distributed lock has: stale holders, and a stock that
//! is wrong (set by hand, left by a dead instance, a lost Redis, a missed
//! release) and must heal on its own.

use booking_domain::*;
use booking_lock_redis::{
    claim_seats, read_requested_seats, redis_connection, RedisLockSettings, RedisSeatLock,
};
use booking_store_postgres::tx::TxError;
use booking_testkit::conformance::is_refusal;
use booking_testkit::conformance::{request, LockFixture};
use booking_testkit::{TestDb, TestRedis};
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::AsyncConnection;
use std::sync::Arc;
use std::time::Duration;

async fn instance(db: &TestDb, redis: &TestRedis, lease: Duration) -> RedisSeatLock {
    with_settings(db, redis, |s| s.lease = lease).await
}

/// One instance over fresh stores, and the fixture on it (both of its
/// "servers" are that instance).
async fn one_instance(lease: Duration) -> (TestDb, TestRedis, RedisSeatLock, LockFixture) {
    let (db, redis) = (TestDb::new().await, TestRedis::new().await);
    let lock = instance(&db, &redis, lease).await;
    let store = db.store();
    let f = LockFixture::on_postgres(&store, Arc::new(lock.clone()), Arc::new(lock.clone()), ());
    (db, redis, lock, f)
}

/// An instance whose disagreement resyncs are not held back, so each test
/// step that needs one gets one.
async fn with_settings(
    db: &TestDb,
    redis: &TestRedis,
    change: impl FnOnce(&mut RedisLockSettings),
) -> RedisSeatLock {
    let conn = redis_connection(redis.url(), Duration::from_secs(5))
        .await
        .unwrap();
    let mut settings = RedisLockSettings {
        key_prefix: redis.prefix().to_owned(),
        resync_gap: Duration::from_millis(1),
        ..RedisLockSettings::default()
    };
    change(&mut settings);
    RedisSeatLock::new(db.store(), conn, settings)
}

async fn redis_fixture() -> LockFixture {
    let (db, redis) = (TestDb::new().await, TestRedis::new().await);
    let store = db.store();
    LockFixture::on_postgres(
        &store,
        Arc::new(instance(&db, &redis, Duration::from_secs(5)).await),
        Arc::new(instance(&db, &redis, Duration::from_secs(5)).await),
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
    let slow = instance(&db, &redis, Duration::from_millis(200)).await;
    let other = instance(&db, &redis, Duration::from_secs(5)).await;
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
    // Its release deletes nothing (the lock it wrote expired long ago; the
    // seat is marked held by the other server) and gives its stock back.
    let refused = Err(HoldError::SeatTaken(
        stale_request.seat_ids.as_slice().to_vec(),
    ));
    let released = slow.release_locks(&stale_locks, &refused).await.unwrap();
    assert_eq!((released.locks, released.stock), (0, 1));
    assert_eq!(stock(&redis, &slow, schedule).await, 1, "seat 2 is free");

    let report = f.audit(schedule).await;
    assert_eq!(
        (report.active_reservations, report.held),
        (1, 1),
        "one holder, from the database"
    );
    assert!(report.violations().is_empty(), "{:?}", report.violations());
    drop((conn, db, redis));
}

/// Release deletes only the locks the request still owns, and the stock
/// comes out exact even when a lease ran out and another request took over.
#[tokio::test(flavor = "multi_thread")]
async fn release_never_deletes_another_owners_lock() {
    let (db, redis) = (TestDb::new().await, TestRedis::new().await);
    // Long enough that b's first try always finds a's locks, even on a loaded machine.
    let a = instance(&db, &redis, Duration::from_millis(800)).await;
    let b = instance(&db, &redis, Duration::from_secs(5)).await;
    let store = db.store();
    let f = LockFixture::on_postgres(&store, Arc::new(a.clone()), Arc::new(b.clone()), ());
    let (schedule, seats) = f.schedule_with_seats(4).await;
    let user = f.users(1).await[0];
    let req = request(user, schedule, &seats[..2]);
    let a_locks = a.acquire_locks(&req).await.unwrap();
    assert!(
        matches!(b.acquire_locks(&req).await, Err(HoldError::SeatTaken(_))),
        "all or nothing: both busy"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let b_locks = b.acquire_locks(&req).await.unwrap();
    assert!(b_locks.token > a_locks.token, "fencing tokens only grow");
    let gave_up = Err(HoldError::Contention);
    let released = a.release_locks(&a_locks, &gave_up).await.unwrap();
    assert_eq!(
        (released.locks, released.stock),
        (0, 2),
        "a's stock, not b's locks"
    );
    let released = b.release_locks(&b_locks, &gave_up).await.unwrap();
    assert_eq!((released.locks, released.stock), (2, 2));
    assert_eq!(
        stock(&redis, &a, schedule).await,
        4,
        "every seat free, counted once"
    );
    drop((db, redis));
}

/// A request for a seat that is held, or locked by a hold in flight, is
/// refused in Redis before anything is taken: the stock stays as it was, and
/// so do the other seats of a multi-seat request.
#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_for_a_taken_or_locked_seat_leaves_the_stock_unchanged() {
    let (db, redis, lock, f) = one_instance(Duration::from_secs(5)).await;
    let (schedule, seats) = f.schedule_with_seats(4).await;
    let users = f.users(3).await;
    f.lock
        .hold_seats(&request(users[0], schedule, &seats[..1]))
        .await
        .unwrap();
    assert_eq!(stock(&redis, &lock, schedule).await, 3);

    for _ in 0..20 {
        let err = f
            .lock
            .hold_seats(&request(users[1], schedule, &seats[..2]))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, HoldError::SeatTaken(s) if s == &seats[..1]),
            "{err}"
        );
    }
    assert_eq!(
        stock(&redis, &lock, schedule).await,
        3,
        "held: nothing taken"
    );

    // A hold in flight on seat 2 (its locks taken, its transaction not yet run).
    let in_flight = request(users[2], schedule, &seats[1..2]);
    let locks = lock.acquire_locks(&in_flight).await.unwrap();
    assert_eq!(stock(&redis, &lock, schedule).await, 2);
    for wanted in [&seats[1..2], &seats[1..3]] {
        let err = f
            .lock
            .hold_seats(&request(users[1], schedule, wanted))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, HoldError::SeatTaken(s) if s == &seats[1..2]),
            "{err}"
        );
    }
    assert_eq!(
        stock(&redis, &lock, schedule).await,
        2,
        "locked: nothing taken"
    );
    assert_eq!(
        mark(&redis, &lock, schedule, seats[2]).await,
        None,
        "seat 3 untouched"
    );

    let written = lock.write_hold(&in_flight).await;
    lock.release_locks(&locks, &written).await.unwrap();
    assert_eq!(stock(&redis, &lock, schedule).await, 2, "seats 3 and 4");
    let report = f.audit(schedule).await;
    assert_eq!((report.held, report.active_reservations), (2, 2));
    assert!(report.violations().is_empty(), "{:?}", report.violations());
    drop((db, redis));
}

/// A stock set too low (to 0 with three seats free) refuses nothing that the
/// database would grant: a hold of a free seat finds the stock disagreeing
/// with the seats and resyncs it, and a refusal of a taken seat says
/// "seat taken", not "sold out", after checking. No `reconcile-stock`.
#[tokio::test(flavor = "multi_thread")]
async fn a_stock_set_too_low_by_hand_heals_without_reconcile() {
    let (db, redis, lock, f) = one_instance(Duration::from_secs(5)).await;
    let (schedule, seats) = f.schedule_with_seats(4).await;
    let users = f.users(3).await;
    f.lock
        .hold_seats(&request(users[0], schedule, &seats[..1]))
        .await
        .unwrap();

    set_stock(&redis, &lock, schedule, 0).await;
    f.lock
        .hold_seats(&request(users[1], schedule, &seats[1..2]))
        .await
        .expect("a free seat is held whatever the stock says");
    assert_eq!(
        stock(&redis, &lock, schedule).await,
        2,
        "resynced, then one taken"
    );

    set_stock(&redis, &lock, schedule, 0).await;
    let err = f
        .lock
        .hold_seats(&request(users[2], schedule, &seats[..1]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, HoldError::SeatTaken(_)),
        "two seats are free: {err}"
    );
    assert_eq!(
        stock(&redis, &lock, schedule).await,
        2,
        "resynced by the refusal"
    );

    let report = f.audit(schedule).await;
    assert_eq!((report.held, report.available), (2, 2));
    drop((db, redis));
}

/// A stock set too high (100 for two free seats) lets nothing through that
/// the seats refuse, and the next periodic resync sets it right; from then
/// on, a full schedule answers "sold out". No `reconcile-stock`.
#[tokio::test(flavor = "multi_thread")]
async fn a_stock_set_too_high_by_hand_heals_without_reconcile() {
    let (db, redis) = (TestDb::new().await, TestRedis::new().await);
    let lock = with_settings(&db, &redis, |s| s.resync_every = Duration::from_secs(3)).await;
    let store = db.store();
    let f = LockFixture::on_postgres(&store, Arc::new(lock.clone()), Arc::new(lock.clone()), ());
    let (schedule, seats) = f.schedule_with_seats(2).await;
    let users = f.users(3).await;
    f.lock
        .hold_seats(&request(users[0], schedule, &seats[..1]))
        .await
        .unwrap();

    set_stock(&redis, &lock, schedule, 100).await;
    let err = f
        .lock
        .hold_seats(&request(users[1], schedule, &seats[..1]))
        .await
        .unwrap_err();
    assert!(matches!(err, HoldError::SeatTaken(_)), "{err}");
    f.lock
        .hold_seats(&request(users[1], schedule, &seats[1..2]))
        .await
        .unwrap();
    assert_eq!(stock(&redis, &lock, schedule).await, 99, "still too high");

    // A period later, the next hold (a refusal will do) starts a resync.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let err = f
        .lock
        .hold_seats(&request(users[2], schedule, &seats[..1]))
        .await
        .unwrap_err();
    assert!(is_refusal(&err), "{err}");
    wait_for_stock(&redis, &lock, schedule, 0).await;
    let err = f
        .lock
        .hold_seats(&request(users[2], schedule, &seats[..1]))
        .await
        .unwrap_err();
    assert!(matches!(err, HoldError::SoldOut), "nothing is free: {err}");
    let report = f.audit(schedule).await;
    assert_eq!((report.held, report.active_reservations), (2, 2));
    drop((db, redis));
}

/// A Redis that lost everything (restarted without persistence) is loaded
/// again from the database by the next hold: the marks of the seats the
/// database has, and the stock.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_redis_state_is_loaded_from_the_database() {
    let (db, redis, lock, f) = one_instance(Duration::from_secs(5)).await;
    let (schedule, seats) = f.schedule_with_seats(4).await;
    let users = f.users(3).await;
    let first = f
        .lock
        .hold_seats(&request(users[0], schedule, &seats[..2]))
        .await
        .unwrap();

    delete_all_keys(&redis).await;
    let err = f
        .lock
        .hold_seats(&request(users[1], schedule, &seats[1..2]))
        .await
        .unwrap_err();
    assert!(matches!(err, HoldError::SeatTaken(_)), "{err}");
    assert_eq!(
        mark(&redis, &lock, schedule, seats[1]).await,
        Some(format!("held:{}", first.id)),
        "loaded: whose the seat is"
    );
    assert_eq!(stock(&redis, &lock, schedule).await, 2);
    f.lock
        .hold_seats(&request(users[2], schedule, &seats[2..3]))
        .await
        .unwrap();
    assert_eq!(stock(&redis, &lock, schedule).await, 1);
    drop((db, redis));
}

/// An instance that dies holding locks never gives their stock back; once
/// the leases run out, the seats are held by others anyway (the stock
/// disagrees with the free seats and is resynced), and the stock ends
/// exact. No `reconcile-stock`.
#[tokio::test(flavor = "multi_thread")]
async fn a_dead_instances_stock_comes_back_without_reconcile() {
    let (db, redis) = (TestDb::new().await, TestRedis::new().await);
    let dying = instance(&db, &redis, Duration::from_millis(200)).await;
    let lock = instance(&db, &redis, Duration::from_secs(5)).await;
    let store = db.store();
    let f = LockFixture::on_postgres(&store, Arc::new(lock.clone()), Arc::new(lock.clone()), ());
    let (schedule, seats) = f.schedule_with_seats(2).await;
    let users = f.users(2).await;
    // Locks taken, stock taken, then the process is gone.
    dying
        .acquire_locks(&request(users[0], schedule, &seats))
        .await
        .unwrap();
    assert_eq!(stock(&redis, &lock, schedule).await, 0);

    tokio::time::sleep(Duration::from_millis(300)).await;
    for (user, seat) in users.iter().zip(&seats) {
        f.lock
            .hold_seats(&request(*user, schedule, &[*seat]))
            .await
            .expect("the dead instance's seats are free");
    }
    assert_eq!(stock(&redis, &lock, schedule).await, 0);
    let report = f.audit(schedule).await;
    assert_eq!((report.held, report.active_reservations), (2, 2));
    drop((db, redis));
}

/// The seat-release consumer may deliver a release twice, or retry it after
/// a failure: the seats go back to the stock once, and they are free in
/// Redis again.
#[tokio::test(flavor = "multi_thread")]
async fn a_released_hold_gives_its_stock_back_exactly_once() {
    let (db, redis, lock, f) = one_instance(Duration::from_secs(5)).await;
    let (schedule, seats) = f.schedule_with_seats(4).await;
    let users = f.users(2).await;
    let held = f
        .lock
        .hold_seats(&request(users[0], schedule, &seats[..2]))
        .await
        .unwrap();
    assert_eq!(stock(&redis, &lock, schedule).await, 2, "2 of 4 held");
    db.store()
        .cancel_reservation(held.id, chrono::Utc::now(), None)
        .await
        .unwrap();

    assert!(
        lock.release_stock(&held).await.unwrap(),
        "first: given back"
    );
    assert!(!lock.release_stock(&held).await.unwrap(), "second: no-op");
    lock.seats_released(&held).await.unwrap();
    assert_eq!(
        stock(&redis, &lock, schedule).await,
        4,
        "2 seats back, once"
    );
    assert_eq!(mark(&redis, &lock, schedule, seats[0]).await, None);

    f.lock
        .hold_seats(&request(users[1], schedule, &seats[..2]))
        .await
        .expect("the released seats are free again");
    assert_eq!(stock(&redis, &lock, schedule).await, 2);
    drop((db, redis));
}

/// A release the consumer never delivers (the broker was down, the record
/// went to the dead-letter topic) leaves the seats marked held in Redis
/// while the database has them free; the next periodic resync frees them,
/// and the release arriving after all gives nothing back twice.
#[tokio::test(flavor = "multi_thread")]
async fn a_release_missed_by_the_consumer_heals_on_the_next_resync() {
    let (db, redis) = (TestDb::new().await, TestRedis::new().await);
    let lock = with_settings(&db, &redis, |s| s.resync_every = Duration::from_millis(300)).await;
    let store = db.store();
    let f = LockFixture::on_postgres(&store, Arc::new(lock.clone()), Arc::new(lock.clone()), ());
    let (schedule, seats) = f.schedule_with_seats(2).await;
    let users = f.users(2).await;
    let held = f
        .lock
        .hold_seats(&request(users[0], schedule, &seats[..1]))
        .await
        .unwrap();
    store
        .cancel_reservation(held.id, chrono::Utc::now(), None)
        .await
        .unwrap();

    tokio::time::sleep(Duration::from_millis(400)).await;
    // This refusal starts the periodic resync; the one after it finds the seat free.
    let _ = f
        .lock
        .hold_seats(&request(users[1], schedule, &seats[..1]))
        .await;
    wait_for_stock(&redis, &lock, schedule, 2).await;
    f.lock
        .hold_seats(&request(users[1], schedule, &seats[..1]))
        .await
        .expect("freed by the resync");
    lock.seats_released(&held).await.unwrap();
    assert_eq!(
        stock(&redis, &lock, schedule).await,
        1,
        "the late release adds nothing"
    );
    drop((db, redis));
}

/// A schedule larger than one resync slice (2,500 seats, three slices)
/// heals the same way: a release the consumer missed frees its seat on the
/// next periodic resync, and a stock set wrong by hand while nobody holds
/// is recounted from the marks.
#[tokio::test(flavor = "multi_thread")]
async fn a_large_schedule_heals_slice_by_slice() {
    let (db, redis) = (TestDb::new().await, TestRedis::new().await);
    let lock = with_settings(&db, &redis, |s| s.resync_every = Duration::from_millis(300)).await;
    let store = db.store();
    let f = LockFixture::on_postgres(&store, Arc::new(lock.clone()), Arc::new(lock.clone()), ());
    let (schedule, seats) = f.schedule_with_seats(2500).await;
    let users = f.users(2).await;
    let last = seats[seats.len() - 1];
    let held = f
        .lock
        .hold_seats(&request(users[0], schedule, &[last]))
        .await
        .unwrap();
    store
        .cancel_reservation(held.id, chrono::Utc::now(), None)
        .await
        .unwrap();
    set_stock(&redis, &lock, schedule, 7).await;

    tokio::time::sleep(Duration::from_millis(400)).await;
    // This refusal starts the periodic resync.
    let _ = f
        .lock
        .hold_seats(&request(users[1], schedule, &[last]))
        .await;
    wait_for_stock(&redis, &lock, schedule, 2500).await;
    f.lock
        .hold_seats(&request(users[1], schedule, &[last]))
        .await
        .expect("freed by the resync");
    drop((db, redis));
}

async fn stock(redis: &TestRedis, lock: &RedisSeatLock, schedule: ScheduleId) -> i64 {
    redis::cmd("GET")
        .arg(lock.keys(schedule).stock())
        .query_async(&mut redis.connection().await)
        .await
        .unwrap()
}

async fn set_stock(redis: &TestRedis, lock: &RedisSeatLock, schedule: ScheduleId, n: i64) {
    redis::cmd("SET")
        .arg(lock.keys(schedule).stock())
        .arg(n)
        .arg("KEEPTTL")
        .query_async::<()>(&mut redis.connection().await)
        .await
        .unwrap();
}

/// The seat's key: a lock, a `held:` mark, or nothing (free).
async fn mark(
    redis: &TestRedis,
    lock: &RedisSeatLock,
    schedule: ScheduleId,
    seat: SeatId,
) -> Option<String> {
    redis::cmd("GET")
        .arg(lock.keys(schedule).lock(seat))
        .query_async(&mut redis.connection().await)
        .await
        .unwrap()
}

/// A resync in the background: waits (up to 5 s) until the stock is `n`.
async fn wait_for_stock(redis: &TestRedis, lock: &RedisSeatLock, schedule: ScheduleId, n: i64) {
    let mut last = i64::MIN;
    for _ in 0..100 {
        last = stock(redis, lock, schedule).await;
        if last == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the stock stayed {last}, want {n}");
}

/// Every key of this test, as a Redis restart without persistence would.
async fn delete_all_keys(redis: &TestRedis) {
    let mut conn = redis.connection().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", redis.prefix()))
        .query_async(&mut conn)
        .await
        .unwrap();
    redis::cmd("DEL")
        .arg(&keys)
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
}

/// The design document shows the hold's statements as they run.
#[test]
fn design_md_shows_the_hold_statements() {
    for (what, sql) in [
        ("READ_SEATS", booking_lock_redis::READ_SEATS),
        ("CLAIM_SEATS", booking_lock_redis::CLAIM_SEATS),
    ] {
        booking_testkit::docs::assert_design_shows_sql("The Redis strategy", what, sql);
    }
}
