//! The N-API surface: one store class over any engine ([`store::Store`]),
//! the synchronous in-memory fast path ([`memory::MemoryStore`]), the
//! [`waiter::Waiter`], and the bridge that turns a `StoreError` into a JS
//! `Error` ([`reply`]).

pub mod batch;
pub mod leases;
pub mod memory;
pub mod reply;
pub mod store;
pub mod waiter;
