//! The Cypher statements of one store (its labels are fixed when it opens),
//! and the schema statements of each server generation.
//!
//! Data model (evtstore's, so that its data and ours live together): one
//! node per event with the events label and the properties `stream`,
//! `aggregateId`, `version`, `position`, `timestamp` (a DateTime), `event`
//! (JSON text), `_streamIdVersion` ("stream_aggregateId_version", evtstore's
//! unique version key) and `_streamPosition`; one node per bookmark with
//! `bookmark` and `position`. Ours are integer positions taken from one
//! counter node per events label (`EvtstorePosition {label}`), which each
//! append locks until it commits: positions rise in commit order. evtstore
//! stored DateTimes (its transaction time) as positions; they are read as
//! epoch milliseconds, and the counter starts above the last of them.

/// The label of the counter nodes (one per events label).
pub const COUNTER_LABEL: &str = "EvtstorePosition";

/// A label quoted for Cypher (names are checked to be `[A-Za-z_][A-Za-z0-9_]*`).
pub(super) fn quoted(label: &str) -> String {
    format!("`{label}`")
}

/// Both kinds of stored position compared with `$after`: integers (ours),
/// and DateTimes (evtstore's) as epoch milliseconds. A comparison of an
/// integer with a DateTime is null in Cypher, so each node passes on its
/// own kind only.
pub(super) const AFTER: &str =
    "(ev.position > $after OR ev.position > datetime({epochMillis: $after}))";

/// [`AFTER`] for a catch-up read, which also stops at `$horizon`: the
/// counter's value read just before. Neo4j reads committed data without a
/// snapshot: a scan that has passed position 410 before its append committed
/// can still meet 412, committed later, further on. Every position up to the
/// counter's value had committed before the scan began, so none of them is
/// missed; later ones are left to the next read.
const AFTER_UP_TO_HORIZON: &str = "(ev.position > $after AND ev.position <= $horizon \
     OR ev.position > datetime({epochMillis: $after}))";

/// The columns of a read: position, version, timestamp, event (then
/// stream and aggregate id when reading many aggregates).
const COLUMNS: &str = "ev.position, ev.version, ev.timestamp, ev.event";

pub struct Statements {
    pub append: String,
    pub events_from: String,
    pub events_from_limit: String,
    pub events_for: String,
    pub events_for_after: String,
    pub last_event: String,
    pub last_event_of: String,
    pub get_bookmark: String,
    pub set_bookmark: String,
    pub max_position: String,
    pub last_stored_position: String,
    pub create_counter: String,
}

impl Statements {
    pub fn new(events: &str, bookmarks: &str) -> Statements {
        let e = quoted(events);
        let b = quoted(bookmarks);
        let counter = format!("(c:{COUNTER_LABEL} {{label: $label}})");
        // The counter's lock is taken by the first SET and held until
        // commit; the position is read after it, so no two appends get the
        // same one and positions follow commit order.
        let append = format!(
            "MATCH {counter} \
             SET c._lock = true \
             WITH c, c.position AS base \
             SET c.position = base + size($events) \
             REMOVE c._lock \
             WITH base \
             UNWIND range(0, size($events) - 1) AS i \
             CREATE (ev:{e} {{stream: $stream, aggregateId: $id, version: $version + i, \
             position: base + i + 1, timestamp: datetime({{epochMillis: $events[i][0]}}), \
             event: $events[i][1], \
             _streamIdVersion: $stream + '_' + $id + '_' + toString($version + i), \
             _streamPosition: $stream + '_' + toString(base + i + 1)}}) \
             RETURN base + i + 1"
        );
        let from = format!(
            "MATCH (ev:{e}) WHERE ev.stream IN $streams AND {AFTER_UP_TO_HORIZON} \
             RETURN {COLUMNS}, ev.stream, ev.aggregateId ORDER BY ev.position"
        );
        // an aggregate's events up to the horizon too (a scan without a
        // snapshot could meet version 5 and miss 4); evtstore's DateTime
        // positions do not compare with it (null) and are all in
        let of = format!(
            "MATCH (ev:{e}) WHERE ev.aggregateId = $id AND ev.stream = $stream \
             AND coalesce(ev.position <= $horizon, true)"
        );
        let last = format!("MATCH (ev:{e}) WHERE ev.stream IN $streams");
        Statements {
            append,
            events_from_limit: format!("{from} LIMIT $limit"),
            events_from: from,
            events_for: format!("{of} RETURN {COLUMNS} ORDER BY ev.version, ev.position"),
            events_for_after: format!("{of} AND {AFTER} RETURN {COLUMNS} ORDER BY ev.version, ev.position"),
            last_event: format!(
                "{last} RETURN {COLUMNS}, ev.stream, ev.aggregateId ORDER BY ev.position DESC LIMIT 1"
            ),
            last_event_of: format!(
                "{last} AND ev.aggregateId = $id RETURN {COLUMNS}, ev.stream, ev.aggregateId ORDER BY ev.position DESC LIMIT 1"
            ),
            get_bookmark: format!("MATCH (b:{b} {{bookmark: $name}}) RETURN b.position LIMIT 1"),
            set_bookmark: format!("MERGE (b:{b} {{bookmark: $name}}) SET b.position = $position"),
            max_position: format!("MATCH {counter} RETURN c.position"),
            // DateTimes sort before numbers: the highest integer position
            // if there is one, else evtstore's latest DateTime
            last_stored_position: format!(
                "MATCH (ev:{e}) WHERE ev.position IS NOT NULL RETURN ev.position ORDER BY ev.position DESC LIMIT 1"
            ),
            create_counter: format!("MERGE {counter} ON CREATE SET c.position = $start RETURN c.position"),
        }
    }
}

/// Which schema syntax a server takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaSyntax {
    /// Neo4j 3.5: `CREATE INDEX ON :L(p)`, `CREATE CONSTRAINT ON ... ASSERT`
    /// (both do nothing when the same one exists).
    V3,
    /// Neo4j 4.4 and 5.x: named, `IF NOT EXISTS`, `FOR ... REQUIRE`.
    Named,
}

/// A unique property of a label, and the name evtstore gives its constraint.
fn unique(syntax: SchemaSyntax, name: &str, label: &str, property: &str) -> String {
    let l = quoted(label);
    match syntax {
        SchemaSyntax::V3 => format!("CREATE CONSTRAINT ON (n:{l}) ASSERT n.{property} IS UNIQUE"),
        SchemaSyntax::Named => {
            format!(
                "CREATE CONSTRAINT {name} IF NOT EXISTS FOR (n:{l}) REQUIRE n.{property} IS UNIQUE"
            )
        }
    }
}

fn index(syntax: SchemaSyntax, name: &str, label: &str, property: &str) -> String {
    let l = quoted(label);
    match syntax {
        SchemaSyntax::V3 => format!("CREATE INDEX ON :{l}({property})"),
        SchemaSyntax::Named => {
            format!("CREATE INDEX {name} IF NOT EXISTS FOR (n:{l}) ON (n.{property})")
        }
    }
}

/// The schema of the events label: evtstore's unique version key (under
/// the name evtstore gives it, so an evtstore database is not given a
/// second one), an index for each lookup, and the counter's key.
pub fn events_schema(syntax: SchemaSyntax, events: &str) -> Vec<String> {
    vec![
        unique(
            syntax,
            &format!("{events}_streamidversion_unique"),
            events,
            "_streamIdVersion",
        ),
        index(
            syntax,
            &format!("{events}_aggregate_id"),
            events,
            "aggregateId",
        ),
        index(syntax, &format!("{events}_position"), events, "position"),
        unique(syntax, "evtstore_position_label", COUNTER_LABEL, "label"),
    ]
}

/// The schema of the bookmarks label: one node per name.
pub fn bookmarks_schema(syntax: SchemaSyntax, bookmarks: &str) -> Vec<String> {
    vec![unique(
        syntax,
        &format!("{bookmarks}_bookmark_unique"),
        bookmarks,
        "bookmark",
    )]
}

/// The schema of the leases label (`<bookmarks>_leases`, beside the
/// bookmarks): one node per name. The constraint is what lets only one of
/// two first claims create a lease.
pub fn leases_schema(syntax: SchemaSyntax, leases: &str) -> Vec<String> {
    vec![unique(
        syntax,
        &format!("{leases}_name_unique"),
        leases,
        "name",
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_per_server() {
        let v3 = events_schema(SchemaSyntax::V3, "ev");
        assert_eq!(
            v3[0],
            "CREATE CONSTRAINT ON (n:`ev`) ASSERT n._streamIdVersion IS UNIQUE"
        );
        assert_eq!(v3[1], "CREATE INDEX ON :`ev`(aggregateId)");
        let named = events_schema(SchemaSyntax::Named, "ev");
        assert_eq!(
            named[0],
            "CREATE CONSTRAINT ev_streamidversion_unique IF NOT EXISTS FOR (n:`ev`) REQUIRE n._streamIdVersion IS UNIQUE"
        );
        assert_eq!(
            leases_schema(SchemaSyntax::V3, "bm_leases")[0],
            "CREATE CONSTRAINT ON (n:`bm_leases`) ASSERT n.name IS UNIQUE"
        );
        assert_eq!(
            leases_schema(SchemaSyntax::Named, "bm_leases")[0],
            "CREATE CONSTRAINT bm_leases_name_unique IF NOT EXISTS FOR (n:`bm_leases`) REQUIRE n.name IS UNIQUE"
        );
        assert_eq!(
            named[2],
            "CREATE INDEX ev_position IF NOT EXISTS FOR (n:`ev`) ON (n.position)"
        );
    }
}
