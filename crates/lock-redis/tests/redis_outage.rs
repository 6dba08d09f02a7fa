//! The strategy on the instance's one Redis connection when Redis fails: a
//! call to a Redis that is down or frozen fails within the timeout as
//! `Unavailable` (a 503) and never hangs; once Redis is back the calls work
//! again by themselves: the connection is rebuilt, the scripts are loaded
//! again (`EVALSHA`, then `SCRIPT LOAD` on `NOSCRIPT`), and the marks and
//! stock are loaded again from the database.

use booking_domain::*;
use booking_lock_redis::{redis_connection, RedisLockSettings, RedisSeatLock};
use booking_testkit::conformance::{request, LockFixture};
use booking_testkit::{RedisProcess, TestDb};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_millis(300);

/// The timeout, and room for a loaded test machine.
const FAILS_WITHIN: Duration = Duration::from_secs(1);

async fn lock_on(db: &TestDb, redis: &RedisProcess) -> (RedisSeatLock, LockFixture) {
    let conn = redis_connection(&redis.url(), TIMEOUT).await.unwrap();
    let lock = RedisSeatLock::new(db.store(), conn, RedisLockSettings::default());
    let f = LockFixture::on_postgres(
        &db.store(),
        Arc::new(lock.clone()),
        Arc::new(lock.clone()),
        (),
    );
    (lock, f)
}

/// The call's answer and how long it took; a call that hangs fails the test.
async fn timed<T>(call: impl Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the call hangs");
    (answer, started.elapsed())
}

fn unavailable<T: std::fmt::Debug>(answer: &Result<T, HoldError>) -> bool {
    matches!(answer, Err(HoldError::Repo(RepoError::Unavailable(_))))
}

#[tokio::test(flavor = "multi_thread")]
async fn holds_fail_fast_while_redis_is_down_and_work_again_after_its_restart() {
    let (db, mut redis) = (TestDb::new().await, RedisProcess::start().await);
    let (lock, f) = lock_on(&db, &redis).await;
    let (schedule, seats) = f.schedule_with_seats(3).await;
    let users = f.users(3).await;
    lock.hold_seats(&request(users[0], schedule, &seats[..1]))
        .await
        .unwrap();

    redis.stop();
    for _ in 0..3 {
        let wanted = request(users[1], schedule, &seats[1..2]);
        let (held, took) = timed(lock.hold_seats(&wanted)).await;
        assert!(unavailable(&held), "{held:?}");
        assert!(took < FAILS_WITHIN, "a hold took {took:?}");
        let (ping, took) = timed(lock.ping()).await;
        assert!(matches!(ping, Err(RepoError::Unavailable(_))), "{ping:?}");
        assert!(took < FAILS_WITHIN, "a ping took {took:?}");
    }

    // Back, empty: no marks, no stock, no scripts.
    redis.restart().await;
    // The first call may still find the connection broken (and so rebuild
    // it); the next one gets through.
    if lock.ping().await.is_err() {
        lock.ping().await.expect("reconnected by the call before");
    }
    lock.hold_seats(&request(users[1], schedule, &seats[1..2]))
        .await
        .expect("a hold after the restart");
    let refused = lock
        .hold_seats(&request(users[2], schedule, &seats[..1]))
        .await;
    assert!(
        matches!(&refused, Err(HoldError::SeatTaken(s)) if s == &seats[..1]),
        "the seat held before the restart is marked again from the database: {refused:?}"
    );
    let report = f.audit(schedule).await;
    assert_eq!(report.held, 2);
    assert!(report.violations().is_empty(), "{:?}", report.violations());
    drop(db);
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_to_a_frozen_redis_fail_after_the_timeout_and_work_again_when_it_thaws() {
    let (db, redis) = (TestDb::new().await, RedisProcess::start().await);
    let (lock, f) = lock_on(&db, &redis).await;
    let (schedule, seats) = f.schedule_with_seats(3).await;
    let users = f.users(3).await;
    lock.hold_seats(&request(users[0], schedule, &seats[..1]))
        .await
        .unwrap();

    redis.pause();
    let (held, took) = timed(lock.hold_seats(&request(users[1], schedule, &seats[1..2]))).await;
    assert!(unavailable(&held), "{held:?}");
    assert!(
        took >= TIMEOUT && took < FAILS_WITHIN,
        "a hold took {took:?}"
    );
    let (ping, took) = timed(lock.ping()).await;
    assert!(matches!(ping, Err(RepoError::Unavailable(_))), "{ping:?}");
    assert!(
        took >= TIMEOUT && took < FAILS_WITHIN,
        "a ping took {took:?}"
    );

    redis.resume();
    // The same connection answers again (late answers go to no one).
    lock.ping().await.expect("Redis thawed");
    // Seat 2, not seat 1: the abandoned hold's script runs when Redis thaws
    // and locks seat 1 until its lease ends, with nothing in the database.
    lock.hold_seats(&request(users[1], schedule, &seats[2..3]))
        .await
        .expect("a hold after the thaw");
    let report = f.audit(schedule).await;
    assert_eq!(report.held, 2);
    assert!(report.violations().is_empty(), "{:?}", report.violations());
    drop(db);
}
