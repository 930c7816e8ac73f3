//! OTLP-JSON <-> protobuf, exactly as redact-proxy's Python codec does it
//! (`redact_proxy/codec.py`: `json.loads`, `_prepare_json`, `json_format.ParseDict` with
//! `ignore_unknown_fields`, and `MessageToDict` + hex ids + `json.dumps` back).
//!
//! OTLP-JSON is the protobuf JSON mapping with one exception the OTLP spec makes: trace
//! and span ids are hex, not base64 ("JSON Protobuf Encoding" in opentelemetry-proto's
//! docs/specification.md). Receivers take lowerCamelCase and the original snake_case
//! member names, enums as integers (names too, as pdata does), 64-bit integers as
//! decimal strings or numbers, and ignore unknown members; encoders write
//! lowerCamelCase, enums as integers, 64-bit integers as strings.
//!
//! Driven by a `JsonSchema` built in Python from the protobuf descriptors in use
//! (`redact_proxy/otlpjson.py`): this crate knows no OTLP field number or name.
//!
//! The protobuf `json_to_pb` writes is what upb writes for the same message (fields in
//! number order, zero implicit-presence fields left out, packed runs, minimal varints),
//! so parsing and re-serializing it gives it back, byte for byte: the engine may splice
//! it. `pb_to_json` reads protobuf as upb does (unknown fields and fields of a wire type
//! their field does not take skipped, the last of a singular field winning, messages
//! merged) and writes what `codec.encode` writes, byte for byte.
//!
//! Errors name the problem and where (schema member names and list indexes), never a
//! value or an unknown member's name. Bounded: JSON nesting past `MAX_JSON_DEPTH` and
//! messages nested past `MAX_MESSAGE_DEPTH` (JSON) or 100 levels (protobuf, upb's
//! limit) are refused; the parser and the JSON writer's walk are iterative or bounded
//! by those depths.

mod parse;
mod pyconv;
mod schema;
mod to_json;
mod to_pb;
#[cfg(test)]
mod tests;

use std::fmt;

pub use parse::MAX_JSON_DEPTH;
pub use schema::{FieldEntry, JsonSchema, MessageEntry, PACKED, PRESENCE, REPEATED};
pub use to_json::MAX_PB_DEPTH;
pub use to_pb::MAX_MESSAGE_DEPTH;

enum Seg {
    Member(Box<str>),
    Index(usize),
}

/// Why a body was refused: a fixed problem text and the schema path to it.
pub struct JsonError {
    problem: String,
    path: Vec<Seg>, // innermost first
}

impl JsonError {
    pub(crate) fn new(problem: impl Into<String>) -> JsonError {
        JsonError { problem: problem.into(), path: Vec::new() }
    }

    pub(crate) fn at(mut self, member: &str) -> JsonError {
        self.path.push(Seg::Member(member.into()));
        self
    }

    pub(crate) fn index(mut self, k: usize) -> JsonError {
        self.path.push(Seg::Index(k));
        self
    }

    pub(crate) fn at_field(mut self, owner: &str, field: &schema::Field) -> JsonError {
        self.problem = format!("{} ({owner}.{})", self.problem, field.name);
        self
    }

    /// The problem without the path.
    pub fn problem(&self) -> &str {
        &self.problem
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem)?;
        if self.path.is_empty() {
            return Ok(());
        }
        f.write_str(" at ")?;
        for (k, seg) in self.path.iter().rev().enumerate() {
            match seg {
                Seg::Member(m) if k == 0 => f.write_str(m)?,
                Seg::Member(m) => write!(f, ".{m}")?,
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

impl fmt::Debug for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for JsonError {}

/// An OTLP-JSON body as the protobuf of message `root` (an index into the schema).
pub fn json_to_pb(json: &[u8], schema: &JsonSchema, root: usize) -> Result<Vec<u8>, JsonError> {
    let tape = parse::parse(json)?;
    to_pb::convert(&tape, schema, root)
}

/// A protobuf message `root` as OTLP-JSON.
pub fn pb_to_json(pb: &[u8], schema: &JsonSchema, root: usize) -> Result<Vec<u8>, JsonError> {
    to_json::convert(pb, schema, root)
}
