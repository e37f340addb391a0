//! What a failure of the database, or of opening it, is told as.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::error::ErrorKind;

use super::SqliteEngine;
use crate::error::StoreError;

impl SqliteEngine {
    /// Classifies a database failure (anything but a version conflict).
    pub(super) fn db_error(&self, err: sqlx::Error) -> StoreError {
        let location = self.location.clone();
        match err {
            sqlx::Error::Database(db) => {
                let message = db.message().to_string();
                let code = db.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(-1);
                if let Some(rest) = message.strip_prefix("no such table: ") {
                    let table = rest.rsplit('.').next().unwrap_or(rest).to_string();
                    return StoreError::MissingTable { table, location };
                }
                match code & 0xff {
                    // SQLITE_BUSY, SQLITE_LOCKED
                    5 | 6 => StoreError::DatabaseBusy {
                        location,
                        reason: message,
                    },
                    _ => {
                        let hint = if message.contains("no column named")
                            || message.contains("no such column")
                        {
                            " (the table does not have the layout that migrate() creates)"
                        } else {
                            ""
                        };
                        StoreError::Database {
                            location,
                            reason: format!("{message}{hint} (SQLite code {code})"),
                        }
                    }
                }
            }
            sqlx::Error::PoolClosed => StoreError::StoreClosed {
                location,
                reopen: "SqliteStore.open()",
            },
            sqlx::Error::PoolTimedOut => StoreError::DatabaseBusy {
                location,
                reason: "no connection of the pool became free within 30 s".to_string(),
            },
            other => StoreError::Database {
                location,
                reason: other.to_string(),
            },
        }
    }

    pub(super) fn append_error(
        &self,
        err: sqlx::Error,
        stream: &str,
        aggregate_id: &str,
        first: i64,
        last: i64,
    ) -> StoreError {
        if let sqlx::Error::Database(db) = &err {
            let message = db.message();
            if db.kind() == ErrorKind::UniqueViolation
                && message.contains(".aggregate_id")
                && message.contains(".version")
            {
                return StoreError::version_conflict(stream, aggregate_id, first, last);
            }
        }
        self.db_error(err)
    }
}

pub(super) fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    }
}

pub(super) fn display_path(file: &str) -> String {
    absolute(Path::new(file)).display().to_string()
}

pub(super) fn describe_open_error(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(db) => {
            let message = db.message();
            match db.code().as_deref().and_then(|c| i32::from_str(c).ok()) {
                Some(c) if c & 0xff == 14 => {
                    format!("{message}: check that the directory exists and is writable")
                }
                Some(c) if c & 0xff == 26 => {
                    format!("{message}: the file exists but is not an SQLite database")
                }
                Some(c) if c & 0xff == 5 || c & 0xff == 6 => {
                    format!("{message}: another process holds a lock on it, retry later")
                }
                _ => message.to_string(),
            }
        }
        sqlx::Error::Io(e) => e.to_string(),
        other => other.to_string(),
    }
}
