//! The shared SeatLock conformance suite against PostgreSQL.

use booking_lock_pessimistic::PessimisticSeatLock;
use booking_testkit::conformance::LockFixture;
use booking_testkit::TestDb;
use std::sync::Arc;

async fn pessimistic() -> LockFixture {
    let db = TestDb::new().await;
    let store = db.store();
    LockFixture {
        lock: Arc::new(PessimisticSeatLock::new(store.clone())),
        second_instance: Arc::new(PessimisticSeatLock::new(db.store())),
        catalog: Arc::new(store.clone()),
        users: Arc::new(store.clone()),
        audit: Arc::new(store),
        guard: Box::new(db),
    }
}

booking_testkit::seat_lock_conformance_suite!(pessimistic);
