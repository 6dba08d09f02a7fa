//! The shared SeatLock conformance suite against PostgreSQL.

use booking_lock_pessimistic::PessimisticSeatLock;
use booking_testkit::conformance::LockFixture;
use booking_testkit::TestDb;
use std::sync::Arc;

async fn pessimistic() -> LockFixture {
    let db = TestDb::new().await;
    let store = db.store();
    LockFixture::on_postgres(
        &store,
        Arc::new(PessimisticSeatLock::new(store.clone())),
        Arc::new(PessimisticSeatLock::new(db.store())),
        db,
    )
}

booking_testkit::seat_lock_conformance_suite!(pessimistic);
