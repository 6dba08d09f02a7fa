//! The HTTP API of concert-booking (actix-web), its configuration, and the
//! composition root that picks the adapters at start-up.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod auth;
pub mod commands;
pub mod config;
pub mod connect;
pub mod dto;
pub mod error;
pub mod jobs;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod server;
pub mod sse;
pub mod state;
pub mod telemetry;
pub mod timed_lock;
pub mod wiring;

pub use config::{Secrets, Settings, Strategy};
pub use server::Application;
