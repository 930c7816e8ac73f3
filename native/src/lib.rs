//! Wire-level triage of OTLP protobuf bodies: one pass over the bytes that collects every
//! attribute key, the keys whose value is a number or boolean, and every string a mask
//! rule can reach, without decoding the batch.
//!
//! Why: redact-proxy's scrubber walks the decoded batch in Python, about 1 µs per
//! attribute. Most batches are untouched by the policy; proving that from the collected
//! keys and strings costs a few hundred nanoseconds per span instead (see
//! `redact_proxy/triage.py`, which owns the policy side of the decision).
//!
//! The walk is driven by a `Schema` built in Python from the protobuf descriptors in use,
//! so this crate knows no OTLP field number. Anything it does not fully understand --
//! a malformed varint, a length past the end, a group, a key or string field with the
//! wrong wire type, nesting deeper than `MAX_DEPTH` -- makes `scan` return None: "cannot
//! vouch for this batch", and the caller takes the full path. It never guesses.

use rustc_hash::FxHashSet as HashSet;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// What a field of a message is to the walk.
const SKIP: u8 = 0; // anything else: stepped over by its wire type
const MESSAGE: u8 = 1; // a submessage of the schema's message `target`: walked
const KEY: u8 = 2; // an attribute key: collected, once per distinct value
const TEXT: u8 = 3; // a string a mask rule or drop condition reads: appended to the texts
const SCALAR: u8 = 4; // a number or boolean in a value: its attribute's key is collected

/// Deeper than protobuf's own default recursion limit (100), so the decoder refuses
/// such a body before triage ever sees it; the bound keeps hostile input off the stack.
const MAX_DEPTH: u32 = 128;

/// Field numbers above this are never in the table (OTLP's are below 20); they are
/// stepped over like any unknown field.
const MAX_FIELD: u32 = 1024;

/// Per message: field number -> (kind, target message). Index 0 is the root message.
#[pyclass(frozen)]
struct Schema {
    messages: Vec<Vec<(u8, u32)>>,
    has_key: Vec<bool>, // the message is an attribute (it has a KEY field)
}

#[pymethods]
impl Schema {
    /// `messages[i]` lists `(field_number, kind, target)` for message `i`; `target` is
    /// read only for MESSAGE fields. Message 0 is where `scan` starts.
    #[new]
    fn new(messages: Vec<Vec<(u32, u8, u32)>>) -> PyResult<Self> {
        let count = messages.len() as u32;
        if count == 0 {
            return Err(PyValueError::new_err("a schema needs at least its root message"));
        }
        let mut tables = Vec::with_capacity(messages.len());
        for fields in messages {
            let mut table: Vec<(u8, u32)> = Vec::new();
            for (number, kind, target) in fields {
                if number == 0 || number > MAX_FIELD {
                    return Err(PyValueError::new_err(format!("field number {number} out of range")));
                }
                if kind > SCALAR || (kind == MESSAGE && target >= count) {
                    return Err(PyValueError::new_err(format!("bad entry for field {number}")));
                }
                let i = number as usize;
                if table.len() <= i {
                    table.resize(i + 1, (SKIP, 0));
                }
                table[i] = (kind, target);
            }
            tables.push(table);
        }
        let has_key = tables.iter().map(|t| t.iter().any(|&(kind, _)| kind == KEY)).collect();
        Ok(Schema { messages: tables, has_key })
    }
}

struct Walk<'a> {
    schema: &'a Schema,
    keys: HashSet<&'a [u8]>,
    scalar_keys: HashSet<&'a [u8]>,
    texts: Vec<u8>,
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

impl<'a> Walk<'a> {
    /// Walk one message; Some(true) when it has a SCALAR field itself (a value that is a
    /// number or boolean), which its parent attribute, if any, records by key.
    fn message(&mut self, buf: &'a [u8], msg: usize, depth: u32) -> Option<bool> {
        if depth > MAX_DEPTH {
            return None;
        }
        let schema = self.schema;
        let table = &schema.messages[msg];
        let has_key = schema.has_key[msg];
        let mut key: &'a [u8] = b""; // absent on the wire: the empty string, as decoded
        let mut scalar = false; // this message is a value holding a number or boolean
        let mut scalar_child = false; // ...or, for an attribute, its value is
        let mut pos = 0;
        while pos < buf.len() {
            let tag = varint(buf, &mut pos)?;
            let number = tag >> 3;
            if number == 0 {
                return None;
            }
            let (kind, target) = usize::try_from(number)
                .ok()
                .and_then(|n| table.get(n).copied())
                .unwrap_or((SKIP, 0));
            match tag & 7 {
                2 => {
                    let len = varint(buf, &mut pos)?;
                    let end = advance(buf, pos, len)?;
                    let data = &buf[pos..end];
                    pos = end;
                    match kind {
                        MESSAGE => scalar_child |= self.message(data, target as usize, depth + 1)?,
                        KEY => key = data,
                        TEXT => {
                            self.texts.extend_from_slice(data);
                            self.texts.push(0); // texts start with a NUL too: each sits between two
                        }
                        SKIP => {}
                        // A field we must read, sent with another wire type: the decoder
                        // would keep it as an unknown field; we do not try to agree with it.
                        _ => return None,
                    }
                }
                0 if kind == SKIP || kind == SCALAR => {
                    varint(buf, &mut pos)?;
                    scalar |= kind == SCALAR;
                }
                1 if kind == SKIP || kind == SCALAR => {
                    pos = advance(buf, pos, 8)?;
                    scalar |= kind == SCALAR;
                }
                5 if kind == SKIP => pos = advance(buf, pos, 4)?,
                _ => return None, // groups (3, 4), the undefined 6, 7, or a mismatch above
            }
        }
        if has_key {
            // The last key on the wire wins, as in the decoder (a repeated scalar field).
            self.keys.insert(key);
            if scalar_child {
                self.scalar_keys.insert(key);
            }
        }
        Some(scalar)
    }
}

type Found<'py> = (Vec<Bound<'py, PyBytes>>, Vec<Bound<'py, PyBytes>>, Bound<'py, PyBytes>);

/// Walk one protobuf `body` as `schema`'s root message and return the distinct
/// attribute keys, the keys of attributes whose value is a number or boolean, and the
/// strings mask rules and drop conditions read, joined: NUL, text, NUL, text, ..., NUL. None: cannot vouch (see the crate
/// docs). The GIL is released during the walk.
#[pyfunction]
fn scan<'py>(py: Python<'py>, body: &[u8], schema: &Schema) -> Option<Found<'py>> {
    let found = py.detach(|| {
        let mut walk = Walk { schema, keys: HashSet::default(), scalar_keys: HashSet::default(), texts: vec![0] };
        walk.message(body, 0, 0).map(|_| (walk.keys, walk.scalar_keys, walk.texts))
    });
    let (keys, scalar_keys, texts) = found?;
    let keys = keys.into_iter().map(|k| PyBytes::new(py, k)).collect();
    let scalar_keys = scalar_keys.into_iter().map(|k| PyBytes::new(py, k)).collect();
    Some((keys, scalar_keys, PyBytes::new(py, &texts)))
}

#[pymodule]
fn redact_proxy_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Schema>()?;
    m.add_function(wrap_pyfunction!(scan, m)?)?;
    Ok(())
}
