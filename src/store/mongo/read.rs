//! Reads: the documents as raw BSON, written straight into the batched
//! columns every engine returns (no per-event hand-over to JavaScript).

use mongodb::bson::{doc, Bson, Document, RawBsonRef, RawDocument};

use super::json::{push_document, push_value};
use super::MongoEngine;
use crate::error::{Result, StoreError};
use crate::store::batch::{event_json, EventColumns, EventRef};
use crate::store::timestamp::parse_timestamp_text;
use crate::store::EventBatch;

/// The fields a read asks for (no `_id`).
fn projection(names: bool) -> Document {
    let mut p = doc! { "_id": 0, "position": 1, "version": 1, "timestamp": 1, "event": 1 };
    if names {
        p.insert("stream", 1);
        p.insert("aggregateId", 1);
    }
    p
}

/// `$nor` over the abandoned ranges that meet (after, up_to].
pub(super) fn leave_out(filter: &mut Document, abandoned: &[(i64, i64)], after: i64, up_to: i64) {
    let ranges: Vec<Bson> = abandoned
        .iter()
        .filter(|(from, to)| *to > after && *from <= up_to)
        .map(|(from, to)| Bson::Document(doc! { "position": { "$gte": from, "$lte": to } }))
        .collect();
    if !ranges.is_empty() {
        filter.insert("$nor", ranges);
    }
}

pub(super) fn in_streams(streams: &[String]) -> Bson {
    match streams {
        [one] => Bson::String(one.clone()),
        many => Bson::Document(doc! { "$in": many.to_vec() }),
    }
}

impl MongoEngine {
    /// The events of `streams` after `after`, up to the settled frontier
    /// (never past a range in flight), in position order.
    pub(super) async fn read_streams(
        &self,
        streams: &[String],
        after: i64,
        limit: Option<i64>,
    ) -> Result<EventBatch> {
        let settled = self.settled().await?;
        if settled.frontier <= after {
            return Ok(EventBatch::empty(true));
        }
        let mut filter = doc! {
            "stream": in_streams(streams),
            "position": { "$gt": after, "$lte": settled.frontier },
        };
        leave_out(&mut filter, &settled.abandoned, after, settled.frontier);
        let mut find = self
            .raw_events
            .find(filter)
            .sort(doc! { "position": 1 })
            .projection(projection(true));
        if let Some(limit) = limit {
            find = find.limit(limit);
        }
        let cursor = find.await.map_err(|e| self.db_error(e))?;
        self.collect(cursor, true, |_| true).await
    }

    /// One aggregate's events in version order. Not held at the frontier
    /// (a writer reads its own appends at once), but abandoned ranges are
    /// left out.
    pub(super) async fn read_aggregate(
        &self,
        stream: &str,
        aggregate_id: &str,
        after: Option<i64>,
    ) -> Result<EventBatch> {
        let mut filter = doc! { "stream": stream, "aggregateId": aggregate_id };
        if let Some(after) = after {
            filter.insert("position", doc! { "$gt": after });
        }
        let cursor = self
            .raw_events
            .find(filter)
            .sort(doc! { "version": 1 })
            .projection(projection(false))
            .await
            .map_err(|e| self.db_error(e))?;
        let abandoned = self.positions.known_abandoned();
        self.collect(cursor, false, |p| {
            !abandoned
                .iter()
                .any(|(from, to)| (*from..=*to).contains(&p))
        })
        .await
    }

    /// The event with the highest position in `streams` (of one aggregate
    /// when given). Across aggregates it is held at the frontier, as
    /// handlers start from it.
    pub(super) async fn read_last(
        &self,
        streams: &[String],
        aggregate_id: Option<&str>,
    ) -> Result<Option<String>> {
        let mut filter = doc! { "stream": in_streams(streams) };
        match aggregate_id {
            Some(id) => {
                filter.insert("aggregateId", id);
                let abandoned = self.positions.known_abandoned();
                leave_out(&mut filter, &abandoned, i64::MIN, i64::MAX);
            }
            None => {
                let settled = self.settled().await?;
                filter.insert("position", doc! { "$lte": settled.frontier });
                leave_out(&mut filter, &settled.abandoned, i64::MIN, settled.frontier);
            }
        }
        let mut cursor = self
            .raw_events
            .find(filter)
            .sort(doc! { "position": -1 })
            .limit(1)
            .projection(projection(true))
            .await
            .map_err(|e| self.db_error(e))?;
        if !cursor.advance().await.map_err(|e| self.db_error(e))? {
            return Ok(None);
        }
        let row = Row::read(cursor.current(), true, &self.location)?;
        Ok(Some(event_json(&row.event_ref())))
    }

    async fn collect(
        &self,
        mut cursor: mongodb::Cursor<mongodb::bson::RawDocumentBuf>,
        names: bool,
        keep: impl Fn(i64) -> bool,
    ) -> Result<EventBatch> {
        let mut columns = EventColumns::new(64, 64 * 128, names);
        // No head publish here: the head is the settled frontier, which
        // read_streams publishes (an aggregate's events may lie above it).
        while cursor.advance().await.map_err(|e| self.db_error(e))? {
            let row = Row::read(cursor.current(), names, &self.location)?;
            if keep(row.position) {
                columns.push(&row.event_ref());
            }
        }
        Ok(columns.finish())
    }
}

/// One event document, read.
struct Row<'a> {
    position: i64,
    version: Option<i64>,
    timestamp: Option<i64>,
    stream: Option<&'a str>,
    aggregate_id: Option<&'a str>,
    event: String,
}

impl<'a> Row<'a> {
    fn read(doc: &'a RawDocument, names: bool, location: &str) -> Result<Row<'a>> {
        let bad = |e: mongodb::bson::raw::Error| StoreError::Database {
            location: location.to_string(),
            reason: format!("a stored event is not valid BSON: {e}"),
        };
        let position = match doc.get("position").map_err(bad)? {
            Some(v) => match number(v) {
                Some(p) => p,
                None if matches!(v, RawBsonRef::Timestamp(_)) => {
                    return Err(StoreError::Database {
                        location: location.to_string(),
                        reason: "an event has a BSON Timestamp position (written by evtstore): run migrate() once to turn the positions into integers".to_string(),
                    })
                }
                None => return Err(not_a_position(location)),
            },
            None => return Err(not_a_position(location)),
        };
        let version = doc.get("version").map_err(bad)?.and_then(number);
        let timestamp = match doc.get("timestamp").map_err(bad)? {
            Some(RawBsonRef::DateTime(d)) => Some(d.timestamp_millis()),
            Some(RawBsonRef::String(s)) => parse_timestamp_text(s),
            Some(other) => number(other),
            None => None,
        };
        let (stream, aggregate_id) = if names {
            (doc.get_str("stream").ok(), doc.get_str("aggregateId").ok())
        } else {
            (None, None)
        };
        let mut event = String::with_capacity(128);
        match doc.get("event").map_err(bad)? {
            Some(RawBsonRef::Document(d)) => push_document(&mut event, d)?,
            Some(other) => push_value(&mut event, other)?,
            None => event.push_str("null"),
        }
        Ok(Row {
            position,
            version,
            timestamp,
            stream,
            aggregate_id,
            event,
        })
    }

    fn event_ref(&self) -> EventRef<'_> {
        EventRef {
            position: self.position,
            version: self.version,
            stream: self.stream,
            aggregate_id: self.aggregate_id,
            timestamp: self.timestamp,
            event: Some(&self.event),
        }
    }
}

fn not_a_position(location: &str) -> StoreError {
    StoreError::Database {
        location: location.to_string(),
        reason: "an event has no numeric position: the collection holds documents migrate() did not make; fix or delete them".to_string(),
    }
}

fn number(v: RawBsonRef<'_>) -> Option<i64> {
    match v {
        RawBsonRef::Int32(v) => Some(i64::from(v)),
        RawBsonRef::Int64(v) => Some(v),
        RawBsonRef::Double(v) if v.fract() == 0.0 && v.abs() < 9.2e18 => Some(v as i64),
        _ => None,
    }
}

/// A bookmark's stored position.
pub(super) fn bookmark_position(doc: &Document, name: &str, location: &str) -> Result<i64> {
    match doc.get("position") {
        None | Some(Bson::Null) => Ok(0),
        Some(Bson::Timestamp(_)) => Err(StoreError::Database {
            location: location.to_string(),
            reason: format!(
                "bookmark \"{name}\" has a BSON Timestamp position (written by evtstore): run migrate() once to turn the positions into integers"
            ),
        }),
        Some(v) => super::positions::as_i64(v).ok_or_else(|| StoreError::Database {
            location: location.to_string(),
            reason: format!("bookmark \"{name}\" has a position that is not an integer: {v}"),
        }),
    }
}
