//! Handler leases on SQLite ([`crate::store::lease`]): every write is one
//! statement under SQLite's database lock, which serialises the processes
//! sharing the file.

use std::sync::atomic::Ordering;

use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::sql::quote_ident;
use super::SqliteEngine;
use crate::error::Result;
use crate::store::lease::{leases_table, now_ms, Lease, LeaseClaim};

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
    events_table: String,
}

impl LeaseStatements {
    pub(super) fn new(events: &str, bookmarks: &str) -> Self {
        let l = quote_ident(&leases_table(bookmarks));
        let b = quote_ident(bookmarks);
        let columns =
            "\"name\", \"owner\", \"token\", \"beat\", \"renewed_at\", \"ttl_ms\", \"streams\"";
        LeaseStatements {
            create: format!(
                "CREATE TABLE IF NOT EXISTS {l} (\"name\" varchar(255) primary key, \"owner\" text not null, \"token\" bigint not null, \"beat\" bigint not null, \"renewed_at\" bigint not null, \"ttl_ms\" bigint not null, \"streams\" text not null)"
            ),
            select_one: format!("SELECT {columns} FROM {l} WHERE \"name\" = ?1"),
            select_all: format!("SELECT {columns} FROM {l} ORDER BY \"name\""),
            insert: format!(
                "INSERT INTO {l} ({columns}) VALUES (?1, ?2, 1, 1, ?3, ?4, ?5) ON CONFLICT (\"name\") DO NOTHING"
            ),
            take: format!(
                "UPDATE {l} SET \"owner\" = ?2, \"token\" = \"token\" + 1, \"beat\" = \"beat\" + 1, \"renewed_at\" = ?3, \"ttl_ms\" = ?4, \"streams\" = ?5 WHERE \"name\" = ?1 AND \"token\" = ?6 AND \"beat\" = ?7"
            ),
            renew: format!(
                "UPDATE {l} SET \"beat\" = \"beat\" + 1, \"renewed_at\" = ?3 WHERE \"name\" = ?1 AND \"token\" = ?2"
            ),
            release: format!(
                "UPDATE {l} SET \"owner\" = '', \"beat\" = \"beat\" + 1 WHERE \"name\" = ?1 AND \"token\" = ?2"
            ),
            fenced_bookmark: format!(
                "INSERT INTO {b} (\"bookmark\", \"position\") SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM {l} WHERE \"name\" = ?1 AND \"token\" = ?3) \
                 ON CONFLICT (\"bookmark\") DO UPDATE SET \"position\" = excluded.\"position\""
            ),
            bookmarks: format!(
                "SELECT \"bookmark\", coalesce(\"position\", 0) FROM {b} ORDER BY \"bookmark\""
            ),
            events_table: quote_ident(events),
        }
    }

    /// How many events of `n` streams come after a position.
    fn count_after(&self, n: usize) -> String {
        let marks = vec!["?"; n].join(", ");
        format!(
            "SELECT count(*) FROM {} WHERE \"stream\" IN ({marks}) AND \"position\" > ?",
            self.events_table
        )
    }
}

fn lease_of(row: &SqliteRow) -> std::result::Result<Lease, sqlx::Error> {
    Ok(Lease {
        name: row.try_get(0)?,
        owner: row.try_get(1)?,
        token: row.try_get(2)?,
        beat: row.try_get(3)?,
        renewed_at: row.try_get(4)?,
        ttl_ms: row.try_get(5)?,
        streams: row.try_get(6)?,
    })
}

impl SqliteEngine {
    /// Creates the leases table once per store: a database migrated before
    /// leases existed (or by evtstore) gets it on the first lease.
    async fn ensure_leases(&self) -> Result<()> {
        if self.leases_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let _write = self.shared.write_lock.lock().await;
        sqlx::query(&self.lease_sql.create)
            .persistent(false)
            .execute(&self.pool)
            .await
            .map_err(|e| self.db_error(e))?;
        self.leases_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// One write statement (binds in order), rows changed.
    async fn lease_write<'q>(
        &'q self,
        sql: &'q str,
        bind: impl FnOnce(SqliteQuery<'q>) -> SqliteQuery<'q>,
    ) -> Result<u64> {
        let _write = self.shared.write_lock.lock().await;
        let done = bind(sqlx::query(sql))
            .execute(&self.pool)
            .await
            .map_err(|e| self.db_error(e))?;
        Ok(done.rows_affected())
    }

    pub(super) async fn read_leases(&self, name: Option<&str>) -> Result<Vec<Lease>> {
        self.ensure_leases().await?;
        let query = match name {
            Some(name) => sqlx::query(&self.lease_sql.select_one).bind(name),
            None => sqlx::query(&self.lease_sql.select_all),
        };
        let rows = self.fetch(query).await?;
        rows.iter()
            .map(lease_of)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| self.db_error(e))
    }

    pub(super) async fn claim(&self, claim: &LeaseClaim<'_>) -> Result<Option<i64>> {
        self.ensure_leases().await?;
        let now = now_ms();
        let sql = match claim.seen {
            None => &self.lease_sql.insert,
            Some(_) => &self.lease_sql.take,
        };
        let changed = self
            .lease_write(sql, |q| {
                let q = q
                    .bind(claim.name)
                    .bind(claim.owner)
                    .bind(now)
                    .bind(claim.ttl_ms)
                    .bind(claim.streams);
                match claim.seen {
                    None => q,
                    Some((token, beat)) => q.bind(token).bind(beat),
                }
            })
            .await?;
        Ok((changed == 1).then(|| claim.next_token()))
    }

    pub(super) async fn renew(&self, name: &str, token: i64) -> Result<bool> {
        let now = now_ms();
        let changed = self
            .lease_write(&self.lease_sql.renew, |q| {
                q.bind(name).bind(token).bind(now)
            })
            .await?;
        Ok(changed == 1)
    }

    pub(super) async fn release_held(&self, name: &str, token: i64) -> Result<()> {
        self.lease_write(&self.lease_sql.release, |q| q.bind(name).bind(token))
            .await?;
        Ok(())
    }

    pub(super) async fn bookmark_fenced(
        &self,
        name: &str,
        position: i64,
        token: i64,
    ) -> Result<bool> {
        self.ensure_leases().await?;
        let changed = self
            .lease_write(&self.lease_sql.fenced_bookmark, |q| {
                q.bind(name).bind(position).bind(token)
            })
            .await?;
        Ok(changed == 1)
    }

    pub(super) async fn all_bookmarks(&self) -> Result<Vec<(String, i64)>> {
        let rows = self.fetch(sqlx::query(&self.lease_sql.bookmarks)).await?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(|e| self.db_error(e))
    }

    pub(super) async fn count_events_after(&self, streams: &[String], after: i64) -> Result<i64> {
        let sql = self.lease_sql.count_after(streams.len());
        let mut query = sqlx::query_scalar::<_, i64>(&sql).persistent(false);
        for s in streams {
            query = query.bind(s.as_str());
        }
        query
            .bind(after)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.db_error(e))
    }
}

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;
