//! OTLP-JSON tape -> protobuf, as `codec.py` reads a body (`_foreign_signal`,
//! `_prepare_json`, then `json_format.ParseDict(..., ignore_unknown_fields=True)`) and
//! upb then writes the message: fields in number order, implicit-presence zeros left
//! out, packed runs, minimal varints. So `ParseFromString` + `SerializeToString` of the
//! output is the output itself.
//!
//! ParseDict's semantics that decide the message, all reproduced: members are read in
//! the order of a Python dict (a repeated key keeps its first place and its last
//! value); both spellings of a field are read, the later one winning (a singular
//! message merges into the earlier one, a list replaces it); `null` clears a field (a
//! oneof member only while it is the one set); two non-null members of one oneof in one
//! object are refused; every value is checked even when a later one overrides it, so
//! whether a body is refused does not depend on member order. Members the schema lacks
//! are skipped unread, except one named like an extension (`[a.b]`), which ParseDict
//! refuses even then.

use std::borrow::Cow;

use super::parse::{Node, Tape, ARR, FALSE, FLOAT, NAN, NEG_INF, NULL, NUM, OBJ, POS_INF, STR, TRUE};
use super::pyconv;
use super::schema::{Field, JsonSchema, Kind};
use super::JsonError;

/// `json_format.ParseDict`'s `max_recursion_depth`: the root message is level 1, and a
/// message at level 101 is refused.
pub const MAX_MESSAGE_DEPTH: u32 = 100;

const NONE: u32 = u32::MAX;

/// Protobuf output with a 5-byte slot per length prefix, compacted to minimal varints
/// once at the end (a submessage's length is known only after it).
struct Out {
    buf: Vec<u8>,
    holes: Vec<(usize, usize)>, // (slot position, final length)
    saved: usize,               // bytes the compaction will remove so far
}

fn varint_len(n: usize) -> usize {
    let bits = usize::BITS - (n | 1).leading_zeros();
    bits.div_ceil(7) as usize
}

#[inline]
fn put_varint(buf: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        buf.push(n as u8 | 0x80);
        n >>= 7;
    }
    buf.push(n as u8);
}

impl Out {
    fn open(&mut self) -> (usize, usize) {
        self.holes.push((self.buf.len(), 0));
        self.buf.extend_from_slice(&[0; 5]);
        (self.holes.len() - 1, self.saved)
    }

    fn close(&mut self, (hole, saved_before): (usize, usize)) {
        let start = self.holes[hole].0 + 5;
        let len = self.buf.len() - start - (self.saved - saved_before);
        self.holes[hole].1 = len;
        self.saved += 5 - varint_len(len);
    }

    fn mark(&self) -> (usize, usize, usize) {
        (self.buf.len(), self.holes.len(), self.saved)
    }

    fn reset(&mut self, (len, holes, saved): (usize, usize, usize)) {
        self.buf.truncate(len);
        self.holes.truncate(holes);
        self.saved = saved;
    }

    fn finish(mut self) -> Vec<u8> {
        let mut w = 0;
        let mut r = 0;
        let mut varint = Vec::with_capacity(5);
        for &(pos, len) in &self.holes {
            self.buf.copy_within(r..pos, w);
            w += pos - r;
            varint.clear();
            put_varint(&mut varint, len as u64);
            self.buf[w..w + varint.len()].copy_from_slice(&varint);
            w += varint.len();
            r = pos + 5;
        }
        let end = self.buf.len();
        self.buf.copy_within(r..end, w);
        self.buf.truncate(w + end - r);
        self.buf
    }
}

/// A converted scalar.
enum Scalar<'t> {
    Int(i128),
    F64(f64),
    Bool(bool),
    Text(Cow<'t, [u8]>),
    Scratch, // bytes in `Conv::scratch`
}

/// One message's work lists, kept per depth and reused (no allocation per message once
/// warm).
#[derive(Default)]
struct Work {
    vals: Vec<u32>,              // per field: the value node that stands, or NONE
    merged: Vec<(u16, u32)>,     // further objects merged into a singular message field
    events: Vec<(u16, u8, u32)>, // one object's known members: (field, spelling, value)
    dropped: Vec<(u16, u32)>,    // values overridden or cleared: still checked
}

struct Conv<'t> {
    text: &'t [u8],
    nodes: &'t [Node],
    surrogates: bool,
    schema: &'t JsonSchema,
    out: Out,
    scratch: Vec<u8>,
    work: Vec<Work>,
}

fn shape(owner: &str, field: &Field, expected: &str) -> JsonError {
    JsonError::new(format!("body is not valid OTLP-JSON: {owner}.{} must be {expected}", field.name))
}

/// `\[[a-zA-Z0-9._]*\]$` as `re.match` reads it (`$` also before a final newline).
fn extension_like(name: &[u8]) -> bool {
    let name = name.strip_suffix(b"\n").unwrap_or(name);
    name.len() >= 2
        && name[0] == b'['
        && name[name.len() - 1] == b']'
        && name[1..name.len() - 1].iter().all(|&c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_')
}

impl<'t> Conv<'t> {
    fn node(&self, i: u32) -> Node {
        self.nodes[i as usize]
    }

    fn text_of(&self, i: u32) -> (Cow<'t, [u8]>, bool) {
        pyconv::text(self.text, &self.nodes[i as usize], self.surrogates)
    }

    /// Build one message from `objs` (one object, or several merged in order).
    fn message(&mut self, objs: &[u32], m: usize, depth: u32) -> Result<(), JsonError> {
        if depth > MAX_MESSAGE_DEPTH {
            return Err(JsonError::new(format!(
                "body is not valid OTLP-JSON: messages nested more than {MAX_MESSAGE_DEPTH} deep"
            )));
        }
        let d = depth as usize;
        if self.work.len() <= d {
            self.work.resize_with(d + 1, Work::default);
        }
        let mut work = std::mem::take(&mut self.work[d]);
        let result = self.message_with(objs, m, depth, &mut work);
        self.work[d] = work;
        result
    }

    fn message_with(&mut self, objs: &[u32], m: usize, depth: u32, w: &mut Work) -> Result<(), JsonError> {
        let schema = self.schema;
        let msg = &schema.messages[m];
        let n = msg.fields.len();
        w.vals.clear();
        w.vals.resize(n, NONE);
        w.merged.clear();
        w.dropped.clear();
        let mut active = [NONE; super::schema::MAX_ONEOF as usize + 1];
        for &obj in objs {
            // This object's known members in dict order: a repeated key keeps its first
            // place and takes its last value.
            w.events.clear();
            let mut seen = 0u64; // bit 2 * field + spelling (fields past 31: searched)
            let node = self.node(obj);
            let mut i = obj + 1;
            while i < node.next {
                let key = i;
                let value = i + 1;
                i = self.node(value).next;
                let (name, surrogate) = self.text_of(key);
                let Some((f, spelling)) = msg.field_by_member(&name) else {
                    self.unknown_member(msg, &name, surrogate, depth)?;
                    continue;
                };
                let bit = 2 * f + usize::from(spelling);
                if bit < 64 && seen & 1 << bit == 0 {
                    seen |= 1 << bit;
                    w.events.push((f as u16, spelling, value));
                } else if let Some(e) = w.events.iter_mut().find(|e| usize::from(e.0) == f && e.1 == spelling) {
                    e.2 = value;
                } else {
                    w.events.push((f as u16, spelling, value));
                }
            }
            // Replay them as ParseDict sets and clears fields.
            let mut used = 0u64;
            for k in 0..w.events.len() {
                let (f, _, value) = w.events[k];
                let fi = usize::from(f);
                let field = &msg.fields[fi];
                let o = usize::from(field.oneof);
                if self.node(value).kind == NULL {
                    if o == 0 || active[o] == u32::from(f) {
                        if o != 0 {
                            active[o] = NONE;
                        }
                        drop_field(w, fi);
                    }
                    continue;
                }
                if o != 0 {
                    if used & 1 << o != 0 {
                        return Err(JsonError::new(format!(
                            "body is not valid OTLP-JSON: {} has two members of one oneof",
                            msg.name
                        ))
                        .at(&field.json_name));
                    }
                    used |= 1 << o;
                    if active[o] != u32::from(f) {
                        if active[o] != NONE {
                            drop_field(w, active[o] as usize);
                        }
                        active[o] = u32::from(f);
                    }
                }
                if w.vals[fi] == NONE {
                    w.vals[fi] = value;
                } else if field.kind == Kind::Message && !field.repeated {
                    w.merged.push((f, value));
                } else {
                    w.dropped.push((f, w.vals[fi]));
                    w.vals[fi] = value;
                }
            }
        }
        for fi in 0..n {
            let value = w.vals[fi];
            if value == NONE {
                continue;
            }
            let field = &msg.fields[fi];
            let merged: Vec<u32> = if w.merged.is_empty() {
                Vec::new()
            } else {
                w.merged.iter().filter(|e| usize::from(e.0) == fi).map(|e| e.1).collect()
            };
            self.field(&msg.name, field, value, &merged, depth).map_err(|e| e.at(&field.json_name))?;
        }
        // Overridden and cleared values: checked as ParseDict checked them, then dropped.
        for k in 0..w.dropped.len() {
            let (f, value) = w.dropped[k];
            let field = &msg.fields[usize::from(f)];
            let mark = self.out.mark();
            self.field(&msg.name, field, value, &[], depth).map_err(|e| e.at(&field.json_name))?;
            self.out.reset(mark);
        }
        Ok(())
    }

    /// A member the schema lacks: skipped unread, unless ParseDict would choke on its name.
    fn unknown_member(&self, msg: &super::schema::Message, name: &[u8], surrogate: bool, depth: u32) -> Result<(), JsonError> {
        if surrogate {
            // ParseDict's lookup by proto name raises on it (upb cannot encode it).
            return Err(JsonError::new(format!(
                "body is not valid OTLP-JSON: a member of {} has a name that is not valid Unicode",
                msg.name
            )));
        }
        if extension_like(name) {
            return Err(JsonError::new(format!(
                "body is not valid OTLP-JSON: {} has no extensions, and a member is named like one",
                msg.name
            )));
        }
        if depth == 1 {
            if let Some((_, label)) = msg.foreign.iter().find(|(member, _)| **member == *name) {
                return Err(JsonError::new(format!(
                    "OTLP-JSON body is an export request for {label}, not for this endpoint"
                )));
            }
        }
        Ok(())
    }

    fn sub_message(&mut self, owner: &str, field: &Field, objs: &[u32], depth: u32) -> Result<(), JsonError> {
        for &o in objs {
            if self.node(o).kind != OBJ {
                return Err(shape(owner, field, if field.repeated { "an array of objects" } else { "an object" }));
            }
        }
        self.out.buf.extend_from_slice(&field.tag[..usize::from(field.tag_len)]);
        let hole = self.out.open();
        self.message(objs, field.target, depth + 1)?;
        self.out.close(hole);
        Ok(())
    }

    fn field(&mut self, owner: &str, field: &Field, value: u32, merged: &[u32], depth: u32) -> Result<(), JsonError> {
        let node = self.node(value);
        if !field.repeated {
            if field.kind == Kind::Message {
                if merged.is_empty() {
                    return self.sub_message(owner, field, &[value], depth);
                }
                let objs: Vec<u32> = std::iter::once(value).chain(merged.iter().copied()).collect();
                return self.sub_message(owner, field, &objs, depth);
            }
            let s = self.scalar(owner, field, &node)?;
            if !field.presence && self.is_zero(&s) {
                return Ok(());
            }
            self.out.buf.extend_from_slice(&field.tag[..usize::from(field.tag_len)]);
            self.put(field.kind, &s);
            return Ok(());
        }
        if node.kind != ARR {
            let expected = if field.kind == Kind::Message { "an array of objects" } else { "an array" };
            return Err(shape(owner, field, expected));
        }
        let (first, end) = (value + 1, node.next);
        if field.kind == Kind::Message {
            let mut i = first;
            while i < end {
                if self.node(i).kind != OBJ {
                    return Err(shape(owner, field, "an array of objects"));
                }
                i = self.node(i).next;
            }
            let (mut i, mut k) = (first, 0usize);
            while i < end {
                self.sub_message(owner, field, &[i], depth).map_err(|e| e.index(k))?;
                i = self.node(i).next;
                k += 1;
            }
            return Ok(());
        }
        if first == end {
            return Ok(()); // an empty list: nothing on the wire
        }
        let hole = if field.packed {
            self.out.buf.extend_from_slice(&field.tag[..usize::from(field.tag_len)]);
            Some(self.out.open())
        } else {
            None
        };
        let (mut i, mut k) = (first, 0usize);
        while i < end {
            let item = self.node(i);
            if item.kind == NULL {
                return Err(JsonError::new(format!(
                    "body is not valid OTLP-JSON: {owner}.{} may not hold null",
                    field.name
                ))
                .index(k));
            }
            let s = self.scalar(owner, field, &item).map_err(|e| e.index(k))?;
            if hole.is_none() {
                self.out.buf.extend_from_slice(&field.tag[..usize::from(field.tag_len)]);
            }
            self.put(field.kind, &s);
            i = item.next;
            k += 1;
        }
        if let Some(hole) = hole {
            self.out.close(hole);
        }
        Ok(())
    }

    fn is_zero(&self, s: &Scalar) -> bool {
        match s {
            Scalar::Int(v) => *v == 0,
            Scalar::F64(x) => x.to_bits() == 0,
            Scalar::Bool(b) => !b,
            Scalar::Text(t) => t.is_empty(),
            Scalar::Scratch => self.scratch.is_empty(),
        }
    }

    fn put(&mut self, kind: Kind, s: &Scalar) {
        let buf = &mut self.out.buf;
        match *s {
            Scalar::Int(v) => match kind {
                Kind::Int32 | Kind::Enum | Kind::Int64 => put_varint(buf, v as i64 as u64),
                Kind::Uint32 | Kind::Uint64 => put_varint(buf, v as u64),
                Kind::Sint32 => {
                    let n = v as i32;
                    put_varint(buf, u64::from(((n << 1) ^ (n >> 31)) as u32));
                }
                Kind::Sint64 => {
                    let n = v as i64;
                    put_varint(buf, ((n << 1) ^ (n >> 63)) as u64);
                }
                Kind::Fixed32 | Kind::Sfixed32 => buf.extend_from_slice(&(v as u32).to_le_bytes()),
                _ => buf.extend_from_slice(&(v as u64).to_le_bytes()), // fixed64, sfixed64
            },
            Scalar::F64(x) => buf.extend_from_slice(&x.to_bits().to_le_bytes()),
            Scalar::Bool(b) => buf.push(u8::from(b)),
            Scalar::Text(ref t) => {
                put_varint(buf, t.len() as u64);
                buf.extend_from_slice(t);
            }
            Scalar::Scratch => {
                put_varint(buf, self.scratch.len() as u64);
                buf.extend_from_slice(&self.scratch);
            }
        }
    }

    /// One scalar value, read as `_prepare_json` and `_ConvertScalarFieldValue` read it.
    fn scalar(&mut self, owner: &str, field: &Field, node: &Node) -> Result<Scalar<'t>, JsonError> {
        let lit = || &self.text[node.start as usize..node.end as usize];
        match field.kind {
            Kind::String => {
                if node.kind != STR {
                    return Err(shape(owner, field, "a string"));
                }
                let (t, surrogate) = pyconv::text(self.text, node, self.surrogates);
                if surrogate {
                    return Err(shape(owner, field, "a string without surrogates"));
                }
                Ok(Scalar::Text(t))
            }
            Kind::Bytes => {
                if node.kind != STR {
                    return Err(shape(owner, field, "a string"));
                }
                let (t, surrogate) = pyconv::text(self.text, node, self.surrogates);
                self.scratch.clear();
                if field.id_len != 0 {
                    if pyconv::unhex(&t, &mut self.scratch).is_none() {
                        return Err(JsonError::new("trace/span id is not a hex string").at_field(owner, field));
                    }
                    if !self.scratch.is_empty() && self.scratch.len() != field.id_len {
                        let kind = if field.id_len == 16 { "trace" } else { "span" };
                        return Err(JsonError::new(format!(
                            "a {kind} id is neither {} bytes nor empty",
                            field.id_len
                        ))
                        .at_field(owner, field));
                    }
                } else if surrogate || pyconv::py_b64decode(&t, &mut self.scratch).is_none() {
                    return Err(shape(owner, field, "base64 text"));
                }
                Ok(Scalar::Scratch)
            }
            Kind::Bool => match node.kind {
                TRUE => Ok(Scalar::Bool(true)),
                FALSE => Ok(Scalar::Bool(false)),
                _ => Err(shape(owner, field, "true or false")),
            },
            Kind::Double => {
                let x = match node.kind {
                    NUM => pyconv::literal_f64(lit(), node.flags & FLOAT != 0),
                    TRUE => 1.0,
                    FALSE => 0.0,
                    STR => {
                        let (t, _) = pyconv::text(self.text, node, self.surrogates);
                        match pyconv::py_float(&t) {
                            Some(x) if *t != *b"nan" => return Ok(Scalar::F64(x)),
                            _ => return Err(shape(owner, field, "a number or a numeric string")),
                        }
                    }
                    NAN | POS_INF | NEG_INF => f64::INFINITY, // must be quoted
                    _ => return Err(shape(owner, field, "a number or a numeric string")),
                };
                if !x.is_finite() {
                    return Err(shape(owner, field, "a finite number (NaN and infinities quoted)"));
                }
                Ok(Scalar::F64(x))
            }
            Kind::Enum => {
                let number = match node.kind {
                    NUM if node.flags & FLOAT == 0 => Some(pyconv::int_literal(lit())),
                    STR => {
                        let (t, _) = pyconv::text(self.text, node, self.surrogates);
                        let names = &self.schema.enums[field.target];
                        names.iter().find(|(n, _)| **n == *t).map(|&(_, v)| i128::from(v))
                    }
                    _ => None,
                };
                let number = number.ok_or_else(|| shape(owner, field, "an enum number"))?;
                // ParseDict looks the number up in upb's values_by_number, which reads an
                // int64 as its low 32 bits: 2**32 + 1 is value 1. Only an unknown number
                // goes on to the int32 range check.
                if let Ok(wide) = i64::try_from(number) {
                    let low = wide as i32;
                    if self.schema.enums[field.target].iter().any(|&(_, v)| v == low) {
                        return Ok(Scalar::Int(low.into()));
                    }
                }
                self.in_range(owner, field, number)
            }
            _ => {
                let value = match node.kind {
                    NUM if node.flags & FLOAT == 0 => Some(pyconv::int_literal(lit())),
                    NUM => pyconv::float_to_int(pyconv::literal_f64(lit(), true)),
                    STR => pyconv::py_int_str(&pyconv::text(self.text, node, self.surrogates).0),
                    _ => None,
                };
                let value = value.ok_or_else(|| shape(owner, field, "an integer (a number or a decimal string)"))?;
                self.in_range(owner, field, value)
            }
        }
    }

    fn in_range(&self, owner: &str, field: &Field, v: i128) -> Result<Scalar<'t>, JsonError> {
        let (lo, hi) = field.kind.int_range().expect("an integer kind");
        if v < lo || v > hi {
            return Err(shape(owner, field, "an integer in the range of its type"));
        }
        Ok(Scalar::Int(v))
    }
}

/// Clear field `fi` (its values, merged ones too, go to be checked and dropped).
fn drop_field(w: &mut Work, fi: usize) {
    if w.vals[fi] != NONE {
        w.dropped.push((fi as u16, w.vals[fi]));
        w.vals[fi] = NONE;
        if !w.merged.is_empty() {
            let (gone, kept): (Vec<_>, Vec<_>) = w.merged.iter().partition(|e| usize::from(e.0) == fi);
            w.dropped.extend(gone);
            w.merged = kept;
        }
    }
}

/// Convert a parsed body to the protobuf of message `root`.
pub fn convert(tape: &Tape, schema: &JsonSchema, root: usize) -> Result<Vec<u8>, JsonError> {
    schema.check_root(root)?;
    if tape.nodes[0].kind != OBJ {
        return Err(JsonError::new("OTLP-JSON body must be a JSON object"));
    }
    let mut conv = Conv {
        text: &tape.text,
        nodes: &tape.nodes,
        surrogates: tape.surrogates,
        schema,
        out: Out { buf: Vec::with_capacity(tape.text.len()), holes: Vec::new(), saved: 0 },
        scratch: Vec::new(),
        work: Vec::new(),
    };
    conv.message(&[0], root, 1)?;
    Ok(conv.out.finish())
}
