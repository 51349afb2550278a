//! Helpers shared by the cluster integration tests.

pub mod child;
pub mod cluster;
pub mod log;
pub mod ports;
pub mod serial;
