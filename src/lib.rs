//! evtstore-rs: the Rust core of an evtstore-compatible event store.
//! `store/` holds the engines behind one contract, `napi/` the classes
//! JavaScript sees (docs/ARCHITECTURE.md).

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod error;
pub mod napi;
pub mod store;
