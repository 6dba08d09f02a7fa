//! The one-shot commands of the `booking` binary.

use booking_api::{commands, Settings};
use booking_domain::{Email, Role};
use booking_store_postgres::PgStore;
use booking_testkit::TestDb;

/// `create-admin` touches the database alone: with Redis and Kafka
/// configured at addresses where nothing listens, it still succeeds (the
/// server's wiring would ping Redis and start Kafka consumers), and the
/// account is an admin that can log in.
#[tokio::test(flavor = "multi_thread")]
async fn create_admin_needs_only_the_database() {
    let db = TestDb::new().await;
    let mut settings = Settings::default();
    settings.database.url = Some(db.url().to_owned());
    settings.redis.url = Some("redis://127.0.0.1:1".into());
    settings.events.kafka_brokers = Some("127.0.0.1:1".into());

    let admin = commands::create_admin(&settings, "boss@example.com", "admin-password")
        .await
        .expect("create-admin succeeds without Redis and Kafka");
    assert_eq!(admin.role, Role::Admin);

    let store =
        PgStore::connect(&booking_api::connect::pool_settings(&settings, db.url())).unwrap();
    let email = Email::parse("boss@example.com").unwrap();
    let stored = booking_domain::UserRepository::find_user_by_email(&store, &email)
        .await
        .unwrap()
        .expect("the account is stored");
    assert_eq!(stored.role, Role::Admin);
}

/// Run twice, `create-admin` finds the account it made: still one admin.
#[tokio::test(flavor = "multi_thread")]
async fn create_admin_twice_keeps_one_admin_account() {
    let db = TestDb::new().await;
    let mut settings = Settings::default();
    settings.database.url = Some(db.url().to_owned());
    let first = commands::create_admin(&settings, "boss@example.com", "admin-password")
        .await
        .unwrap();
    let again = commands::create_admin(&settings, "boss@example.com", "another-password")
        .await
        .unwrap();
    assert_eq!(first.id, again.id);
    assert_eq!(again.role, Role::Admin);
}
