//! For the PostgreSQL strategies: a hold is one statement, prepared once per
//! connection, on a session whose timeouts were set when it connected.

use super::{request, LockFixture};
use crate::TestDb;
use booking_domain::SeatLock;
use booking_store_postgres::tx::TxTimeouts;
use booking_store_postgres::{PgStore, PoolSettings};
use diesel::sql_types::{BigInt, Text};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use std::sync::Arc;
use std::time::Duration;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    lock_timeout: String,
}

/// Five holds through `make(store)` on a pool of one connection; then that
/// connection has prepared exactly one statement containing `marker` (the
/// hold, prepared by the first hold and reused by the others) and carries
/// the pool's `lock_timeout`.
pub async fn hold_is_prepared_once_per_connection(
    db: TestDb,
    make: impl Fn(PgStore) -> Arc<dyn SeatLock>,
    marker: &str,
) {
    let mut settings = PoolSettings::new(db.url());
    settings.max_size = 1;
    settings.tx_timeouts = TxTimeouts {
        lock: Duration::from_millis(2345),
        statement: Duration::from_secs(30),
    };
    let store = PgStore::connect(&settings).unwrap();
    let lock = make(store.clone());
    let f = LockFixture::on_postgres(&store, lock.clone(), lock, db);
    let (schedule, seats) = f.schedule_with_seats(5).await;
    let users = f.users(5).await;
    for (user, seat) in users.iter().zip(&seats) {
        let held = f.lock.hold_seats(&request(*user, schedule, &[*seat])).await;
        assert!(held.is_ok(), "{held:?}");
    }

    let mut conn = store.conn().await.unwrap();
    let prepared: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_prepared_statements WHERE statement LIKE '%' || $1 || '%'",
    )
    .bind::<Text, _>(marker)
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(prepared.n, 1, "five holds, one prepared hold statement");
    let timeout: Setting = diesel::sql_query("SHOW lock_timeout")
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(timeout.lock_timeout, "2345ms", "set once, when connecting");
}
