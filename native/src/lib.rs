//! Wire-level triage of OTLP protobuf bodies: one pass over the bytes that checks the
//! body is exactly what the decoder accepts with no field it does not know, counts the
//! items, and collects every attribute key, the keys whose value is a number or boolean,
//! and every string a mask rule or drop condition reads -- without decoding the batch.
//!
//! Why: redact-proxy's scrubber walks the decoded batch in Python, about 1 µs per
//! attribute, and decoding, dropping unknown fields and re-encoding cost more than the
//! hop it replaces. Most batches hold nothing the policy touches; proving that from what
//! this walk collects costs well under a microsecond per span, and such a batch is then
//! forwarded as the bytes it came in (see `redact_proxy/triage.py`, which owns the
//! policy side of the decision).
//!
//! The walk is driven by a `Schema` built in Python from the protobuf descriptors in use,
//! so this crate knows no OTLP field number. Anything it does not accept exactly -- a
//! field number the schema lacks, a wire type its field does not take, invalid UTF-8 in
//! a string, a malformed varint or packed run, a length past the end, two members of one
//! oneof, nesting deeper than `MAX_DEPTH` -- makes `scan` return None: "cannot vouch for
//! this batch", and the caller decodes and scrubs it in full. It never guesses.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rustc_hash::FxHashSet as HashSet;

/// What a field is to the walk (the `kind` of a schema entry).
const PLAIN: u8 = 0; // a known field with nothing to collect: checked and stepped over
const MESSAGE: u8 = 1; // a submessage of the schema's message `target`: walked
const KEY: u8 = 2; // an attribute key: collected, once per distinct value
const TEXT: u8 = 3; // a string a mask rule or drop condition reads: appended to the texts
const SCALAR: u8 = 4; // a number or boolean in a value: its attribute's key is collected

/// Entry flags.
const ITEM: u8 = 1; // each occurrence is one item (span, data point, log record)
const UTF8: u8 = 2; // a protobuf `string`: the decoder refuses invalid UTF-8

/// Below protobuf's own default recursion limit (100): deeper bodies go to the decoder,
/// which decides; the bound also keeps hostile input off the stack.
const MAX_DEPTH: u32 = 64;

/// Field numbers above this are never in the table (OTLP's are below 20).
const MAX_FIELD: u32 = 1024;

/// Largest oneof index in a message (OTLP messages have at most two oneofs).
const MAX_ONEOF: u8 = 15;

#[derive(Clone, Copy, Default)]
struct Field {
    known: bool,
    kind: u8,
    target: u32,
    wires: u8,  // bit w set: wire type w is accepted
    packed: u8, // a repeated number sent as wire type 2: 1 varints, 4 or 8 fixed-size
    oneof: u8,  // 1.. : the oneof it belongs to; 0: none
    flags: u8,
}

/// Per message: field number -> Field. Index 0 is the root message.
#[pyclass(frozen)]
struct Schema {
    messages: Vec<Vec<Field>>,
    has_key: Vec<bool>, // the message is an attribute (it has a KEY field)
}

#[pymethods]
impl Schema {
    /// `messages[i]` lists `(number, kind, target, wires, packed, oneof, flags)` for each
    /// field of message `i`; `target` is read only for MESSAGE fields. Message 0 is where
    /// `scan` starts.
    #[new]
    #[allow(clippy::type_complexity)]
    fn new(messages: Vec<Vec<(u32, u8, u32, u8, u8, u8, u8)>>) -> PyResult<Self> {
        let count = messages.len() as u32;
        if count == 0 {
            return Err(PyValueError::new_err("a schema needs at least its root message"));
        }
        let mut tables = Vec::with_capacity(messages.len());
        for fields in messages {
            let mut table: Vec<Field> = Vec::new();
            for (number, kind, target, wires, packed, oneof, flags) in fields {
                if number == 0 || number > MAX_FIELD {
                    return Err(PyValueError::new_err(format!("field number {number} out of range")));
                }
                let bad_packed = !matches!(packed, 0 | 1 | 4 | 8) || (packed != 0 && kind != PLAIN);
                if kind > SCALAR || (kind == MESSAGE && target >= count) || oneof > MAX_ONEOF || bad_packed {
                    return Err(PyValueError::new_err(format!("bad entry for field {number}")));
                }
                let i = number as usize;
                if table.len() <= i {
                    table.resize(i + 1, Field::default());
                }
                table[i] = Field { known: true, kind, target, wires, packed, oneof, flags };
            }
            tables.push(table);
        }
        let has_key = tables.iter().map(|t| t.iter().any(|f| f.known && f.kind == KEY)).collect();
        Ok(Schema { messages: tables, has_key })
    }
}

struct Walk<'a> {
    schema: &'a Schema,
    keys: HashSet<&'a [u8]>,
    scalar_keys: HashSet<&'a [u8]>,
    texts: Vec<u8>,
    items: u64,
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..70).step_by(7) {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        if shift == 63 && byte > 1 {
            return None; // more than 64 bits
        }
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn advance(buf: &[u8], pos: usize, n: u64) -> Option<usize> {
    let end = pos.checked_add(usize::try_from(n).ok()?)?;
    (end <= buf.len()).then_some(end)
}

/// A packed run of numbers: whole varints, or a whole number of fixed-size values.
fn packed_ok(data: &[u8], packed: u8) -> bool {
    if packed != 1 {
        return data.len() % packed as usize == 0;
    }
    let mut pos = 0;
    while pos < data.len() {
        if varint(data, &mut pos).is_none() {
            return false;
        }
    }
    true
}

impl<'a> Walk<'a> {
    /// Walk one message; Some(true) when it has a SCALAR field itself (a value that is a
    /// number or boolean), which its parent attribute, if any, records by key.
    fn message(&mut self, buf: &'a [u8], msg: usize, depth: u32) -> Option<bool> {
        if depth > MAX_DEPTH {
            return None;
        }
        let schema = self.schema;
        let table = &schema.messages[msg];
        let mut key: &'a [u8] = b""; // absent on the wire: the empty string, as decoded
        let mut scalar = false; // this message is a value holding a number or boolean
        let mut scalar_child = false; // ...or, for an attribute, its value is
        let mut oneofs = [0u64; MAX_ONEOF as usize + 1]; // field number seen per oneof
        let mut pos = 0;
        while pos < buf.len() {
            let tag = varint(buf, &mut pos)?;
            let number = tag >> 3;
            let wire = (tag & 7) as u8;
            let field = usize::try_from(number).ok().and_then(|n| table.get(n)).copied().unwrap_or_default();
            if !field.known || wire > 5 || field.wires & (1 << wire) == 0 {
                return None; // unknown to the decoder, or kept by it as an unknown field
            }
            if field.oneof != 0 {
                // Two members of one oneof: the decoder keeps the last; we do not follow.
                let seen = &mut oneofs[field.oneof as usize];
                if *seen != 0 && *seen != number {
                    return None;
                }
                *seen = number;
            }
            match wire {
                0 => {
                    varint(buf, &mut pos)?;
                }
                1 => pos = advance(buf, pos, 8)?,
                5 => pos = advance(buf, pos, 4)?,
                _ => {
                    let len = varint(buf, &mut pos)?;
                    let end = advance(buf, pos, len)?;
                    let data = &buf[pos..end];
                    pos = end;
                    if field.packed != 0 {
                        if !packed_ok(data, field.packed) {
                            return None;
                        }
                    } else if field.flags & UTF8 != 0 && std::str::from_utf8(data).is_err() {
                        return None;
                    }
                    match field.kind {
                        MESSAGE => scalar_child |= self.message(data, field.target as usize, depth + 1)?,
                        KEY => key = data,
                        TEXT => {
                            self.texts.extend_from_slice(data);
                            self.texts.push(0); // the texts start with a NUL: each sits between two
                        }
                        _ => {}
                    }
                }
            }
            scalar |= field.kind == SCALAR;
            if field.flags & ITEM != 0 {
                self.items += 1;
            }
        }
        if schema.has_key[msg] {
            // The last key on the wire wins, as in the decoder.
            self.keys.insert(key);
            if scalar_child {
                self.scalar_keys.insert(key);
            }
        }
        Some(scalar)
    }
}

type Found<'py> = (Vec<Bound<'py, PyBytes>>, Vec<Bound<'py, PyBytes>>, Bound<'py, PyBytes>, u64);

/// Walk one protobuf `body` as `schema`'s root message and return the distinct
/// attribute keys, the keys of attributes whose value is a number or boolean, the
/// strings mask rules and drop conditions read joined as NUL, text, NUL, ..., text, NUL,
/// and the number of items. None: cannot vouch (see the crate docs). The GIL is
/// released during the walk.
#[pyfunction]
fn scan<'py>(py: Python<'py>, body: &[u8], schema: &Schema) -> Option<Found<'py>> {
    let found = py.detach(|| {
        let mut walk = Walk {
            schema,
            keys: HashSet::default(),
            scalar_keys: HashSet::default(),
            texts: vec![0],
            items: 0,
        };
        walk.message(body, 0, 0).map(|_| (walk.keys, walk.scalar_keys, walk.texts, walk.items))
    });
    let (keys, scalar_keys, texts, items) = found?;
    let keys = keys.into_iter().map(|k| PyBytes::new(py, k)).collect();
    let scalar_keys = scalar_keys.into_iter().map(|k| PyBytes::new(py, k)).collect();
    Some((keys, scalar_keys, PyBytes::new(py, &texts), items))
}

#[pymodule]
fn redact_proxy_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Schema>()?;
    m.add_function(wrap_pyfunction!(scan, m)?)?;
    Ok(())
}
