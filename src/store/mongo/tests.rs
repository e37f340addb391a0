//! MongoDB specifics (the shared suite runs through `scratch_engines`):
//! all or none on a partial insert, ranges in flight held and abandoned,
//! evtstore's Timestamp positions migrated, errors told apart, handler
//! leases without conditional updates.

use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use mongodb::bson::{doc, DateTime, Timestamp};

use super::scratch::ScratchDb;
use super::{MongoEngine, MongoOptions};
use crate::error::StoreError;
use crate::store::batch::decode_events;
use crate::store::input::parse_new_events;
use crate::store::scratch::or_skip;
use crate::store::{Engine, StoredEvent, Tables};

async fn append(
    store: &MongoEngine,
    stream: &str,
    id: &str,
    first: i64,
    types: &[&str],
) -> Result<Vec<i64>, StoreError> {
    let items: Vec<serde_json::Value> = types
        .iter()
        .map(|t| serde_json::json!({"timestamp": 1_700_000_000_000_i64, "event": {"type": t}}))
        .collect();
    let json = serde_json::Value::Array(items).to_string();
    let events = parse_new_events(&json)?;
    store.append(stream, id, first, &events).await
}

async fn read_from(store: &MongoEngine, after: i64) -> Vec<StoredEvent> {
    let batch = store
        .events_from(&["s".to_string(), "t".to_string()], after, None)
        .await
        .expect("events_from");
    decode_events(&batch).expect("json")
}

fn positions(events: &[StoredEvent]) -> Vec<i64> {
    events.iter().map(|e| e.position).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_a_partly_inserted_append_is_removed_and_is_a_version_conflict() {
    let db = or_skip!(ScratchDb::create().await);
    let store = db.open_migrated().await;
    assert_eq!(append(&store, "s", "a", 1, &["a1"]).await, Ok(vec![1]));
    // another program stored version 3 (a position of its own, far off)
    db.collection("events")
        .insert_one(
            doc! { "stream": "s", "aggregateId": "a", "version": 3_i64, "position": 1000_i64,
            "timestamp": DateTime::now(), "event": { "type": "other" } },
        )
        .await
        .expect("insert");
    // versions 2 and 3: the insert stores 2, then stops at 3
    let err = append(&store, "s", "a", 2, &["a2", "a3"])
        .await
        .expect_err("version 3 exists");
    assert_eq!(err.code(), "VERSION_CONFLICT", "{err}");
    let stored =
        decode_events(&store.events_for("s", "a", None).await.expect("read")).expect("json");
    let versions: Vec<_> = stored.iter().map(|e| e.version).collect();
    assert_eq!(
        versions,
        vec![Some(1), Some(3)],
        "version 2 was removed again"
    );
    // the claim of 2..3 ended: handlers are not held at it
    assert_eq!(store.max_position().await, Ok(3));
    // positions 2 and 3 are gone for good; the next append goes on after them
    assert_eq!(append(&store, "t", "b", 1, &["b1"]).await, Ok(vec![4]));
    assert_eq!(positions(&read_from(&store, 0).await), vec![1, 4]);
    // a duplicate on another unique index is not a version conflict
    db.collection("events")
        .insert_one(doc! { "stream": "t", "aggregateId": "x", "version": 1_i64, "position": 5_i64 })
        .await
        .expect("insert");
    let err = append(&store, "t", "c", 1, &["c1"])
        .await
        .expect_err("position 5 taken in t");
    assert_eq!(err.code(), "CONSTRAINT_VIOLATION", "{err}");
    assert!(!err.retryable());
    store.close().await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_readers_hold_at_a_range_in_flight_then_abandon_it() {
    let db = or_skip!(ScratchDb::create().await);
    let bound = Duration::from_millis(400);
    let writer = db.open_migrated().await;
    let reader = db
        .open_with(MongoOptions {
            abandon_after_ms: Some(bound.as_millis() as f64),
            ..Default::default()
        })
        .await;
    assert_eq!(append(&writer, "s", "a", 1, &["a1"]).await, Ok(vec![1]));
    // a writer that dies after taking positions 2 and 3
    let (from, to) = writer.take_positions(2).await.expect("take");
    assert_eq!((from, to), (2, 3));
    assert_eq!(append(&writer, "s", "a", 2, &["a2"]).await, Ok(vec![4]));
    let started = Instant::now();
    assert_eq!(
        positions(&read_from(&reader, 0).await),
        vec![1],
        "held below 2"
    );
    assert_eq!(reader.max_position().await, Ok(1));
    let mut seen = Vec::new();
    while seen.is_empty() {
        assert!(started.elapsed() < bound * 5, "never abandoned");
        tokio::time::sleep(Duration::from_millis(20)).await;
        seen = read_from(&reader, 1).await;
    }
    let waited = started.elapsed();
    assert!(waited >= bound, "held {waited:?}");
    assert_eq!(positions(&seen), vec![4]);
    assert_eq!(reader.max_position().await, Ok(4));
    // the dead writer's insert landing late is never read
    db.collection("events")
        .insert_one(
            doc! { "stream": "s", "aggregateId": "late", "version": 1_i64, "position": 2_i64,
            "timestamp": DateTime::now(), "event": { "type": "late" } },
        )
        .await
        .expect("insert");
    assert_eq!(positions(&read_from(&reader, 0).await), vec![1, 4]);
    assert!(reader
        .events_for("s", "late", None)
        .await
        .expect("read")
        .is_empty());
    // and a writer that was only slow finds its range given up
    assert_eq!(
        writer.end_positions(from, to).await,
        Ok(super::positions::End::Abandoned)
    );
    assert_eq!(writer.abandoned_error().code(), "TIMEOUT");
    assert!(writer.abandoned_error().retryable());
    writer.close().await;
    reader.close().await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_migrate_turns_evtstore_timestamps_into_ordered_integers_once() {
    let db = or_skip!(ScratchDb::create().await);
    let events = db.collection("events");
    let ts = |t: u32, i: u32| Timestamp {
        time: t,
        increment: i,
    };
    // evtstore's documents, inserted out of order
    for (stream, id, version, position) in [
        ("s", "a", 2, ts(100, 2)),
        ("t", "b", 1, ts(100, 1)),
        ("s", "a", 1, ts(50, 7)),
        ("s", "c", 1, ts(200, 1)),
    ] {
        events
            .insert_one(doc! { "stream": stream, "aggregateId": id, "version": version, "position": position,
                "timestamp": DateTime::from_millis(1_700_000_000_000), "event": { "type": "e", "v": version } })
            .await
            .expect("insert");
    }
    let bookmarks = db.collection("bookmarks");
    bookmarks
        .insert_one(doc! { "bookmark": "mid", "position": ts(100, 1) })
        .await
        .expect("bm");
    bookmarks
        .insert_one(doc! { "bookmark": "start", "position": ts(1, 0) })
        .await
        .expect("bm");
    let store = db.open_with(MongoOptions::default()).await;
    let err = append(&store, "s", "a", 3, &["x"])
        .await
        .expect_err("not migrated");
    assert_eq!(err.code(), "MISSING_TABLE", "{err}");
    let err = store.get_bookmark("mid").await.expect_err("a Timestamp");
    assert!(err.to_string().contains("run migrate()"), "{err}");
    store.migrate(Tables::BOTH).await.expect("migrate");
    let all = read_from(&store, 0).await;
    let order: Vec<_> = all
        .iter()
        .map(|e| {
            (
                e.position,
                e.stream.clone().unwrap_or_default(),
                e.version.unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        order,
        vec![
            (1, "s".into(), 1),
            (2, "t".into(), 1),
            (3, "s".into(), 2),
            (4, "s".into(), 1)
        ]
    );
    assert_eq!(store.get_bookmark("mid").await, Ok(2));
    assert_eq!(store.get_bookmark("start").await, Ok(0));
    let kept = events
        .find_one(doc! { "position": 1_i64 })
        .await
        .expect("read")
        .expect("doc");
    assert_eq!(kept.get_timestamp("evtstorePosition"), Ok(ts(50, 7)));
    // once: a second migrate changes nothing, and appends go on after them
    store.migrate(Tables::BOTH).await.expect("again");
    assert_eq!(read_from(&store, 0).await, all);
    assert_eq!(append(&store, "s", "a", 3, &["x"]).await, Ok(vec![5]));
    store.close().await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_errors_say_what_happened() {
    // nothing listens on port 1
    let store = MongoEngine::open(MongoOptions {
        url: "mongodb://127.0.0.1:1/app?serverSelectionTimeoutMS=200".into(),
        ..Default::default()
    })
    .await
    .expect("the client connects lazily");
    let err = store.get_bookmark("x").await.expect_err("no server");
    assert_eq!(err.code(), "CANNOT_CONNECT", "{err}");
    assert!(err.retryable());
    store.close().await;
    assert_eq!(
        store.get_bookmark("x").await.expect_err("closed").code(),
        "STORE_CLOSED"
    );
    for (options, code) in [
        (
            MongoOptions {
                url: "postgres://x".into(),
                ..Default::default()
            },
            "INVALID_ARGUMENT",
        ),
        (
            MongoOptions {
                url: "mongodb://h/".into(),
                ..Default::default()
            },
            "INVALID_ARGUMENT",
        ),
        (
            MongoOptions {
                url: "mongodb://h/a".into(),
                events: Some("a$b".into()),
                ..Default::default()
            },
            "INVALID_NAME",
        ),
        (
            MongoOptions {
                url: "mongodb://h/a".into(),
                bookmarks: Some("events".into()),
                ..Default::default()
            },
            "INVALID_NAME",
        ),
        (
            MongoOptions {
                url: "mongodb://h/a".into(),
                abandon_after_ms: Some(0.0),
                ..Default::default()
            },
            "INVALID_ARGUMENT",
        ),
    ] {
        let url = options.url.clone();
        let err = MongoEngine::open(options).await.err().expect(&url);
        assert_eq!(err.code(), code, "{url}: {err}");
    }
}

fn lease_claim<'a>(
    name: &'a str,
    owner: &'a str,
    seen: Option<(i64, i64)>,
) -> crate::store::lease::LeaseClaim<'a> {
    crate::store::lease::LeaseClaim {
        name,
        owner,
        seen,
        ttl_ms: 3000,
        streams: "[]",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_leases_are_insert_only_and_fence_the_bookmark_by_token() {
    let db = or_skip!(ScratchDb::create().await);
    let store = db.open_migrated().await;
    // many claims of one token at once (FerretDB loses concurrent updates,
    // never a unique _id): one wins
    for seen in [None, Some((1, 1))] {
        let owners: Vec<String> = (0..12).map(|i| format!("o{i}")).collect();
        let claims: Vec<_> = owners.iter().map(|o| lease_claim("h", o, seen)).collect();
        let won = futures_util::future::join_all(claims.iter().map(|c| store.claim_lease(c))).await;
        let won: Vec<i64> = won.into_iter().filter_map(|w| w.expect("claim")).collect();
        assert_eq!(won, vec![seen.map_or(1, |(t, _)| t + 1)], "{seen:?}");
    }
    let lease = store.leases(Some("h")).await.expect("read").remove(0);
    assert_eq!((lease.token, lease.beat), (2, 2));
    assert_eq!(
        store
            .claim_lease(&lease_claim("h", "z", Some((2, 2))))
            .await,
        Ok(Some(3))
    );
    // the documents of tokens before the replaced one are removed
    let leases = db.collection("bookmarks_leases");
    let tokens: Vec<i64> = leases
        .find(doc! { "name": "h" })
        .sort(doc! { "token": 1 })
        .await
        .expect("find")
        .try_collect::<Vec<_>>()
        .await
        .expect("read")
        .iter()
        .map(|d| d.get_i64("token").expect("token"))
        .collect();
    assert_eq!(tokens, vec![2, 3]);
    // a first claim that comes late finds its token's document removed:
    // inserting it again does not take the lease
    assert_eq!(
        store.claim_lease(&lease_claim("h", "late", None)).await,
        Ok(None)
    );
    assert_eq!(store.leases(Some("h")).await.expect("read")[0].owner, "z");
    assert_eq!(
        leases
            .count_documents(doc! { "name": "h" })
            .await
            .expect("count"),
        2
    );

    // a bookmark written under a newer token is not written over, even by
    // a writer whose lease read still passed
    assert_eq!(store.set_bookmark_fenced("h", 5, 3).await, Ok(true));
    db.collection("bookmarks")
        .update_one(
            doc! { "bookmark": "h" },
            doc! { "$set": { "position": 8_i64, "leaseToken": 4_i64 } },
        )
        .await
        .expect("newer write");
    assert_eq!(store.set_bookmark_fenced("h", 6, 3).await, Ok(false));
    assert_eq!(store.get_bookmark("h").await, Ok(8));
    assert_eq!(store.bookmarks().await, Ok(vec![("h".to_string(), 8)]));
    store.close().await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_leases_work_on_a_database_migrated_before_them() {
    let db = or_skip!(ScratchDb::create().await);
    let store = db.open_migrated().await;
    store.set_bookmark("h", 4).await.expect("set");
    store.close().await;
    db.collection("bookmarks_leases")
        .drop()
        .await
        .expect("drop");
    // a store that does not migrate: the index is made before the first lease
    let store = db.open_with(MongoOptions::default()).await;
    assert_eq!(store.leases(None).await, Ok(vec![]));
    let names: Vec<String> = db
        .collection("bookmarks_leases")
        .list_index_names()
        .await
        .expect("indexes");
    assert!(names.iter().any(|n| n == "name-token-index"), "{names:?}");
    assert_eq!(
        store.claim_lease(&lease_claim("h", "a", None)).await,
        Ok(Some(1))
    );
    // a bookmark written before leases has no token: a fenced write takes it
    assert_eq!(store.set_bookmark_fenced("h", 5, 1).await, Ok(true));
    assert_eq!(store.get_bookmark("h").await, Ok(5));
    store.close().await;
    db.finish().await;
}
