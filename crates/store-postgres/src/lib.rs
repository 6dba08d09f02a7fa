//! PostgreSQL adapters (diesel + diesel-async over a deadpool pool): the
//! repositories, the outbox, job leases, the invariant audit, migrations,
//! and the transaction helpers the lock strategies share.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod audit;
mod catalog;
mod error;
pub mod holds;
mod leases;
mod migrate;
mod models;
mod outbox;
mod pool;
pub mod prepared;
mod reservations;
pub mod schema;
mod transitions;
pub mod tx;
mod users;

pub use error::{
    constraint_violated, is_bigint_overflow, is_connection_lost, is_transient_conflict, repo_error,
};
pub use holds::hold_error;
pub use migrate::{run_migrations, MigrationError};
pub use models::ReservationRow;
pub use outbox::write_outbox;
pub use pool::{PgConn, PgPool, PgStore, PoolSettings, StoreError};
pub use reservations::load_reservation;
pub use transitions::release_reservation;
