//! PostgreSQL: the checks that only PostgreSQL needs (no skipped events in
//! either append mode, and skipped ones without the lock, exact error
//! codes, LISTEN/NOTIFY wake-ups, the tables of evtstore 12.0.1); what every
//! engine promises runs in the shared suite.
//!
//! They need a server: `EVTSTORE_TEST_PG_URL` (a superuser URL; each test
//! creates and drops its own database). Without it they pass after saying
//! they were skipped, except under `CI=true`, where they fail.

use std::io::Write;
use std::time::Instant;

use sqlx::{Connection, Executor, PgConnection, Row};

use super::*;
use crate::store::postgres::scratch::{server_url, ScratchDb, URL_VAR};
use crate::store::postgres::{AppendMode, PostgresEngine, PostgresOptions};
use crate::store::scratch::{or_skip, Choice};
use crate::store::{Engine, Tables};

fn spawn_on_tokio(task: crate::store::BoxTask) {
    tokio::spawn(task);
}

impl ScratchDb {
    /// Waits (up to 5 s) until `n` LISTEN connections of ours are on the
    /// scratch database.
    async fn listeners_become(&self, n: i64) -> bool {
        let mut admin = PgConnection::connect(&self.server).await.expect("admin");
        let start = Instant::now();
        let mut count = -1;
        while start.elapsed() < Duration::from_secs(5) {
            count = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'evtstore-rs listener'",
            )
            .bind(&self.name)
            .fetch_one(&mut admin)
            .await
            .expect("count listeners");
            if count == n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = admin.close().await;
        count == n
    }
}

async fn sequence_last_value(conn: &mut PgConnection) -> i64 {
    sqlx::query_scalar("SELECT last_value FROM events_position_seq")
        .fetch_one(conn)
        .await
        .expect("sequence")
}

// --- no skipped events ---------------------------------------------------------

/// The shared suite's a_reader_never_skips_an_event_under_concurrent_appends
/// runs the default append mode once; here it runs twice more, and the
/// two-statement mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_a_reader_never_skips_an_event_in_either_append_mode() {
    let db = or_skip!(ScratchDb::create().await);
    let engine = db.open_migrated_with(Choice::pool(12.0)).await;
    for mode in [
        AppendMode::Locked,
        AppendMode::Locked,
        AppendMode::TwoStatements,
    ] {
        db.run("TRUNCATE events").await;
        engine.set_append_mode(mode);
        let (seen, all) = race_readers_and_writers(engine.clone() as Store).await;
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "{mode:?}: read out of order"
        );
        assert_eq!(seen, all, "{mode:?}: the reader skipped events");
    }
    engine.close().await;
    db.finish().await;
}

/// Appends that arrive together are written in groups (one statement, one
/// commit): each append is still stored whole or not at all, a conflict
/// stays the conflicting append's own, and an append the database refuses
/// fails alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_grouped_appends_are_each_all_or_none() {
    let db = or_skip!(ScratchDb::create().await);
    let engine = db.open_migrated_with(Choice::pool(4.0)).await;
    let store: Store = engine.clone();
    // "seeded" holds versions 1 and 2: an append of 2..3 must store nothing
    append(&store, "g", "seeded", 1, &["a", "b"])
        .await
        .expect("seed");

    let mut tasks = Vec::new();
    for round in 0..3 {
        for i in 0..60 {
            let store: Store = engine.clone();
            tasks.push(tokio::spawn(async move {
                let id = format!("d{round}-{i}");
                let out = append(&store, "g", &id, 1, &["x", "y"]).await;
                (id, 1, 2, out)
            }));
        }
        for _ in 0..20 {
            let store: Store = engine.clone();
            tasks.push(tokio::spawn(async move {
                let out = append(&store, "g", "hot", 1, &["h"]).await;
                ("hot".to_string(), 1, 1, out)
            }));
        }
        let store: Store = engine.clone();
        tasks.push(tokio::spawn(async move {
            let out = append(&store, "g", "seeded", 2, &["c", "d"]).await;
            ("seeded".to_string(), 2, 2, out)
        }));
        let store: Store = engine.clone();
        tasks.push(tokio::spawn(async move {
            // far beyond the timestamps PostgreSQL stores
            let json = r#"[{"timestamp":9000000000000000000,"event":{"type":"late"}}]"#;
            let out = append_json(&store, "g", "late", 1.0, json).await;
            ("late".to_string(), 1, 1, out)
        }));
    }
    let mut stored = std::collections::HashMap::new();
    let mut hot_ok = 0;
    for task in tasks {
        let (id, first, count, out) = task.await.expect("task");
        match out {
            Ok(positions) => {
                assert_eq!(positions.len(), count, "{id}");
                if id == "hot" {
                    hot_ok += 1;
                }
                assert_ne!(id, "seeded", "an append over stored versions was stored");
                assert_ne!(id, "late");
                stored.insert(format!("{id}@{first}"), positions);
            }
            Err(e) if id == "late" => assert_eq!(e.code(), "INVALID_EVENT", "{e}"),
            Err(e) => {
                assert_eq!(e.code(), "VERSION_CONFLICT", "{id}: {e}");
                assert!(id == "hot" || id == "seeded", "{id}: {e}");
            }
        }
    }
    assert_eq!(hot_ok, 1, "exactly one append wins version 1 of \"hot\"");
    let all = all_events(&store, &["g"]).await;
    // 2 seeded + 180 * 2 distinct + 1 hot
    assert_eq!(all.len(), 2 + 360 + 1);
    let mut per_aggregate: std::collections::HashMap<String, Vec<i64>> = Default::default();
    for e in &all {
        per_aggregate
            .entry(e.aggregate_id.clone().expect("id"))
            .or_default()
            .push(e.version.expect("version"));
    }
    for (id, versions) in &per_aggregate {
        let dense: Vec<i64> = (1..=versions.len() as i64).collect();
        assert_eq!(versions, &dense, "{id}");
    }
    for (key, positions) in &stored {
        let id = key.split('@').next().expect("id");
        let in_table: Vec<i64> = all
            .iter()
            .filter(|e| e.aggregate_id.as_deref() == Some(id))
            .map(|e| e.position)
            .collect();
        assert_eq!(
            &in_table, positions,
            "{key}: returned positions are the stored ones"
        );
    }
    assert!(
        engine.groups_written.load(Ordering::Relaxed) > 0,
        "no group was written: the test did not exercise group commit"
    );
    engine.close().await;
    db.finish().await;
}

/// Without the lock the same race makes a reader skip events for ever: this
/// shows that the test above can fail. (Measured: 9 rounds in 10 skip
/// events; the test stops at the first round that does, and gives up after
/// 20.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_without_the_lock_a_reader_skips_events() {
    let db = or_skip!(ScratchDb::create().await);
    let engine = db.open_migrated_with(Choice::pool(12.0)).await;
    engine.set_append_mode(AppendMode::Unlocked);
    let skipped = skipped_without_the_lock(engine.clone(), || db.run("TRUNCATE events")).await;
    engine.close().await;
    db.finish().await;
    assert!(skipped > 0, "no round skipped an event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_takes_the_lock_before_drawing_a_position() {
    let db = or_skip!(ScratchDb::create().await);
    let engine = db.open_migrated().await;
    let store: Store = engine.clone();
    append(&store, "s", "a", 1, &["x"]).await.expect("append");
    let mut other = db.conn().await;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(engine.lock_key())
        .execute(&mut other)
        .await
        .expect("lock");
    assert_eq!(sequence_last_value(&mut other).await, 1);
    let s2 = store.clone();
    let pending = tokio::spawn(async move { append(&s2, "s", "b", 1, &["y", "z"]).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!pending.is_finished(), "the append waits for the lock");
    assert_eq!(
        sequence_last_value(&mut other).await,
        1,
        "no position is drawn before the lock is held"
    );
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(engine.lock_key())
        .execute(&mut other)
        .await
        .expect("unlock");
    let p = pending.await.expect("join").expect("append");
    assert_eq!(p, vec![2, 3]);
    drop(other);
    engine.close().await;
    db.finish().await;
}

// --- exact errors ----------------------------------------------------------------

#[tokio::test]
async fn pg_tells_a_version_conflict_from_other_constraint_violations() {
    let db = or_skip!(ScratchDb::create().await);
    let engine = db.open_migrated().await;
    let store: Store = engine.clone();
    let mut conn = db.conn().await;
    for ddl in [
        "CREATE UNIQUE INDEX events_event_unique ON events (event)",
        "ALTER TABLE events ADD CONSTRAINT no_forbidden CHECK (stream <> 'forbidden')",
    ] {
        conn.execute(ddl).await.expect(ddl);
    }
    let json = r#"[{"timestamp":1,"event":{"type":"same"}}]"#;
    append_json(&store, "s", "a", 1.0, json)
        .await
        .expect("append");
    let err = append_json(&store, "s", "b", 1.0, json)
        .await
        .expect_err("same event text");
    assert_eq!(err.code(), "CONSTRAINT_VIOLATION", "{err}");
    let msg = err.to_string();
    assert!(msg.contains("events_event_unique"), "{msg}");
    assert!(msg.contains("not a version conflict"), "{msg}");

    let err = append(&store, "forbidden", "a", 1, &["x"])
        .await
        .expect_err("check");
    assert_eq!(err.code(), "CONSTRAINT_VIOLATION", "{err}");
    assert!(err.to_string().contains("no_forbidden"), "{err}");

    let err = append_json(&store, "s", "a", 1.0, json)
        .await
        .expect_err("conflict");
    assert_eq!(err.code(), "VERSION_CONFLICT", "{err}");

    // A version that does not fit the integer column.
    let err = append(&store, "s", "big", 3_000_000_000, &["x"])
        .await
        .expect_err("too big");
    assert_eq!(err.code(), "INVALID_ARGUMENT", "{err}");
    assert_eq!(all_events(&store, &["s", "forbidden"]).await.len(), 1);
    drop(conn);
    engine.close().await;
    db.finish().await;
}

/// A server that asks for a password and rejects it (the test server trusts
/// every local connection, so a real wrong password cannot be shown there).
async fn password_rejecting_server() -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let read_packet = async |sock: &mut tokio::net::TcpStream| {
                    let len = sock.read_u32().await.ok()? as usize;
                    let mut body = vec![0u8; len.saturating_sub(4)];
                    sock.read_exact(&mut body).await.ok()?;
                    Some(body)
                };
                let mut startup = read_packet(&mut sock).await?;
                if startup.get(..4) == Some(&80_877_103u32.to_be_bytes()[..]) {
                    sock.write_all(b"N").await.ok()?;
                    startup = read_packet(&mut sock).await?;
                }
                let _ = startup;
                // AuthenticationCleartextPassword
                sock.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).await.ok()?;
                let _kind = sock.read_u8().await.ok()?;
                let _password = read_packet(&mut sock).await?;
                let mut fields = Vec::new();
                for (k, v) in [
                    (b'S', "FATAL"),
                    (b'V', "FATAL"),
                    (b'C', "28P01"),
                    (b'M', "password authentication failed for user \"bob\""),
                ] {
                    fields.push(k);
                    fields.extend_from_slice(v.as_bytes());
                    fields.push(0);
                }
                fields.push(0);
                let mut msg = vec![b'E'];
                msg.extend_from_slice(&((fields.len() + 4) as u32).to_be_bytes());
                msg.extend_from_slice(&fields);
                sock.write_all(&msg).await.ok()?;
                Some(())
            });
        }
    });
    port
}

#[tokio::test]
async fn pg_reports_connection_failures_with_their_own_codes() {
    let server = or_skip!(server_url());
    let open = |url: String| async move {
        PostgresEngine::open(PostgresOptions::from_test_url(&url))
            .await
            .err()
            .expect("must fail")
    };

    // Nothing listens on a port just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let err = open(format!("postgres://bob:pw1secret@127.0.0.1:{port}/db")).await;
    assert_eq!(err.code(), "CANNOT_CONNECT", "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(msg.contains("\"bob\""), "{msg}");
    assert!(msg.contains("refused"), "{msg}");
    assert!(!msg.contains("pw1secret"), "{msg}");

    let port = password_rejecting_server().await;
    let err = open(format!("postgres://bob:pw2secret@127.0.0.1:{port}/db")).await;
    assert_eq!(err.code(), "AUTH_FAILED", "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(msg.contains("user \"bob\""), "{msg}");
    assert!(msg.contains("password authentication failed"), "{msg}");
    assert!(!msg.contains("pw2secret"), "{msg}");

    // The real server too, when it asks for passwords (a trusting one lets
    // any password in).
    let mut u = url::Url::parse(&server).expect("url");
    u.set_password(Some("pw4secret-wrong")).expect("password");
    match PostgresEngine::open(PostgresOptions {
        ..PostgresOptions::from_test_url(u.as_ref())
    })
    .await
    {
        Ok(engine) => engine.close().await,
        Err(err) => {
            assert_eq!(err.code(), "AUTH_FAILED", "{err}");
            let msg = err.to_string();
            assert!(msg.contains(&format!("user \"{}\"", u.username())), "{msg}");
            assert!(!msg.contains("pw4secret"), "{msg}");
        }
    }

    let mut u = url::Url::parse(&server).expect("url");
    u.set_path("/evtstore_rs_no_such_database");
    let err = open(u.to_string()).await;
    assert_eq!(err.code(), "UNKNOWN_DATABASE", "{err}");
    let msg = err.to_string();
    assert!(msg.contains("\"evtstore_rs_no_such_database\""), "{msg}");
    let host_port = format!(
        "{}:{}",
        u.host_str().expect("host"),
        u.port().unwrap_or(5432)
    );
    assert!(msg.contains(&host_port), "{msg}");

    let mut u = url::Url::parse(&server).expect("url");
    u.set_username("evtstore_rs_no_such_role").expect("user");
    let err = open(u.to_string()).await;
    assert_eq!(err.code(), "AUTH_FAILED", "{err}");
    assert!(err.to_string().contains("\"evtstore_rs_no_such_role\""));

    // TLS through rustls: `require` works when the server has TLS (and is
    // refused with a TLS error when it has none); `verify-full` without the
    // server's CA among the roots never does.
    let mut u = url::Url::parse(&server).expect("url");
    u.set_query(Some("sslmode=require"));
    match PostgresEngine::open(PostgresOptions {
        events: Some("evtstore_rs_tls_probe_events".into()),
        bookmarks: Some("evtstore_rs_tls_probe_bookmarks".into()),
        ..PostgresOptions::from_test_url(u.as_ref())
    })
    .await
    {
        Ok(engine) => {
            assert_eq!(
                engine.get_bookmark("x").await.err().map(|e| e.code()),
                Some("MISSING_TABLE")
            );
            engine.close().await;
        }
        Err(err) => {
            assert_eq!(err.code(), "CANNOT_CONNECT", "{err}");
            assert!(err.to_string().contains("TLS"), "{err}");
        }
    }
    u.set_query(Some("sslmode=verify-full"));
    let err = open(u.to_string()).await;
    assert_eq!(err.code(), "CANNOT_CONNECT", "{err}");
    assert!(err.to_string().contains("TLS"), "{err}");

    let err = PostgresEngine::open(PostgresOptions {
        port: 0.0,
        ..PostgresOptions::from_test_url("postgres://bob:pw3secret@127.0.0.1/db")
    })
    .await
    .err()
    .expect("must fail");
    assert_eq!(err.code(), "INVALID_ARGUMENT", "{err}");
    assert!(!err.to_string().contains("pw3secret"));
}

#[tokio::test]
async fn pg_reports_a_statement_timeout_as_a_timeout() {
    let db = or_skip!(ScratchDb::create().await);
    db.open_migrated().await.close().await;
    let engine = Arc::new(
        PostgresEngine::open(PostgresOptions {
            options: Some("-c statement_timeout=200".into()),
            ..PostgresOptions::from_test_url(&db.url)
        })
        .await
        .expect("open"),
    );
    let mut other = db.conn().await;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(engine.lock_key())
        .execute(&mut other)
        .await
        .expect("lock");
    let store: Store = engine.clone();
    let err = append(&store, "s", "a", 1, &["x"])
        .await
        .expect_err("times out");
    assert_eq!(err.code(), "TIMEOUT", "{err}");
    drop(other);
    engine.close().await;
    db.finish().await;
}

#[tokio::test]
async fn pg_closed_store_says_so() {
    let db = or_skip!(ScratchDb::create().await);
    let engine = db.open_migrated().await;
    engine.close().await;
    assert!(engine.is_closed());
    let store: Store = engine.clone();
    let err = store.get_bookmark("x").await.expect_err("closed");
    assert_eq!(err.code(), "STORE_CLOSED");
    assert!(err.to_string().contains("PostgresStore.open()"), "{err}");
    let err = append(&store, "s", "a", 1, &["x"])
        .await
        .expect_err("closed");
    assert_eq!(err.code(), "STORE_CLOSED");
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_an_append_survives_connections_killed_by_the_server() {
    let db = or_skip!(ScratchDb::create().await);
    let engine = db.open_migrated_with(Choice::pool(2.0)).await;
    let store: Store = engine.clone();
    // Two pooled connections.
    let (a, b) = tokio::join!(
        append(&store, "s", "a", 1, &["x"]),
        append(&store, "s", "b", 1, &["x"])
    );
    a.expect("a");
    b.expect("b");
    let mut admin = db.conn().await;
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'evtstore-rs' AND pid <> pg_backend_pid()",
    )
    .fetch_one(&mut admin)
    .await
    .expect("terminate");
    assert!(killed >= 1, "killed {killed}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let p = append(&store, "s", "a", 2, &["y"])
        .await
        .expect("retried on a new connection");
    assert_eq!(p.len(), 1);
    assert_eq!(all_events(&store, &["s"]).await.len(), 3);
    drop(admin);
    engine.close().await;
    db.finish().await;
}

#[tokio::test]
async fn pg_an_append_whose_reply_was_lost_is_recognised_on_retry() {
    let db = or_skip!(ScratchDb::create().await);
    let engine = db.open_migrated().await;
    let store: Store = engine.clone();
    // It committed, then the connection broke before the answer came: the
    // retry meets its own rows and returns their positions.
    engine.inject_lost.store(2, Ordering::Relaxed);
    let p = append(&store, "s", "a", 1, &["x", "y"])
        .await
        .expect("recognised as ours");
    assert_eq!(p, vec![1, 2]);
    assert_eq!(all_events(&store, &["s"]).await.len(), 2);
    assert_eq!(engine.head().get(), 2);

    // It did not commit, and meanwhile someone else wrote version 3: a real
    // conflict.
    let mut other = db.conn().await;
    other
        .execute("INSERT INTO events (version, stream, aggregate_id, timestamp, event) VALUES (3, 's', 'a', now(), '{\"type\":\"theirs\"}')")
        .await
        .expect("insert");
    engine.inject_lost.store(1, Ordering::Relaxed);
    let err = append(&store, "s", "a", 3, &["mine"])
        .await
        .expect_err("conflict");
    assert_eq!(err.code(), "VERSION_CONFLICT", "{err}");
    // Not committed, nothing there yet: the retry just stores it.
    engine.inject_lost.store(1, Ordering::Relaxed);
    let p = append(&store, "s", "a", 4, &["z"]).await.expect("append");
    assert_eq!(p.len(), 1);
    assert_eq!(
        versions(&parse(
            &store.events_for("s", "a", None).await.expect("read")
        )),
        vec![1, 2, 3, 4]
    );
    drop(other);
    engine.close().await;
    db.finish().await;
}

// --- wake-ups ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_notify_wakes_a_waiter_of_another_store_instance() {
    let db = or_skip!(ScratchDb::create().await);
    let writer = db.open_migrated().await;
    // Another pool, reached through another host name, so it shares no head
    // with `writer`: only NOTIFY can move its head.
    let other_url = if db.url.contains("@127.0.0.1") {
        db.url.replacen("@127.0.0.1", "@localhost", 1)
    } else {
        db.url.replacen("@localhost", "@127.0.0.1", 1)
    };
    if other_url == db.url {
        let _ = writeln!(
            std::io::stderr(),
            "pg_notify_wakes_a_waiter_of_another_store_instance skipped: {URL_VAR} names neither 127.0.0.1 nor localhost"
        );
        writer.close().await;
        db.finish().await;
        return;
    }
    let reader = Arc::new(
        PostgresEngine::open(PostgresOptions {
            ..PostgresOptions::from_test_url(&other_url)
        })
        .await
        .expect("open"),
    );
    assert!(!Arc::ptr_eq(writer.head(), reader.head()));
    assert!(
        !reader.is_listening(),
        "no LISTEN connection before a waiter"
    );
    assert!(db.listeners_become(0).await);

    reader.ensure_listener(&spawn_on_tokio);
    reader.ensure_listener(&spawn_on_tokio);
    assert!(reader.is_listening());
    assert!(db.listeners_become(1).await, "one LISTEN connection");
    let waiter = HeadWaiter::new(reader.head().clone());
    let store: Store = writer.clone();
    let mut latencies = Vec::new();
    for v in 1..=5 {
        let known = reader.head().get();
        let start = Instant::now();
        let wait = waiter.wait(known, Some(Duration::from_secs(5)));
        let (outcome, appended) = tokio::join!(wait, append(&store, "s", "a", v, &["x"]));
        let elapsed = start.elapsed();
        assert_eq!(outcome, WaitOutcome::Changed);
        assert_eq!(reader.head().get(), appended.expect("append")[0]);
        latencies.push(elapsed);
    }
    let worst = latencies.iter().max().copied().unwrap_or_default();
    let _ = writeln!(
        std::io::stderr(),
        "append in one pool -> waiter of another pool woken: {:?}",
        latencies
    );
    assert!(worst < Duration::from_secs(2), "too slow: {worst:?}");

    // The LISTEN connection ends with the last store of its database and
    // table.
    reader.close().await;
    assert!(!reader.is_listening());
    assert!(
        db.listeners_become(0).await,
        "the LISTEN connection is closed"
    );
    writer.close().await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_listener_catches_up_after_losing_its_connection() {
    let db = or_skip!(ScratchDb::create().await);
    let engine = db.open_migrated().await;
    engine.ensure_listener(&spawn_on_tokio);
    assert!(db.listeners_become(1).await);
    let mut admin = PgConnection::connect(&db.server).await.expect("admin");
    let mut writer = db.conn().await;
    let waiter = HeadWaiter::new(engine.head().clone());
    let known = engine.head().get();
    assert_eq!(known, 0);

    // Keep the listener out while an event is written without a NOTIFY it
    // could have heard.
    admin
        .execute(&*format!(
            "ALTER DATABASE \"{}\" ALLOW_CONNECTIONS false",
            db.name
        ))
        .await
        .expect("no new connections");
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'evtstore-rs listener'",
    )
    .bind(&db.name)
    .fetch_one(&mut admin)
    .await
    .expect("terminate");
    assert_eq!(killed, 1);
    sqlx::query("INSERT INTO events (version, stream, aggregate_id, timestamp, event) VALUES (1, 's', 'a', now(), '{\"type\":\"quiet\"}')")
        .execute(&mut writer)
        .await
        .expect("insert");
    assert_eq!(
        waiter.wait(known, Some(Duration::from_millis(300))).await,
        WaitOutcome::Timeout,
        "nobody could tell the listener"
    );
    admin
        .execute(&*format!(
            "ALTER DATABASE \"{}\" ALLOW_CONNECTIONS true",
            db.name
        ))
        .await
        .expect("connections again");
    assert_eq!(
        waiter.wait(known, Some(Duration::from_secs(10))).await,
        WaitOutcome::Changed,
        "after reconnecting the listener reads the head"
    );
    assert_eq!(engine.head().get(), 1);
    drop(writer);
    let _ = admin.close().await;
    engine.close().await;
    db.finish().await;
}

// --- compatibility and layout ------------------------------------------------------

#[tokio::test]
async fn pg_is_compatible_with_the_tables_of_evtstore() {
    let db = or_skip!(ScratchDb::create().await);
    let mut conn = db.conn().await;
    // Exactly what evtstore 12.0.1's provider/pg.ts migrate() runs.
    for ddl in [
        "CREATE TABLE \"bookmarks\" (\n        bookmark text PRIMARY KEY,\n        position bigint\n      )",
        "CREATE TABLE \"events\" (\n        position BIGSERIAL PRIMARY KEY,\n        version integer,\n        stream text,\n        aggregate_id text,\n        timestamp timestamptz,\n        event text\n      )",
        "CREATE UNIQUE INDEX events_stream_position_unique ON \"events\" (\n      stream, position\n    )",
        "CREATE UNIQUE INDEX events_stream_aggregate_version_unique ON \"events\" (\n      stream, aggregate_id, version\n    )",
    ] {
        conn.execute(ddl).await.expect(ddl);
    }
    // Rows as evtstore writes them: JSON.stringify(event), Date.toISOString().
    for (v, ts, event) in [
        (
            1,
            "2026-11-26T15:16:17.123Z",
            r#"{"type":"created","name":"x"}"#,
        ),
        (
            2,
            "2026-11-26T15:16:18.456Z",
            r#"{"type":"renamed","name":"y","n":[1,2.5]}"#,
        ),
    ] {
        sqlx::query("insert into \"events\" (stream, aggregate_id, event, version, timestamp) values ($1, $2, $3, $4, $5::text::timestamptz) returning position")
            .bind("users")
            .bind("u1")
            .bind(event)
            .bind(v)
            .bind(ts)
            .fetch_one(&mut conn)
            .await
            .expect("insert like evtstore");
    }
    sqlx::query("insert into \"bookmarks\" (bookmark, position) values ($1, $2)")
        .bind("bm")
        .bind(2i64)
        .execute(&mut conn)
        .await
        .expect("bookmark");

    let engine = db.open().await;
    engine
        .migrate(Tables::BOTH)
        .await
        .expect("migrate over evtstore's tables is a no-op");
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE tablename = 'events' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .expect("indexes");
    assert_eq!(
        indexes,
        [
            "events_pkey",
            "events_stream_aggregate_version_unique",
            "events_stream_position_unique"
        ],
        "migrate must not add a duplicate index"
    );

    let store: Store = engine.clone();
    let evs = parse(&store.events_for("users", "u1", None).await.expect("read"));
    assert_eq!(versions(&evs), vec![1, 2]);
    assert_eq!(positions(&evs), vec![1, 2]);
    assert_eq!(evs[0].timestamp, Some(1_795_706_177_123));
    assert_eq!(evs[1].timestamp, Some(1_795_706_178_456));
    assert_eq!(evs[1].event["n"][1], 2.5);
    let named = parse(
        &store
            .events_from(&strings(&["users"]), 0, None)
            .await
            .expect("read"),
    );
    assert_eq!(named[0].aggregate_id.as_deref(), Some("u1"));
    assert_eq!(store.get_bookmark("bm").await.expect("bm"), 2);
    store.set_bookmark("bm", 3).await.expect("upsert");
    assert_eq!(store.get_bookmark("bm").await.expect("bm"), 3);

    let err = append(&store, "users", "u1", 2, &["dup"])
        .await
        .expect_err("conflict on evtstore's own index");
    assert_eq!(err.code(), "VERSION_CONFLICT", "{err}");
    let json = r#"[{"timestamp":1795706180789,"event":{"type":"next","é":"\"q\""}}]"#;
    let p = append_json(&store, "users", "u1", 3.0, json)
        .await
        .expect("append");
    assert_eq!(p.len(), 1);

    // What evtstore reads back from our row: `select *`, JSON.parse(event),
    // a Date from the timestamptz.
    let row = sqlx::query("select *, (extract(epoch from timestamp) * 1000)::int8 AS ms from \"events\" where position = $1")
        .bind(p[0])
        .fetch_one(&mut conn)
        .await
        .expect("row");
    let event: String = row.get("event");
    let event: serde_json::Value = serde_json::from_str(&event).expect("event column is JSON");
    assert_eq!(event["type"], "next");
    assert_eq!(event["é"], "\"q\"");
    assert_eq!(row.get::<i32, _>("version"), 3);
    assert_eq!(row.get::<i64, _>("ms"), 1_795_706_180_789);
    let iso: String = sqlx::query_scalar(
        "select to_char(timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') from events where position = $1",
    )
    .bind(p[0])
    .fetch_one(&mut conn)
    .await
    .expect("iso");
    assert_eq!(iso, "2026-11-26T15:16:20.789Z");
    drop(conn);
    engine.close().await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_migrate_is_idempotent_concurrent_and_names_indexes_by_table() {
    let db = or_skip!(ScratchDb::create().await);
    let mut conn = db.conn().await;
    // evtstore's migrate for another table already took the name
    // "MyEvents_stream_position_unique" would have: make it clash.
    conn.execute("CREATE TABLE other (x int, y int)")
        .await
        .expect("other");
    conn.execute("CREATE UNIQUE INDEX \"MyEvents_stream_position_unique\" ON other (x, y)")
        .await
        .expect("clash");
    let options = || Choice {
        events: Some("MyEvents".into()),
        bookmarks: Some("my_bookmarks".into()),
        ..Default::default()
    };
    let a = db.open_with(options()).await;
    let b = db.open_with(options()).await;
    let mut tasks = Vec::new();
    for i in 0..6 {
        let e = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move { e.migrate(Tables::BOTH).await }));
    }
    for t in tasks {
        t.await.expect("join").expect("concurrent migrate");
    }
    let store: Store = a.clone();
    append(&store, "s", "a", 1, &["x"]).await.expect("append");
    store.set_bookmark("b", 1).await.expect("bookmark");
    a.migrate(Tables::BOTH).await.expect("again");
    assert_eq!(all_events(&store, &["s"]).await.len(), 1);
    assert_eq!(store.get_bookmark("b").await.expect("get"), 1);
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE tablename IN ('MyEvents', 'my_bookmarks') ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .expect("names");
    assert_eq!(
        names,
        [
            "MyEvents_pkey",
            "MyEvents_stream_aggregate_id_version_unique",
            "MyEvents_stream_position_unique_2",
            "my_bookmarks_pkey"
        ]
    );
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .expect("tables");
    assert_eq!(
        tables,
        ["MyEvents", "my_bookmarks", "my_bookmarks_leases", "other"]
    );
    let err = append(&store, "s", "a", 1, &["x"]).await.expect_err("dup");
    assert_eq!(err.code(), "VERSION_CONFLICT");
    drop(conn);
    a.close().await;
    b.close().await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_writes_exact_json_for_any_stored_row() {
    let db = or_skip!(ScratchDb::create().await);
    let engine = db.open_migrated().await;
    let store: Store = engine.clone();
    let tricky = r#"[{"timestamp":1700000000000,"event":{"type":"a","big":12345678901234567890123,"f":1.0,"s":"\ud83d\ude00 \u00e9 é \n \" \\ \/","nested":{"x":[1,{"y":null}],"t":true},"empty":{},"arr":[]}},{"timestamp":-5,"event":{"type":"b"}},{"timestamp":8640000000000000,"event":{"type":"c"}}]"#;
    let stream = "we\"ird\n\u{1}\u{7f}";
    append_json(&store, stream, "id\u{1}é", 1.0, tricky)
        .await
        .expect("append");
    append(&store, "plain", "p", 1, &["x", "y"])
        .await
        .expect("append");
    let mut conn = db.conn().await;
    // Written by someone else: microseconds, infinity, and NULLs.
    conn.execute("INSERT INTO events (version, stream, aggregate_id, timestamp, event) VALUES (3, 'plain', 'p', '2024-01-02T03:04:05.678999Z', '{\"type\":\"z\"}'), (4, 'plain', 'p', 'infinity', ' {\"type\" : \"w\"} '), (NULL, 'plain', NULL, NULL, NULL)")
        .await
        .expect("insert");

    let first = store
        .events_for(stream, "id\u{1}é", None)
        .await
        .expect("for");
    // The event text exactly as appended; strings escaped as serde does.
    let expected_event = &tricky[tricky.find(r#"{"type":"a""#).expect("a")
        ..tricky.find(r#"}},{"timestamp":-5"#).expect("end") + 1];
    // PostgreSQL sends the numbers outside the JSON.
    assert_eq!(
        first.json,
        format!(r#"{{"e":[{expected_event},{{"type":"b"}},{{"type":"c"}}]}}"#),
    );
    let numbers = |triples: &[[f64; 3]]| triples.concat();
    let expected_numbers = numbers(&[
        [1.0, 1.0, 1_700_000_000_000.0],
        [2.0, 2.0, -5.0],
        [3.0, 3.0, 8_640_000_000_000_000.0],
    ]);
    assert_eq!(first.numbers, expected_numbers);
    let streams = strings(&[stream, "plain"]);
    let named = store.events_from(&streams, 0, Some(3)).await.expect("from");
    assert!(
        named.json.ends_with(&format!(
            r#"],"s":["we\"ird\n\u0001{0}","we\"ird\n\u0001{0}","we\"ird\n\u0001{0}"],"a":["id\u0001é","id\u0001é","id\u0001é"]}}"#,
            '\u{7f}'
        )),
        "{}",
        named.json
    );
    assert_eq!(named.numbers, expected_numbers);
    let all = parse(&store.events_from(&streams, 0, None).await.expect("from"));
    assert_eq!(positions(&all), (1..=8).collect::<Vec<_>>());
    assert_eq!(all[1].timestamp, Some(-5));
    assert_eq!(all[2].timestamp, Some(8_640_000_000_000_000));
    assert_eq!(all[5].timestamp, Some(1_704_164_645_678));
    assert_eq!(all[6].timestamp, None, "infinity");
    assert_eq!(all[6].event["type"], "w");
    assert_eq!(all[7].timestamp, None);
    assert_eq!(all[7].version, None);
    assert_eq!(all[7].aggregate_id, None);
    assert_eq!(all[7].event, serde_json::Value::Null);
    let after = parse(&store.events_for("plain", "p", Some(4)).await.expect("for"));
    assert_eq!(versions(&after), vec![2, 3, 4]);
    let some = parse(&store.events_from(&streams, 1, Some(2)).await.expect("from"));
    assert_eq!(positions(&some), vec![2, 3]);
    let none = store
        .events_from(&strings(&["none"]), 0, None)
        .await
        .expect("from");
    assert_eq!(none.json, r#"{"e":[],"s":[],"a":[]}"#);
    assert!(none.numbers.is_empty());
    let last = store.last_event(&streams, None).await.expect("last");
    assert!(
        last.as_deref().is_some_and(|l| l
            .starts_with(r#"{"stream":"plain","aggregateId":null,"version":null,"position":8,"#)),
        "{last:?}"
    );

    // An event column that is not JSON: the error names the row.
    conn.execute("INSERT INTO events (version, stream, aggregate_id, timestamp, event) VALUES (9, 'bad', 'b', now(), '{oops')")
        .await
        .expect("insert");
    let err = store
        .events_from(&strings(&["bad"]), 0, None)
        .await
        .expect_err("bad row");
    assert_eq!(err.code(), "DATABASE_ERROR");
    assert!(err.to_string().contains("position 9"), "{err}");
    drop(conn);
    engine.close().await;
    db.finish().await;
}

#[tokio::test]
async fn pg_stores_on_one_database_share_head_and_table_names_are_checked() {
    let db = or_skip!(ScratchDb::create().await);
    let a = db.open_migrated().await;
    let b = db.open().await;
    assert!(Arc::ptr_eq(a.head(), b.head()));
    let store: Store = a.clone();
    append(&store, "s", "a", 1, &["x"]).await.expect("append");
    assert_eq!(b.head().get(), 1);
    for (events, bookmarks) in [
        (Some("bad-name"), None),
        (None, Some("x y")),
        (Some("same"), Some("same")),
    ] {
        let err = PostgresEngine::open(PostgresOptions {
            events: events.map(str::to_string),
            bookmarks: bookmarks.map(str::to_string),
            ..PostgresOptions::from_test_url(&db.url.clone())
        })
        .await
        .err()
        .expect("rejected");
        assert_eq!(err.code(), "INVALID_NAME");
    }
    let err = PostgresEngine::open(PostgresOptions {
        max_connections: Some(0.0),
        ..PostgresOptions::from_test_url(&db.url.clone())
    })
    .await
    .err()
    .expect("rejected");
    assert_eq!(err.code(), "INVALID_ARGUMENT");
    a.close().await;
    b.close().await;
    db.finish().await;
}

// --- measurements (run by hand: cargo test --release --lib pg_measure -- --ignored --nocapture)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test"]
async fn pg_measure_appends_and_reads() {
    let db = or_skip!(ScratchDb::create().await);
    let engine = db.open_migrated().await;
    let store: Store = engine.clone();
    let mut out = std::io::stderr();
    {
        // The floor: one round trip through a sqlx pool, and on one
        // connection.
        let pool = sqlx::PgPool::connect(&db.url).await.expect("pool");
        let mut conn = db.conn().await;
        for _ in 0..100 {
            sqlx::query("SELECT 1").execute(&pool).await.expect("q");
            sqlx::query("SELECT 1").execute(&mut conn).await.expect("q");
        }
        let start = Instant::now();
        for _ in 0..2000 {
            sqlx::query("SELECT 1").execute(&pool).await.expect("q");
        }
        let through_pool = start.elapsed();
        let start = Instant::now();
        for _ in 0..2000 {
            sqlx::query("SELECT 1").execute(&mut conn).await.expect("q");
        }
        let _ = writeln!(
            out,
            "SELECT 1: {:.1} us through a pool, {:.1} us on one connection",
            through_pool.as_secs_f64() * 1e6 / 2000.0,
            start.elapsed().as_secs_f64() * 1e6 / 2000.0
        );
        pool.close().await;
    }
    for mode in [
        AppendMode::Locked,
        AppendMode::TwoStatements,
        AppendMode::Unlocked,
    ] {
        engine.set_append_mode(mode);
        let tag = format!("{mode:?}");
        // Warm up (prepared statements on the connections).
        for v in 1..=50 {
            append(&store, &tag, "warm", v, &["w"]).await.expect("warm");
        }
        let n = 2000;
        let start = Instant::now();
        for v in 1..=n {
            append(&store, &tag, "seq", v, &["e"])
                .await
                .expect("append");
        }
        let seq = start.elapsed();
        let start = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..1000 {
            let store = store.clone();
            let tag = tag.clone();
            tasks.push(tokio::spawn(async move {
                append(&store, &tag, &format!("c{i}"), 1, &["e"]).await
            }));
        }
        for t in tasks {
            t.await.expect("join").expect("append");
        }
        let conc = start.elapsed();
        let _ = writeln!(
            out,
            "{tag:>13}: sequential {:.1} us/append; 1000 concurrent (10 connections) {:.1} ms = {:.0} appends/s",
            seq.as_secs_f64() * 1e6 / n as f64,
            conc.as_secs_f64() * 1e3,
            1000.0 / conc.as_secs_f64()
        );
    }
    engine.set_append_mode(AppendMode::Locked);
    {
        let one = db.open_with(Choice::pool(1.0)).await;
        let store: Store = one.clone();
        for v in 1..=50 {
            append(&store, "one", "warm", v, &["w"])
                .await
                .expect("warm");
        }
        let n = 2000;
        let start = Instant::now();
        for v in 1..=n {
            append(&store, "one", "seq", v, &["e"])
                .await
                .expect("append");
        }
        let _ = writeln!(
            out,
            "       Locked: sequential on a pool of 1 connection {:.1} us/append",
            start.elapsed().as_secs_f64() * 1e6 / n as f64
        );
        one.close().await;
    }
    let types: Vec<String> = (0..1000).map(|i| format!("t{i}")).collect();
    let refs: Vec<&str> = types.iter().map(String::as_str).collect();
    for k in 0..10 {
        append(&store, "hydrate", "big", k * 1000 + 1, &refs)
            .await
            .expect("append");
    }
    let _ = store
        .events_for("hydrate", "big", None)
        .await
        .expect("read");
    let start = Instant::now();
    for _ in 0..2000 {
        let json = store
            .events_for("Locked", "warm", None)
            .await
            .expect("read");
        assert!(json.json.len() > 100);
    }
    let _ = writeln!(
        out,
        "events_for 50 events: {:.1} us",
        start.elapsed().as_secs_f64() * 1e6 / 2000.0
    );
    let start = Instant::now();
    for _ in 0..10 {
        let json = store
            .events_for("hydrate", "big", None)
            .await
            .expect("read");
        assert_eq!(json.numbers.len(), 3 * 10_000);
    }
    let _ = writeln!(
        out,
        "events_for 10,000 events: {:.2} ms",
        start.elapsed().as_secs_f64() * 1e3 / 10.0
    );
    let start = Instant::now();
    let mut read = 0;
    let mut last = 0;
    loop {
        let batch = parse(
            &store
                .events_from(&strings(&["hydrate"]), last, Some(1000))
                .await
                .expect("read"),
        );
        if batch.is_empty() {
            break;
        }
        read += batch.len();
        last = batch[batch.len() - 1].position;
    }
    let _ = writeln!(
        out,
        "events_from {read} events by 1000 (parsed): {:.2} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    engine.close().await;
    db.finish().await;
}
