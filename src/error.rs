//! The one error type of the core, and its single conversion into a JS error.
//!
//! Every variant has a stable `code` (the table in docs/errors.md); the
//! `Display` text is the human message: what was wrong and what to do;
//! [`StoreError::retryable`] says whether the same call may succeed later.
//! Nothing here names an engine except through a variant's `engine` field
//! (its name for people: "SQLite", "PostgreSQL", ...).

use thiserror::Error;

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum StoreError {
    /// One of the versions being appended already exists for the aggregate.
    #[error(
        "version conflict on stream \"{stream}\", aggregate \"{aggregate_id}\": {detail}; nothing was stored, reload the aggregate and retry the command"
    )]
    VersionConflict {
        stream: String,
        aggregate_id: String,
        detail: String,
    },

    /// An event that is not an object with a string `type`, or events JSON
    /// that cannot be parsed.
    #[error("{0}")]
    InvalidEvent(String),

    /// A bad position, limit, version, stream list, file name, ...
    #[error("{0}")]
    InvalidArgument(String),

    /// An unsafe table name.
    #[error("{0}")]
    InvalidName(String),

    /// The table does not exist.
    #[error("table \"{table}\" does not exist in {location}: run migrate() first")]
    MissingTable { table: String, location: String },

    /// The database file cannot be opened or created.
    #[error("cannot open the {engine} database {location}: {reason}")]
    CannotOpen {
        engine: &'static str,
        location: String,
        reason: String,
    },

    /// The database stayed locked past the busy timeout.
    #[error("{location} is busy: {reason}; another connection or process held the lock too long, retry later")]
    DatabaseBusy { location: String, reason: String },

    /// The store was closed.
    #[error("the store on {location} is closed: open a new one with {reopen}")]
    StoreClosed {
        location: String,
        reopen: &'static str,
    },

    /// The database server cannot be reached (refused, unknown host, no
    /// answer, TLS failure, no free connection slot).
    #[error("cannot connect to {engine} at {server} as user \"{user}\": {reason}")]
    CannotConnect {
        engine: &'static str,
        server: String,
        user: String,
        reason: String,
        /// The TLS handshake or certificates failed: retrying will not cure it.
        tls: bool,
    },

    /// The server rejected the user or its password.
    #[error("{engine} at {server} rejected user \"{user}\" for database \"{database}\": {reason}; check the user name and password")]
    AuthFailed {
        engine: &'static str,
        server: String,
        user: String,
        database: String,
        reason: String,
    },

    /// The database named in the URL does not exist on the server.
    #[error("database \"{database}\" does not exist on {engine} at {server} (connecting as user \"{user}\"): create it, or fix the database name in the URL")]
    UnknownDatabase {
        engine: &'static str,
        server: String,
        user: String,
        database: String,
    },

    /// An established connection broke during an operation.
    #[error("the connection to {location} was lost: {reason}")]
    ConnectionLost { location: String, reason: String },

    /// A statement ran past a time limit, or no connection became free in
    /// time.
    #[error("timeout on {location}: {reason}")]
    Timeout { location: String, reason: String },

    /// A constraint other than the version check (another unique index, a
    /// NOT NULL or CHECK constraint someone added) rejected the write.
    #[error("a constraint of table \"{table}\" on {location} rejected the write: {reason}; nothing was stored (this is not a version conflict)")]
    ConstraintViolation {
        location: String,
        table: String,
        reason: String,
    },

    /// Anything else from the database, with its message.
    #[error("database error on {location}: {reason}")]
    Database { location: String, reason: String },
}

impl StoreError {
    /// The stable code that JS sees as `err.code`.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::VersionConflict { .. } => "VERSION_CONFLICT",
            StoreError::InvalidEvent(_) => "INVALID_EVENT",
            StoreError::InvalidArgument(_) => "INVALID_ARGUMENT",
            StoreError::InvalidName(_) => "INVALID_NAME",
            StoreError::MissingTable { .. } => "MISSING_TABLE",
            StoreError::CannotOpen { .. } => "CANNOT_OPEN",
            StoreError::DatabaseBusy { .. } => "DATABASE_BUSY",
            StoreError::StoreClosed { .. } => "STORE_CLOSED",
            StoreError::CannotConnect { .. } => "CANNOT_CONNECT",
            StoreError::AuthFailed { .. } => "AUTH_FAILED",
            StoreError::UnknownDatabase { .. } => "UNKNOWN_DATABASE",
            StoreError::ConnectionLost { .. } => "CONNECTION_LOST",
            StoreError::Timeout { .. } => "TIMEOUT",
            StoreError::ConstraintViolation { .. } => "CONSTRAINT_VIOLATION",
            StoreError::Database { .. } => "DATABASE_ERROR",
        }
    }

    /// Whether the same call may succeed when it is made again later: the
    /// fault can pass by itself (a server that is down or restarting, a
    /// broken connection, a lock held by another process, a busy pool).
    pub fn retryable(&self) -> bool {
        match self {
            StoreError::CannotConnect { tls, .. } => !tls,
            StoreError::ConnectionLost { .. }
            | StoreError::Timeout { .. }
            | StoreError::DatabaseBusy { .. } => true,
            _ => false,
        }
    }

    /// A conflict on versions `first` to `last` of an aggregate.
    pub fn version_conflict(stream: &str, aggregate_id: &str, first: i64, last: i64) -> Self {
        let detail = if first == last {
            format!("version {first} already exists")
        } else {
            format!("one of versions {first} to {last} already exists")
        };
        StoreError::VersionConflict {
            stream: stream.to_string(),
            aggregate_id: aggregate_id.to_string(),
            detail,
        }
    }

    pub fn invalid_argument(msg: impl Into<String>) -> Self {
        StoreError::InvalidArgument(msg.into())
    }

    pub fn invalid_event(msg: impl Into<String>) -> Self {
        StoreError::InvalidEvent(msg.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        let e = StoreError::MissingTable {
            table: "events".into(),
            location: "/tmp/x.sqlite".into(),
        };
        assert_eq!(e.code(), "MISSING_TABLE");
        assert_eq!(
            e.to_string(),
            "table \"events\" does not exist in /tmp/x.sqlite: run migrate() first"
        );
        assert!(!e.retryable());
        let connect = |tls| StoreError::CannotConnect {
            engine: "PostgreSQL",
            server: "127.0.0.1:1".into(),
            user: "u".into(),
            reason: "refused".into(),
            tls,
        };
        assert!(connect(false).retryable());
        assert!(!connect(true).retryable());
        assert!(connect(false)
            .to_string()
            .starts_with("cannot connect to PostgreSQL at 127.0.0.1:1"));
    }
}
