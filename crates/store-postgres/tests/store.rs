//! The PostgreSQL store against a real database: schema, job leases, outbox.

use booking_domain::*;
use booking_store_postgres::schema::*;
use booking_testkit::TestDb;
use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use std::sync::Arc;

/// `schema.rs` is written by hand: every table and column it names must
/// exist in the migrated database.
#[tokio::test(flavor = "multi_thread")]
async fn schema_matches_migrations() {
    let db = TestDb::new().await;
    let mut conn = db.connection().await;
    macro_rules! columns_exist {
        ($($table:ident),*) => {$(
            $table::table
                .select($table::all_columns)
                .limit(0)
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("table {}: {e}", stringify!($table)));
        )*};
    }
    columns_exist!(
        users,
        concerts,
        concert_schedules,
        seats,
        reservations,
        reservation_seats,
        payments,
        outbox,
        processed_events,
        job_leases,
        buyer_seats
    );
}

/// The seat-map reads agree with the seats, some of them held or sold.
#[tokio::test(flavor = "multi_thread")]
async fn seat_map_reads_agree_with_the_seats() {
    use booking_testkit::conformance::catalog;
    let db = TestDb::new().await;
    let store = db.store();
    let schedule = catalog::schedule_for_seat_map(&store).await;
    let mut conn = db.connection().await;
    diesel::sql_query(
        "UPDATE seats SET status = CASE WHEN id % 3 = 0 THEN 'RESERVED' ELSE 'HELD' END
          WHERE schedule_id = $1 AND id % 2 = 0",
    )
    .bind::<diesel::sql_types::BigInt, _>(schedule.id.0)
    .execute(&mut conn)
    .await
    .unwrap();
    catalog::seat_map_reads_agree_with_the_seats(&store, &schedule).await;
}

/// Exactly one owner holds a lease until it runs out; then another may take it.
#[tokio::test(flavor = "multi_thread")]
async fn job_lease_has_one_holder_until_it_expires() {
    let db = TestDb::new().await;
    let store = db.store();
    let now = Utc::now();
    let until = now + Duration::seconds(30);
    assert!(store
        .try_acquire("expire-holds", "a", now, until)
        .await
        .unwrap());
    assert!(!store
        .try_acquire("expire-holds", "b", now, until)
        .await
        .unwrap());
    assert!(
        store
            .try_acquire("expire-holds", "a", now, until)
            .await
            .unwrap(),
        "the holder renews"
    );
    let later = until + Duration::seconds(1);
    assert!(store
        .try_acquire("expire-holds", "b", later, later + Duration::seconds(30))
        .await
        .unwrap());
    store.release("expire-holds", "b").await.unwrap();
    assert!(store
        .try_acquire("expire-holds", "a", later, later + Duration::seconds(30))
        .await
        .unwrap());
}

/// Of many instances racing for a free lease at the same moment, one wins.
#[tokio::test(flavor = "multi_thread")]
async fn one_of_ten_racing_instances_takes_the_lease() {
    let db = TestDb::new().await;
    let now = Utc::now();
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let store = db.store();
            tokio::spawn(async move {
                store
                    .try_acquire(
                        "job",
                        &format!("instance-{i}"),
                        now,
                        now + Duration::seconds(30),
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1);
}

/// Two relays never hold the same rows; a released or lapsed claim is
/// taken again (at-least-once); published rows are done.
#[tokio::test(flavor = "multi_thread")]
async fn relays_claim_disjoint_batches_oldest_first() {
    let db = TestDb::new().await;
    let store = db.store();
    let mut conn = db.connection().await;
    write_events(&mut conn, 3).await;
    let now = Utc::now();
    let later = now + Duration::seconds(30);
    let keys = |events: &[OutboxEvent]| events.iter().map(|e| e.key.clone()).collect::<Vec<_>>();
    let a = store.claim_unpublished("a", 2, now, later).await.unwrap();
    assert_eq!(keys(&a), ["0", "1"]);
    let b = store.claim_unpublished("b", 10, now, later).await.unwrap();
    assert_eq!(keys(&b), ["2"], "b skips a's live claim");
    assert_eq!(store.backlog(now).await.unwrap().unpublished, 3);

    store.mark_published(&[a[0].id], now).await.unwrap();
    store.release_claims("a", &[a[1].id]).await.unwrap();
    let again = store.claim_unpublished("b", 10, now, later).await.unwrap();
    assert_eq!(keys(&again), ["1"], "a gave row 1 back; row 0 is published");
    let lapsed = store
        .claim_unpublished("c", 10, later, later + Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(
        keys(&lapsed),
        ["1", "2"],
        "b's claims ran out without a publish"
    );
    assert_eq!(store.backlog(now).await.unwrap().unpublished, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_processes_an_event_once() {
    let db = TestDb::new().await;
    let store = db.store();
    assert!(store.mark_processed("seat-release", "42").await.unwrap());
    assert!(!store.mark_processed("seat-release", "42").await.unwrap());
    assert!(
        store.mark_processed("notification", "42").await.unwrap(),
        "per consumer"
    );
}

/// A seat HELD with no reservation at all is reported (it would otherwise
/// slip through a NULL comparison).
#[tokio::test(flavor = "multi_thread")]
async fn audit_reports_a_held_seat_without_a_reservation() {
    let db = TestDb::new().await;
    let store = db.store();
    let concert = store
        .insert_concert(&ConcertDetails::parse("A", "B", "C", "").unwrap())
        .await
        .unwrap();
    let grid = SeatGrid::parse(vec![SectionSpec {
        name: "A".into(),
        rows: 1,
        seats_per_row: 2,
        price: 1,
    }])
    .unwrap();
    let schedule = store
        .insert_schedule(concert.id, Utc::now(), &grid, &SaleSettings::default())
        .await
        .unwrap()
        .unwrap();
    let mut conn = db.connection().await;
    diesel::sql_query("UPDATE seats SET status = 'HELD' WHERE id = (SELECT min(id) FROM seats)")
        .execute(&mut conn)
        .await
        .unwrap();
    let report = store.audit_schedule(schedule.id).await.unwrap();
    assert_eq!(report.status_mismatches.len(), 1);
    assert!(!report.violations().is_empty());
}

/// The pruner deletes outbox rows published, and processed marks written,
/// longer ago than it keeps; never an unpublished row. One instance a
/// period, by lease.
#[tokio::test(flavor = "multi_thread")]
async fn the_pruner_deletes_only_old_published_rows_and_old_marks() {
    let db = TestDb::new().await;
    let store = db.store();
    let mut conn = db.connection().await;
    write_events(&mut conn, 4).await;
    let outbox_ids = |conn: &mut diesel_async::AsyncPgConnection| {
        diesel::sql_query("SELECT id FROM outbox ORDER BY id").load::<IdRow>(conn)
    };
    let ids: Vec<i64> = outbox_ids(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    let now = Utc::now();
    store
        .mark_published(&ids[..2], now - Duration::days(10))
        .await
        .unwrap();
    store.mark_published(&ids[2..3], now).await.unwrap();
    assert!(store.mark_processed("notification", "old").await.unwrap());
    assert!(store.mark_processed("notification", "new").await.unwrap());
    diesel::sql_query(
        "UPDATE processed_events SET processed_at = now() - interval '10 days' WHERE event_id = 'old'",
    )
    .execute(&mut conn)
    .await
    .unwrap();

    let pruner = |owner: &str| RowPruner {
        outbox: Arc::new(store.clone()),
        processed: Arc::new(store.clone()),
        leases: Arc::new(store.clone()),
        owner: owner.into(),
        period: Duration::hours(1),
        keep: Duration::days(8),
        batch: 1, // every batch loop runs more than once
        counters: Arc::new(JobCounters::default()),
    };
    let pruned = pruner("a").prune(now).await.unwrap();
    assert_eq!(
        pruned,
        Some(Pruned {
            outbox: 2,
            processed: 1
        })
    );
    assert_eq!(
        pruner("b").prune(now).await.unwrap(),
        None,
        "a holds the lease"
    );

    let left: Vec<i64> = outbox_ids(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(left, ids[2..], "the recent and the unpublished rows stay");
    assert!(
        store.mark_processed("notification", "old").await.unwrap(),
        "the old mark is gone"
    );
    assert!(
        !store.mark_processed("notification", "new").await.unwrap(),
        "the recent mark stays"
    );
}

#[derive(diesel::QueryableByName)]
struct IdRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}

/// Writes `n` outbox rows, keyed "0".."n-1".
async fn write_events(conn: &mut diesel_async::AsyncPgConnection, n: usize) {
    for i in 0..n {
        booking_store_postgres::write_outbox(
            conn,
            &NewOutboxEvent {
                topic: topics::RESERVATION_HELD,
                key: i.to_string(),
                payload: serde_json::json!({"n": i}),
                request_id: None,
            },
        )
        .await
        .unwrap();
    }
}

#[derive(QueryableByName)]
struct NRow {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    n: i32,
}

/// PostgreSQL commits a statement run outside a transaction only after it
/// has sent the statement's rows. An error at that commit (here a deferred
/// unique constraint; in a chaos run, a backend terminated just before it)
/// must reach the writer: a write that rolled back is never acknowledged.
#[tokio::test(flavor = "multi_thread")]
async fn a_write_that_fails_at_its_commit_is_not_acknowledged() {
    use booking_store_postgres::tx::committed_row;
    use diesel::result::{DatabaseErrorKind, Error};
    let db = TestDb::new().await;
    let mut conn = db.connection().await;
    diesel::sql_query("CREATE TABLE once (n int UNIQUE DEFERRABLE INITIALLY DEFERRED)")
        .execute(&mut conn)
        .await
        .unwrap();
    let insert = || diesel::sql_query("INSERT INTO once VALUES (1) RETURNING n");
    let first = committed_row::<_, NRow>(insert(), &mut conn).await.unwrap();
    assert_eq!(first.map(|r| r.n), Some(1));
    let second = committed_row::<_, NRow>(insert(), &mut conn).await;
    assert!(
        matches!(
            second,
            Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _))
        ),
        "the second insert's commit failed, yet it was answered {:?}",
        second.map(|r| r.map(|r| r.n))
    );
    let rows: Vec<NRow> = diesel::sql_query("SELECT n FROM once")
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
}
