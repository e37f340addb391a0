//! Handler leases on PostgreSQL ([`crate::store::lease`]): plain rows and
//! single statements, so they hold through transaction-mode poolers
//! (PgBouncer, RDS Proxy), where session advisory locks do not.

use std::sync::atomic::Ordering;

use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{Connection, Row};

use super::errors::Table;
use super::sql::{migrate_lock_key, quote_ident, truncate_ident};
use super::PostgresEngine;
use crate::error::Result;
use crate::store::conns::retrying;
use crate::store::lease::{leases_table, now_ms, Lease, LeaseClaim};

/// The statements of the leases table of a bookmarks table.
pub(super) struct LeaseStatements {
    pub(super) create: String,
    select: String,
    insert: String,
    take: String,
    renew: String,
    release: String,
    fenced_bookmark: String,
    bookmarks: String,
}

impl LeaseStatements {
    pub(super) fn new(bookmarks: &str) -> Self {
        let l = quote_ident(&truncate_ident(&leases_table(bookmarks)));
        let b = quote_ident(bookmarks);
        LeaseStatements {
            create: format!(
                "CREATE TABLE IF NOT EXISTS {l} (name text PRIMARY KEY, owner text NOT NULL, token bigint NOT NULL, beat bigint NOT NULL, renewed_at bigint NOT NULL, ttl_ms bigint NOT NULL, streams text NOT NULL)"
            ),
            select: format!(
                "SELECT name, owner, token, beat, renewed_at, ttl_ms, streams FROM {l} WHERE $1::text IS NULL OR name = $1 ORDER BY name"
            ),
            insert: format!(
                "INSERT INTO {l} (name, owner, token, beat, renewed_at, ttl_ms, streams) VALUES ($1, $2, 1, 1, $3, $4, $5) ON CONFLICT (name) DO NOTHING"
            ),
            take: format!(
                "UPDATE {l} SET owner = $2, token = token + 1, beat = beat + 1, renewed_at = $3, ttl_ms = $4, streams = $5 WHERE name = $1 AND token = $6 AND beat = $7"
            ),
            renew: format!(
                "UPDATE {l} SET beat = beat + 1, renewed_at = $3 WHERE name = $1 AND token = $2"
            ),
            release: format!(
                "UPDATE {l} SET owner = '', beat = beat + 1 WHERE name = $1 AND token = $2"
            ),
            // FOR SHARE waits for a claim in flight and then sees its token:
            // the write and the check cannot interleave with a change of hands.
            fenced_bookmark: format!(
                "WITH held AS (SELECT 1 FROM {l} WHERE name = $1 AND token = $3 FOR SHARE) \
                 INSERT INTO {b} (\"bookmark\", \"position\") SELECT $1, $2 FROM held \
                 ON CONFLICT (\"bookmark\") DO UPDATE SET \"position\" = excluded.\"position\""
            ),
            bookmarks: format!(
                "SELECT \"bookmark\"::text, coalesce(\"position\", 0)::int8 FROM {b} ORDER BY 1"
            ),
        }
    }
}

fn lease_of(row: &PgRow) -> std::result::Result<Lease, sqlx::Error> {
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

impl PostgresEngine {
    /// Creates the leases table under the migrate lock, once per store: a
    /// store migrated before leases existed (or by evtstore) gets it on the
    /// first lease.
    pub(super) async fn ensure_leases(&self) -> Result<()> {
        if self.leases_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        retrying!(self, Table::Bookmarks, |conn| self.create_leases(conn))?;
        self.leases_ready.store(true, Ordering::Release);
        Ok(())
    }

    pub(super) async fn create_leases(
        &self,
        conn: &mut PgConnection,
    ) -> std::result::Result<(), sqlx::Error> {
        let mut tx = conn.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(migrate_lock_key())
            .execute(&mut *tx)
            .await?;
        sqlx::query(&self.lease_sql.create)
            .persistent(false)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    pub(super) async fn read_leases(&self, name: Option<&str>) -> Result<Vec<Lease>> {
        self.ensure_leases().await?;
        let rows = retrying!(self, Table::Bookmarks, |conn| {
            sqlx::query(&self.lease_sql.select)
                .bind(name)
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
        let done = retrying!(self, Table::Bookmarks, |conn| {
            let query = match claim.seen {
                None => sqlx::query(&self.lease_sql.insert),
                Some(_) => sqlx::query(&self.lease_sql.take),
            };
            let query = query
                .bind(claim.name)
                .bind(claim.owner)
                .bind(now)
                .bind(claim.ttl_ms)
                .bind(claim.streams);
            let query = match claim.seen {
                None => query,
                Some((token, beat)) => query.bind(token).bind(beat),
            };
            query.execute(conn)
        })?;
        Ok((done.rows_affected() == 1).then(|| claim.next_token()))
    }

    pub(super) async fn renew(&self, name: &str, token: i64) -> Result<bool> {
        let now = now_ms();
        let done = retrying!(self, Table::Bookmarks, |conn| {
            sqlx::query(&self.lease_sql.renew)
                .bind(name)
                .bind(token)
                .bind(now)
                .execute(conn)
        })?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn release_held(&self, name: &str, token: i64) -> Result<()> {
        retrying!(self, Table::Bookmarks, |conn| {
            sqlx::query(&self.lease_sql.release)
                .bind(name)
                .bind(token)
                .execute(conn)
        })?;
        Ok(())
    }

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
                .bind(token)
                .execute(conn)
        })?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn all_bookmarks(&self) -> Result<Vec<(String, i64)>> {
        retrying!(self, Table::Bookmarks, |conn| {
            sqlx::query_as(&self.lease_sql.bookmarks).fetch_all(conn)
        })
    }
}
