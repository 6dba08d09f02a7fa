//! In-memory adapters of every port of `booking-domain`: the fixtures of the
//! domain tests and the storage of the API's embedded mode.
//!
//! All tables live in one [`MemoryStore`] behind one mutex, so every
//! operation is one atomic "transaction" and the adapters keep the same
//! invariants under concurrency as the database-backed ones.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod audit;
mod demo;
mod event_bus;
mod leases;
mod queue;
mod reservations;
mod seat_lock;
mod store;

pub use demo::{seed_demo, DemoCatalog};
pub use event_bus::{DeadLetter, MemoryEventBus};
pub use queue::MemoryQueue;
pub use seat_lock::MemorySeatLock;
pub use store::MemoryStore;
