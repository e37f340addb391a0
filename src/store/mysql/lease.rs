//! Handler leases on MySQL and MariaDB ([`crate::store::lease`]): plain
//! rows and single autocommit statements, on InnoDB row locks.
//!
//! **Affected rows.** sqlx always connects with `CLIENT_FOUND_ROWS`, so an
//! UPDATE counts the rows it matched (changed or not), and an `INSERT ... ON
//! DUPLICATE KEY UPDATE` counts 1 for a new row, 2 for a changed one and 1
//! (not 0) for one set to what it held. The statements here are read with
//! that in mind: a first claim is a plain INSERT whose duplicate-key error
//! means "taken" (an `ON DUPLICATE KEY UPDATE name = name` would count 1
//! both ways), every other write counts the lease rows it matched.
//!
//! **Fencing.** The fenced bookmark write is one `INSERT ... SELECT` whose
//! SELECT reads the lease row with `LOCK IN SHARE MODE` (MariaDB has no
//! `FOR SHARE`; MySQL 8 takes both): it reads the latest committed lease
//! whatever the isolation level, waits for a claim in flight, and keeps
//! claims, renewals and releases of that lease waiting until the bookmark
//! write has committed. Without the lock clause, READ COMMITTED would read
//! the lease without locking it, and a claim could commit between the
//! check and the write.

use std::sync::atomic::Ordering;

use sqlx::mysql::{MySqlConnection, MySqlRow};
use sqlx::Row;

use super::errors::{error_number, Table, DUPLICATE_KEY};
use super::migrate::truncate;
use super::sql::quote_ident;
use super::MysqlEngine;
use crate::error::Result;
use crate::store::conns::retrying;
use crate::store::lease::{leases_table, now_ms, Lease, LeaseClaim};

/// MySQL's (and MariaDB's) longest table name: a bookmarks table of up to
/// 63 characters has its leases table cut there. Cut names are 64 long, so
/// they never meet a table name the store accepts (63 at most), and two
/// bookmarks tables never share one ("_leases" never repeats within itself).
const MAX_IDENT: usize = 64;

/// The leases table of a bookmarks table.
pub(super) fn leases_table_name(bookmarks: &str) -> String {
    truncate(&leases_table(bookmarks), MAX_IDENT)
}

/// The statements of the leases table of a bookmarks table.
pub(super) struct LeaseStatements {
    pub(super) create: String,
    select_one: String,
    select_all: String,
    insert: String,
    take: String,
    renew: String,
    release: String,
    fenced_bookmark: String,
    bookmarks: String,
    count_after_head: String,
}

impl LeaseStatements {
    pub(super) fn new(events: &str, bookmarks: &str) -> Self {
        let l = quote_ident(&leases_table_name(bookmarks));
        let b = quote_ident(bookmarks);
        let t = quote_ident(events);
        let columns = "`name`, `owner`, `token`, `beat`, `renewed_at`, `ttl_ms`, `streams`";
        LeaseStatements {
            // the collation of the bookmarks: names compare exactly
            create: format!(
                "CREATE TABLE IF NOT EXISTS {l} (`name` varchar(255) NOT NULL, `owner` text NOT NULL, \
                 `token` bigint NOT NULL, `beat` bigint NOT NULL, `renewed_at` bigint NOT NULL, \
                 `ttl_ms` bigint NOT NULL, `streams` text NOT NULL, PRIMARY KEY (`name`)) \
                 DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin"
            ),
            select_one: format!("SELECT {columns} FROM {l} WHERE `name` = ?"),
            select_all: format!("SELECT {columns} FROM {l} ORDER BY `name`"),
            insert: format!("INSERT INTO {l} ({columns}) VALUES (?, ?, 1, 1, ?, ?, ?)"),
            take: format!(
                "UPDATE {l} SET `owner` = ?, `token` = `token` + 1, `beat` = `beat` + 1, `renewed_at` = ?, `ttl_ms` = ?, `streams` = ? \
                 WHERE `name` = ? AND `token` = ? AND `beat` = ?"
            ),
            renew: format!(
                "UPDATE {l} SET `beat` = `beat` + 1, `renewed_at` = ? WHERE `name` = ? AND `token` = ?"
            ),
            release: format!(
                "UPDATE {l} SET `owner` = '', `beat` = `beat` + 1 WHERE `name` = ? AND `token` = ?"
            ),
            // `?` name, `?` position, `?` name, `?` token, `?` position
            fenced_bookmark: format!(
                "INSERT INTO {b} (`bookmark`, `position`) SELECT ?, ? FROM {l} \
                 WHERE `name` = ? AND `token` = ? LOCK IN SHARE MODE \
                 ON DUPLICATE KEY UPDATE `position` = ?"
            ),
            bookmarks: format!(
                "SELECT `bookmark`, CAST(COALESCE(`position`, 0) AS SIGNED) FROM {b} ORDER BY `bookmark`"
            ),
            count_after_head: format!("SELECT CAST(COUNT(*) AS SIGNED) FROM {t} WHERE `stream` IN "),
        }
    }

    /// How many events of `n` (at least 1) streams come after `?`.
    fn count_after(&self, n: usize) -> String {
        format!(
            "{}({}) AND `position` > ?",
            self.count_after_head,
            vec!["?"; n].join(", ")
        )
    }
}

/// Text columns of a binary collation come flagged BINARY, which sqlx's
/// checked `String` refuses: they are read unchecked (still UTF-8 checked),
/// as the events are.
fn lease_of(row: &MySqlRow) -> std::result::Result<Lease, sqlx::Error> {
    Ok(Lease {
        name: row.try_get_unchecked(0)?,
        owner: row.try_get_unchecked(1)?,
        token: row.try_get(2)?,
        beat: row.try_get(3)?,
        renewed_at: row.try_get(4)?,
        ttl_ms: row.try_get(5)?,
        streams: row.try_get_unchecked(6)?,
    })
}

/// A first claim: true when it made the row, false when one was there.
async fn insert_lease(
    conn: &mut MySqlConnection,
    sql: &str,
    claim: &LeaseClaim<'_>,
    now: i64,
) -> std::result::Result<bool, sqlx::Error> {
    let done = sqlx::query(sql)
        .bind(claim.name)
        .bind(claim.owner)
        .bind(now)
        .bind(claim.ttl_ms)
        .bind(claim.streams)
        .execute(conn)
        .await;
    match done {
        Ok(done) => Ok(done.rows_affected() == 1),
        Err(e) if error_number(&e) == DUPLICATE_KEY => Ok(false),
        Err(e) => Err(e),
    }
}

impl MysqlEngine {
    /// Creates the leases table once per store: a database migrated before
    /// leases existed (or by evtstore) gets it on the first lease. No lock
    /// is needed: concurrent `CREATE TABLE IF NOT EXISTS` wait for each
    /// other on the table's metadata lock, and all but one do nothing.
    async fn ensure_leases(&self) -> Result<()> {
        if self.leases_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        retrying!(self, Table::Bookmarks, |conn| {
            sqlx::query(&self.lease_sql.create)
                .persistent(false)
                .execute(conn)
        })?;
        self.leases_ready.store(true, Ordering::Release);
        Ok(())
    }

    pub(super) async fn read_leases(&self, name: Option<&str>) -> Result<Vec<Lease>> {
        self.ensure_leases().await?;
        let rows = retrying!(self, Table::Bookmarks, |conn| {
            match name {
                Some(name) => sqlx::query(&self.lease_sql.select_one).bind(name),
                None => sqlx::query(&self.lease_sql.select_all),
            }
            .fetch_all(conn)
        })?;
        rows.iter()
            .map(lease_of)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| self.db_error(e, Table::Bookmarks))
    }

    pub(super) async fn claim(&self, claim: &LeaseClaim<'_>) -> Result<Option<i64>> {
        self.ensure_leases().await?;
        let now = now_ms();
        let won = match claim.seen {
            None => retrying!(self, Table::Bookmarks, |conn| {
                insert_lease(conn, &self.lease_sql.insert, claim, now)
            })?,
            Some((token, beat)) => {
                // beat always rises: the one matching row counts 1
                let done = retrying!(self, Table::Bookmarks, |conn| {
                    sqlx::query(&self.lease_sql.take)
                        .bind(claim.owner)
                        .bind(now)
                        .bind(claim.ttl_ms)
                        .bind(claim.streams)
                        .bind(claim.name)
                        .bind(token)
                        .bind(beat)
                        .execute(conn)
                })?;
                done.rows_affected() == 1
            }
        };
        Ok(won.then(|| claim.next_token()))
    }

    pub(super) async fn renew(&self, name: &str, token: i64) -> Result<bool> {
        self.ensure_leases().await?;
        let now = now_ms();
        let done = retrying!(self, Table::Bookmarks, |conn| {
            sqlx::query(&self.lease_sql.renew)
                .bind(now)
                .bind(name)
                .bind(token)
                .execute(conn)
        })?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn release_held(&self, name: &str, token: i64) -> Result<()> {
        self.ensure_leases().await?;
        retrying!(self, Table::Bookmarks, |conn| {
            sqlx::query(&self.lease_sql.release)
                .bind(name)
                .bind(token)
                .execute(conn)
        })?;
        Ok(())
    }

    /// Counts 0 when the lease did not match, else 1 (new row, or the
    /// position it held: `CLIENT_FOUND_ROWS`) or 2 (moved).
    pub(super) async fn bookmark_fenced(
        &self,
        name: &str,
        position: i64,
        token: i64,
    ) -> Result<bool> {
        self.ensure_leases().await?;
        let done = retrying!(self, Table::Bookmarks, |conn| {
            sqlx::query(&self.lease_sql.fenced_bookmark)
                .bind(name)
                .bind(position)
                .bind(name)
                .bind(token)
                .bind(position)
                .execute(conn)
        })?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn all_bookmarks(&self) -> Result<Vec<(String, i64)>> {
        let rows = retrying!(self, Table::Bookmarks, |conn| {
            sqlx::query(&self.lease_sql.bookmarks).fetch_all(conn)
        })?;
        rows.iter()
            .map(|row| Ok((row.try_get_unchecked(0)?, row.try_get(1)?)))
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(|e| self.db_error(e, Table::Bookmarks))
    }

    pub(super) async fn count_events_after(&self, streams: &[String], after: i64) -> Result<i64> {
        if streams.is_empty() {
            return Ok(0);
        }
        let sql = self.lease_sql.count_after(streams.len());
        retrying!(self, Table::Events, |conn| {
            streams
                .iter()
                .fold(sqlx::query_scalar::<_, i64>(&sql), |q, s| q.bind(s))
                .bind(after)
                .fetch_one(conn)
        })
    }
}
