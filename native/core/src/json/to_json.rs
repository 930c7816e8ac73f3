//! Protobuf -> OTLP-JSON, byte for byte what `codec.encode(msg, Format.JSON)` writes
//! for the message upb decodes from the same bytes: `MessageToDict` with integer enums
//! (fields in number order; implicit-presence fields only when not zero; 64-bit
//! integers as decimal strings; doubles as `repr`, or "NaN", "Infinity", "-Infinity";
//! bytes as padded base64), ids as lowercase hex, then `json.dumps` with compact
//! separators and `ensure_ascii`.
//!
//! Read as upb reads it: an unknown field, or a known one in a wire type it does not
//! take, is skipped (groups included); the last of a singular field wins; a singular
//! message met twice is the merge of both (read here as one message over several
//! slices); a oneof holds its last member, and a message member starts afresh when
//! another member came between. Refused as upb refuses: a malformed or truncated
//! varint, tag or length, field number 0, an end-group out of place, wire type 6 or 7,
//! invalid UTF-8 in a string field (even one a later value overrides), a packed run
//! that is not whole, submessages nested more than 100 deep.

use base64::Engine as _;

use super::pyconv;
use super::schema::{Field, JsonSchema, Kind};
use super::JsonError;

/// upb's decoding depth limit: submessages (and groups) nested up to 100 below the root.
pub const MAX_PB_DEPTH: u32 = 100;

const NONE: u32 = u32::MAX;

#[derive(Clone, Copy)]
struct Occ<'a> {
    wire: u8,
    num: u64,
    data: &'a [u8],
    next: u32,
}

struct Enc<'s, 'a> {
    schema: &'s JsonSchema,
    out: Vec<u8>,
    occs: Vec<Vec<Occ<'a>>>,
    heads: Vec<Vec<(u32, u32)>>,
}

fn invalid(msg: &str, why: &str) -> JsonError {
    JsonError::new(format!("protobuf body is not a valid {msg}: {why}"))
}

/// A varint as upb reads it: at most ten bytes, bits past 64 dropped, overlong encodings
/// accepted.
#[inline]
fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..10 {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f).wrapping_shl(7 * i);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn take<'a>(buf: &'a [u8], pos: &mut usize, n: u64) -> Option<&'a [u8]> {
    let end = pos.checked_add(usize::try_from(n).ok()?)?;
    let data = buf.get(*pos..end)?;
    *pos = end;
    Some(data)
}

/// Step over one unknown value of wire type `wire` (groups: to their matching end).
fn skip(buf: &[u8], pos: &mut usize, number: u64, wire: u8, depth: u32) -> Option<()> {
    match wire {
        0 => varint(buf, pos).map(drop),
        1 => take(buf, pos, 8).map(drop),
        5 => take(buf, pos, 4).map(drop),
        2 => {
            let len = varint(buf, pos)?;
            take(buf, pos, len).map(drop)
        }
        3 => {
            if depth >= MAX_PB_DEPTH {
                return None;
            }
            loop {
                let tag = varint(buf, pos)?;
                let (n, w) = (tag >> 3, (tag & 7) as u8);
                if n == 0 || tag > u64::from(u32::MAX) {
                    return None;
                }
                if w == 4 {
                    return (n == number).then_some(());
                }
                skip(buf, pos, n, w, depth + 1)?;
            }
        }
        _ => None,
    }
}

fn accepts(field: &Field, wire: u8) -> bool {
    field.kind.wire() == wire || (field.repeated && wire == 2 && !matches!(field.kind, Kind::String | Kind::Bytes | Kind::Message))
}

/// Whether a packed run is whole: varints or fixed-size values to its end.
fn packed_ok(kind: Kind, data: &[u8]) -> bool {
    match kind.wire() {
        1 => data.len().is_multiple_of(8),
        5 => data.len().is_multiple_of(4),
        _ => {
            let mut pos = 0;
            while pos < data.len() {
                if varint(data, &mut pos).is_none() {
                    return false;
                }
            }
            true
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `json.dumps` of a str with `ensure_ascii` (the text was checked as UTF-8 on reading).
fn push_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    let mut plain = 0;
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if (0x20..0x7f).contains(&c) && c != b'"' && c != b'\\' {
            i += 1;
            continue;
        }
        out.extend_from_slice(&s[plain..i]);
        let (cp, n) = match c {
            0x00..=0x7f => (u32::from(c), 1),
            0xc0..=0xdf => (u32::from(c & 0x1f) << 6 | u32::from(s[i + 1] & 0x3f), 2),
            0xe0..=0xef => (u32::from(c & 0x0f) << 12 | u32::from(s[i + 1] & 0x3f) << 6 | u32::from(s[i + 2] & 0x3f), 3),
            _ => (
                u32::from(c & 0x07) << 18
                    | u32::from(s[i + 1] & 0x3f) << 12
                    | u32::from(s[i + 2] & 0x3f) << 6
                    | u32::from(s[i + 3] & 0x3f),
                4,
            ),
        };
        i += n;
        plain = i;
        match cp {
            0x22 => out.extend_from_slice(b"\\\""),
            0x5c => out.extend_from_slice(b"\\\\"),
            0x0a => out.extend_from_slice(b"\\n"),
            0x0d => out.extend_from_slice(b"\\r"),
            0x09 => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                let mut unit = |u: u32| {
                    out.extend_from_slice(b"\\u");
                    for shift in [12, 8, 4, 0] {
                        out.push(HEX[(u >> shift & 0xf) as usize]);
                    }
                };
                if cp >= 0x10000 {
                    let v = cp - 0x10000;
                    unit(0xd800 | v >> 10);
                    unit(0xdc00 | (v & 0x3ff));
                } else {
                    unit(cp);
                }
            }
        }
    }
    out.extend_from_slice(&s[plain..]);
    out.push(b'"');
}

fn push_int(out: &mut Vec<u8>, v: i128, quoted: bool) {
    if quoted {
        out.push(b'"');
    }
    if v < 0 {
        out.push(b'-');
    }
    crate::walk::push_digits(out, v.unsigned_abs());
    if quoted {
        out.push(b'"');
    }
}

/// A field's value as upb stores it, from one wire value.
fn int_value(kind: Kind, num: u64) -> i128 {
    match kind {
        Kind::Int32 | Kind::Enum | Kind::Sfixed32 => i128::from(num as u32 as i32),
        Kind::Uint32 | Kind::Fixed32 => i128::from(num as u32),
        Kind::Sint32 => {
            let n = num as u32;
            i128::from((n >> 1) as i32 ^ -((n & 1) as i32))
        }
        Kind::Int64 | Kind::Sfixed64 => i128::from(num as i64),
        Kind::Sint64 => i128::from((num >> 1) as i64 ^ -((num & 1) as i64)),
        Kind::Bool => i128::from(num != 0),
        _ => i128::from(num), // uint64, fixed64
    }
}

impl<'a> Enc<'_, 'a> {
    fn message(&mut self, parts: &[&'a [u8]], m: usize, depth: u32) -> Result<(), JsonError> {
        if depth > MAX_PB_DEPTH {
            return Err(invalid(&self.schema.messages[m].name, "submessages nested more than 100 deep"));
        }
        let d = depth as usize;
        if self.occs.len() <= d {
            self.occs.resize_with(d + 1, Vec::new);
            self.heads.resize_with(d + 1, Vec::new);
        }
        let mut occs = std::mem::take(&mut self.occs[d]);
        let mut heads = std::mem::take(&mut self.heads[d]);
        let result = self.message_with(parts, m, depth, &mut occs, &mut heads);
        self.occs[d] = occs;
        self.heads[d] = heads;
        result
    }

    fn message_with(
        &mut self,
        parts: &[&'a [u8]],
        m: usize,
        depth: u32,
        occs: &mut Vec<Occ<'a>>,
        heads: &mut Vec<(u32, u32)>,
    ) -> Result<(), JsonError> {
        let schema = self.schema;
        let msg = &schema.messages[m];
        let n = msg.fields.len();
        occs.clear();
        heads.clear();
        heads.resize(n, (NONE, NONE));
        let mut active = [NONE; super::schema::MAX_ONEOF as usize + 1];
        let mut from = [0u32; super::schema::MAX_ONEOF as usize + 1];
        let bad = |why: &str| invalid(&msg.name, why);
        for part in parts {
            let buf: &'a [u8] = part;
            let mut pos = 0;
            while pos < buf.len() {
                let tag = varint(buf, &mut pos).ok_or_else(|| bad("malformed tag"))?;
                let (number, wire) = (tag >> 3, (tag & 7) as u8);
                if number == 0 || tag > u64::from(u32::MAX) {
                    return Err(bad("field number 0 or out of range"));
                }
                let fi = msg.field_by_number(number).filter(|&i| accepts(&msg.fields[i], wire));
                let Some(fi) = fi else {
                    if wire == 4 {
                        return Err(bad("end of a group that was not opened"));
                    }
                    skip(buf, &mut pos, number, wire, depth).ok_or_else(|| bad("malformed unknown field"))?;
                    continue;
                };
                let field = &msg.fields[fi];
                let (num, data) = match wire {
                    0 => (varint(buf, &mut pos).ok_or_else(|| bad("malformed varint"))?, &[][..]),
                    1 => {
                        let b = take(buf, &mut pos, 8).ok_or_else(|| bad("truncated"))?;
                        (u64::from_le_bytes(b.try_into().expect("8 bytes")), &[][..])
                    }
                    5 => {
                        let b = take(buf, &mut pos, 4).ok_or_else(|| bad("truncated"))?;
                        (u64::from(u32::from_le_bytes(b.try_into().expect("4 bytes"))), &[][..])
                    }
                    _ => {
                        let len = varint(buf, &mut pos).ok_or_else(|| bad("malformed length"))?;
                        let data = take(buf, &mut pos, len).ok_or_else(|| bad("truncated"))?;
                        if field.kind == Kind::String && std::str::from_utf8(data).is_err() {
                            return Err(invalid(&msg.name, &format!("{} is not valid UTF-8", field.name)));
                        }
                        if !matches!(field.kind, Kind::String | Kind::Bytes | Kind::Message) && !packed_ok(field.kind, data) {
                            return Err(invalid(&msg.name, &format!("{} is a broken packed run", field.name)));
                        }
                        (0, data)
                    }
                };
                let index = occs.len() as u32;
                occs.push(Occ { wire, num, data, next: NONE });
                let head = &mut heads[fi];
                if head.0 == NONE {
                    head.0 = index;
                } else {
                    occs[head.1 as usize].next = index;
                }
                head.1 = index;
                let o = usize::from(field.oneof);
                if o != 0 && active[o] != fi as u32 {
                    active[o] = fi as u32;
                    from[o] = index;
                }
            }
        }
        self.out.push(b'{');
        let mut first = true;
        for (fi, &(head, tail)) in heads.iter().enumerate() {
            if head == NONE {
                continue;
            }
            let field = &msg.fields[fi];
            let o = usize::from(field.oneof);
            // Occurrences that no longer count: this member lost its oneof, or another
            // member came after them. Messages among them were still parsed by upb.
            let keep_from = if o == 0 { 0 } else if active[o] == fi as u32 { from[o] } else { u32::MAX };
            if field.kind == Kind::Message {
                let mut i = head;
                while i != NONE && i < keep_from {
                    let mark = self.out.len();
                    self.message(&[occs[i as usize].data], field.target, depth + 1)?;
                    self.out.truncate(mark);
                    i = occs[i as usize].next;
                }
            }
            if keep_from == u32::MAX {
                continue;
            }
            if field.repeated {
                if !Self::any_element(field, occs, head) {
                    continue;
                }
                self.key(&mut first, field);
                self.out.push(b'[');
                let mut comma = false;
                let mut i = head;
                while i != NONE {
                    let occ = occs[i as usize];
                    self.element(occ, field, depth, &mut comma)?;
                    i = occ.next;
                }
                self.out.push(b']');
            } else if field.kind == Kind::Message {
                self.key(&mut first, field);
                if head == tail {
                    self.message(&[occs[head as usize].data], field.target, depth + 1)?;
                } else {
                    let mut parts: Vec<&'a [u8]> = Vec::new();
                    let mut i = head;
                    while i != NONE {
                        if i >= keep_from {
                            parts.push(occs[i as usize].data);
                        }
                        i = occs[i as usize].next;
                    }
                    self.message(&parts, field.target, depth + 1)?;
                }
            } else {
                let occ = occs[tail as usize];
                if !field.presence && Self::is_zero(field, occ) {
                    continue;
                }
                self.key(&mut first, field);
                self.scalar(field, occ.num, occ.data);
            }
        }
        self.out.push(b'}');
        Ok(())
    }

    fn key(&mut self, first: &mut bool, field: &Field) {
        if !*first {
            self.out.push(b',');
        }
        *first = false;
        self.out.extend_from_slice(&field.json_key);
    }

    /// Whether a repeated field holds anything: an empty packed run holds nothing.
    fn any_element(field: &Field, occs: &[Occ], mut i: u32) -> bool {
        if matches!(field.kind, Kind::String | Kind::Bytes | Kind::Message) {
            return true;
        }
        while i != NONE {
            let occ = occs[i as usize];
            if occ.wire != 2 || !occ.data.is_empty() {
                return true;
            }
            i = occ.next;
        }
        false
    }

    fn element(&mut self, occ: Occ<'a>, field: &Field, depth: u32, comma: &mut bool) -> Result<(), JsonError> {
        let mut sep = |out: &mut Vec<u8>| {
            if *comma {
                out.push(b',');
            }
            *comma = true;
        };
        match field.kind {
            Kind::Message => {
                sep(&mut self.out);
                self.message(&[occ.data], field.target, depth + 1)
            }
            Kind::String | Kind::Bytes => {
                sep(&mut self.out);
                self.scalar(field, 0, occ.data);
                Ok(())
            }
            kind if occ.wire == 2 => {
                let data = occ.data;
                let mut pos = 0;
                while pos < data.len() {
                    let num = match kind.wire() {
                        1 => {
                            pos += 8;
                            u64::from_le_bytes(data[pos - 8..pos].try_into().expect("8 bytes"))
                        }
                        5 => {
                            pos += 4;
                            u64::from(u32::from_le_bytes(data[pos - 4..pos].try_into().expect("4 bytes")))
                        }
                        _ => varint(data, &mut pos).unwrap_or(0), // checked while reading
                    };
                    sep(&mut self.out);
                    self.scalar(field, num, &[]);
                }
                Ok(())
            }
            _ => {
                sep(&mut self.out);
                self.scalar(field, occ.num, &[]);
                Ok(())
            }
        }
    }

    fn is_zero(field: &Field, occ: Occ) -> bool {
        match field.kind {
            Kind::String | Kind::Bytes => occ.data.is_empty(),
            Kind::Double => occ.num == 0, // the bits: -0.0 is not zero to upb
            kind => int_value(kind, occ.num) == 0,
        }
    }

    fn scalar(&mut self, field: &Field, num: u64, data: &[u8]) {
        let out = &mut self.out;
        match field.kind {
            Kind::String => push_string(out, data),
            Kind::Bytes if field.id_len != 0 => {
                out.push(b'"');
                for &b in data {
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 0xf)]);
                }
                out.push(b'"');
            }
            Kind::Bytes => {
                out.push(b'"');
                let start = out.len();
                out.resize(start + data.len().div_ceil(3) * 4, 0);
                let written = base64::engine::general_purpose::STANDARD
                    .encode_slice(data, &mut out[start..])
                    .expect("sized for the encoding");
                out.truncate(start + written);
                out.push(b'"');
            }
            Kind::Bool => out.extend_from_slice(if num != 0 { b"true" } else { b"false" }),
            Kind::Double => {
                let x = f64::from_bits(num);
                if x.is_nan() {
                    out.extend_from_slice(b"\"NaN\"");
                } else if x.is_infinite() {
                    out.extend_from_slice(if x > 0.0 { b"\"Infinity\"" } else { b"\"-Infinity\"" });
                } else {
                    pyconv::push_float_repr(out, x);
                }
            }
            kind => push_int(out, int_value(kind, num), kind.quoted()),
        }
    }
}

/// Convert protobuf message `root` to OTLP-JSON.
pub fn convert(pb: &[u8], schema: &JsonSchema, root: usize) -> Result<Vec<u8>, JsonError> {
    schema.check_root(root)?;
    let mut enc = Enc { schema, out: Vec::with_capacity(pb.len() * 2 + 2), occs: Vec::new(), heads: Vec::new() };
    enc.message(&[pb], root, 0)?;
    Ok(enc.out)
}
