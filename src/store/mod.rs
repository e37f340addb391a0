//! Storage: the engine contract, what every engine shares, and one folder
//! per engine.

pub mod batch;
pub mod conns;
pub mod engine;
pub mod group;
pub mod head;
pub mod input;
pub mod lease;
pub mod names;
pub mod pem;
pub mod registry;
#[cfg(test)]
pub mod scratch;
pub mod server;
pub mod shared;
pub mod timestamp;
pub mod version_key;

pub mod memory;
pub mod mongo;
pub mod mysql;
pub mod neo4j;
pub mod postgres;
pub mod sqlite;

#[cfg(test)]
mod engine_tests;

pub use batch::{EventBatch, EventColumns, EventRef, StoredEvent};
pub use engine::{BoxTask, Engine, Tables, Wakeups};
pub use input::NewEvent;
