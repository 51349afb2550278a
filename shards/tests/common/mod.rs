//! Helpers shared by the cluster integration tests.
#![allow(dead_code)] // each test binary uses a different part

pub mod cluster;
pub mod log;
