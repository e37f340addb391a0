//! What a failure of the database or of a connection is told as.

use sqlx::postgres::{PgConnection, PgDatabaseError};

use super::options::connect_error;
use super::sql::{truncate_ident_to, INDEX_COLUMNS_SQL};
use super::PostgresEngine;
use crate::error::StoreError;
use crate::store::conns::{AcquireError, ACQUIRE_TIMEOUT};
use crate::store::version_key::{is_version_key, named_like_version_index};

/// What reopens a closed store, for `STORE_CLOSED`.
const REOPEN: &str = "PostgresStore.open()";

pub(super) use crate::store::names::Table;

impl PostgresEngine {
    /// Classifies a failure to get a connection.
    pub(super) fn acquire_error(&self, err: AcquireError) -> StoreError {
        err.into_store_error(&self.target, REOPEN, self.conns.max, |e| {
            connect_error(&self.target, e)
        })
    }

    /// The error of an append whose connection broke after the statement
    /// was sent and whose retry then failed: the first attempt may have
    /// committed, and nobody can tell until the server is reachable again.
    pub(super) fn outcome_unknown(&self, err: StoreError) -> StoreError {
        StoreError::ConnectionLost {
            location: self.location.clone(),
            reason: format!(
                "the connection broke while an append was being sent, and trying again failed ({err}): the events may have been stored; reload the aggregate before retrying the command"
            ),
        }
    }

    /// Classifies a database failure (a version conflict is told apart by
    /// the append itself).
    pub(super) fn db_error(&self, err: sqlx::Error, table: Table) -> StoreError {
        let location = self.location.clone();
        let table_name = match table {
            Table::Events => &self.events_table,
            Table::Bookmarks => &self.bookmarks_table,
        };
        match err {
            sqlx::Error::Database(db) => {
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                let message = db.message().to_string();
                let detail = db
                    .try_downcast_ref::<PgDatabaseError>()
                    .and_then(|e| e.detail())
                    .map(|d| format!(" ({})", shorten(d, 200)))
                    .unwrap_or_default();
                match code.as_str() {
                    "42P01" => StoreError::MissingTable {
                        table: table_name.clone(),
                        location,
                    },
                    c if c.starts_with("23") => StoreError::ConstraintViolation {
                        location,
                        table: table_name.clone(),
                        reason: format!("{message}{detail} (SQLSTATE {c})"),
                    },
                    "57014" => StoreError::Timeout {
                        location,
                        reason: format!(
                            "{message} (SQLSTATE 57014: statement_timeout, or the query was cancelled)"
                        ),
                    },
                    "55P03" | "40P01" | "40001" | "53300" => StoreError::DatabaseBusy {
                        location,
                        reason: format!("{message} (SQLSTATE {code})"),
                    },
                    "3D000" => self.target.unknown_database(),
                    c if c.starts_with("28") => {
                        self.target.auth_failed(format!("{message} (SQLSTATE {c})"))
                    }
                    c if c.starts_with("08") || c.starts_with("57P") => {
                        StoreError::ConnectionLost {
                            location,
                            reason: format!("{message} (SQLSTATE {c})"),
                        }
                    }
                    c => {
                        let hint = if matches!(c, "42703" | "42804" | "42883" | "42P10") {
                            format!(
                                " (table \"{table_name}\" does not have the layout that migrate() creates)"
                            )
                        } else {
                            String::new()
                        };
                        StoreError::Database {
                            location,
                            reason: format!("{message}{detail}{hint} (SQLSTATE {c})"),
                        }
                    }
                }
            }
            sqlx::Error::PoolClosed => StoreError::StoreClosed {
                location,
                reopen: REOPEN,
            },
            sqlx::Error::PoolTimedOut => StoreError::Timeout {
                location,
                reason: format!(
                    "no connection of the pool became free within {} s: all of them stayed busy, or the server at {} did not accept new ones",
                    ACQUIRE_TIMEOUT.as_secs(),
                    self.target.server
                ),
            },
            other => self.target.transport_error(other),
        }
    }

    /// Whether a unique index is one over (stream, aggregate_id, version),
    /// in any column order, whatever its name (asked once per index).
    pub(super) async fn is_version_index(
        &self,
        conn: &mut PgConnection,
        err: &PgDatabaseError,
    ) -> bool {
        let Some(name) = err.constraint() else {
            return false;
        };
        let schema = err.schema().unwrap_or("");
        let key = format!("{schema}.{name}");
        if let Some(known) = self.version_indexes.known(&key) {
            return known;
        }
        let columns: std::result::Result<Option<Vec<String>>, sqlx::Error> =
            sqlx::query_scalar(INDEX_COLUMNS_SQL)
                .bind(name)
                .bind(schema)
                .fetch_optional(conn)
                .await
                .map(Option::flatten);
        match columns {
            Ok(Some(cols)) => self
                .version_indexes
                .remember(&key, is_version_key(&cols, "aggregate_id")),
            // The catalog could not be asked: fall back on the names.
            _ => named_like_version_index(name),
        }
    }
}

/// At most `max` bytes of `text` (a detail may quote a whole event).
fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    format!("{}...", truncate_ident_to(text, max))
}

/// Whether an error means the connection broke (so the operation may be
/// run again on another one).
pub(super) fn is_lost(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}
