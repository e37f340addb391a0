//! What a failure of the server or of a connection is told as.

use super::bolt::BoltError;
use super::pool::{AcquireError, ACQUIRE_TIMEOUT};
use super::{Neo4jEngine, ENGINE};
use crate::error::StoreError;

/// The property whose uniqueness is the version check.
pub(super) const VERSION_KEY: &str = "_streamIdVersion";

impl Neo4jEngine {
    /// Classifies a failure to get a connection.
    pub(super) fn acquire_error(&self, err: AcquireError) -> StoreError {
        match err {
            AcquireError::Closed => StoreError::StoreClosed {
                location: self.location.clone(),
                reopen: "createProvider()",
            },
            AcquireError::TimedOut => StoreError::Timeout {
                location: self.location.clone(),
                reason: format!(
                    "no connection of the pool became free within {} s: all {} of them stayed busy",
                    ACQUIRE_TIMEOUT.as_secs(),
                    self.pool.max
                ),
            },
            AcquireError::Connect(e) => self.connect_error(e),
        }
    }

    /// A failure while connecting (socket, handshake or HELLO).
    pub(super) fn connect_error(&self, err: BoltError) -> StoreError {
        let server = self.pool.address.clone();
        let user = self.user.clone().unwrap_or_default();
        match err {
            BoltError::Failure { code, message }
                if code.starts_with("Neo.ClientError.Security.") =>
            {
                StoreError::AuthFailed {
                    engine: ENGINE,
                    server,
                    user,
                    database: self.database.clone().unwrap_or_else(|| "(default)".into()),
                    reason: format!("{message} ({code})"),
                }
            }
            other => StoreError::CannotConnect {
                engine: ENGINE,
                server,
                user,
                reason: other.to_string(),
                tls: false,
            },
        }
    }

    /// Classifies a failure of a statement (a version conflict is told
    /// apart by the append itself, which knows the aggregate).
    pub(super) fn db_error(&self, err: BoltError, label: &str) -> StoreError {
        let location = self.location.clone();
        match err {
            BoltError::Failure { code, message } => {
                let reason = format!("{message} ({code})");
                match code.as_str() {
                    "Neo.ClientError.Schema.ConstraintValidationFailed" => {
                        StoreError::ConstraintViolation {
                            location,
                            table: label.to_string(),
                            reason,
                        }
                    }
                    "Neo.ClientError.Database.DatabaseNotFound" => StoreError::UnknownDatabase {
                        engine: ENGINE,
                        server: self.pool.address.clone(),
                        user: self.user.clone().unwrap_or_default(),
                        database: self.database.clone().unwrap_or_default(),
                    },
                    "Neo.ClientError.Transaction.TransactionTimedOut"
                    | "Neo.ClientError.Transaction.TransactionTimedOutClientConfiguration" => {
                        StoreError::Timeout { location, reason }
                    }
                    c if c.starts_with("Neo.ClientError.Security.") => StoreError::AuthFailed {
                        engine: ENGINE,
                        server: self.pool.address.clone(),
                        user: self.user.clone().unwrap_or_default(),
                        database: self.database.clone().unwrap_or_else(|| "(default)".into()),
                        reason,
                    },
                    // deadlocks, lock timeouts, a leader switch, a database
                    // that is starting: the same call may succeed later
                    c if c.starts_with("Neo.TransientError.") => {
                        StoreError::DatabaseBusy { location, reason }
                    }
                    _ => StoreError::Database { location, reason },
                }
            }
            BoltError::Io(reason) => StoreError::ConnectionLost { location, reason },
            BoltError::Unsupported(_) | BoltError::Protocol(_) => StoreError::Database {
                location,
                reason: err.to_string(),
            },
        }
    }

    /// The error of an append: a version conflict only when the version key
    /// was violated.
    pub(super) fn append_error(
        &self,
        err: BoltError,
        stream: &str,
        aggregate_id: &str,
    ) -> StoreError {
        match &err {
            BoltError::Failure { code, message }
                if code == "Neo.ClientError.Schema.ConstraintValidationFailed"
                    && message.contains(VERSION_KEY) =>
            {
                StoreError::VersionConflict {
                    stream: stream.to_string(),
                    aggregate_id: aggregate_id.to_string(),
                    detail: format!("a version being appended already exists ({message})"),
                }
            }
            _ => self.db_error(err, &self.events_label),
        }
    }

    /// The events or bookmarks label has not been set up.
    pub(super) fn missing(&self, label: &str) -> StoreError {
        StoreError::MissingTable {
            table: label.to_string(),
            location: self.location.clone(),
        }
    }
}
