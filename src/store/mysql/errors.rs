//! What a failure of the database or of a connection is told as.

use sqlx::mysql::{MySqlConnection, MySqlDatabaseError};

use super::options::connect_error;
use super::MysqlEngine;
use crate::error::StoreError;
use crate::store::conns::AcquireError;
use crate::store::version_key::{is_version_key, named_like_version_index};

pub(super) use crate::store::names::Table;

/// MySQL's error number of a database error, 0 for none.
pub(super) fn error_number(err: &sqlx::Error) -> u16 {
    match err {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<MySqlDatabaseError>()
            .map(MySqlDatabaseError::number)
            .unwrap_or(0),
        _ => 0,
    }
}

/// Duplicate entry for a unique key.
pub(super) const DUPLICATE_KEY: u16 = 1062;

/// Whether an error means the connection broke (so the operation may be
/// run again on another one): a socket or protocol failure, the server
/// shutting down (1053), the connection killed (1927) or timed out by the
/// server (4031).
pub(super) fn is_lost(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Io(_) | sqlx::Error::Protocol(_))
        || matches!(error_number(err), 1053 | 1927 | 2006 | 2013 | 4031)
}

impl MysqlEngine {
    /// Classifies a failure to get a connection.
    pub(super) fn acquire_error(&self, err: AcquireError) -> StoreError {
        err.into_store_error(
            &self.target,
            "provider/mysql createProvider()",
            self.conns.max,
            |e| connect_error(&self.target, e),
        )
    }

    /// Classifies a database failure (a version conflict is told apart by
    /// the append itself).
    pub(super) fn db_error(&self, err: sqlx::Error, table: Table) -> StoreError {
        let location = self.location.clone();
        let table_name = match table {
            Table::Events => &self.events_table,
            Table::Bookmarks => &self.bookmarks_table,
        };
        let number = error_number(&err);
        match err {
            sqlx::Error::Database(db) => {
                let message = db.message().to_string();
                let said = format!("{message} (error {number})");
                match number {
                    1146 => StoreError::MissingTable {
                        table: table_name.clone(),
                        location,
                    },
                    DUPLICATE_KEY | 1048 | 3819 | 4025 | 1452 => StoreError::ConstraintViolation {
                        location,
                        table: table_name.clone(),
                        reason: said,
                    },
                    1205 => StoreError::Timeout {
                        location,
                        reason: format!(
                            "{said}: a lock was held by another transaction past innodb_lock_wait_timeout; retry"
                        ),
                    },
                    1213 => StoreError::DatabaseBusy {
                        location,
                        reason: format!("{said}: a deadlock with another transaction, which the server broke by rolling this one back"),
                    },
                    1969 | 3024 | 1317 => StoreError::Timeout {
                        location,
                        reason: format!(
                            "{said}: the statement was interrupted (max_statement_time / max_execution_time, or KILL QUERY)"
                        ),
                    },
                    1044 | 1045 => self.target.auth_failed(said),
                    1049 => self.target.unknown_database(),
                    1406 => StoreError::Database {
                        location,
                        reason: format!(
                            "{said}: a value is longer than its column of table \"{table_name}\" allows (evtstore's layout keeps streams and ids in VARCHAR(255) and events in TEXT, at most 65,535 bytes; for larger events run ALTER TABLE `{table_name}` MODIFY `event` LONGTEXT, which both evtstore and evtstore-rs read)"
                        ),
                    },
                    1053 | 1927 | 2006 | 2013 | 4031 => StoreError::ConnectionLost {
                        location,
                        reason: said,
                    },
                    1142 | 1143 => StoreError::Database {
                        location,
                        reason: format!(
                            "{said}: grant user \"{}\" SELECT, INSERT and UPDATE on table \"{table_name}\" (and CREATE, ALTER and INDEX for migrate())",
                            self.target.user
                        ),
                    },
                    1054 | 1364 | 1366 => StoreError::Database {
                        location,
                        reason: format!(
                            "{said} (table \"{table_name}\" does not have the layout that migrate() creates)"
                        ),
                    },
                    _ => StoreError::Database {
                        location,
                        reason: said,
                    },
                }
            }
            other => self.target.transport_error(other),
        }
    }

    /// The error of an append whose connection broke after the statement
    /// was sent, when it could not be found out whether it committed.
    pub(super) fn outcome_unknown(&self, err: StoreError) -> StoreError {
        StoreError::ConnectionLost {
            location: self.location.clone(),
            reason: format!(
                "the connection broke while an append was being sent, and checking what was stored failed ({err}): the events may have been stored; reload the aggregate before retrying the command"
            ),
        }
    }

    /// Whether a duplicate-key error is on a unique index over (stream,
    /// aggregate_id, version), in any column order, whatever its name (the
    /// index's columns are asked once per name).
    pub(super) async fn is_version_duplicate(
        &self,
        conn: &mut MySqlConnection,
        err: &sqlx::Error,
    ) -> bool {
        if error_number(err) != DUPLICATE_KEY {
            return false;
        }
        let sqlx::Error::Database(db) = err else {
            return false;
        };
        // "Duplicate entry '...' for key 'name'" (MySQL 8: 'table.name')
        let message = db.message();
        let Some(name) = message
            .rsplit_once("for key '")
            .and_then(|(_, rest)| rest.strip_suffix('\''))
        else {
            return false;
        };
        let name = match name.split_once('.') {
            Some((table, index)) if table == self.events_table => index,
            _ => name,
        };
        if let Some(known) = self.version_indexes.known(name) {
            return known;
        }
        let columns: std::result::Result<Vec<String>, sqlx::Error> =
            sqlx::query_scalar(self.sql.index_columns)
                .bind(&self.events_table)
                .bind(name)
                .fetch_all(conn)
                .await;
        match columns {
            Ok(mut cols) if !cols.is_empty() => {
                // MySQL's column names are not case-sensitive
                cols.iter_mut().for_each(|c| c.make_ascii_lowercase());
                self.version_indexes
                    .remember(name, is_version_key(&cols, "aggregate_id"))
            }
            // The catalog could not be asked: fall back on the name.
            _ => named_like_version_index(name),
        }
    }
}
