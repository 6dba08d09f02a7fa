//! The shared `SeatLock` conformance suite, run against `MemorySeatLock`: the
//! in-memory strategy keeps the same invariants as the database-backed ones.

use booking_memory::{MemorySeatLock, MemoryStore};
use booking_testkit::conformance::LockFixture;
use std::sync::Arc;

async fn memory_fixture() -> LockFixture {
    let store = MemoryStore::new();
    LockFixture {
        lock: Arc::new(MemorySeatLock::new(store.clone())),
        // In memory, a second "server" can only share the store itself.
        second_instance: Arc::new(MemorySeatLock::new(store.clone())),
        catalog: Arc::new(store.clone()),
        users: Arc::new(store.clone()),
        reservations: Arc::new(store.clone()),
        audit: Arc::new(store),
        guard: Box::new(()),
    }
}

booking_testkit::seat_lock_conformance_suite!(memory_fixture);
