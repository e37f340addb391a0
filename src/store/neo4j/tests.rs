//! Neo4j: the checks only this engine needs, on every running test server
//! (error codes, a cancelled statement, evtstore's data with DateTime
//! positions, the refusal of a server we cannot speak to); what every
//! engine promises runs in the shared suite. Servers come from the URL variables of `scratch.rs`; without them
//! the tests pass after saying so, except under `CI=true`.

use std::time::Duration;

use super::packstream::{map, Value};
use super::scratch::{labels, open_labels, server_urls};
use super::*;
use crate::store::batch::decode_events;
use crate::store::{Engine, Tables};

fn events_json(types: &[&str]) -> String {
    let items: Vec<String> = types
        .iter()
        .map(|t| format!(r#"{{"timestamp":1700000000000,"event":{{"type":"{t}"}}}}"#))
        .collect();
    format!("[{}]", items.join(","))
}

async fn append(
    engine: &Neo4jEngine,
    stream: &str,
    id: &str,
    version: i64,
    types: &[&str],
) -> Result<Vec<i64>> {
    let json = events_json(types);
    let events = crate::store::input::parse_new_events(&json)?;
    engine.append(stream, id, version, &events).await
}

/// A migrated store on new labels of each running server, with its name.
async fn each_server() -> Vec<(Arc<Neo4jEngine>, &'static str)> {
    let mut all = Vec::new();
    for (url, name) in server_urls() {
        let (events, bookmarks) = labels();
        let engine = open_labels(&url, &events, &bookmarks).await;
        engine.migrate(Tables::BOTH).await.expect("migrate");
        all.push((engine, name));
    }
    all
}

async fn finish(engine: Arc<Neo4jEngine>) {
    engine.remove_all().await;
    engine.close().await;
}

#[tokio::test]
async fn a_statement_given_up_midway_never_answers_the_next_one() {
    for (engine, name) in each_server().await {
        for _ in 0..5 {
            // the caller stops waiting while the answer is on its way
            let slow = engine.cypher(
                "UNWIND range(1, 3000000) AS x RETURN count(x)",
                Value::Map(Vec::new()),
            );
            let _ = tokio::time::timeout(Duration::from_millis(5), slow).await;
            let rows = engine
                .cypher("RETURN 42", Value::Map(Vec::new()))
                .await
                .expect("run");
            assert_eq!(rows, vec![vec![Value::Int(42)]], "{name}");
        }
        finish(engine).await;
    }
}

#[tokio::test]
async fn only_the_version_key_is_a_version_conflict() {
    for (engine, name) in each_server().await {
        append(&engine, "s", "a", 1, &["one"])
            .await
            .expect("append");
        let err = append(&engine, "s", "a", 1, &["again"])
            .await
            .expect_err("conflict");
        assert_eq!(err.code(), "VERSION_CONFLICT", "{name}: {err}");
        // another unique property someone added to the label
        let label = &engine.events_label;
        let constraint = if engine.schema_syntax().await.expect("syntax") == SchemaSyntax::V3 {
            format!("CREATE CONSTRAINT ON (n:`{label}`) ASSERT n.event IS UNIQUE")
        } else {
            format!("CREATE CONSTRAINT {label}_event_unique IF NOT EXISTS FOR (n:`{label}`) REQUIRE n.event IS UNIQUE")
        };
        engine
            .cypher(&constraint, Value::Map(Vec::new()))
            .await
            .expect("constraint");
        let err = append(&engine, "s", "b", 1, &["one"])
            .await
            .expect_err("violation");
        assert_eq!(err.code(), "CONSTRAINT_VIOLATION", "{name}: {err}");
        assert!(!err.retryable());
        // nothing of it was stored, and the counter did not move
        assert_eq!(engine.max_position().await.expect("max"), 1, "{name}");
        assert_eq!(
            append(&engine, "s", "b", 1, &["two"])
                .await
                .expect("append"),
            vec![2]
        );
        let drop = if engine.schema_syntax().await.expect("syntax") == SchemaSyntax::V3 {
            format!("DROP CONSTRAINT ON (n:`{label}`) ASSERT n.event IS UNIQUE")
        } else {
            format!("DROP CONSTRAINT {label}_event_unique")
        };
        engine
            .cypher(&drop, Value::Map(Vec::new()))
            .await
            .expect("drop constraint");
        finish(engine).await;
    }
}

// A label never migrated is set up by its first append (evtstore's Neo4j
// providers append without migrate()): the shared suite's
// tables_never_migrated_are_missing_not_conflicts, `Unmigrated::Works`.

#[tokio::test]
async fn a_closed_store_says_so() {
    for (engine, name) in each_server().await {
        engine.remove_all().await;
        engine.close().await;
        let err = engine.get_bookmark("b").await.expect_err("closed");
        assert_eq!(err.code(), "STORE_CLOSED", "{name}");
    }
}

/// Processes whose first appends set one label up at the same time: a
/// constraint or index another one created first is no failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_appends_racing_to_set_a_label_up_all_succeed() {
    for (url, name) in server_urls() {
        for _ in 0..2 {
            let (events, bookmarks) = labels();
            let mut engines = Vec::new();
            for _ in 0..6 {
                engines.push(open_labels(&url, &events, &bookmarks).await);
            }
            let mut tasks = Vec::new();
            for (i, engine) in engines.iter().enumerate() {
                let engine = engine.clone();
                tasks.push(tokio::spawn(async move {
                    append(&engine, "s", &format!("a{i}"), 1, &["x"]).await
                }));
            }
            let mut positions = Vec::new();
            for t in tasks {
                positions.extend(
                    t.await
                        .expect("task")
                        .unwrap_or_else(|e| panic!("{name}: {e}")),
                );
            }
            positions.sort();
            assert_eq!(positions, (1..=6).collect::<Vec<i64>>(), "{name}");
            engines[0].remove_all().await;
            for e in engines {
                e.close().await;
            }
        }
    }
}

/// Reads return only positions up to the counter read before them: those
/// had all committed when the scan began (a node beyond it stands for an
/// append whose commit a scan without a snapshot may see out of order).
#[tokio::test]
async fn reads_stop_at_the_counter_read_before_them() {
    for (engine, name) in each_server().await {
        append(&engine, "s", "a", 1, &["one", "two"])
            .await
            .expect("append");
        let beyond = format!(
            "CREATE (:`{}` {{stream: 's', aggregateId: 'a', version: 3, position: 3, event: '{{\"type\":\"early\"}}'}})",
            engine.events_label
        );
        engine
            .cypher(&beyond, Value::Map(Vec::new()))
            .await
            .expect("create");
        let streams = vec!["s".to_string()];
        let from = decode_events(&engine.events_from(&streams, 0, None).await.expect("read"))
            .expect("json");
        assert_eq!(
            from.iter().map(|e| e.position).collect::<Vec<_>>(),
            vec![1, 2],
            "{name}"
        );
        let of =
            decode_events(&engine.events_for("s", "a", None).await.expect("read")).expect("json");
        assert_eq!(
            of.iter().map(|e| e.version).collect::<Vec<_>>(),
            vec![Some(1), Some(2)],
            "{name}"
        );
        // once the counter is there, so is the event
        let bump = format!(
            "MATCH (c:{} {{label: $label}}) SET c.position = 3",
            super::cypher::COUNTER_LABEL
        );
        engine
            .cypher(&bump, map([("label", engine.events_label.as_str().into())]))
            .await
            .expect("counter");
        let of = decode_events(&engine.events_for("s", "a", Some(1)).await.expect("read"))
            .expect("json");
        assert_eq!(
            of.iter().map(|e| e.version).collect::<Vec<_>>(),
            vec![Some(2), Some(3)],
            "{name}"
        );
        assert_eq!(
            decode_events(&engine.events_from(&streams, 2, None).await.expect("read"))
                .expect("json")
                .len(),
            1
        );
        finish(engine).await;
    }
}

/// What evtstore 12.0.1's Neo4j providers write: DateTime positions (the
/// transaction's time), DateTime timestamps, ISO text bookmarks.
#[tokio::test]
async fn reads_evtstore_data_in_its_order_and_extends_it() {
    for (url, name) in server_urls() {
        let (events, bookmarks) = labels();
        let engine = open_labels(&url, &events, &bookmarks).await;
        let write = format!(
            "CREATE (ev:`{events}` {{stream: $stream, aggregateId: $id, version: $version, \
             position: datetime($position), timestamp: datetime($position), event: $event, \
             _streamPosition: $stream + '_' + $position, _streamIdVersion: $stream + '_' + $id + '_' + toString($version)}})"
        );
        let rows = [
            ("users", "u1", 1, "2024-01-01T00:00:00.100Z"),
            ("users", "u2", 1, "2024-01-01T00:00:00.200Z"),
            ("users", "u1", 2, "2024-01-01T00:00:01.000Z"),
        ];
        for (stream, id, version, position) in rows {
            let params = map([
                ("stream", stream.into()),
                ("id", id.into()),
                ("version", Value::Int(version)),
                ("position", position.into()),
                ("event", format!(r#"{{"type":"old{version}"}}"#).into()),
            ]);
            engine
                .cypher(&write, params)
                .await
                .expect("write as evtstore");
        }
        let bookmark = format!(
            "CREATE (:`{bookmarks}` {{bookmark: 'h', position: '2024-01-01T00:00:00.100Z'}})"
        );
        engine
            .cypher(&bookmark, Value::Map(Vec::new()))
            .await
            .expect("bookmark");
        engine
            .migrate(Tables::BOTH)
            .await
            .expect("migrate over evtstore's data");

        let ms = |iso: &str| crate::store::timestamp::parse_timestamp_text(iso).expect("iso");
        let streams = vec!["users".to_string()];
        let all = decode_events(&engine.events_from(&streams, 0, None).await.expect("read"))
            .expect("json");
        let positions: Vec<i64> = all.iter().map(|e| e.position).collect();
        assert_eq!(
            positions,
            rows.iter().map(|r| ms(r.3)).collect::<Vec<_>>(),
            "{name}"
        );
        assert_eq!(all[0].timestamp, Some(ms(rows[0].3)));
        let bm = engine.get_bookmark("h").await.expect("bookmark");
        assert_eq!(
            bm,
            ms(rows[0].3),
            "{name}: evtstore's bookmark text is its epoch ms"
        );
        let after = decode_events(&engine.events_from(&streams, bm, None).await.expect("read"))
            .expect("json");
        assert_eq!(after.len(), 2, "{name}");

        // ours continue after theirs, in one order
        let new = append(&engine, "users", "u1", 3, &["new"])
            .await
            .expect("extend");
        assert_eq!(new, vec![ms(rows[2].3) + 1], "{name}");
        let err = append(&engine, "users", "u2", 1, &["clash"])
            .await
            .expect_err("their version key");
        assert_eq!(err.code(), "VERSION_CONFLICT");
        let all = decode_events(&engine.events_from(&streams, 0, None).await.expect("read"))
            .expect("json");
        assert_eq!(all.len(), 4);
        assert!(
            all.windows(2).all(|w| w[0].position < w[1].position),
            "{name}"
        );
        let u1 = decode_events(&engine.events_for("users", "u1", None).await.expect("read"))
            .expect("json");
        assert_eq!(
            u1.iter().map(|e| e.version).collect::<Vec<_>>(),
            vec![Some(1), Some(2), Some(3)]
        );
        let of_u1 = engine
            .events_for("users", "u1", Some(ms(rows[0].3)))
            .await
            .expect("read");
        assert_eq!(decode_events(&of_u1).expect("json").len(), 2);
        let last = engine
            .last_event(&streams, None)
            .await
            .expect("last")
            .expect("some");
        assert!(last.contains("\"new\""), "{last}");
        assert_eq!(engine.max_position().await.expect("max"), new[0]);
        finish(engine).await;
    }
}

#[tokio::test]
async fn a_server_we_cannot_speak_to_is_told_the_supported_versions() {
    // a port that answers the handshake with "no version"
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut hello = [0u8; 20];
            let _ = socket.read_exact(&mut hello).await;
            let _ = socket.write_all(&[0, 0, 0, 0]).await;
        }
    });
    let err = Neo4jEngine::open(Neo4jOptions {
        url: format!("bolt://127.0.0.1:{port}"),
        ..Default::default()
    })
    .await
    .err()
    .expect("refused");
    assert_eq!(err.code(), "CANNOT_CONNECT");
    let text = err.to_string();
    assert!(text.contains("Neo4j 3.5, 4.x and 5.x"), "{text}");
    assert!(text.contains("Bolt 3"), "{text}");

    let err = Neo4jEngine::open(Neo4jOptions {
        url: "bolt+s://127.0.0.1:7687".into(),
        ..Default::default()
    })
    .await
    .err()
    .expect("tls");
    assert_eq!(err.code(), "INVALID_ARGUMENT");
}

#[tokio::test]
async fn a_waiter_finds_appends_of_another_store_by_probing() {
    for (engine, name) in each_server().await {
        assert_eq!(engine.wakeups().probe_every, Some(PROBE_EVERY));
        append(&engine, "s", "a", 1, &["x"]).await.expect("append");
        assert_eq!(engine.max_position().await.expect("max"), 1, "{name}");
        finish(engine).await;
    }
}

/// The fencing holds because every lease statement locks the lease node
/// before it reads the token: one that starts while another transaction is
/// changing the lease's hands waits for its commit and then sees the new
/// token (a check read before the lock, as Neo4j reads without a snapshot,
/// would still pass the old one: with `LOCK` emptied this test fails).
///
/// A round counts when the taker's transaction was open across the
/// contenders: a check made without the lock just before them (the
/// control) still found the old token, so the taker had not committed; and
/// the taker, reading the lease and the bookmark once it held the lease,
/// found neither changed by a contender, so it had the lease first.
/// Otherwise (a busy machine) the round is run again, with a longer taker
/// when it ended early, a longer wait for it when it started late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_statements_wait_for_a_change_of_hands_in_flight() {
    use crate::store::lease::LeaseClaim;
    for (engine, name) in each_server().await {
        let take = format!(
            "MATCH (l:`{}` {{name: $name}}) SET l._lock = true REMOVE l._lock \
             WITH l, [l.token, l.beat] AS lease MATCH (b:`{}` {{bookmark: $name}}) \
             WITH l, lease + b.position AS seen SET l.owner = 'b', l.token = 2, l.beat = 2 \
             WITH seen UNWIND range(1, $n) AS x RETURN count(x), seen",
            engine.leases_label, engine.bookmarks_label
        );
        let unlocked = format!(
            "MATCH (l:`{}` {{name: $name}}) WHERE l.token = 1 \
             MERGE (b:`{}` {{bookmark: $name}}) SET b.position = 2 RETURN 1",
            engine.leases_label, engine.bookmarks_label
        );
        // its plan, so that the first round times only its rows
        let none = map([("name", "none".into()), ("n", Value::Int(1))]);
        engine.cypher(&take, none).await.expect("plan");
        let mut n = 1_000_000;
        let mut wait = Duration::from_millis(300);
        let mut conclusive = false;
        for round in 0..12 {
            let lease = format!("h{round}");
            let claim = |seen| LeaseClaim {
                name: &lease,
                owner: "a",
                seen,
                ttl_ms: 3000,
                streams: "[]",
            };
            let first = claim(None);
            assert_eq!(engine.claim_lease(&first).await, Ok(Some(1)), "{name}");
            engine.set_bookmark(&lease, 1).await.expect("set");
            let params = map([("name", lease.as_str().into()), ("n", Value::Int(n))]);
            // b takes the lease in a transaction that stays open a while
            let started = std::time::Instant::now();
            let taker = {
                let (engine, take, params) = (engine.clone(), take.clone(), params.clone());
                tokio::spawn(async move { engine.cypher(&take, params).await })
            };
            if round == 0 {
                // rows for a transaction of ~2 s
                taker.await.expect("task").expect("take");
                let ms = started.elapsed().as_millis().max(1) as i64;
                n = (n * 2_000 / ms).clamp(1_000_000, 400_000_000);
                continue;
            }
            tokio::time::sleep(wait).await;
            let control = engine.cypher(&unlocked, params).await.expect("control");
            let stale = claim(Some((1, 1)));
            let (fenced, renewed, taken) = tokio::join!(
                engine.set_bookmark_fenced(&lease, 3, 1),
                engine.renew_lease(&lease, 1),
                engine.claim_lease(&stale),
            );
            let seen = &taker.await.expect("task").expect("take")[0][1];
            if control.is_empty() {
                eprintln!("{name}: the taker committed before the contenders; again");
                n *= 2;
                continue;
            }
            // the lease as the first claim left it, the bookmark before the
            // fenced write (as set, or as the control wrote it)
            let before = |b| Value::List(vec![Value::Int(1), Value::Int(1), Value::Int(b)]);
            if *seen != before(1) && *seen != before(2) {
                eprintln!("{name}: the taker came after a contender ({seen:?}); again");
                wait *= 2;
                continue;
            }
            assert_eq!(fenced, Ok(false), "{name}");
            assert_eq!(renewed, Ok(false), "{name}");
            assert_eq!(taken, Ok(None), "{name}");
            assert_eq!(engine.get_bookmark(&lease).await, Ok(2), "{name}");
            let now = engine.leases(Some(&lease)).await.expect("read").remove(0);
            assert_eq!(
                (now.owner.as_str(), now.token, now.beat),
                ("b", 2, 2),
                "{name}"
            );
            let fenced = engine.set_bookmark_fenced(&lease, 4, 2).await;
            assert_eq!(fenced, Ok(true), "{name}");
            assert_eq!(engine.get_bookmark(&lease).await, Ok(4), "{name}");
            conclusive = true;
            break;
        }
        assert!(conclusive, "{name}: the taker never held the lease in time");
        finish(engine).await;
    }
}

/// A label migrated before leases existed: the first claim makes the
/// leases' unique name, so two first claims still give one winner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_migrated_before_leases_gets_them_on_the_first_claim() {
    use crate::store::lease::LeaseClaim;
    for (url, name) in server_urls() {
        let (events, bookmarks) = labels();
        let old = open_labels(&url, &events, &bookmarks).await;
        // what migrate() made before leases: no leases schema
        let syntax = old.schema_syntax().await.expect("syntax");
        for s in cypher::events_schema(syntax, &events)
            .into_iter()
            .chain(cypher::bookmarks_schema(syntax, &bookmarks))
        {
            old.cypher(&s, Value::Map(Vec::new()))
                .await
                .expect("schema");
        }
        old.close().await;
        let engine = open_labels(&url, &events, &bookmarks).await;
        let claim = |owner| LeaseClaim {
            name: "h",
            owner,
            seen: None,
            ttl_ms: 3000,
            streams: "[]",
        };
        let (ca, cb) = (claim("a"), claim("b"));
        let (a, b) = tokio::join!(engine.claim_lease(&ca), engine.claim_lease(&cb));
        let won = [a.expect("a"), b.expect("b")];
        assert_eq!(won.iter().flatten().collect::<Vec<_>>(), vec![&1], "{name}");
        let leases = engine.leases(None).await.expect("read");
        assert_eq!(leases.len(), 1, "{name}");
        finish(engine).await;
    }
}
