//! MySQL/MariaDB: the checks only this engine needs (that without its lock
//! a reader would skip events, exact error codes, evtstore's knex tables,
//! group commit); what every engine promises runs in the shared suite.
//!
//! They need a server: `EVTSTORE_TEST_MYSQL_URL` (a user that may create
//! databases; each test makes its own). Without it they pass after saying
//! they were skipped, except under `CI=true`, where they fail.

use sqlx::Executor;

use super::*;
use crate::store::mysql::scratch::ScratchDb;
use crate::store::mysql::{MysqlEngine, MysqlOptions};
use crate::store::scratch::{or_skip, Choice};
use crate::store::{Engine, Tables};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql_without_the_lock_a_reader_skips_events() {
    let db = or_skip!(ScratchDb::create().await);
    let engine = db.open_migrated_with(Choice::pool(12.0)).await;
    engine.unlocked.store(true, Ordering::Relaxed);
    let skipped =
        skipped_without_the_lock(engine.clone(), || db.run("TRUNCATE TABLE events")).await;
    engine.close().await;
    db.finish().await;
    assert!(skipped > 0, "no round skipped an event");
}

/// The tables exactly as evtstore 12.0.1's knex migrate makes them on MySQL
/// (knex's column types and index names), written by "evtstore" and then
/// read and extended by us; a duplicate on another unique index is not a
/// version conflict.
#[tokio::test]
async fn mysql_works_on_the_tables_of_evtstore() {
    let db = or_skip!(ScratchDb::create().await);
    let mut conn = db.conn().await;
    for ddl in [
        "create table `events` (`position` bigint unsigned not null auto_increment primary key, `version` int, `stream` varchar(255), `aggregate_id` varchar(255), `timestamp` datetime, `event` text)",
        "alter table `events` add unique `events_stream_position_unique`(`stream`, `position`)",
        "alter table `events` add unique `events_stream_aggregate_id_version_unique`(`stream`, `aggregate_id`, `version`)",
        "create table `bookmarks` (`bookmark` varchar(255), `position` bigint, primary key (`bookmark`))",
        "insert into `events` (`stream`, `aggregate_id`, `event`, `version`, `timestamp`) values ('s', 'a', '{\"type\":\"old\"}', 1, '2024-05-06 07:08:09.123')",
        "insert into `bookmarks` (`bookmark`, `position`) values ('h', 1)",
    ] {
        conn.execute(ddl).await.expect(ddl);
    }
    let engine = db.open().await;
    engine
        .migrate(Tables::BOTH)
        .await
        .expect("migrate keeps them");
    let indexes: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT INDEX_NAME) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'events'",
    )
    .fetch_one(&mut conn)
    .await
    .expect("indexes");
    assert_eq!(indexes, 3, "migrate added no index of its own");
    let store: Store = engine.clone();
    assert_eq!(store.get_bookmark("h").await.expect("bookmark"), 1);
    let old = all_events(&store, &["s"]).await;
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].event["type"], "old");
    assert_eq!(old[0].timestamp, Some(1_714_979_289_000));
    let err = append(&store, "s", "a", 1, &["x"])
        .await
        .expect_err("version 1 is taken");
    assert_eq!(err.code(), "VERSION_CONFLICT", "{err}");
    let p = append(&store, "s", "a", 2, &["new"]).await.expect("append");
    assert!(p[0] > 1);
    conn.execute("CREATE UNIQUE INDEX events_event_unique ON events (event(100))")
        .await
        .expect("index");
    let err = append(&store, "s", "b", 1, &["new"])
        .await
        .expect_err("same text");
    assert_eq!(err.code(), "CONSTRAINT_VIOLATION", "{err}");
    assert!(err.to_string().contains("not a version conflict"), "{err}");
    assert_eq!(all_events(&store, &["s"]).await.len(), 2);
    // DATETIME keeps whole seconds; DATETIME(3), once altered, keeps ms
    let stored = all_events(&store, &["s"]).await;
    assert_eq!(stored[1].timestamp, Some(1_700_000_000_000));
    conn.execute("ALTER TABLE events MODIFY `timestamp` DATETIME(3)")
        .await
        .expect("alter");
    let fresh = db.open().await;
    let fresh_store: Store = fresh.clone();
    let json = r#"[{"timestamp":1700000000123,"event":{"type":"ms"}}]"#;
    append_json(&fresh_store, "s", "a", 3.0, json)
        .await
        .expect("append");
    let stored = all_events(&fresh_store, &["s"]).await;
    assert_eq!(stored[2].timestamp, Some(1_700_000_000_123));
    fresh.close().await;
    drop(conn);
    engine.close().await;
    db.finish().await;
}

#[tokio::test]
async fn mysql_reports_connection_failures_with_their_own_codes() {
    let db = or_skip!(ScratchDb::create().await);
    let good = MysqlOptions::from_test_url(&db.url);
    let open = |o: MysqlOptions| async move { MysqlEngine::open(o).await.err().expect("fails") };
    let err = open(MysqlOptions {
        password: Some("wrong".into()),
        ..good.clone()
    })
    .await;
    assert_eq!(err.code(), "AUTH_FAILED", "{err}");
    assert!(!err.to_string().contains("wrong"), "{err}");
    let err = open(MysqlOptions {
        database: "no_such_db".into(),
        ..good.clone()
    })
    .await;
    assert_eq!(err.code(), "UNKNOWN_DATABASE", "{err}");
    let err = open(MysqlOptions {
        port: 1.0,
        ..good.clone()
    })
    .await;
    assert_eq!(err.code(), "CANNOT_CONNECT", "{err}");
    assert!(err.retryable());
    db.finish().await;
}

/// A lock wait timeout and a deadlock are told as such (and retryable),
/// never as a version conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_lock_waits_and_deadlocks_have_their_own_codes() {
    let db = or_skip!(ScratchDb::create().await);
    let engine = db.open_migrated().await;
    let store: Store = engine.clone();
    store.set_bookmark("h", 1).await.expect("set");
    let mut holder = db.conn().await;
    holder.execute("BEGIN").await.expect("begin");
    holder
        .execute("UPDATE bookmarks SET position = 2 WHERE bookmark = 'h'")
        .await
        .expect("hold the row");
    // Our connections wait 1 s for row locks from here on.
    let mut tuned = engine.conns.acquire().await.expect("conn");
    tuned
        .conn()
        .execute("SET SESSION innodb_lock_wait_timeout = 1")
        .await
        .expect("set");
    tuned.healthy();
    drop(tuned);
    let err = store.set_bookmark("h", 3).await.expect_err("lock wait");
    assert_eq!(err.code(), "TIMEOUT", "{err}");
    assert!(err.retryable());
    assert!(err.to_string().contains("1205"), "{err}");
    holder.execute("ROLLBACK").await.expect("rollback");
    engine.close().await;
    db.finish().await;
}

/// Appends that arrive together are written in groups, each all or none.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql_groups_concurrent_appends() {
    let db = or_skip!(ScratchDb::create().await);
    let engine = db.open_migrated_with(Choice::pool(12.0)).await;
    let store: Store = engine.clone();
    append(&store, "g", "taken", 1, &["x"])
        .await
        .expect("append");
    let mut tasks = Vec::new();
    for i in 0..100 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            // every tenth append clashes with what is stored
            let id = if i % 10 == 0 {
                "taken".to_string()
            } else {
                format!("a{i}")
            };
            append(&store, "g", &id, 1, &["e1", "e2"]).await
        }));
    }
    let mut stored = 0;
    let mut conflicts = 0;
    for t in tasks {
        match t.await.expect("join") {
            Ok(p) => {
                assert_eq!(p.len(), 2);
                assert!(p[0] < p[1]);
                stored += 1;
            }
            Err(e) => {
                assert_eq!(e.code(), "VERSION_CONFLICT", "{e}");
                conflicts += 1;
            }
        }
    }
    assert_eq!((stored, conflicts), (90, 10));
    let all = all_events(&store, &["g"]).await;
    assert_eq!(all.len(), 1 + 90 * 2);
    assert!(
        engine.groups_written.load(Ordering::Relaxed) > 0,
        "no group was formed"
    );
    engine.close().await;
    db.finish().await;
}
