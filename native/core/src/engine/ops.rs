//! The value operations of the walk (`scrub.rs`): masks on text and integers, the
//! sanitizers on whole values, and the two hashes -- each the Python reference function it
//! names, on AnyValue wire bytes.

use std::borrow::Cow;

use super::scrub::{assemble, kind_of, split_kv, Edit, Kind, Res, Slot, Walk};
use super::value::py_repr;
use super::wire::{self, fields, len_field, text, LEN};
use super::{Question, Refused, Rewriter, MAX_DEPTH};

impl<'e, 'g> Walk<'e, 'g> {
    /// text.mask_text: every mask in order, each on what the previous one left.
    pub(super) fn mask_text(&mut self, s: &str, masks: &[u32]) -> Option<String> {
        let mut out: Option<String> = None;
        for &m in masks {
            let current = out.as_deref().unwrap_or(s);
            if let Some(masked) = self.mask_one(m, current, false) {
                out = Some(masked);
                self.count(m);
            }
        }
        out
    }

    fn mask_one(&mut self, rule: u32, s: &str, digits: bool) -> Option<String> {
        let e = self.e;
        if let Some(Some(native)) = e.masks.get(rule as usize) {
            let masker = if digits { native.digits.as_deref()? } else { native.all.as_ref() };
            return masker.mask(s);
        }
        let q = Question::Mask { rule, digits, text: s.to_string() };
        self.answer(q).and_then(|a| a.out.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()))
    }

    /// text.mask_int: the digit detectors on the decimal text of a long enough integer.
    pub(super) fn mask_int(&mut self, n: i64, masks: &[u32]) -> Option<String> {
        let short = self.e.int_short;
        if -short < n && n < short {
            return None;
        }
        let mut out: Option<String> = None;
        for &m in masks {
            if !self.e.mask_digits.get(m as usize).copied().unwrap_or(false) {
                continue;
            }
            let current = out.clone().unwrap_or_else(|| n.to_string());
            if let Some(masked) = self.mask_one(m, &current, true) {
                out = Some(masked);
                self.count(m);
            }
        }
        out
    }

    /// attributes.rewrite_value then mask_value: every string inside the value sanitized
    /// (bytes read as UTF-8, invalid sequences replaced, become strings), then masked.
    pub(super) fn rewrite_value(&mut self, v: &[u8], rw: Rewriter, masks: &[u32], system: Option<&str>, depth: u32)
                     -> Res<Option<Vec<u8>>> {
        if depth > MAX_DEPTH {
            return Err(Refused("nested too deep"));
        }
        let (kind, payload, _) = kind_of(v, self.e)?;
        let text = match kind {
            Kind::String => Cow::Borrowed(text(payload).map_err(Refused)?),
            Kind::Bytes => String::from_utf8_lossy(payload),
            Kind::Array | Kind::Kvlist => {
                return self.map_values(kind, payload, depth, |w, v, d| w.rewrite_value(v, rw, masks, system, d));
            }
            _ => return Ok(None), // numbers and booleans carry no text to sanitize
        };
        let mut out = rw.apply(&text, system);
        if !masks.is_empty() {
            if let Some(masked) = self.mask_text(&out, masks) {
                out = masked;
            }
        }
        Ok(Some(self.string_value(out.as_bytes())))
    }

    /// Each value of an array or a kvlist (``kind``, its ``payload``) through ``each``
    /// (in a kvlist, each KeyValue's value, its key kept): the new AnyValue when any changed.
    pub(super) fn map_values(&mut self, kind: Kind, payload: &[u8], depth: u32,
                             mut each: impl FnMut(&mut Self, &[u8], u32) -> Res<Option<Vec<u8>>>)
                             -> Res<Option<Vec<u8>>> {
        let l = self.e.layout;
        let (inner, member) = if kind == Kind::Array { (l.array_values, l.array) } else { (l.kvlist_values, l.kvlist) };
        let mut slots = Vec::new();
        for f in fields(payload) {
            let f = f.map_err(Refused)?;
            if f.number != inner || f.wire != LEN {
                return Err(Refused("a list field the engine does not know"));
            }
            let new = if kind == Kind::Array {
                each(self, f.payload, depth + 1)?
            } else {
                match split_kv(f.payload, self.e)?.1 {
                    Some(v) => match each(self, v, depth + 1)? {
                        Some(nv) => Some(self.replace_kv_value(f.payload, &nv)?),
                        None => None,
                    },
                    None => None,
                }
            };
            if let Some(b) = new {
                let edit = Edit::Put(len_field(f.number, &b));
                slots.push(Slot { start: f.start, end: f.end, edit, prunable: false, counted: false });
            }
        }
        Ok((!slots.is_empty()).then(|| len_field(member, &assemble(payload, &slots))))
    }

    /// A KeyValue with its value replaced (its key and any other field kept).
    fn replace_kv_value(&self, kv: &[u8], value: &[u8]) -> Res<Vec<u8>> {
        let l = self.e.layout;
        let mut out = Vec::with_capacity(kv.len() + value.len());
        for f in fields(kv) {
            let f = f.map_err(Refused)?;
            if f.number != l.kv_value {
                out.extend_from_slice(&kv[f.start..f.end]);
            }
        }
        wire::put_len(&mut out, l.kv_value, value);
        Ok(out)
    }

    /// attributes.hash_value: every scalar by the hex hash of its canonical bytes;
    /// arrays and kvlists keep their shape. None: nothing to hash.
    pub(super) fn hash_value(&mut self, v: &[u8], depth: u32) -> Res<Option<Vec<u8>>> {
        if depth > MAX_DEPTH {
            return Err(Refused("nested too deep"));
        }
        let e = self.e;
        let hasher = e.hasher.as_ref().ok_or(Refused("no hash key loaded"))?;
        let (kind, payload, n) = kind_of(v, e)?;
        let hex = match kind {
            Kind::String | Kind::Bytes => hasher.hex(payload),
            Kind::Int => hasher.hex((n as i64).to_string().as_bytes()),
            Kind::Bool => hasher.hex(if n != 0 { b"true" } else { b"false" }),
            Kind::Double => hasher.hex(py_repr(f64::from_bits(n)).as_bytes()),
            Kind::Array | Kind::Kvlist => return self.map_values(kind, payload, depth, |w, v, d| w.hash_value(v, d)),
            Kind::None => return Ok(None),
        };
        Ok(Some(self.string_value(hex.as_bytes())))
    }

    /// attributes.collector_hash_value: the collector's bytes (strings as UTF-8, bools as
    /// one byte, ints and doubles as 8 little-endian bytes); any other value becomes "".
    pub(super) fn collector_hash(&mut self, v: &[u8]) -> Res<Vec<u8>> {
        let e = self.e;
        let hasher = e.hasher.as_ref().ok_or(Refused("no hash key loaded"))?;
        let (kind, payload, n) = kind_of(v, e)?;
        let hex = match kind {
            Kind::String => hasher.hex(payload),
            Kind::Bool => hasher.hex(&[u8::from(n != 0)]),
            Kind::Int | Kind::Double => hasher.hex(&n.to_le_bytes()),
            _ => String::new(),
        };
        Ok(self.string_value(hex.as_bytes()))
    }
}
