//! One behaviour suite, written once and run against every engine through
//! the `Engine` trait (each registered scratch store of
//! `registry::scratch_engines`), plus memory- and SQLite-specific checks
//! (timestamps written by other programs, the knex layout of evtstore
//! 12.0.1, ...).

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::batch::decode_events;
use super::input::{parse_new_events, to_first_version};
use super::memory::json::MemoryJsonEngine;
use super::memory::MemoryEngine;
use super::scratch::{Scratch, Unmigrated};
use super::sqlite::scratch::{open_sqlite, remove_db, temp_db};
use super::sqlite::{SqliteEngine, SqliteOptions};
use super::{Engine, EventBatch, NewEvent, StoredEvent, Tables};
use crate::error::StoreError;
use crate::store::head::{HeadWaiter, WaitOutcome};

#[path = "postgres/tests.rs"]
mod pg_tests;

#[path = "mysql/tests.rs"]
mod mysql_tests;

#[path = "lease_tests.rs"]
mod lease_tests;
use lease_tests::*;

type Store = Arc<dyn Engine>;

fn events_json(types: &[&str], timestamp: i64) -> String {
    let items: Vec<serde_json::Value> = types
        .iter()
        .enumerate()
        .map(|(i, t)| {
            serde_json::json!({"timestamp": timestamp, "event": {"type": t, "n": i, "text": "é\"\n"}})
        })
        .collect();
    serde_json::Value::Array(items).to_string()
}

/// What the napi glue does: parse, validate, append.
async fn append(
    store: &Store,
    stream: &str,
    id: &str,
    first_version: i64,
    types: &[&str],
) -> Result<Vec<i64>, StoreError> {
    let json = events_json(types, 1_700_000_000_000);
    append_json(store, stream, id, first_version as f64, &json).await
}

async fn append_json(
    store: &Store,
    stream: &str,
    id: &str,
    first_version: f64,
    json: &str,
) -> Result<Vec<i64>, StoreError> {
    let events: Vec<NewEvent<'_>> = parse_new_events(json)?;
    let first = to_first_version(first_version, events.len())?;
    store.append(stream, id, first, &events).await
}

fn parse(batch: &EventBatch) -> Vec<StoredEvent> {
    decode_events(batch).expect("engines return valid JSON columns")
}

async fn all_events(store: &Store, streams: &[&str]) -> Vec<StoredEvent> {
    let streams: Vec<String> = streams.iter().map(|s| s.to_string()).collect();
    parse(
        &store
            .events_from(&streams, 0, None)
            .await
            .expect("events_from"),
    )
}

fn positions(events: &[StoredEvent]) -> Vec<i64> {
    events.iter().map(|e| e.position).collect()
}

fn versions(events: &[StoredEvent]) -> Vec<i64> {
    events.iter().filter_map(|e| e.version).collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// 8 writers append 200 single events each (distinct aggregates, each on
/// its own connection) while a reader reads from its last position with
/// limit 50. Returns (positions the reader saw, every stored position).
pub(crate) async fn race_readers_and_writers(engine: Store) -> (Vec<i64>, Vec<i64>) {
    const WRITERS: usize = 8;
    const EACH: i64 = 200;
    let done = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = engine.clone();
        let done = done.clone();
        writers.push(tokio::spawn(async move {
            for v in 1..=EACH {
                append(&store, "race", &format!("w{w}"), v, &["e"])
                    .await
                    .expect("append");
            }
            done.fetch_add(1, Ordering::SeqCst);
        }));
    }
    let store = engine;
    let streams = strings(&["race"]);
    let mut seen = Vec::new();
    let mut last = 0;
    loop {
        let finished = done.load(Ordering::SeqCst) == WRITERS;
        let batch = parse(
            &store
                .events_from(&streams, last, Some(50))
                .await
                .expect("read"),
        );
        if batch.is_empty() && finished {
            break;
        }
        for e in &batch {
            seen.push(e.position);
            last = e.position;
        }
    }
    for w in writers {
        w.await.expect("writer");
    }
    let all = positions(&all_events(&store, &["race"]).await);
    assert_eq!(all.len(), WRITERS * EACH as usize);
    (seen, all)
}

/// Shows that [`a_reader_never_skips_an_event_under_concurrent_appends`]
/// can fail: on an engine made to append without its lock, runs the race
/// (after `empty` empties the events table) until the reader skips events,
/// for at most 20 rounds. Returns how many it skipped, 0 for none, and says
/// so on stderr; the caller asserts once it has cleaned up.
pub(crate) async fn skipped_without_the_lock<F: std::future::Future<Output = ()>>(
    engine: Store,
    empty: impl Fn() -> F,
) -> usize {
    const ROUNDS: usize = 20;
    let mut skipped = 0;
    let mut rounds = 0;
    while rounds < ROUNDS && skipped == 0 {
        rounds += 1;
        empty().await;
        let (seen, all) = race_readers_and_writers(engine.clone()).await;
        skipped = all.iter().filter(|p| !seen.contains(p)).count();
    }
    let _ = writeln!(
        std::io::stderr(),
        "{} without the lock: round {rounds} skipped {skipped} events",
        engine.name()
    );
    skipped
}

// --- the behaviours --------------------------------------------------------

async fn appends_and_reads_back(store: Store) {
    let p = append(&store, "users", "u1", 1, &["created", "renamed"])
        .await
        .expect("append");
    assert_eq!(p, vec![1, 2]);
    let evs = parse(&store.events_for("users", "u1", None).await.expect("read"));
    assert_eq!(evs.len(), 2);
    // a read of one aggregate leaves out the stream and id asked for
    assert_eq!(evs[0].stream, None);
    assert_eq!(evs[0].aggregate_id, None);
    let named = all_events(&store, &["users"]).await;
    assert_eq!(named[0].stream.as_deref(), Some("users"));
    assert_eq!(named[0].aggregate_id.as_deref(), Some("u1"));
    assert_eq!(evs[0].version, Some(1));
    assert_eq!(evs[0].position, 1);
    assert_eq!(evs[0].timestamp, Some(1_700_000_000_000));
    assert_eq!(evs[0].event["type"], "created");
    assert_eq!(evs[0].event["text"], "é\"\n");
    assert_eq!(evs[1].event["type"], "renamed");
    assert_eq!(versions(&evs), vec![1, 2]);

    let after = parse(
        &store
            .events_for("users", "u1", Some(1))
            .await
            .expect("read"),
    );
    assert_eq!(positions(&after), vec![2]);
    assert!(store
        .events_for("users", "nobody", None)
        .await
        .expect("read")
        .is_empty());
    assert!(store
        .events_for("nostream", "u1", None)
        .await
        .expect("read")
        .is_empty());
    assert_eq!(
        append(&store, "users", "u1", 3, &[])
            .await
            .expect("empty append"),
        Vec::<i64>::new()
    );
}

async fn reads_streams_in_position_order(store: Store) {
    // Interleave three streams.
    for i in 0..5 {
        for s in ["a", "b", "c"] {
            // Aggregates s0 (versions 1, 2, 3) and s1 (versions 1, 2).
            append(&store, s, &format!("{s}{}", i % 2), i / 2 + 1, &["e"])
                .await
                .expect("append");
        }
    }
    let all = all_events(&store, &["a", "b", "c"]).await;
    assert_eq!(positions(&all), (1..=15).collect::<Vec<_>>());

    let ac = all_events(&store, &["c", "a", "a", "missing"]).await;
    assert_eq!(positions(&ac), vec![1, 3, 4, 6, 7, 9, 10, 12, 13, 15]);
    assert!(ac.iter().all(|e| e.stream.as_deref() != Some("b")));

    let from = parse(
        &store
            .events_from(&strings(&["a", "c"]), 7, None)
            .await
            .expect("read"),
    );
    assert_eq!(positions(&from), vec![9, 10, 12, 13, 15]);

    let limited = parse(
        &store
            .events_from(&strings(&["a", "c"]), 7, Some(2))
            .await
            .expect("read"),
    );
    assert_eq!(positions(&limited), vec![9, 10]);

    let one = parse(
        &store
            .events_from(&strings(&["b"]), 0, Some(3))
            .await
            .expect("read"),
    );
    assert_eq!(positions(&one), vec![2, 5, 8]);

    let big_limit = parse(
        &store
            .events_from(&strings(&["b"]), 0, Some(1000))
            .await
            .expect("read"),
    );
    assert_eq!(big_limit.len(), 5);

    let past_end = store
        .events_from(&strings(&["a"]), 100, None)
        .await
        .expect("read");
    assert!(past_end.is_empty() && parse(&past_end).is_empty());
    assert!(store
        .events_from(&strings(&["nothing"]), 0, None)
        .await
        .expect("read")
        .is_empty());
}

async fn rejects_a_version_conflict(store: Store) {
    append(&store, "s", "a", 1, &["x", "y"])
        .await
        .expect("append");
    let err = append(&store, "s", "a", 2, &["z"])
        .await
        .expect_err("conflict");
    assert_eq!(err.code(), "VERSION_CONFLICT");
    assert!(err.to_string().contains("\"a\""), "{err}");
    // Nothing stored, positions continue without a hole in what we read.
    assert_eq!(all_events(&store, &["s"]).await.len(), 2);
    // Another aggregate or another stream with the same version is fine.
    append(&store, "s", "b", 2, &["z"])
        .await
        .expect("other aggregate");
    append(&store, "t", "a", 2, &["z"])
        .await
        .expect("other stream");
    append(&store, "s", "a", 3, &["z"])
        .await
        .expect("next version");
    let evs = parse(&store.events_for("s", "a", None).await.expect("read"));
    assert_eq!(versions(&evs), vec![1, 2, 3]);
}

async fn stores_a_batch_all_or_nothing(store: Store) {
    append(&store, "s", "a", 1, &["1", "2", "3"])
        .await
        .expect("append");
    // 3 conflicts, 4 and 5 would be new: nothing of it may be stored.
    let err = append(&store, "s", "a", 3, &["3", "4", "5"])
        .await
        .expect_err("conflict");
    assert_eq!(err.code(), "VERSION_CONFLICT");
    assert_eq!(
        versions(&parse(
            &store.events_for("s", "a", None).await.expect("read")
        )),
        vec![1, 2, 3]
    );

    // A conflict at the end of the batch (a later version already exists).
    // (A failed append may use up positions: PostgreSQL's sequence does.)
    let gap = append(&store, "s", "gap", 5, &["5"]).await.expect("gap");
    let err = append(&store, "s", "gap", 3, &["3", "4", "5"])
        .await
        .expect_err("conflict at the end");
    assert_eq!(err.code(), "VERSION_CONFLICT");
    assert_eq!(
        versions(&parse(
            &store.events_for("s", "gap", None).await.expect("read")
        )),
        vec![5]
    );

    // Filling the gap keeps version order even though positions are later.
    let p = append(&store, "s", "gap", 1, &["1", "2"])
        .await
        .expect("fill");
    assert!(p[0] > gap[0] && p[1] > p[0], "{p:?} after {gap:?}");
    let evs = parse(&store.events_for("s", "gap", None).await.expect("read"));
    assert_eq!(versions(&evs), vec![1, 2, 5]);
    assert_eq!(positions(&evs), vec![p[0], p[1], gap[0]]);
    assert_eq!(all_events(&store, &["s"]).await.len(), 6);
}

async fn appends_big_batches(store: Store) {
    let types: Vec<String> = (0..250).map(|i| format!("t{i}")).collect();
    let refs: Vec<&str> = types.iter().map(String::as_str).collect();
    let p = append(&store, "big", "x", 1, &refs).await.expect("append");
    assert_eq!(p, (1..=250).collect::<Vec<_>>());
    let evs = parse(&store.events_for("big", "x", None).await.expect("read"));
    assert_eq!(versions(&evs), (1..=250).collect::<Vec<_>>());
    assert!(evs
        .iter()
        .enumerate()
        .all(|(i, e)| e.event["type"] == format!("t{i}")));
    let err = append(&store, "big", "x", 200, &refs)
        .await
        .expect_err("conflict");
    assert_eq!(err.code(), "VERSION_CONFLICT");
    assert_eq!(all_events(&store, &["big"]).await.len(), 250);
}

async fn finds_the_last_event(store: Store) {
    assert_eq!(
        store
            .last_event(&strings(&["s"]), None)
            .await
            .expect("read"),
        None
    );
    // Positions increase but need not be dense (MySQL's bulk inserts skip
    // auto-increment values).
    let a = append(&store, "s", "a", 1, &["a1", "a2"])
        .await
        .expect("append");
    let b = append(&store, "s", "b", 1, &["b1"]).await.expect("append");
    let t = append(&store, "t", "a", 1, &["t1"]).await.expect("append");

    let last = |json: Option<String>| -> StoredEvent {
        serde_json::from_str(&json.expect("an event")).expect("json")
    };
    let any = last(
        store
            .last_event(&strings(&["s"]), None)
            .await
            .expect("read"),
    );
    assert_eq!(
        (any.position, any.event["type"].as_str()),
        (b[0], Some("b1"))
    );

    // With an id, the last event of that aggregate (evtstore's memory
    // provider ignores the id; we must not).
    let of_a = last(
        store
            .last_event(&strings(&["s"]), Some("a"))
            .await
            .expect("read"),
    );
    assert_eq!(
        (of_a.position, of_a.event["type"].as_str()),
        (a[1], Some("a2"))
    );

    let across = last(
        store
            .last_event(&strings(&["s", "t"]), Some("a"))
            .await
            .expect("read"),
    );
    assert_eq!(across.event["type"], "t1");
    let both = last(
        store
            .last_event(&strings(&["t", "s"]), None)
            .await
            .expect("read"),
    );
    assert_eq!(both.position, t[0]);
    assert_eq!(
        store
            .last_event(&strings(&["s"]), Some("zzz"))
            .await
            .expect("read"),
        None
    );
    assert_eq!(
        store
            .last_event(&strings(&["nope"]), None)
            .await
            .expect("read"),
        None
    );

    // Many streams at once (SQLite caps a compound SELECT at 500 terms).
    let mut many: Vec<String> = (0..600).map(|i| format!("x{i}")).collect();
    many.push("s".to_string());
    let of_a = last(store.last_event(&many, Some("a")).await.expect("read"));
    assert_eq!(of_a.event["type"], "a2");
    let any = last(store.last_event(&many, None).await.expect("read"));
    assert_eq!(any.position, b[0]);
}

async fn keeps_bookmarks(store: Store) {
    assert_eq!(store.get_bookmark("h1").await.expect("get"), 0);
    store.set_bookmark("h1", 5).await.expect("set");
    store.set_bookmark("h2", 7).await.expect("set");
    assert_eq!(store.get_bookmark("h1").await.expect("get"), 5);
    store.set_bookmark("h1", 9).await.expect("set");
    assert_eq!(store.get_bookmark("h1").await.expect("get"), 9);
    assert_eq!(store.get_bookmark("h2").await.expect("get"), 7);
    store.set_bookmark("h1", 0).await.expect("set");
    assert_eq!(store.get_bookmark("h1").await.expect("get"), 0);
}

async fn bad_input_changes_nothing(store: Store) {
    append(&store, "s", "a", 1, &["ok"]).await.expect("append");
    let bad = [
        r#"[{"timestamp":1,"event":{"type":"fine"}},{"timestamp":1,"event":{"type":7}}]"#,
        r#"[{"timestamp":1,"event":{"type":"fine"}},{"timestamp":1,"event":[1]}]"#,
        r#"[{"timestamp":1,"event":{"type":"fine"}},{"timestamp":"now","event":{"type":"x"}}]"#,
        r#"[{"timestamp":1,"event":{"type":"fine"}}"#,
        r#"not json"#,
    ];
    for json in bad {
        let err = append_json(&store, "s", "a", 2.0, json)
            .await
            .expect_err(json);
        assert_eq!(err.code(), "INVALID_EVENT", "{json}");
    }
    let json = r#"[{"timestamp":1,"event":{"type":"fine"}}]"#;
    for version in [-1.0, 1.5, f64::NAN, f64::INFINITY] {
        let err = append_json(&store, "s", "a", version, json)
            .await
            .expect_err("bad version");
        assert_eq!(err.code(), "INVALID_ARGUMENT");
    }
    assert_eq!(all_events(&store, &["s"]).await.len(), 1);
    append_json(&store, "s", "a", 2.0, json)
        .await
        .expect("still appends");
}

async fn concurrent_appends_to_one_aggregate_cannot_both_win(store: Store) {
    append(&store, "s", "a", 1, &["first"])
        .await
        .expect("append");
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            append(&store, "s", "a", 2, &[&format!("racer{i}")]).await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => wins += 1,
            Err(e) => assert_eq!(e.code(), "VERSION_CONFLICT", "{e}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(
        versions(&parse(
            &store.events_for("s", "a", None).await.expect("read")
        )),
        vec![1, 2]
    );
}

/// The promise of the shared head and the engines' locks: a reader that
/// reads on from the last position it read never skips an event, however
/// the appends of concurrent writers commit.
async fn a_reader_never_skips_an_event_under_concurrent_appends(store: Store) {
    let (seen, all) = race_readers_and_writers(store).await;
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "read out of order");
    assert_eq!(seen, all, "the reader skipped events");
}

/// Ids and streams are compared exactly: a case-insensitive collation (a
/// MySQL default) would make "ABC" a version conflict of "abc".
async fn ids_and_streams_are_case_sensitive(store: Store) {
    append(&store, "s", "abc", 1, &["lower"])
        .await
        .expect("append");
    append(&store, "s", "ABC", 1, &["upper"])
        .await
        .expect("another aggregate, not a conflict");
    append(&store, "S", "abc", 1, &["other stream"])
        .await
        .expect("another stream, not a conflict");
    let of = parse(&store.events_for("s", "abc", None).await.expect("read"));
    assert_eq!(of.len(), 1);
    assert_eq!(of[0].event["type"], "lower");
    assert_eq!(all_events(&store, &["S"]).await.len(), 1);
    store.set_bookmark("h", 1).await.expect("set");
    assert_eq!(store.get_bookmark("H").await.expect("get"), 0);
}

/// migrate() is idempotent: run again over tables in use it keeps their
/// events, bookmarks, version check and positions.
async fn migrating_again_keeps_events_bookmarks_and_positions(store: Store) {
    let first = append(&store, "s", "a", 1, &["x", "y"])
        .await
        .expect("append");
    store.set_bookmark("h", first[1]).await.expect("bookmark");
    store.migrate(Tables::BOTH).await.expect("again");
    store.migrate(Tables::BOTH).await.expect("and again");
    assert_eq!(all_events(&store, &["s"]).await.len(), 2);
    assert_eq!(store.get_bookmark("h").await.expect("get"), first[1]);
    let err = append(&store, "s", "a", 2, &["dup"])
        .await
        .expect_err("still checked");
    assert_eq!(err.code(), "VERSION_CONFLICT", "{err}");
    let next = append(&store, "s", "a", 3, &["z"]).await.expect("append");
    assert!(next[0] > first[1], "{next:?} after {first:?}");
}

/// A store on tables nobody migrated: where the engine needs them made,
/// every operation that needs one says `MISSING_TABLE`, naming it and the
/// database (never a version conflict, nothing stored); where it needs no
/// migrate, the store simply works.
async fn tables_never_migrated_are_missing_not_conflicts(scratch: &Scratch) {
    let (events, bookmarks) = &scratch.unused;
    let store = (scratch.open_on)(events, bookmarks).await.expect("open");
    let missing = |err: StoreError, table: &str, location: &str| {
        assert_eq!(err.code(), "MISSING_TABLE", "{err}");
        let msg = err.to_string();
        assert!(msg.contains(&format!("table \"{table}\"")), "{msg}");
        assert!(
            msg.contains(&format!(" does not exist in {location}")),
            "{msg}"
        );
        assert!(msg.contains("run migrate() first"), "{msg}");
    };
    let streams = strings(&["s"]);
    match &scratch.unmigrated {
        Unmigrated::Refused { location } => {
            let err = append(&store, "s", "a", 1, &["x"]).await;
            missing(err.expect_err("append"), events, location);
            for err in [
                store.events_from(&streams, 0, None).await.err(),
                store.events_for("s", "a", None).await.err(),
                store.last_event(&streams, Some("a")).await.err(),
            ] {
                missing(err.expect("a read"), events, location);
            }
            let err = store.get_bookmark("b").await.expect_err("get");
            missing(err, bookmarks, location);
            let err = store.set_bookmark("b", 1).await.expect_err("set");
            missing(err, bookmarks, location);
        }
        Unmigrated::AppendsRefused { location } => {
            let err = append(&store, "s", "a", 1, &["x"]).await;
            missing(err.expect_err("append"), events, location);
            assert!(store
                .events_from(&streams, 0, None)
                .await
                .expect("read")
                .is_empty());
            assert!(store
                .events_for("s", "a", None)
                .await
                .expect("read")
                .is_empty());
            assert_eq!(store.last_event(&streams, None).await, Ok(None));
            assert_eq!(store.get_bookmark("b").await, Ok(0));
        }
        Unmigrated::Works => {
            assert_eq!(store.max_position().await, Ok(0));
            assert_eq!(append(&store, "s", "a", 1, &["x"]).await, Ok(vec![1]));
            let err = append(&store, "s", "a", 1, &["y"]).await;
            assert_eq!(err.expect_err("conflict").code(), "VERSION_CONFLICT");
            assert_eq!(append(&store, "s", "a", 2, &["y"]).await, Ok(vec![2]));
        }
    }
    store.close().await;
}

/// Says which engine a behaviour failed on: the suite runs each behaviour
/// on every registered engine in turn.
struct OnEngine(&'static str);

impl Drop for OnEngine {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = writeln!(std::io::stderr(), "  ... on the {} engine", self.0);
        }
    }
}

/// One test per behaviour, run on every engine of
/// [`crate::store::registry::scratch_engines`]: a new engine is tested by
/// registering it there, not by editing this suite. A behaviour takes the
/// scratch's store, or (after `scratch:`) the whole [`Scratch`], for more
/// stores on the same database.
macro_rules! for_each_engine {
    ($($name:ident),* ; scratch: $($scratch_name:ident),* $(,)?) => {
        mod on_every_engine {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    for scratch in crate::store::registry::scratch_engines().await {
                        let on = super::OnEngine(scratch.name);
                        super::$name(scratch.engine.clone()).await;
                        scratch.finish.await;
                        drop(on);
                    }
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scratch_name() {
                    for scratch in crate::store::registry::scratch_engines().await {
                        let on = super::OnEngine(scratch.name);
                        super::$scratch_name(&scratch).await;
                        scratch.finish.await;
                        drop(on);
                    }
                }
            )*
        }
    };
}

for_each_engine!(
    appends_and_reads_back,
    reads_streams_in_position_order,
    rejects_a_version_conflict,
    stores_a_batch_all_or_nothing,
    appends_big_batches,
    finds_the_last_event,
    keeps_bookmarks,
    bad_input_changes_nothing,
    concurrent_appends_to_one_aggregate_cannot_both_win,
    a_reader_never_skips_an_event_under_concurrent_appends,
    ids_and_streams_are_case_sensitive,
    migrating_again_keeps_events_bookmarks_and_positions,
    a_lease_changes_hands_only_from_what_the_claimer_saw,
    a_fenced_write_needs_a_lease,
    of_concurrent_claims_one_wins,
    lists_bookmarks_leases_and_counts_what_is_behind;
    scratch: tables_never_migrated_are_missing_not_conflicts,
);

// --- memory specifics ---------------------------------------------------------

#[tokio::test]
async fn memory_head_moves_on_append_and_wakes_a_waiter() {
    let engine = Arc::new(MemoryJsonEngine::new());
    let waiter = HeadWaiter::new(engine.head().clone());
    let store: Store = engine.clone();
    append(&store, "s", "a", 1, &["x"]).await.expect("append");
    assert_eq!(engine.head().get(), 1);
    assert_eq!(waiter.wait(0, None).await, WaitOutcome::Changed);
    assert_eq!(
        waiter.wait(1, Some(Duration::from_millis(5))).await,
        WaitOutcome::Timeout
    );
    let _ = append(&store, "s", "a", 1, &["conflict"]).await;
    assert_eq!(
        engine.head().get(),
        1,
        "a failed append does not move the head"
    );
}

#[test]
fn memory_reads_one_stream_among_many_without_scanning_the_store() {
    // Correctness on a big store with a rare stream (no timing here).
    let engine = MemoryEngine::new();
    for i in 0..20_000i64 {
        let stream = if i % 1000 == 0 { "rare" } else { "common" };
        engine
            .append_versions_sync(stream, &format!("id{}", i % 50), i / 50 + 1, 1)
            .expect("append");
    }
    let rare = engine.positions_from_sync(&strings(&["rare"]), 5000, Some(3));
    assert_eq!(rare, vec![5001.0, 6001.0, 7001.0]);
    let mixed = engine.positions_from_sync(&strings(&["rare", "common"]), 19_998, None);
    assert_eq!(mixed, vec![19_999.0, 20_000.0]);
    assert_eq!(engine.len(), 20_000);
}

// --- SQLite specifics ---------------------------------------------------------

#[tokio::test]
async fn sqlite_rejects_bad_names_and_files() {
    for (events, bookmarks, code) in [
        (Some("bad-name"), None, "INVALID_NAME"),
        (None, Some("x y"), "INVALID_NAME"),
        (Some("same"), Some("SAME"), "INVALID_NAME"),
    ] {
        let err = SqliteEngine::open(SqliteOptions {
            file: ":memory:".into(),
            events: events.map(str::to_string),
            bookmarks: bookmarks.map(str::to_string),
            ..Default::default()
        })
        .await
        .err()
        .expect("rejected");
        assert_eq!(err.code(), code);
    }
    let err = SqliteEngine::open(SqliteOptions {
        file: "/nonexistent-dir-evtstore/x.sqlite".into(),
        ..Default::default()
    })
    .await
    .err()
    .expect("cannot open");
    assert_eq!(err.code(), "CANNOT_OPEN");
    assert!(err
        .to_string()
        .contains("/nonexistent-dir-evtstore/x.sqlite"));

    let path = temp_db("notadb");
    std::fs::write(&path, b"this is not a database, just some text that is long enough to matter .........................................").expect("write");
    let err = SqliteEngine::open(SqliteOptions {
        file: path.display().to_string(),
        ..Default::default()
    })
    .await
    .err()
    .expect("not a db");
    assert_eq!(err.code(), "CANNOT_OPEN");
    remove_db(&path);
}

#[tokio::test]
async fn sqlite_reads_timestamps_in_every_format() {
    let path = temp_db("timestamps");
    let engine = open_sqlite(&path).await;
    engine.migrate(Tables::BOTH).await.expect("migrate");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("second connection");
    let rows: [(i64, &str); 6] = [
        (1, "1700000000000"),
        (2, "1700000000000.4"),
        (3, "'2023-11-14T22:13:20.000Z'"),
        (4, "'2023-11-14 22:13:20'"),
        (5, "NULL"),
        (6, "'not a date'"),
    ];
    for (v, ts) in rows {
        sqlx::query(&format!(
            "INSERT INTO events (version, stream, aggregate_id, timestamp, event) VALUES ({v}, 's', 'a', {ts}, '{{\"type\":\"t{v}\"}}')"
        ))
        .execute(&pool)
        .await
        .expect("insert");
    }
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT typeof(timestamp) FROM events ORDER BY position")
            .fetch_all(&pool)
            .await
            .expect("typeof");
    assert_eq!(kinds, ["integer", "real", "text", "text", "null", "text"]);
    let store: Store = Arc::new(engine);
    let evs = parse(&store.events_for("s", "a", None).await.expect("read"));
    let ts: Vec<Option<i64>> = evs.iter().map(|e| e.timestamp).collect();
    assert_eq!(
        ts,
        vec![
            Some(1_700_000_000_000),
            Some(1_700_000_000_000),
            Some(1_700_000_000_000),
            Some(1_700_000_000_000),
            None,
            None
        ]
    );
    pool.close().await;
    remove_db(&path);
}

#[tokio::test]
async fn sqlite_is_compatible_with_the_knex_layout_of_evtstore() {
    let path = temp_db("knex");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .expect("connect");
    // Exactly what knex 3 + sqlite3 create for evtstore 12.0.1's migrate().
    for ddl in [
        "CREATE TABLE `events` (`position` integer not null primary key autoincrement, `version` integer, `stream` varchar(255), `aggregate_id` varchar(255), `timestamp` datetime, `event` text)",
        "CREATE UNIQUE INDEX `events_stream_position_unique` on `events` (`stream`, `position`)",
        "CREATE UNIQUE INDEX `events_stream_aggregate_id_version_unique` on `events` (`stream`, `aggregate_id`, `version`)",
        "CREATE TABLE `bookmarks` (`bookmark` varchar(255), `position` bigint, primary key (`bookmark`))",
        // Rows as evtstore wrote them (node-sqlite3 binds a Date as a number).
        "INSERT INTO `events` (`stream`, `aggregate_id`, `event`, `version`, `timestamp`) VALUES ('users', 'u1', '{\"type\":\"created\",\"name\":\"x\"}', 1, 1795705255884.0), ('users', 'u1', '{\"type\":\"renamed\",\"name\":\"y\"}', 2, 1795705255884.0)",
        "INSERT INTO `bookmarks` (`bookmark`, `position`) VALUES ('bm', 5)",
    ] {
        sqlx::query(ddl).execute(&pool).await.expect(ddl);
    }
    let engine = open_sqlite(&path).await;
    engine
        .migrate(Tables::BOTH)
        .await
        .expect("migrate over the knex tables is a no-op");
    let index_count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!(index_count, 2, "migrate must not add a duplicate index");

    let store: Store = Arc::new(engine);
    let evs = parse(&store.events_for("users", "u1", None).await.expect("read"));
    assert_eq!(versions(&evs), vec![1, 2]);
    assert_eq!(evs[0].timestamp, Some(1_795_705_255_884));
    assert_eq!(evs[1].event["name"], "y");
    assert_eq!(store.get_bookmark("bm").await.expect("bm"), 5);

    let err = append(&store, "users", "u1", 2, &["dup"])
        .await
        .expect_err("conflict");
    assert_eq!(err.code(), "VERSION_CONFLICT");
    let p = append(&store, "users", "u1", 3, &["next"])
        .await
        .expect("append");
    assert_eq!(p, vec![3]);

    // What evtstore's knex provider reads back from our row.
    let (ts_type, event): (String, String) =
        sqlx::query_as("SELECT typeof(timestamp), event FROM events WHERE position = 3")
            .fetch_one(&pool)
            .await
            .expect("row");
    assert_eq!(ts_type, "integer");
    let event: serde_json::Value = serde_json::from_str(&event).expect("event column is JSON");
    assert_eq!(event["type"], "next");
    pool.close().await;
    remove_db(&path);
}

#[tokio::test]
async fn sqlite_reports_an_event_column_that_is_not_json() {
    let path = temp_db("badjson");
    let engine = open_sqlite(&path).await;
    engine.migrate(Tables::BOTH).await.expect("migrate");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("connect");
    sqlx::query("INSERT INTO events (version, stream, aggregate_id, timestamp, event) VALUES (1, 's', 'a', 1, '{oops')")
        .execute(&pool)
        .await
        .expect("insert");
    let store: Store = Arc::new(engine);
    let err = store
        .events_from(&strings(&["s"]), 0, None)
        .await
        .expect_err("bad row");
    assert_eq!(err.code(), "DATABASE_ERROR");
    assert!(err.to_string().contains("position 1"), "{err}");
    pool.close().await;
    remove_db(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_stores_on_one_file_share_head_and_serialise_writes() {
    let path = temp_db("shared");
    let a = Arc::new(open_sqlite(&path).await);
    a.migrate(Tables::BOTH).await.expect("migrate");
    let b = Arc::new(open_sqlite(&path).await);
    assert!(Arc::ptr_eq(a.head(), b.head()));
    let waiter = HeadWaiter::new(b.head().clone());
    let known = b.head().get();
    let sa: Store = a.clone();
    let sb: Store = b.clone();
    let wait = tokio::spawn(async move { waiter.wait(known, Some(Duration::from_secs(10))).await });
    tokio::time::sleep(Duration::from_millis(10)).await;
    append(&sa, "s", "a", 1, &["x"]).await.expect("append");
    assert_eq!(wait.await.expect("join"), WaitOutcome::Changed);

    // Racing writers on two stores (two pools) of one file: one winner.
    let mut tasks = Vec::new();
    for i in 0..10 {
        let store = if i % 2 == 0 { sa.clone() } else { sb.clone() };
        tasks.push(tokio::spawn(async move {
            append(&store, "s", "a", 2, &["race"]).await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        if t.await.expect("join").is_ok() {
            wins += 1;
        }
    }
    assert_eq!(wins, 1);
    a.close().await;
    b.close().await;
    remove_db(&path);
}

#[tokio::test]
async fn sqlite_memory_databases_are_private_and_close_cleanly() {
    let one = SqliteEngine::open(SqliteOptions {
        file: ":memory:".into(),
        ..Default::default()
    })
    .await
    .expect("open");
    one.migrate(Tables::BOTH).await.expect("migrate");
    let two = SqliteEngine::open(SqliteOptions {
        file: ":memory:".into(),
        events: Some("ev".into()),
        bookmarks: Some("bm".into()),
        ..Default::default()
    })
    .await
    .expect("open");
    let s1: Store = Arc::new(one);
    let s2: Store = Arc::new(two);
    append(&s1, "s", "a", 1, &["x"]).await.expect("append");
    // The second database has no tables at all.
    let err = append(&s2, "s", "a", 1, &["x"]).await.expect_err("private");
    assert_eq!(err.code(), "MISSING_TABLE");
    assert!(err.to_string().contains("\"ev\""));
    // Still there after a pause (the one connection is kept).
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(all_events(&s1, &["s"]).await.len(), 1);
}

#[tokio::test]
async fn sqlite_closed_store_says_so() {
    let path = temp_db("closed");
    let engine = open_sqlite(&path).await;
    engine.migrate(Tables::BOTH).await.expect("migrate");
    engine.close().await;
    assert!(engine.is_closed());
    let store: Store = Arc::new(engine);
    let err = store.get_bookmark("x").await.expect_err("closed");
    assert_eq!(err.code(), "STORE_CLOSED");
    let err = append(&store, "s", "a", 1, &["x"])
        .await
        .expect_err("closed");
    assert_eq!(err.code(), "STORE_CLOSED");
    remove_db(&path);
}

#[tokio::test]
async fn sqlite_migrate_is_idempotent_and_keeps_data() {
    let path = temp_db("migrate");
    let engine = SqliteEngine::open(SqliteOptions {
        file: path.display().to_string(),
        events: Some("MyEvents".into()),
        bookmarks: Some("my_bookmarks".into()),
        ..Default::default()
    })
    .await
    .expect("open");
    engine.migrate(Tables::BOTH).await.expect("migrate");
    let store: Arc<SqliteEngine> = Arc::new(engine);
    let dyn_store: Store = store.clone();
    append(&dyn_store, "s", "a", 1, &["x"])
        .await
        .expect("append");
    dyn_store.set_bookmark("b", 1).await.expect("bookmark");
    store.migrate(Tables::BOTH).await.expect("again");
    store.migrate(Tables::BOTH).await.expect("and again");
    assert_eq!(all_events(&dyn_store, &["s"]).await.len(), 1);
    assert_eq!(dyn_store.get_bookmark("b").await.expect("get"), 1);
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("connect");
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&pool)
    .await
    .expect("names");
    assert_eq!(
        names,
        [
            "MyEvents",
            "my_bookmarks",
            "my_bookmarks_leases",
            "myevents_stream_aggregate_id_version_unique",
            "myevents_stream_position_unique"
        ]
    );
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&pool)
        .await
        .expect("mode");
    assert_eq!(mode, "wal");
    pool.close().await;
    store.close().await;
    remove_db(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_builds_the_same_json_in_sql_and_in_rust() {
    let path = temp_db("twopaths");
    let engine = Arc::new(open_sqlite(&path).await);
    engine.migrate(Tables::BOTH).await.expect("migrate");
    let store: Store = engine.clone();
    let tricky = r#"[{"timestamp":1700000000000,"event":{"type":"a","big":12345678901234567890123,"f":1.0,"s":"\ud83d\ude00 \u00e9 é \n \" \\ \/","nested":{"x":[1,{"y":null}],"t":true},"empty":{},"arr":[]}},{"timestamp":-5,"event":{"type":"b"}}]"#;
    append_json(&store, "we\"ird\n", "id\u{1}é", 1.0, tricky)
        .await
        .expect("append");
    append(&store, "plain", "p", 1, &["x", "y"])
        .await
        .expect("append");
    let reads = |store: Store| async move {
        let streams = strings(&["we\"ird\n", "plain"]);
        (
            store
                .events_for("we\"ird\n", "id\u{1}é", None)
                .await
                .expect("for"),
            store.events_for("plain", "p", Some(3)).await.expect("for"),
            store.events_from(&streams, 0, None).await.expect("from"),
            store.events_from(&streams, 1, Some(2)).await.expect("from"),
            store
                .events_from(&strings(&["none"]), 0, None)
                .await
                .expect("from"),
        )
    };
    let in_sql = reads(store.clone()).await;
    engine.use_sql_json(false);
    let in_rust = reads(store.clone()).await;
    // Byte for byte: same keys, same order, event text kept as written.
    assert_eq!(in_sql, in_rust);
    assert_eq!(in_sql.4, EventBatch::empty(true));
    assert_eq!(positions(&parse(&in_sql.3)), vec![2, 3]);
    engine.close().await;
    remove_db(&path);
}

#[tokio::test]
async fn sqlite_reports_a_lock_held_too_long_as_busy_not_as_a_conflict() {
    let path = temp_db("busy");
    let engine = open_sqlite(&path).await;
    engine.migrate(Tables::BOTH).await.expect("migrate");
    // Another "process" takes the write lock and keeps it past the 5 s busy
    // timeout.
    let mut other = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("connect")
        .begin_with("BEGIN IMMEDIATE")
        .await
        .expect("lock");
    sqlx::query("INSERT INTO bookmarks (bookmark, position) VALUES ('lock', 1)")
        .execute(&mut *other)
        .await
        .expect("write");
    let store: Store = Arc::new(engine);
    let err = append(&store, "s", "a", 1, &["x"]).await.expect_err("busy");
    assert_eq!(err.code(), "DATABASE_BUSY", "{err}");
    assert!(err.to_string().contains("retry"), "{err}");
    // Readers are not blocked by the writer (WAL).
    assert_eq!(all_events(&store, &["s"]).await.len(), 0);
    other.rollback().await.expect("rollback");
    append(&store, "s", "a", 1, &["x"])
        .await
        .expect("free again");
    remove_db(&path);
}

// --- SQLite durability and group commit --------------------------------------

#[tokio::test]
async fn sqlite_files_are_durable_by_default_and_faster_only_when_asked() {
    let path = temp_db("durable");
    let open = |synchronous: Option<&str>, journal: Option<&str>| {
        let file = path.display().to_string();
        let synchronous = synchronous.map(str::to_string);
        let journal_mode = journal.map(str::to_string);
        async move {
            SqliteEngine::open(SqliteOptions {
                file,
                synchronous,
                journal_mode,
                ..Default::default()
            })
            .await
        }
    };
    // PRAGMA synchronous: 2 is FULL, 1 NORMAL
    let durable = open(None, None).await.expect("open");
    assert_eq!(durable.pragma("synchronous").await, "2");
    assert_eq!(durable.pragma("journal_mode").await, "wal");
    durable.close().await;
    let fast = open(Some("normal"), None).await.expect("open");
    assert_eq!(fast.pragma("synchronous").await, "1");
    fast.close().await;
    let rollback = open(Some("full"), Some("delete")).await.expect("open");
    assert_eq!(rollback.pragma("journal_mode").await, "delete");
    assert_eq!(rollback.pragma("synchronous").await, "2");
    rollback.close().await;
    for (synchronous, journal) in [
        (Some("off"), None),
        (None, Some("memory")),
        (Some("FULL "), None),
    ] {
        let err = open(synchronous, journal).await.err().expect("refused");
        assert_eq!(err.code(), "INVALID_ARGUMENT", "{err}");
    }
    remove_db(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_concurrent_appends_share_commits_and_each_stays_all_or_none() {
    let path = temp_db("group");
    let engine = Arc::new(open_sqlite(&path).await);
    engine.migrate(Tables::BOTH).await.expect("migrate");
    let store: Store = engine.clone();
    append(&store, "g", "taken", 1, &["a", "b"])
        .await
        .expect("seed");
    let mut tasks = Vec::new();
    for i in 0..120 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            match i % 4 {
                // 30 appends race for versions 1..2 of one aggregate
                0 => append(&store, "g", "race", 1, &["x", "y"]).await,
                // 30 clash with stored versions: 2..3 of "taken"
                1 => append(&store, "g", "taken", 2, &["z", "w"]).await,
                // 60 on aggregates of their own, one of 150 events (chunks)
                _ if i == 2 => append(&store, "g", &format!("own{i}"), 1, &["e"; 150]).await,
                _ => append(&store, "g", &format!("own{i}"), 1, &["e", "f", "g"]).await,
            }
        }));
    }
    let mut won_race = 0;
    let mut conflicts = 0;
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.expect("task") {
            Ok(_) => {
                assert_ne!(i % 4, 1, "an append on stored versions was stored");
                won_race += usize::from(i % 4 == 0);
            }
            Err(e) => {
                assert_eq!(e.code(), "VERSION_CONFLICT", "{e}");
                assert!(i % 4 <= 1, "append {i} failed: {e}");
                conflicts += 1;
            }
        }
    }
    assert_eq!(won_race, 1, "exactly one append wins versions 1..2");
    assert_eq!(conflicts, 29 + 30);
    let events = all_events(&store, &["g"]).await;
    // 2 seeded + 2 of the race + 150 + 59 * 3 of their own aggregates
    assert_eq!(events.len(), 2 + 2 + 150 + 59 * 3);
    let mut by_aggregate: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
    for ev in &events {
        by_aggregate
            .entry(ev.aggregate_id.clone().expect("id"))
            .or_default()
            .push(ev.version.expect("version"));
    }
    for (id, versions) in by_aggregate {
        let expected: Vec<i64> = (1..=versions.len() as i64).collect();
        assert_eq!(versions, expected, "{id}: versions dense, nothing partial");
    }
    assert!(
        engine.groups_written.load(Ordering::Relaxed) > 0,
        "no appends were written as a group"
    );
    engine.close().await;
    remove_db(&path);
}
