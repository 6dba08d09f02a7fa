//! Test infrastructure shared by every crate's tests: real services (from
//! the environment, else containers), a fresh database per test, and the
//! conformance suites every `SeatLock` strategy and every `Queue` must pass.

pub mod conformance;
pub mod docs;
pub mod kafka;
pub mod postgres;
pub mod redis;

pub use kafka::TestKafka;
pub use postgres::TestDb;
pub use redis::{RedisProcess, TestRedis};
