//! Conformance suites: the behaviour a port promises, written once and run
//! against every adapter of it, each from its crate's `tests/` with one
//! macro line over a fixture.
//!
//! - [`seat_lock`]: every `SeatLock` strategy, `seat_lock_conformance_suite!`;
//! - [`queue`]: every `Queue` (waiting room), `queue_conformance_suite!`;
//! - [`catalog`]: the seat-map reads of every `CatalogRepository`, two
//!   functions an adapter's test calls.

pub mod catalog;
pub mod queue;
pub mod seat_lock;

pub use queue::QueueFixture;
pub use seat_lock::{
    hold_is_prepared_once_per_connection, insert_users, is_refusal, race, race_across, request,
    LockFixture,
};
