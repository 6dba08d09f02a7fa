//! The HTTP API of concert-booking (actix-web), its configuration, and the
//! composition root that picks the adapters at start-up.
//!
//! Where things are: `routes` (handlers and the route table) share `state`
//! and nothing else of the start-up; `wiring` builds that state from the
//! settings over either store, with `connect` opening the services;
//! `server` runs HTTP and the background loops of `jobs`; `commands` are
//! the binary's one-shot commands.
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
pub mod seat_maps;
pub mod server;
pub mod sse;
pub mod startup_error;
pub mod state;
pub mod telemetry;
pub mod timed_lock;
pub mod web;
pub mod wiring;

pub use config::{Secrets, Settings, Strategy};
pub use server::Application;
