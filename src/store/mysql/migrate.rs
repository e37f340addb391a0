//! migrate(): evtstore's knex tables and unique indexes, under a named lock
//! so that concurrent migrations (other processes) wait for each other.

use std::sync::atomic::Ordering;

use sqlx::mysql::MySqlConnection;
use sqlx::Row;

use super::errors::Table;
use super::sql::{quote_ident, MIGRATE_LOCK};
use super::MysqlEngine;
use crate::error::Result;
use crate::store::conns::retrying;
use crate::store::Tables;

/// The unique indexes of the events table, with the name knex gives them.
const UNIQUE_KEYS: [&[&str]; 2] = [
    &["stream", "position"],
    &["stream", "aggregate_id", "version"],
];

/// Each index of a table: name, unique, its columns in order.
const INDEXES_SQL: &str = "SELECT `INDEX_NAME`, MIN(`NON_UNIQUE`), GROUP_CONCAT(LOWER(`COLUMN_NAME`) ORDER BY `SEQ_IN_INDEX`) \
     FROM information_schema.STATISTICS WHERE `TABLE_SCHEMA` = DATABASE() AND `TABLE_NAME` = ? GROUP BY `INDEX_NAME`";

impl MysqlEngine {
    /// [`Engine::migrate`], retried on a broken connection.
    pub(super) async fn migrate_tables(&self, tables: Tables) -> Result<()> {
        retrying!(self, Table::Events, |conn| self.migrate_once(conn, tables))?;
        if tables.bookmarks {
            self.leases_ready.store(true, Ordering::Release);
        }
        Ok(())
    }

    async fn migrate_once(
        &self,
        conn: &mut MySqlConnection,
        tables: Tables,
    ) -> std::result::Result<(), sqlx::Error> {
        sqlx::query("SELECT GET_LOCK(?, 60)")
            .bind(MIGRATE_LOCK)
            .execute(&mut *conn)
            .await?;
        let created = self.create_missing(conn, tables).await;
        let released = sqlx::query("SELECT RELEASE_LOCK(?)")
            .bind(MIGRATE_LOCK)
            .execute(&mut *conn)
            .await;
        created.and(released.map(|_| ()))
    }

    async fn create_missing(
        &self,
        conn: &mut MySqlConnection,
        tables: Tables,
    ) -> std::result::Result<(), sqlx::Error> {
        // The column types are those evtstore's knex migrate gives; the
        // text columns compare exactly (binary collation): aggregate "a"
        // and "A" are two aggregates.
        if tables.bookmarks {
            let b = quote_ident(&self.bookmarks_table);
            sqlx::query(&format!(
                "CREATE TABLE IF NOT EXISTS {b} (`bookmark` varchar(255) NOT NULL, `position` bigint, PRIMARY KEY (`bookmark`)) \
                 DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin"
            ))
            .persistent(false)
            .execute(&mut *conn)
            .await?;
            // the handler leases live beside the bookmarks
            sqlx::query(&self.lease_sql.create)
                .persistent(false)
                .execute(&mut *conn)
                .await?;
        }
        if !tables.events {
            return Ok(());
        }
        let t = quote_ident(&self.events_table);
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {t} (`position` bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, \
             `version` int, `stream` varchar(255), `aggregate_id` varchar(255), `timestamp` datetime, `event` text) \
             DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin"
        ))
        .persistent(false)
        .execute(&mut *conn)
        .await?;
        let indexes: Vec<(String, i64, String)> = sqlx::query(INDEXES_SQL)
            .bind(&self.events_table)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
            .collect::<std::result::Result<_, sqlx::Error>>()?;
        for columns in UNIQUE_KEYS {
            let wanted = columns.join(",");
            if indexes
                .iter()
                .any(|(_, non_unique, cols)| *non_unique == 0 && *cols == wanted)
            {
                continue;
            }
            let base = format!("{}_{}_unique", self.events_table, columns.join("_"));
            let mut name = truncate(&base, 64);
            for n in 2..100 {
                if !indexes
                    .iter()
                    .any(|(existing, _, _)| existing.eq_ignore_ascii_case(&name))
                {
                    break;
                }
                let suffix = format!("_{n}");
                name = format!("{}{suffix}", truncate(&base, 64 - suffix.len()));
            }
            let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
            sqlx::query(&format!(
                "ALTER TABLE {t} ADD UNIQUE INDEX {} ({})",
                quote_ident(&name),
                cols.join(", ")
            ))
            .persistent(false)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

/// At most `max` bytes (names here are ASCII).
pub(super) fn truncate(name: &str, max: usize) -> String {
    name[..name.len().min(max)].to_string()
}
