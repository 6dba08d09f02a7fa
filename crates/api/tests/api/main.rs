//! Black-box tests of the HTTP API on a random port, against a fresh
//! PostgreSQL database per test and the pessimistic strategy.

mod admin;
mod auth;
mod bad_input;
mod booking;
mod buyer_limit;
mod commands;
mod connection_loss;
mod embedded;
mod expiry;
mod fuzz;
mod helpers;
mod metrics;
mod monitor;
mod queue;
mod redis_outage;
mod seat_map;
mod web;
