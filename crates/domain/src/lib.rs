//! The concert-booking domain: entities, value objects, state machines, typed
//! errors, the ports adapters implement, and the use cases that drive them.
//! Nothing here performs I/O or names a framework.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod audit;
pub mod catalog;
pub mod error;
pub mod events;
pub mod ids;
pub mod jobs;
pub mod ports;
pub mod reservation;
pub mod sale;
pub mod service;
pub mod text;
pub mod user;

pub use audit::*;
pub use catalog::*;
pub use error::*;
pub use events::*;
pub use ids::*;
pub use jobs::*;
pub use ports::*;
pub use reservation::*;
pub use sale::*;
pub use service::*;
pub use text::*;
pub use user::*;
