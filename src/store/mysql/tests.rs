//! MySQL/MariaDB: the checks only this engine needs (that without its lock
//! a reader would skip events, exact error codes, evtstore's knex tables,
//! group commit); what every engine promises runs in the shared suite.
//!
//! They need a server: `EVTSTORE_TEST_MYSQL_URL` (a user that may create
//! databases; each test makes its own). Without it they pass after saying
//! they were skipped, except under `CI=true`, where they fail.

use sqlx::Executor;

use super::*;
use crate::store::lease::LeaseClaim;
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

/// A fenced bookmark write waits for a claim in flight and then sees its
/// token, even on a READ COMMITTED session (where an INSERT ... SELECT
/// without a lock clause reads the lease without locking it); and while a
/// fenced write is in flight, a claim waits for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_fenced_writes_and_claims_do_not_interleave() {
    let db = or_skip!(ScratchDb::create().await);
    let engine = db.open_migrated_with(Choice::pool(1.0)).await;
    let store: Store = engine.clone();
    let claim = |owner, seen| LeaseClaim {
        name: "h",
        owner,
        seen,
        ttl_ms: 1000,
        streams: "[]",
    };
    assert_eq!(store.claim_lease(&claim("a", None)).await, Ok(Some(1)));
    let mut only = engine.conns.acquire().await.expect("conn");
    only.conn()
        .execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        .await
        .expect("set");
    only.healthy();
    drop(only);

    // b's claim, not yet committed
    let mut holder = db.conn().await;
    holder.execute("BEGIN").await.expect("begin");
    holder
        .execute("UPDATE bookmarks_leases SET owner = 'b', token = token + 1, beat = beat + 1 WHERE name = 'h'")
        .await
        .expect("claim");
    let stale = tokio::spawn({
        let store = store.clone();
        async move { store.set_bookmark_fenced("h", 5, 1).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !stale.is_finished(),
        "the fenced write did not wait for the claim"
    );
    holder.execute("COMMIT").await.expect("commit");
    assert_eq!(stale.await.expect("join"), Ok(false));
    assert_eq!(store.get_bookmark("h").await, Ok(0));

    // b's fenced write, not yet committed: a claim waits for it
    holder.execute("BEGIN").await.expect("begin");
    holder
        .execute("INSERT INTO bookmarks (bookmark, position) SELECT 'h', 7 FROM bookmarks_leases WHERE name = 'h' AND token = 2 LOCK IN SHARE MODE ON DUPLICATE KEY UPDATE position = 7")
        .await
        .expect("fenced write");
    let lease = store.leases(Some("h")).await.expect("read").remove(0);
    let taking = tokio::spawn({
        let store = store.clone();
        let seen = Some((lease.token, lease.beat));
        async move { store.claim_lease(&claim("c", seen)).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !taking.is_finished(),
        "the claim did not wait for the fenced write"
    );
    holder.execute("COMMIT").await.expect("commit");
    assert_eq!(taking.await.expect("join"), Ok(Some(3)));
    assert_eq!(store.get_bookmark("h").await, Ok(7));
    assert_eq!(store.set_bookmark_fenced("h", 8, 2).await, Ok(false));
    assert_eq!(store.get_bookmark("h").await, Ok(7));
    drop(holder);
    engine.close().await;
    db.finish().await;
}

/// Writing the position a bookmark already holds still counts as written
/// (sqlx's connections report found rows, not changed ones).
#[tokio::test]
async fn mysql_a_fenced_write_of_the_same_position_is_written() {
    let db = or_skip!(ScratchDb::create().await);
    let engine = db.open_migrated().await;
    let store: Store = engine.clone();
    let claim = LeaseClaim {
        name: "h",
        owner: "a",
        seen: None,
        ttl_ms: 1000,
        streams: "[]",
    };
    assert_eq!(store.claim_lease(&claim).await, Ok(Some(1)));
    assert_eq!(store.set_bookmark_fenced("h", 3, 1).await, Ok(true));
    assert_eq!(store.set_bookmark_fenced("h", 3, 1).await, Ok(true));
    // a renewal or claim that sets what is there is not possible: beat rises
    assert_eq!(store.renew_lease("h", 1).await, Ok(true));
    assert_eq!(store.get_bookmark("h").await, Ok(3));
    engine.close().await;
    db.finish().await;
}

/// A bookmarks table of 63 characters (made without leases, as evtstore
/// makes it) gets its leases table on the first lease, its name cut to
/// MySQL's 64.
#[tokio::test]
async fn mysql_leases_of_a_long_bookmarks_table_made_by_evtstore() {
    let db = or_skip!(ScratchDb::create().await);
    let long = format!("b{}", "x".repeat(62));
    db.run(&format!(
        "create table `{long}` (`bookmark` varchar(255), `position` bigint, primary key (`bookmark`))"
    ))
    .await;
    let engine = db
        .open_with(Choice {
            bookmarks: Some(long.clone()),
            ..Choice::default()
        })
        .await;
    let store: Store = engine.clone();
    let claim = LeaseClaim {
        name: "h",
        owner: "a",
        seen: None,
        ttl_ms: 1000,
        streams: "[]",
    };
    assert_eq!(store.claim_lease(&claim).await, Ok(Some(1)));
    assert_eq!(store.set_bookmark_fenced("h", 2, 1).await, Ok(true));
    assert_eq!(store.bookmarks().await, Ok(vec![("h".to_string(), 2)]));
    let mut conn = db.conn().await;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME",
    )
    .fetch_all(&mut conn)
    .await
    .expect("tables");
    assert_eq!(tables, vec![long.clone(), format!("{long}_")]);
    drop(conn);
    engine.close().await;
    db.finish().await;
}
