//! PackStream, Bolt's binary value format: the values the engine sends
//! (null, booleans, integers, floats, strings, lists, maps) and everything a
//! server may send back, structures (nodes, temporal values) included.

use std::fmt;

/// One PackStream value. Maps keep their order (they are small: message
/// metadata and parameters).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Bytes(Vec<u8>),
    String(String),
    List(Vec<Value>),
    Map(Vec<(String, Value)>),
    /// A structure: its tag byte and fields (a node, a date-time, ...).
    Struct(u8, Vec<Value>),
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The value of `key` in a map.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

/// A map value from its entries.
pub fn map<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

fn size_marker(out: &mut Vec<u8>, len: usize, tiny: u8, m8: Option<u8>, m16: u8, m32: u8) {
    if len < 16 {
        out.push(tiny | len as u8);
    } else if let (Some(m8), true) = (m8, len <= 0xFF) {
        out.push(m8);
        out.push(len as u8);
    } else if len <= 0xFFFF {
        out.push(m16);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(m32);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

pub fn encode_str(out: &mut Vec<u8>, s: &str) {
    size_marker(out, s.len(), 0x80, Some(0xD0), 0xD1, 0xD2);
    out.extend_from_slice(s.as_bytes());
}

pub fn encode_int(out: &mut Vec<u8>, i: i64) {
    if (-16..=127).contains(&i) {
        out.push(i as i8 as u8);
    } else if i8::try_from(i).is_ok() {
        out.push(0xC8);
        out.push(i as i8 as u8);
    } else if let Ok(v) = i16::try_from(i) {
        out.push(0xC9);
        out.extend_from_slice(&v.to_be_bytes());
    } else if let Ok(v) = i32::try_from(i) {
        out.push(0xCA);
        out.extend_from_slice(&v.to_be_bytes());
    } else {
        out.push(0xCB);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

/// A list's or a map's header; its items follow.
pub fn encode_list_header(out: &mut Vec<u8>, len: usize) {
    size_marker(out, len, 0x90, Some(0xD4), 0xD5, 0xD6);
}

pub fn encode_map_header(out: &mut Vec<u8>, len: usize) {
    size_marker(out, len, 0xA0, Some(0xD8), 0xD9, 0xDA);
}

/// A structure's header (at most 15 fields); its fields follow.
pub fn encode_struct_header(out: &mut Vec<u8>, tag: u8, fields: usize) {
    out.push(0xB0 | (fields as u8 & 0x0F));
    out.push(tag);
}

pub fn encode(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.push(0xC0),
        Value::Bool(false) => out.push(0xC2),
        Value::Bool(true) => out.push(0xC3),
        Value::Int(i) => encode_int(out, *i),
        Value::Float(f) => {
            out.push(0xC1);
            out.extend_from_slice(&f.to_be_bytes());
        }
        Value::Bytes(b) => {
            // bytes have no tiny form
            if b.len() <= 0xFF {
                out.push(0xCC);
                out.push(b.len() as u8);
            } else {
                size_marker(out, b.len(), 0xCD, None, 0xCD, 0xCE);
            }
            out.extend_from_slice(b);
        }
        Value::String(s) => encode_str(out, s),
        Value::List(items) => {
            encode_list_header(out, items.len());
            for item in items {
                encode(out, item);
            }
        }
        Value::Map(entries) => {
            encode_map_header(out, entries.len());
            for (k, v) in entries {
                encode_str(out, k);
                encode(out, v);
            }
        }
        Value::Struct(tag, fields) => {
            encode_struct_header(out, *tag, fields.len());
            for f in fields {
                encode(out, f);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/// Bytes that are not the PackStream the server should have sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed PackStream from the server: {}", self.0)
    }
}

/// Reads values one after another from a message.
pub struct Decoder<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Decoder<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Decoder { bytes, at: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end =
            end.ok_or_else(|| DecodeError(format!("{n} bytes past the end at {}", self.at)))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn len(&mut self, marker: u8, base8: u8) -> Result<usize, DecodeError> {
        Ok(match marker - base8 {
            0 => self.byte()? as usize,
            1 => u16::from_be_bytes(self.be()?) as usize,
            _ => u32::from_be_bytes(self.be()?) as usize,
        })
    }

    fn string(&mut self, len: usize) -> Result<String, DecodeError> {
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError("a string is not UTF-8".into()))
    }

    fn list(&mut self, len: usize) -> Result<Value, DecodeError> {
        let mut items = Vec::with_capacity(len.min(4096));
        for _ in 0..len {
            items.push(self.value()?);
        }
        Ok(Value::List(items))
    }

    fn map(&mut self, len: usize) -> Result<Value, DecodeError> {
        let mut entries = Vec::with_capacity(len.min(4096));
        for _ in 0..len {
            let key = match self.value()? {
                Value::String(s) => s,
                other => return Err(DecodeError(format!("a map key is {other:?}"))),
            };
            entries.push((key, self.value()?));
        }
        Ok(Value::Map(entries))
    }

    /// A structure's tag and field count.
    pub fn struct_header(&mut self) -> Result<(u8, usize), DecodeError> {
        let marker = self.byte()?;
        if marker & 0xF0 != 0xB0 {
            return Err(DecodeError(format!(
                "expected a structure, got marker {marker:#04x}"
            )));
        }
        Ok((self.byte()?, (marker & 0x0F) as usize))
    }

    pub fn value(&mut self) -> Result<Value, DecodeError> {
        let marker = self.byte()?;
        Ok(match marker {
            0x00..=0x7F => Value::Int(marker as i64),
            0xF0..=0xFF => Value::Int(marker as i8 as i64),
            0x80..=0x8F => Value::String(self.string((marker & 0x0F) as usize)?),
            0x90..=0x9F => self.list((marker & 0x0F) as usize)?,
            0xA0..=0xAF => self.map((marker & 0x0F) as usize)?,
            0xB0..=0xBF => {
                let tag = self.byte()?;
                let mut fields = Vec::with_capacity((marker & 0x0F) as usize);
                for _ in 0..(marker & 0x0F) {
                    fields.push(self.value()?);
                }
                Value::Struct(tag, fields)
            }
            0xC0 => Value::Null,
            0xC1 => Value::Float(f64::from_be_bytes(self.be()?)),
            0xC2 => Value::Bool(false),
            0xC3 => Value::Bool(true),
            0xC8 => Value::Int(i8::from_be_bytes(self.be()?) as i64),
            0xC9 => Value::Int(i16::from_be_bytes(self.be()?) as i64),
            0xCA => Value::Int(i32::from_be_bytes(self.be()?) as i64),
            0xCB => Value::Int(i64::from_be_bytes(self.be()?)),
            0xCC..=0xCE => {
                let len = self.len(marker, 0xCC)?;
                Value::Bytes(self.take(len)?.to_vec())
            }
            0xD0..=0xD2 => {
                let len = self.len(marker, 0xD0)?;
                Value::String(self.string(len)?)
            }
            0xD4..=0xD6 => {
                let len = self.len(marker, 0xD4)?;
                self.list(len)?
            }
            0xD8..=0xDA => {
                let len = self.len(marker, 0xD8)?;
                self.map(len)?
            }
            other => return Err(DecodeError(format!("unknown marker {other:#04x}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(v: Value) {
        let mut out = Vec::new();
        encode(&mut out, &v);
        let mut d = Decoder::new(&out);
        assert_eq!(d.value().expect("decodes"), v);
        assert_eq!(d.at, out.len());
    }

    #[test]
    fn values_round_trip() {
        for i in [
            0,
            1,
            -1,
            -16,
            -17,
            127,
            128,
            -128,
            -129,
            32767,
            32768,
            -32769,
            1 << 31,
            i64::MIN,
            i64::MAX,
        ] {
            round_trip(Value::Int(i));
        }
        for s in [
            "",
            "a",
            &"x".repeat(15),
            &"y".repeat(16),
            &"z".repeat(256),
            &"é".repeat(40_000),
        ] {
            round_trip(Value::String(s.to_string()));
        }
        round_trip(Value::Float(1.5));
        round_trip(Value::Bytes(vec![1, 2, 3]));
        round_trip(Value::Bytes(vec![7; 300]));
        round_trip(Value::List((0..20).map(Value::Int).collect()));
        round_trip(map([
            ("a", Value::Null),
            ("b", Value::Bool(true)),
            ("c", Value::Bool(false)),
        ]));
        round_trip(Value::Struct(
            0x46,
            vec![Value::Int(1), Value::Int(2), Value::Int(0)],
        ));
    }

    #[test]
    fn known_bytes() {
        let mut out = Vec::new();
        encode_int(&mut out, -16);
        encode_int(&mut out, 200);
        encode_str(&mut out, "ab");
        assert_eq!(out, vec![0xF0, 0xC9, 0x00, 0xC8, 0x82, b'a', b'b']);
        assert!(Decoder::new(&[0xD1, 0x00]).value().is_err());
        assert!(Decoder::new(&[0xE0]).value().is_err());
    }
}
