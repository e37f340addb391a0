//! Events between JSON text and BSON: an event is stored as a sub-document
//! (so the collections stay queryable and evtstore-shaped) and read back as
//! JSON text, written here straight from the raw BSON bytes.

use std::fmt;

use mongodb::bson::{Bson, Document, RawBsonRef, RawDocument};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::{Result, StoreError};
use crate::store::batch::push_json_str;

/// The BSON document of an event's JSON text (an object, checked on the way
/// in), keys in their order. Numbers are stored as the official Node driver
/// stores a JS number: an integer that fits 32 bits as Int32, anything else
/// as a Double, so a JS reader gets the same numbers back.
pub(super) fn event_document(json: &str) -> Result<Document> {
    let mut de = serde_json::Deserializer::from_str(json);
    let value = BsonSeed.deserialize(&mut de).map_err(|e| {
        StoreError::invalid_event(format!("the event cannot be stored in MongoDB: {e}"))
    })?;
    match value {
        Bson::Document(d) => Ok(d),
        _ => Err(StoreError::invalid_event("the event is not an object")),
    }
}

struct BsonSeed;

impl<'de> DeserializeSeed<'de> for BsonSeed {
    type Value = Bson;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Bson, D::Error> {
        d.deserialize_any(BsonVisitor)
    }
}

struct BsonVisitor;

fn number(v: f64) -> Bson {
    if v.fract() == 0.0 && v >= f64::from(i32::MIN) && v <= f64::from(i32::MAX) {
        Bson::Int32(v as i32)
    } else {
        Bson::Double(v)
    }
}

impl<'de> Visitor<'de> for BsonVisitor {
    type Value = Bson;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> std::result::Result<Bson, E> {
        Ok(Bson::Boolean(v))
    }
    fn visit_i64<E>(self, v: i64) -> std::result::Result<Bson, E> {
        Ok(i32::try_from(v).map_or(Bson::Double(v as f64), Bson::Int32))
    }
    fn visit_u64<E>(self, v: u64) -> std::result::Result<Bson, E> {
        Ok(i32::try_from(v).map_or(Bson::Double(v as f64), Bson::Int32))
    }
    fn visit_f64<E>(self, v: f64) -> std::result::Result<Bson, E> {
        Ok(number(v))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<Bson, E> {
        Ok(Bson::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> std::result::Result<Bson, E> {
        Ok(Bson::String(v))
    }
    fn visit_unit<E>(self) -> std::result::Result<Bson, E> {
        Ok(Bson::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Bson, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(4));
        while let Some(v) = seq.next_element_seed(BsonSeed)? {
            out.push(v);
        }
        Ok(Bson::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Bson, A::Error> {
        let mut out = Document::new();
        while let Some(key) = map.next_key::<String>()? {
            if key.contains('\0') {
                return Err(serde::de::Error::custom(format!(
                    "the field name {key:?} holds a NUL character, which MongoDB cannot store in a field name (BSON names are C strings)"
                )));
            }
            let value = map.next_value_seed(BsonSeed)?;
            // JSON.parse keeps the last of repeated keys; so does insert
            out.insert(key, value);
        }
        Ok(Bson::Document(out))
    }
}

/// Appends a BSON document as JSON text (what `JSON.stringify` gives for
/// the value the Node driver returns: dates as ISO strings, ObjectIds as
/// hex, 64-bit integers as numbers, NaN and infinities as null).
pub(super) fn push_document(out: &mut String, doc: &RawDocument) -> Result<()> {
    out.push('{');
    let mut first = true;
    for element in doc {
        let (key, value) = element.map_err(bad_bson)?;
        if matches!(value, RawBsonRef::Undefined) {
            continue; // JSON.stringify leaves undefined members out
        }
        if !first {
            out.push(',');
        }
        first = false;
        push_json_str(out, key);
        out.push(':');
        push_value(out, value)?;
    }
    out.push('}');
    Ok(())
}

pub(super) fn push_value(out: &mut String, value: RawBsonRef<'_>) -> Result<()> {
    match value {
        RawBsonRef::Double(v) => push_f64(out, v),
        RawBsonRef::String(s) => push_json_str(out, s),
        RawBsonRef::Document(d) => push_document(out, d)?,
        RawBsonRef::Array(a) => {
            out.push('[');
            for (i, item) in a.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match item.map_err(bad_bson)? {
                    RawBsonRef::Undefined => out.push_str("null"),
                    item => push_value(out, item)?,
                }
            }
            out.push(']');
        }
        RawBsonRef::Boolean(b) => out.push_str(if b { "true" } else { "false" }),
        RawBsonRef::Null | RawBsonRef::Undefined => out.push_str("null"),
        RawBsonRef::Int32(v) => out.push_str(itoa::Buffer::new().format(v)),
        RawBsonRef::Int64(v) => out.push_str(itoa::Buffer::new().format(v)),
        RawBsonRef::DateTime(d) => match d.try_to_rfc3339_string() {
            Ok(text) => push_json_str(out, &iso_millis(&text)),
            Err(_) => out.push_str("null"),
        },
        RawBsonRef::ObjectId(id) => push_json_str(out, &id.to_hex()),
        RawBsonRef::Decimal128(d) => push_json_str(out, &d.to_string()),
        other => {
            // Binary, regular expressions, code, Timestamps...: MongoDB's
            // relaxed Extended JSON, which is valid JSON.
            let bson = Bson::try_from(other.to_raw_bson()).map_err(bad_bson)?;
            out.push_str(&bson.into_relaxed_extjson().to_string());
        }
    }
    Ok(())
}

/// `Date.prototype.toJSON` always has three decimals.
fn iso_millis(rfc3339: &str) -> String {
    match rfc3339.strip_suffix('Z') {
        Some(body) if !body.contains('.') => format!("{body}.000Z"),
        _ => rfc3339.to_string(),
    }
}

fn push_f64(out: &mut String, v: f64) {
    match serde_json::Number::from_f64(v) {
        Some(n) => {
            let text = n.to_string();
            // 5.0 -> 5, as JSON.stringify writes it
            out.push_str(text.strip_suffix(".0").unwrap_or(&text));
        }
        None => out.push_str("null"),
    }
}

fn bad_bson(e: impl fmt::Display) -> StoreError {
    StoreError::Database {
        location: "MongoDB".to_string(),
        reason: format!("a stored document is not valid BSON: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{doc, oid::ObjectId, DateTime, RawDocumentBuf};

    fn round_trip(json: &str) -> String {
        let doc = event_document(json).expect("an object");
        let raw = RawDocumentBuf::from_document(&doc).expect("bson");
        let mut out = String::new();
        push_document(&mut out, &raw).expect("json");
        out
    }

    #[test]
    fn events_keep_their_keys_in_order_and_their_numbers() {
        let json = r#"{"type":"b","z":1,"a":[1.5,-2,3000000000,null,true,"é\"\n"],"n":{"x":{}},"big":9007199254740993}"#;
        assert_eq!(
            round_trip(json),
            r#"{"type":"b","z":1,"a":[1.5,-2,3000000000,null,true,"é\"\n"],"n":{"x":{}},"big":9007199254740992}"#
        );
        let doc = event_document(r#"{"type":"a","i":7,"d":0.1,"l":4294967296}"#).expect("doc");
        assert_eq!(doc.get("i"), Some(&Bson::Int32(7)));
        assert_eq!(doc.get("d"), Some(&Bson::Double(0.1)));
        assert_eq!(doc.get("l"), Some(&Bson::Double(4294967296.0)));
        // correctly rounded parsing (serde_json's float_roundtrip): found by
        // properties.test.js, the fast parser was one ulp off here
        let tiny = r#"{"type":"t","x":[7.456881915864075e-205,2.2250738585072014e-308,1.7976931348623157e308]}"#;
        assert_eq!(
            round_trip(tiny),
            tiny.replace("e308", "e+308"),
            "as JSON.stringify writes them"
        );
        assert!(event_document("[1]").is_err());
        assert!(event_document("{").is_err());
    }

    #[test]
    fn other_bson_types_become_what_json_stringify_gives() {
        let id = ObjectId::parse_str("6b137379464fcbfc3dee3d29").expect("oid");
        let doc = doc! {
            "at": DateTime::from_millis(1_700_000_000_000),
            "id": id,
            "l": 1_i64 << 40,
            "nan": f64::NAN,
            "u": Bson::Undefined,
            "whole": 3.0,
        };
        let raw = RawDocumentBuf::from_document(&doc).expect("bson");
        let mut out = String::new();
        push_document(&mut out, &raw).expect("json");
        assert_eq!(
            out,
            r#"{"at":"2023-11-14T22:13:20.000Z","id":"6b137379464fcbfc3dee3d29","l":1099511627776,"nan":null,"whole":3}"#
        );
    }
}
