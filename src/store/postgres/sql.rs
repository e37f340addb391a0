//! The statements of a store, and the names and keys derived from its
//! tables.

use crate::store::names::stable_hash;

pub(super) struct Statements {
    pub(super) append_locked: String,
    #[cfg(test)]
    pub(super) append_unlocked: String,
    pub(super) append_group: String,
    pub(super) events_for_rows: String,
    pub(super) events_from_rows: String,
    pub(super) last_event_any: String,
    pub(super) last_event_of: String,
    pub(super) get_bookmark: String,
    pub(super) set_bookmark: String,
    pub(super) stored_versions: String,
    pub(super) max_position: String,
    pub(super) count_after: String,
}

/// The columns every read of whole events selects, from `e`, in the order
/// [`PostgresEngine::event_ref`] reads them. The casts are no-ops on the
/// layout migrate() creates and make other compatible column types read the
/// same.
const ROW_COLUMNS: &str = "e.\"position\"::int8 AS p, e.\"version\"::int8 AS v, e.\"timestamp\" AS t, e.\"event\"::text AS ev, e.\"stream\"::text AS s, e.\"aggregate_id\"::text AS a";

/// [`ROW_COLUMNS`] without the stream and id, for a read of one aggregate
/// (they are the ones asked for; sending them takes a fifth of the time
/// of a 10,000-event read).
const AGGREGATE_ROW_COLUMNS: &str = "e.\"position\"::int8 AS p, e.\"version\"::int8 AS v, e.\"timestamp\" AS t, e.\"event\"::text AS ev";

/// Whether the table (`$1`, a quoted name) has a valid unique index, without
/// predicate or expressions, whose key columns are exactly `$2` in order.
pub(super) const HAS_UNIQUE_INDEX_SQL: &str = "SELECT EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = to_regclass($1) AND x.indisunique AND x.indisvalid AND x.indpred IS NULL AND x.indexprs IS NULL AND x.indnkeyatts = cardinality($2::text[]) AND ARRAY(SELECT a.attname::text FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, i) JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum WHERE k.i <= x.indnkeyatts ORDER BY k.i) = $2::text[])";

/// Whether no relation named `$1` exists in the schema of table `$2`.
pub(super) const NAME_IS_FREE_SQL: &str = "SELECT NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.relname = $1 AND c.relnamespace = (SELECT t.relnamespace FROM pg_class t WHERE t.oid = to_regclass($2)))";

/// The key columns of the unique index `$1` in schema `$2` (any schema when
/// empty).
pub(super) const INDEX_COLUMNS_SQL: &str = "SELECT ARRAY(SELECT a.attname::text FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, i) JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum WHERE k.i <= x.indnkeyatts ORDER BY k.i) FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = $1 AND ($2 = '' OR n.nspname = $2) AND x.indisunique LIMIT 1";

impl Statements {
    pub(super) fn new(events: &str, bookmarks: &str) -> Self {
        let t = quote_ident(events);
        let b = quote_ident(bookmarks);
        // The INSERT reads its rows from a join with the lock's row, so no
        // row exists (and no position is drawn from the sequence) before
        // the lock is held. `$1` lock key, `$2` first version, `$3` stream,
        // `$4` aggregate id, `$5` epoch ms, `$6` event texts, `$7` channel.
        let insert = |lock: bool, n: usize| {
            let p = |i: usize| format!("${}", i + n);
            let from = if lock { "\"lock\" CROSS JOIN " } else { "" };
            format!(
                "INSERT INTO {t} (\"version\", \"stream\", \"aggregate_id\", \"timestamp\", \"event\") \
                 SELECT {v} + u.o - 1, {s}, {a}, to_timestamp(u.ms / 1000) + (u.ms % 1000) * interval '1 millisecond', u.ev \
                 FROM {from}unnest({ms}::int8[], {ev}::text[]) WITH ORDINALITY AS u(ms, ev, o) \
                 RETURNING \"position\", \"version\"",
                v = p(0),
                s = p(1),
                a = p(2),
                ms = p(3),
                ev = p(4),
            )
        };
        let tail = |channel: &str| {
            format!(
                "\"note\" AS (SELECT pg_notify({channel}, max(\"position\")::text) FROM \"new\") \
                 SELECT \"new\".\"position\"::int8, \"new\".\"version\"::int8 FROM \"new\" CROSS JOIN \"note\""
            )
        };
        let append_locked = format!(
            "WITH \"lock\" AS (SELECT pg_advisory_xact_lock($1)), \"new\" AS ({}), {}",
            insert(true, 2),
            tail("$7")
        );
        #[cfg(test)]
        let append_unlocked = format!("WITH \"new\" AS ({}), {}", insert(false, 1), tail("$6"));
        // A group of appends on distinct aggregates: `$1` lock key, then one
        // array element per event: `$2` stream, `$3` aggregate id, `$4`
        // version, `$5` epoch ms, `$6` event text; `$7` channel. "taken"
        // names the aggregates whose versions are stored already: none of
        // their events is inserted (a version conflict for that append).
        // It reads the statement's snapshot, which within this process is
        // exact (our appends to the table are written one group at a
        // time); a writer in another process that commits between the
        // snapshot and the lock makes the unique index refuse the insert,
        // and the group is then written one append at a time.
        let append_group = format!(
            "WITH \"lock\" AS (SELECT pg_advisory_xact_lock($1)), \
             \"input\" AS (SELECT * FROM unnest($2::text[], $3::text[], $4::int8[], $5::int8[], $6::text[]) WITH ORDINALITY AS u(s, a, v, ms, ev, o)), \
             \"taken\" AS (SELECT DISTINCT u.s, u.a FROM \"input\" u JOIN {t} e ON e.\"stream\" = u.s AND e.\"aggregate_id\" = u.a AND e.\"version\" = u.v), \
             \"new\" AS (INSERT INTO {t} (\"version\", \"stream\", \"aggregate_id\", \"timestamp\", \"event\") \
             SELECT u.v, u.s, u.a, to_timestamp(u.ms / 1000) + (u.ms % 1000) * interval '1 millisecond', u.ev \
             FROM \"lock\" CROSS JOIN \"input\" u \
             WHERE NOT EXISTS (SELECT 1 FROM \"taken\" k WHERE k.s = u.s AND k.a = u.a) ORDER BY u.o \
             RETURNING \"position\", \"version\", \"stream\", \"aggregate_id\"), \
             \"note\" AS (SELECT pg_notify($7, max(\"position\")::text) FROM \"new\" HAVING count(*) > 0) \
             SELECT n.\"position\"::int8, n.\"version\"::int8, n.\"stream\"::text, n.\"aggregate_id\"::text \
             FROM \"new\" n CROSS JOIN \"note\""
        );

        let select = format!("SELECT {ROW_COLUMNS} FROM {t} AS e");
        // Ordered by version alone: the unique index on (stream,
        // aggregate_id, version) yields that order without a sort (a sort
        // by version, position took half the server's time for 10,000
        // events). Equal versions exist only as NULLs written by another
        // program; they come in index order.
        let events_for_rows = format!(
            "SELECT {AGGREGATE_ROW_COLUMNS} FROM {t} AS e WHERE e.\"stream\" = $1 AND e.\"aggregate_id\" = $2 AND e.\"position\" > $3 ORDER BY e.\"version\""
        );
        let events_from_rows = format!(
            "{select} WHERE e.\"stream\" = ANY($1) AND e.\"position\" > $2 ORDER BY e.\"position\" LIMIT $3"
        );
        // The highest position per stream, each found on an index: on
        // (stream, position) without an id; with one, on the aggregate's
        // entries of (stream, aggregate_id, version) (`+ 0` keeps the
        // planner from walking the stream backwards instead).
        let last = |per_stream: &str| {
            format!(
                "{select} WHERE e.\"position\" = (SELECT max(m.p) FROM unnest($1::text[]) AS s(name) CROSS JOIN LATERAL ({per_stream}) AS m)"
            )
        };
        Statements {
            events_for_rows,
            events_from_rows,
            last_event_any: last(&format!(
                "SELECT max(x.\"position\") AS p FROM {t} AS x WHERE x.\"stream\" = s.name"
            )),
            last_event_of: last(&format!(
                "SELECT max(x.\"position\" + 0) AS p FROM {t} AS x WHERE x.\"stream\" = s.name AND x.\"aggregate_id\" = $2"
            )),
            get_bookmark: format!("SELECT \"position\"::int8 FROM {b} WHERE \"bookmark\" = $1"),
            set_bookmark: format!(
                "INSERT INTO {b} (\"bookmark\", \"position\") VALUES ($1, $2) ON CONFLICT (\"bookmark\") DO UPDATE SET \"position\" = excluded.\"position\""
            ),
            stored_versions: format!(
                "SELECT e.\"position\"::int8, e.\"event\"::text, e.\"timestamp\" FROM {t} AS e WHERE e.\"stream\" = $1 AND e.\"aggregate_id\" = $2 AND e.\"version\" BETWEEN $3 AND $4 ORDER BY e.\"version\""
            ),
            max_position: format!("SELECT max(\"position\")::int8 FROM {t}"),
            count_after: format!(
                "SELECT count(*)::int8 FROM {t} WHERE \"stream\" = ANY($1) AND \"position\" > $2"
            ),
            append_locked,
            #[cfg(test)]
            append_unlocked,
            append_group,
        }
    }
}

pub(super) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// At most 63 bytes (PostgreSQL's identifier limit); names here are ASCII.
pub(super) fn truncate_ident(name: &str) -> String {
    truncate_ident_to(name, 63)
}

pub(super) fn truncate_ident_to(name: &str, max: usize) -> String {
    let mut end = name.len().min(max);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

/// The advisory lock key of appends to an events table.
pub fn lock_key(events_table: &str) -> i64 {
    stable_hash(&[b"evtstore-rs:append:", events_table.as_bytes()]) as i64
}

/// The advisory lock key of migrate() (one for the whole database, so that
/// concurrent CREATE TABLEs never race in the catalog).
pub fn migrate_lock_key() -> i64 {
    stable_hash(&[b"evtstore-rs:migrate"]) as i64
}

/// The notification channel of an events table: `evtstore_<table>`, or,
/// past PostgreSQL's 63-byte limit, a prefix of it plus a hash.
pub fn channel_name(events_table: &str) -> String {
    let name = format!("evtstore_{events_table}");
    if name.len() <= 63 {
        return name;
    }
    let hash = stable_hash(&[events_table.as_bytes()]);
    format!("{}_{hash:016x}", truncate_ident_to(&name, 63 - 17))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_channels_are_stable_and_fit() {
        assert_eq!(lock_key("events"), lock_key("events"));
        assert_ne!(lock_key("events"), lock_key("Events"));
        assert_ne!(lock_key("events"), migrate_lock_key());
        // FNV-1a test vector: stable across versions and platforms.
        assert_eq!(stable_hash(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(channel_name("events"), "evtstore_events");
        let long = "e".repeat(63);
        let ch = channel_name(&long);
        assert_eq!(ch.len(), 63);
        assert_ne!(ch, channel_name(&"e".repeat(62)));
        assert_eq!(
            truncate_ident(&format!("{long}_stream_position_unique")).len(),
            63
        );
    }

    #[test]
    fn builds_one_statement_appends() {
        let s = Statements::new("events", "bookmarks");
        assert!(s.append_locked.starts_with(
            "WITH \"lock\" AS (SELECT pg_advisory_xact_lock($1)), \"new\" AS (INSERT INTO \"events\""
        ));
        assert!(s
            .append_locked
            .contains("FROM \"lock\" CROSS JOIN unnest($5::int8[], $6::text[])"));
        assert!(s.append_locked.contains("pg_notify($7,"));
        assert!(!s.append_unlocked.contains("lock"));
        assert!(s.append_unlocked.contains("pg_notify($6,"));
    }
}
