//! migrate(): the tables and unique indexes, under an advisory lock.

use sqlx::postgres::PgConnection;
use sqlx::Connection;

use super::errors::Table;
use super::sql::{
    migrate_lock_key, quote_ident, truncate_ident, truncate_ident_to, HAS_UNIQUE_INDEX_SQL,
    NAME_IS_FREE_SQL,
};
use super::PostgresEngine;
use crate::error::Result;
use crate::store::conns::retrying;
use crate::store::Tables;

impl PostgresEngine {
    /// [`Engine::migrate`], retried on a broken connection.
    pub(super) async fn migrate_tables(&self, tables: Tables) -> Result<()> {
        retrying!(self, Table::Events, |conn| self.migrate_once(conn, tables))
    }

    async fn migrate_once(
        &self,
        conn: &mut PgConnection,
        tables: Tables,
    ) -> std::result::Result<(), sqlx::Error> {
        let t = quote_ident(&self.events_table);
        let b = quote_ident(&self.bookmarks_table);
        let mut tx = conn.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(migrate_lock_key())
            .execute(&mut *tx)
            .await?;
        if tables.bookmarks {
            sqlx::query(&format!(
                "CREATE TABLE IF NOT EXISTS {b} (bookmark text PRIMARY KEY, position bigint)"
            ))
            .persistent(false)
            .execute(&mut *tx)
            .await?;
            // the handler leases live beside the bookmarks
            sqlx::query(&self.lease_sql.create)
                .persistent(false)
                .execute(&mut *tx)
                .await?;
        }
        if !tables.events {
            return tx.commit().await;
        }
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {t} (position BIGSERIAL PRIMARY KEY, version integer, stream text, aggregate_id text, timestamp timestamptz, event text)"
        ))
        .persistent(false)
        .execute(&mut *tx)
        .await?;
        for columns in [
            &["stream", "position"][..],
            &["stream", "aggregate_id", "version"][..],
        ] {
            let present: bool = sqlx::query_scalar(HAS_UNIQUE_INDEX_SQL)
                .bind(&t)
                .bind(columns)
                .fetch_one(&mut *tx)
                .await?;
            if present {
                continue;
            }
            let base = truncate_ident(&format!(
                "{}_{}_unique",
                self.events_table,
                columns.join("_")
            ));
            let mut name = base.clone();
            for n in 2..100 {
                let free: bool = sqlx::query_scalar(NAME_IS_FREE_SQL)
                    .bind(&name)
                    .bind(&t)
                    .fetch_one(&mut *tx)
                    .await?;
                if free {
                    break;
                }
                let suffix = format!("_{n}");
                name = format!("{}{suffix}", truncate_ident_to(&base, 63 - suffix.len()));
            }
            let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
            sqlx::query(&format!(
                "CREATE UNIQUE INDEX {} ON {t} ({})",
                quote_ident(&name),
                cols.join(", ")
            ))
            .persistent(false)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }
}
