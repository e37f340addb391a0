//! The statements of a store, and the names derived from its tables.

use crate::store::names::stable_hash;

/// The rows of an append travel as one JSON parameter, an array of
/// `[stream, aggregate_id, version, "YYYY-MM-DD HH:MM:SS", event text]`,
/// read by `JSON_TABLE` (so one prepared statement serves any number of
/// rows); `n` keeps their order.
const INPUT_ROWS: &str = "JSON_TABLE(?, '$[*]' COLUMNS (n FOR ORDINALITY, s LONGTEXT PATH '$[0]', a LONGTEXT PATH '$[1]', v BIGINT PATH '$[2]', t VARCHAR(32) PATH '$[3]', e LONGTEXT PATH '$[4]')) AS j";

/// The columns every read of whole events selects, from `e`, in the order
/// `event_row` reads them: position, version, epoch ms, event, stream, id.
/// The timestamp is counted from 1970 in SQL, which reads a DATETIME or a
/// TIMESTAMP column alike (the session is in UTC).
const ROW_COLUMNS: &str = "CAST(e.`position` AS SIGNED), CAST(e.`version` AS SIGNED), TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', e.`timestamp`) DIV 1000, e.`event`, e.`stream`, e.`aggregate_id`";

/// [`ROW_COLUMNS`] without the stream and id (a read of one aggregate).
const AGGREGATE_ROW_COLUMNS: &str = "CAST(e.`position` AS SIGNED), CAST(e.`version` AS SIGNED), TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', e.`timestamp`) DIV 1000, e.`event`";

pub(super) struct Statements {
    /// `?` lock name, `?` seconds to wait for it, `?` rows: takes the
    /// append lock, then inserts (rows only exist once the lock is held).
    pub(super) append: String,
    /// One event without the lock (tests: to show what the lock is for).
    #[cfg(test)]
    pub(super) append_unlocked: String,
    /// The positions of the rows of `?` (for servers that may interleave
    /// auto-increment values).
    pub(super) positions_of: String,
    /// The (stream, id) of the rows of `?` (`[stream, id, version]` each)
    /// whose version is stored.
    pub(super) stored_aggregates: String,
    /// `?` stream, `?` id, `?` first and `?` last version.
    pub(super) stored_versions: String,
    pub(super) events_for_rows: String,
    events_from_head: String,
    last_event_head: String,
    pub(super) get_bookmark: String,
    pub(super) set_bookmark: String,
    pub(super) max_position: String,
    /// The fractional digits of the events table's `timestamp` and the
    /// bytes its `event` holds: `?` table.
    pub(super) event_columns: &'static str,
    /// The key columns of a unique index: `?` table, `?` index name.
    pub(super) index_columns: &'static str,
}

impl Statements {
    pub(super) fn new(events: &str, bookmarks: &str) -> Self {
        let t = quote_ident(events);
        let b = quote_ident(bookmarks);
        Statements {
            append: format!(
                "INSERT INTO {t} (`stream`, `aggregate_id`, `version`, `timestamp`, `event`) \
                 SELECT j.s, j.a, j.v, j.t, j.e FROM (SELECT GET_LOCK(?, ?) AS l) AS k \
                 JOIN {INPUT_ROWS} WHERE k.l = 1 ORDER BY j.n"
            ),
            // A plain one-row INSERT ... VALUES as evtstore's knex provider
            // sends (the rows parameter is bound five times; tests append
            // one event at a time with it).
            #[cfg(test)]
            append_unlocked: format!(
                "INSERT INTO {t} (`stream`, `aggregate_id`, `version`, `timestamp`, `event`) VALUES \
                 (JSON_VALUE(?, '$[0][0]'), JSON_VALUE(?, '$[0][1]'), JSON_VALUE(?, '$[0][2]'), JSON_VALUE(?, '$[0][3]'), JSON_VALUE(?, '$[0][4]'))"
            ),
            positions_of: format!(
                "SELECT CAST(e.`position` AS SIGNED) FROM {INPUT_ROWS} \
                 JOIN {t} AS e ON e.`stream` = j.s AND e.`aggregate_id` = j.a AND e.`version` = j.v ORDER BY j.n"
            ),
            stored_aggregates: format!(
                "SELECT DISTINCT j.s, j.a FROM JSON_TABLE(?, '$[*]' COLUMNS (s LONGTEXT PATH '$[0]', a LONGTEXT PATH '$[1]', v BIGINT PATH '$[2]')) AS j \
                 JOIN {t} AS e ON e.`stream` = j.s AND e.`aggregate_id` = j.a AND e.`version` = j.v"
            ),
            stored_versions: format!(
                "SELECT {AGGREGATE_ROW_COLUMNS} FROM {t} AS e \
                 WHERE e.`stream` = ? AND e.`aggregate_id` = ? AND e.`version` BETWEEN ? AND ? ORDER BY e.`version`"
            ),
            // Ordered by version: the unique index on (stream, aggregate_id,
            // version) gives that order without a sort.
            events_for_rows: format!(
                "SELECT {AGGREGATE_ROW_COLUMNS} FROM {t} AS e \
                 WHERE e.`stream` = ? AND e.`aggregate_id` = ? AND e.`position` > ? ORDER BY e.`version`"
            ),
            events_from_head: format!("SELECT {ROW_COLUMNS} FROM {t} AS e WHERE e.`stream` IN "),
            last_event_head: format!("SELECT {ROW_COLUMNS} FROM {t} AS e WHERE e.`stream` IN "),
            get_bookmark: format!("SELECT CAST(`position` AS SIGNED) FROM {b} WHERE `bookmark` = ?"),
            set_bookmark: format!(
                "INSERT INTO {b} (`bookmark`, `position`) VALUES (?, ?) ON DUPLICATE KEY UPDATE `position` = ?"
            ),
            max_position: format!("SELECT CAST(MAX(`position`) AS SIGNED) FROM {t}"),
            event_columns: "SELECT CAST(MAX(CASE WHEN `COLUMN_NAME` = 'timestamp' THEN `DATETIME_PRECISION` END) AS SIGNED), \
                 CAST(MAX(CASE WHEN `COLUMN_NAME` = 'event' THEN `CHARACTER_OCTET_LENGTH` END) AS SIGNED) FROM information_schema.COLUMNS \
                 WHERE `TABLE_SCHEMA` = DATABASE() AND `TABLE_NAME` = ? AND `COLUMN_NAME` IN ('timestamp', 'event')",
            index_columns: "SELECT `COLUMN_NAME` FROM information_schema.STATISTICS \
                 WHERE `TABLE_SCHEMA` = DATABASE() AND `TABLE_NAME` = ? AND `INDEX_NAME` = ? ORDER BY `SEQ_IN_INDEX`",
        }
    }

    /// The events of `streams` (that many `?`) after `?`, at most `?`.
    pub(super) fn events_from(&self, streams: usize) -> String {
        format!(
            "{}({}) AND e.`position` > ? ORDER BY e.`position` LIMIT ?",
            self.events_from_head,
            placeholders(streams)
        )
    }

    /// The event with the highest position in `streams`, of the aggregate
    /// `?` when `of_aggregate`.
    pub(super) fn last_event(&self, streams: usize, of_aggregate: bool) -> String {
        let id = if of_aggregate {
            " AND e.`aggregate_id` = ?"
        } else {
            ""
        };
        format!(
            "{}({}){id} ORDER BY e.`position` DESC LIMIT 1",
            self.last_event_head,
            placeholders(streams)
        )
    }
}

fn placeholders(n: usize) -> String {
    vec!["?"; n.max(1)].join(", ")
}

pub(super) fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// The named lock every append to this database's events table takes
/// (named locks are server-wide: the database is part of the name; MySQL
/// allows 64 characters).
pub fn lock_name(database: &str, events_table: &str) -> String {
    let hash = stable_hash(&[database.as_bytes(), b".", events_table.as_bytes()]);
    format!("evtstore-rs:append:{hash:016x}")
}

/// The named lock of migrate(), one per server.
pub const MIGRATE_LOCK: &str = "evtstore-rs:migrate";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_names_fit_and_differ_per_database() {
        let a = lock_name("shop", "events");
        assert!(a.len() <= 64);
        assert_ne!(a, lock_name("shop2", "events"));
        assert_ne!(a, lock_name("shop", "events2"));
        assert_eq!(a, lock_name("shop", "events"));
    }

    #[test]
    fn statements_quote_table_names() {
        let s = Statements::new("my_events", "my_bookmarks");
        assert!(s.append.starts_with("INSERT INTO `my_events`"));
        assert!(s.events_from(3).contains("IN (?, ?, ?)"));
        assert!(s
            .last_event(1, true)
            .contains("IN (?) AND e.`aggregate_id` = ?"));
        assert!(s.set_bookmark.contains("`my_bookmarks`"));
    }
}
