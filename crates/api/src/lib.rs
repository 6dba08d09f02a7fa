//! The HTTP API of concert-booking (actix-web), its configuration, and the
//! composition root that picks the adapters at start-up.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod auth;
pub mod config;
pub mod dto;
pub mod error;
pub mod jobs;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod sse;
pub mod startup;
pub mod telemetry;

pub use config::{Settings, Strategy};
pub use startup::{Application, Secrets};
