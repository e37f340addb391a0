//! Table and collection names: what may be quoted into a statement, and
//! the two names of a store.

use crate::error::{Result, StoreError};
use crate::store::batch::push_json_str;

/// A table name: `^[A-Za-z_][A-Za-z0-9_]{0,62}$` (safe to quote into SQL and
/// within PostgreSQL's 63-byte identifier limit).
pub fn validate_table_name(name: &str, what: &str) -> Result<()> {
    let bytes = name.as_bytes();
    let ok_first = bytes
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_');
    let ok_rest = bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'_');
    if !ok_first || !ok_rest || bytes.len() > 63 {
        return Err(StoreError::InvalidName(format!(
            "the {what} table name {} is not allowed: use 1 to 63 letters, digits or underscores, not starting with a digit",
            quote(name)
        )));
    }
    Ok(())
}

/// A table name for SQLite: [`validate_table_name`], and not one SQLite keeps
/// for itself.
pub fn validate_sqlite_table_name(name: &str, what: &str) -> Result<()> {
    validate_table_name(name, what)?;
    if name.to_ascii_lowercase().starts_with("sqlite_") {
        return Err(StoreError::InvalidName(format!(
            "the {what} table name {} is reserved by SQLite: choose a name that does not start with \"sqlite_\"",
            quote(name)
        )));
    }
    Ok(())
}

/// Which of a store's two tables an operation works on (for
/// `MISSING_TABLE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Events,
    Bookmarks,
}

/// How an engine names its events and bookmarks tables (or collections, or
/// labels).
pub struct Naming {
    /// "tables", "collections" or "labels", for messages.
    pub kind: &'static str,
    /// Checks one name (`what`: "events" or "bookmarks").
    pub validate: fn(&str, &str) -> Result<()>,
    /// Whether names that differ only in case name one table (SQLite).
    pub ignore_case: bool,
}

/// Tables of a SQL server, and Neo4j's labels (which are quoted the same).
pub const TABLES: Naming = Naming {
    kind: "tables",
    validate: validate_table_name,
    ignore_case: false,
};

pub const SQLITE_TABLES: Naming = Naming {
    kind: "tables",
    validate: validate_sqlite_table_name,
    ignore_case: true,
};

pub const LABELS: Naming = Naming {
    kind: "labels",
    ..TABLES
};

impl Naming {
    /// The events and bookmarks names of a store's options ("events" and
    /// "bookmarks" unless given), each checked, and not one for both.
    pub fn names(
        &self,
        events: Option<String>,
        bookmarks: Option<String>,
    ) -> Result<(String, String)> {
        let events = events.unwrap_or_else(|| "events".to_string());
        let bookmarks = bookmarks.unwrap_or_else(|| "bookmarks".to_string());
        (self.validate)(&events, "events")?;
        (self.validate)(&bookmarks, "bookmarks")?;
        let same = if self.ignore_case {
            events.eq_ignore_ascii_case(&bookmarks)
        } else {
            events == bookmarks
        };
        if same {
            return Err(StoreError::InvalidName(format!(
                "the events and bookmarks {} are both named \"{events}\": give them different names",
                self.kind
            )));
        }
        Ok((events, bookmarks))
    }
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_json_str(&mut out, s);
    out
}

/// FNV-1a, 64 bits, for lock keys and names derived from table names: stable across processes, platforms and versions.
pub fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_names() {
        for ok in ["events", "_x", "E9_b", &"a".repeat(63)] {
            assert!(validate_sqlite_table_name(ok, "events").is_ok(), "{ok}");
            assert!(validate_table_name(ok, "events").is_ok(), "{ok}");
        }
        for bad in [
            "",
            "9a",
            "a-b",
            "a b",
            "a\"b",
            "évents",
            "sqlite_master",
            &"a".repeat(64),
        ] {
            let err = validate_sqlite_table_name(bad, "events").expect_err(bad);
            assert_eq!(err.code(), "INVALID_NAME");
        }
        assert!(validate_table_name("sqlite_master", "events").is_ok());
        assert!(validate_table_name("a-b", "events").is_err());
    }

    #[test]
    fn a_store_has_two_names() {
        let some = |s: &str| Some(s.to_string());
        assert_eq!(
            TABLES.names(None, None).expect("defaults"),
            ("events".to_string(), "bookmarks".to_string())
        );
        assert!(TABLES.names(some("same"), some("SAME")).is_ok());
        let err = SQLITE_TABLES
            .names(some("same"), some("SAME"))
            .expect_err("one table");
        assert_eq!(err.code(), "INVALID_NAME");
        let err = LABELS.names(some("x"), some("x")).expect_err("one label");
        assert!(err.to_string().contains("labels are both named"), "{err}");
        assert!(TABLES.names(some("a-b"), None).is_err());
    }
}
