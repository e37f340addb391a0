//! What a failure of the server or of the connection is told as. Only a
//! duplicate key on (stream, aggregateId, version) is a version conflict;
//! the append tells it apart (`append.rs`).

use mongodb::error::{Error, ErrorKind, WriteFailure};

use super::{MongoEngine, ENGINE};
use crate::error::StoreError;

/// The server code of a duplicate key.
pub(super) const DUPLICATE_KEY: i32 = 11000;

/// Codes that mean the server is shutting down, stepping down or not the
/// primary (a replica set electing): the same call may succeed later.
const TRANSIENT_CODES: [i32; 11] = [6, 7, 89, 91, 189, 9001, 10107, 11600, 11602, 13435, 13436];

impl MongoEngine {
    /// Classifies an error of the driver.
    pub(super) fn db_error(&self, err: Error) -> StoreError {
        let location = self.location.clone();
        let server = || {
            self.location
                .strip_prefix("MongoDB ")
                .unwrap_or(&self.location)
                .to_string()
        };
        let transient = err.contains_label("RetryableWriteError")
            || err.contains_label("TransientTransactionError");
        match *err.kind {
            ErrorKind::Shutdown => self.closed_error(),
            ErrorKind::ServerSelection { ref message, .. } => StoreError::CannotConnect {
                engine: ENGINE,
                server: server(),
                user: self.user.clone(),
                reason: format!("no server could be selected: {}", first_line(message)),
                tls: false,
            },
            ErrorKind::DnsResolve { ref message, .. } => StoreError::CannotConnect {
                engine: ENGINE,
                server: server(),
                user: self.user.clone(),
                reason: format!("DNS lookup failed: {message}"),
                tls: false,
            },
            ErrorKind::InvalidTlsConfig { ref message, .. } => StoreError::CannotConnect {
                engine: ENGINE,
                server: server(),
                user: self.user.clone(),
                reason: format!("TLS settings: {message}"),
                tls: true,
            },
            ErrorKind::Authentication { ref message, .. } => StoreError::AuthFailed {
                engine: ENGINE,
                server: server(),
                user: self.user.clone(),
                database: self.database_name(),
                reason: message.clone(),
            },
            ErrorKind::Io(ref e) => StoreError::ConnectionLost {
                location,
                reason: format!("{e}; retry when the server is reachable again"),
            },
            ErrorKind::ConnectionPoolCleared { ref message, .. } => StoreError::ConnectionLost {
                location,
                reason: message.clone(),
            },
            ErrorKind::Command(ref c) => self.coded(c.code, &c.message, transient),
            ErrorKind::Write(WriteFailure::WriteError(ref w)) => {
                self.coded(w.code, &w.message, transient)
            }
            ErrorKind::Write(WriteFailure::WriteConcernError(ref w)) => StoreError::Database {
                location,
                reason: format!(
                    "write concern failed: {} (code {}); the write may or may not have been applied",
                    w.message, w.code
                ),
            },
            ErrorKind::InsertMany(ref m) => {
                match m.write_errors.as_ref().and_then(|w| w.first()) {
                    Some(w) => self.coded(w.code, &w.message, transient),
                    None => StoreError::Database {
                        location,
                        reason: err.to_string(),
                    },
                }
            }
            _ if transient => StoreError::ConnectionLost {
                location,
                reason: err.to_string(),
            },
            _ => StoreError::Database {
                location,
                reason: err.to_string(),
            },
        }
    }

    /// An error the server answered with a code.
    fn coded(&self, code: i32, message: &str, transient: bool) -> StoreError {
        let location = self.location.clone();
        let reason = format!("{} (code {code})", first_line(message));
        match code {
            DUPLICATE_KEY => StoreError::ConstraintViolation {
                location,
                table: self.events_name.clone(),
                reason,
            },
            // ExceededTimeLimit, MaxTimeMSExpired
            50 | 262 if !transient => StoreError::Timeout { location, reason },
            // Unauthorized
            13 => StoreError::AuthFailed {
                engine: ENGINE,
                server: location,
                user: self.user.clone(),
                database: self.database_name(),
                reason,
            },
            c if transient || TRANSIENT_CODES.contains(&c) => {
                StoreError::ConnectionLost { location, reason }
            }
            _ => StoreError::Database { location, reason },
        }
    }

    fn database_name(&self) -> String {
        self.events.namespace().db
    }
}

/// Whether the server answered the write (so nothing more of it can land
/// later), or it was never sent: the append may then clean up at once.
pub(super) fn outcome_known(err: &Error) -> bool {
    matches!(
        *err.kind,
        ErrorKind::InsertMany(_)
            | ErrorKind::Write(WriteFailure::WriteError(_))
            | ErrorKind::ServerSelection { .. }
            | ErrorKind::ConnectionPoolCleared { .. }
            | ErrorKind::Shutdown
            | ErrorKind::BsonSerialization(_)
            | ErrorKind::InvalidArgument { .. }
    )
}

/// The write errors of an insert that are duplicate keys, with the index
/// of the failing document and the server's message.
pub(super) fn duplicate_keys(err: &Error) -> Vec<(usize, String)> {
    match &*err.kind {
        ErrorKind::InsertMany(m) => m
            .write_errors
            .iter()
            .flatten()
            .filter(|w| w.code == DUPLICATE_KEY)
            .map(|w| (w.index, w.message.clone()))
            .collect(),
        ErrorKind::Write(WriteFailure::WriteError(w)) if w.code == DUPLICATE_KEY => {
            vec![(0, w.message.clone())]
        }
        _ => Vec::new(),
    }
}

/// The index a duplicate key message names (`... index: NAME dup key:
/// ...`, as MongoDB says it; FerretDB names none).
pub(super) fn index_named(message: &str) -> Option<&str> {
    let rest = message.split(" index: ").nth(1)?;
    Some(rest.split(" dup key").next().unwrap_or(rest).trim())
}

fn first_line(text: &str) -> &str {
    let line = text.lines().next().unwrap_or(text);
    if line.len() > 400 {
        let mut end = 400;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        &line[..end]
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_index_of_a_duplicate_key_message() {
        assert_eq!(
            index_named("E11000 duplicate key error collection: app.events index: stream-id-version-index dup key: { stream: \"s\" }"),
            Some("stream-id-version-index")
        );
        assert_eq!(
            index_named("E11000 duplicate key error collection: app.events"),
            None
        );
    }
}
