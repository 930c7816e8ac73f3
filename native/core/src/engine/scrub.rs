//! The walk of one call: the Python reference (`scrub/*.py`) step for step, on wire bytes.
//! Each function names the reference function it mirrors; where the order of counting or
//! of rules matters, it is the reference's order.

use std::borrow::Cow;
use std::sync::RwLockReadGuard;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use super::value::py_repr;
use super::wire::{self, fields, len_field, text, FIXED64, LEN, VARINT};
use super::{
    encode_question, Answer, Engine, KeyMemo, Op, Outcome, Question, Refused, Report, Signal, TextRule,
    ATTRS, BODY, ITEMS, MAX_DEPTH, MSG, PRUNE, REPEATED, SIZE, SYSTEM, TEXT,
};

pub(super) type Res<T> = Result<T, Refused>;

pub fn run(e: &Engine, sig: &Signal, body: &[u8], keys: &[RwLockReadGuard<KeyMemo>],
           answers: &HashMap<Box<[u8]>, Answer>) -> Res<Outcome> {
    let mut w = Walk {
        e,
        sig,
        keys,
        answers,
        redactions: vec![0; e.n_rules],
        dropped: vec![0; e.n_rules],
        items_in: 0,
        asked: Vec::new(),
        asked_set: HashSet::default(),
        scratch: Vec::new(),
    };
    let out = w.message(0, body, 0)?;
    if !w.asked.is_empty() {
        return Ok(Outcome::Ask(w.asked));
    }
    Ok(Outcome::Done(Report { body: out.bytes, items_in: w.items_in, redactions: w.redactions, dropped: w.dropped }))
}

pub(super) struct Walk<'e, 'g> {
    pub(super) e: &'e Engine,
    pub(super) sig: &'e Signal,
    pub(super) keys: &'e [RwLockReadGuard<'g, KeyMemo>],
    pub(super) answers: &'e HashMap<Box<[u8]>, Answer>,
    pub(super) redactions: Vec<u64>,
    pub(super) dropped: Vec<u64>,
    pub(super) items_in: u64,
    pub(super) asked: Vec<Question>,
    pub(super) asked_set: HashSet<Question>,
    pub(super) scratch: Vec<u8>,
}

/// A walked message: its new bytes (None: unchanged), its size (SIZE fields), and
/// whether an item was dropped anywhere inside it.
struct Out {
    bytes: Option<Vec<u8>>,
    size: u64,
    dropped: bool,
}

pub(super) enum Edit {
    Keep,
    Remove,
    Put(Vec<u8>), // the whole new field
}

pub(super) struct Slot {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) edit: Edit,
    pub(super) prunable: bool, // a PRUNE element of size 0
    pub(super) counted: bool,  // counted in the message's size
}

/// The database system of an attribute list (`attributes.system_of`), read from the
/// original bytes on first need: `db.system.name`, else the last `db.system`.
pub(super) struct System<'b> {
    buf: &'b [u8],
    attrs: u32,
    value: Option<Option<String>>,
}

impl<'b> System<'b> {
    fn none() -> System<'static> {
        System { buf: &[], attrs: 0, value: Some(None) }
    }

    fn get(&mut self, e: &Engine) -> Res<Option<&str>> {
        if self.value.is_none() {
            let l = &e.layout;
            let mut found = None;
            'kvs: for f in fields(self.buf) {
                let f = f.map_err(Refused)?;
                if f.number != self.attrs || self.attrs == 0 {
                    continue;
                }
                let (key, value) = split_kv(f.payload, e)?;
                if key != "db.system.name" && key != "db.system" {
                    continue;
                }
                let mut s = String::new();
                if let Some(v) = value {
                    for g in fields(v) {
                        let g = g.map_err(Refused)?;
                        if g.number == l.string && g.wire == LEN {
                            s = text(g.payload).map_err(Refused)?.to_string();
                        }
                    }
                }
                let s = (!s.is_empty()).then_some(s);
                if key == "db.system.name" {
                    found = s;
                    self.value = Some(found.take());
                    break 'kvs;
                }
                found = s;
            }
            if self.value.is_none() {
                self.value = Some(found);
            }
        }
        Ok(self.value.as_ref().and_then(|v| v.as_deref()))
    }
}

/// A KeyValue's key and value payload (the last of each, as a decoder keeps).
pub(super) fn split_kv<'a>(kv: &'a [u8], e: &Engine) -> Res<(&'a str, Option<&'a [u8]>)> {
    let l = &e.layout;
    let (mut key, mut value) = ("", None);
    for f in fields(kv) {
        let f = f.map_err(Refused)?;
        if f.number == l.kv_key && f.wire == LEN {
            key = text(f.payload).map_err(Refused)?;
        } else if f.number == l.kv_value && f.wire == LEN {
            if value.is_some() {
                return Err(Refused("a KeyValue with two values")); // a decoder merges them
            }
            value = Some(f.payload);
        } else {
            return Err(Refused("a KeyValue field the engine does not know"));
        }
    }
    Ok((key, value))
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    None,
    String,
    Bool,
    Int,
    Double,
    Array,
    Kvlist,
    Bytes,
}

/// The one member set in an AnyValue, with its payload or number.
pub(super) fn kind_of<'a>(v: &'a [u8], e: &Engine) -> Res<(Kind, &'a [u8], u64)> {
    let l = &e.layout;
    let mut found = (Kind::None, &v[..0], 0);
    for f in fields(v) {
        let f = f.map_err(Refused)?;
        let kind = match (f.number, f.wire) {
            (n, LEN) if n == l.string => Kind::String,
            (n, VARINT) if n == l.boolean => Kind::Bool,
            (n, VARINT) if n == l.int => Kind::Int,
            (n, FIXED64) if n == l.double => Kind::Double,
            (n, LEN) if n == l.array => Kind::Array,
            (n, LEN) if n == l.kvlist => Kind::Kvlist,
            (n, LEN) if n == l.bytes => Kind::Bytes,
            _ => return Err(Refused("an AnyValue field the engine does not know")),
        };
        if found.0 != Kind::None {
            return Err(Refused("two members of AnyValue's oneof")); // the decoder keeps the last
        }
        found = (kind, f.payload, f.value);
    }
    Ok(found)
}

/// Python's `str.isspace` (Unicode whitespace plus the information separators).
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// `jsontext.looks_like`: the first non-blank character opens an object or an array.
fn looks_like_json(s: &str) -> bool {
    matches!(s.trim_start_matches(py_space).chars().next(), Some('{' | '['))
}

fn join<'a>(parent: Option<&str>, key: &'a str) -> Cow<'a, str> {
    match parent {
        None | Some("") => Cow::Borrowed(key),
        Some(p) => Cow::Owned(format!("{p}.{key}")),
    }
}

impl<'e, 'g> Walk<'e, 'g> {
    pub(super) fn count(&mut self, rule: u32) {
        if let Some(n) = self.redactions.get_mut(rule as usize) {
            *n += 1;
        }
    }

    fn apply(&mut self, a: &Answer) {
        for &(rule, n) in &a.counts {
            if let Some(c) = self.redactions.get_mut(rule as usize) {
                *c += u64::from(n);
            }
        }
    }

    /// The memoised answer to `q` (encoded in `scratch`), or None after asking it.
    pub(super) fn answer(&mut self, q: Question) -> Option<&'e Answer> {
        encode_question(&q, &mut self.scratch);
        let answers = self.answers;
        if let Some(a) = answers.get(self.scratch.as_slice()) {
            return Some(a);
        }
        if self.asked_set.insert(q.clone()) {
            self.asked.push(q);
        }
        None
    }

    pub(super) fn string_value(&self, s: &[u8]) -> Vec<u8> {
        len_field(self.e.layout.string, s)
    }

    // --- messages (scrub/traces.py, metrics.py, logs.py, common.py, drop.py) -------------

    fn message(&mut self, m: usize, buf: &[u8], depth: u32) -> Res<Out> {
        if depth > MAX_DEPTH {
            return Err(Refused("nested too deep"));
        }
        let sig = self.sig;
        let msg = sig.messages.get(m).ok_or(Refused("bad message index"))?;
        let mut slots: Vec<Slot> = Vec::new();
        let mut changed = false;
        let (mut size, mut dropped) = (0u64, false);
        let mut system = System { buf, attrs: msg.attrs, value: None };
        for f in fields(buf) {
            let f = f.map_err(Refused)?;
            let r = msg.role(f.number);
            if r.role != super::PLAIN && f.wire != LEN {
                return Err(Refused("a wire type the field does not take"));
            }
            let mut slot = Slot { start: f.start, end: f.end, edit: Edit::Keep, prunable: false, counted: false };
            match r.role {
                MSG => {
                    let child = self.message(r.target as usize, f.payload, depth + 1)?;
                    dropped |= child.dropped;
                    if r.flags & SIZE != 0 {
                        size += if r.flags & REPEATED != 0 { 1 } else { child.size };
                        slot.counted = r.flags & REPEATED != 0;
                    }
                    slot.prunable = r.flags & PRUNE != 0 && child.size == 0;
                    if let Some(b) = child.bytes {
                        slot.edit = Edit::Put(len_field(f.number, &b));
                    }
                }
                ITEMS => {
                    self.items_in += 1;
                    if let Some(rule) = self.drop_rule(r.target as usize, f.payload)? {
                        self.dropped[rule as usize] += 1;
                        dropped = true;
                        slot.edit = Edit::Remove;
                    } else {
                        let child = self.message(r.target as usize, f.payload, depth + 1)?;
                        dropped |= child.dropped;
                        size += u64::from(r.flags & SIZE != 0);
                        if let Some(b) = child.bytes {
                            slot.edit = Edit::Put(len_field(f.number, &b));
                        }
                    }
                }
                ATTRS => {
                    if let Some(kv) = self.keyvalue(f.payload, r.target, None, &[], &mut system, depth + 1)? {
                        slot.edit = match kv {
                            None => Edit::Remove,
                            Some(b) => Edit::Put(len_field(f.number, &b)),
                        };
                    }
                }
                TEXT => {
                    let sys = if r.flags & SYSTEM != 0 { system.get(self.e)?.map(str::to_string) } else { None };
                    if let Some(out) = self.text_field(r.target, text(f.payload).map_err(Refused)?, sys)? {
                        slot.edit = if out.is_empty() && r.flags & REPEATED == 0 {
                            Edit::Remove // proto3: an empty string is not written
                        } else {
                            Edit::Put(len_field(f.number, out.as_bytes()))
                        };
                    }
                }
                BODY => {
                    if let Some(body) = self.body(r.target, r.extra, f.payload, depth + 1)? {
                        slot.edit = match body {
                            None => Edit::Remove,
                            Some(b) => Edit::Put(len_field(f.number, &b)),
                        };
                    }
                }
                _ => continue,
            }
            if !matches!(slot.edit, Edit::Keep) {
                changed = true;
            }
            if slot.prunable || !matches!(slot.edit, Edit::Keep) {
                slots.push(slot);
            }
        }
        if dropped {
            // prune_empty: containers a drop below left without items.
            for slot in slots.iter_mut().filter(|s| s.prunable) {
                slot.edit = Edit::Remove;
                changed = true;
                if slot.counted {
                    size -= 1;
                }
            }
        }
        let bytes = changed.then(|| assemble(buf, &slots));
        Ok(Out { bytes, size, dropped })
    }

    /// drop._matching_rule: the first rule, in file order, that an original attribute of
    /// the item satisfies.
    fn drop_rule(&mut self, item: usize, buf: &[u8]) -> Res<Option<u32>> {
        let sig = self.sig;
        if sig.drops.is_empty() {
            return Ok(None);
        }
        let attrs = sig.messages.get(item).ok_or(Refused("bad message index"))?.attrs;
        let mut first: Option<u32> = None;
        for f in fields(buf) {
            let f = f.map_err(Refused)?;
            if f.number != attrs || attrs == 0 {
                continue;
            }
            let (key, value) = split_kv(f.payload, self.e)?;
            let Some(rules) = sig.drops.get(key) else { continue };
            let Some(value) = value else { continue };
            let Some(text) = self.text_of(value)? else { continue };
            for (rule, test) in rules {
                if first.is_none_or(|f| *rule < f) && test.test(&text) {
                    first = Some(*rule);
                    break;
                }
            }
        }
        Ok(first)
    }

    /// attributes.text_of: the canonical text of a scalar, None for other values.
    fn text_of<'a>(&self, v: &'a [u8]) -> Res<Option<Cow<'a, str>>> {
        let (kind, payload, n) = kind_of(v, self.e)?;
        Ok(match kind {
            Kind::String => Some(Cow::Borrowed(text(payload).map_err(Refused)?)),
            Kind::Int => Some(Cow::Owned((n as i64).to_string())),
            Kind::Bool => Some(Cow::Borrowed(if n != 0 { "true" } else { "false" })),
            Kind::Double => Some(Cow::Owned(py_repr(f64::from_bits(n)))),
            _ => None,
        })
    }

    // --- attributes (scrub/attributes.py _scrub_kvs, _value, scrub_string) --------------

    /// One KeyValue under `decider` (nested under `parent` when Some): None when it is
    /// unchanged, Some(None) when removed, Some(Some(bytes)) when rewritten.
    fn keyvalue(&mut self, kv: &[u8], decider: u32, parent: Option<&str>, inherited: &[u32],
                system: &mut System, depth: u32) -> Res<Option<Option<Vec<u8>>>> {
        let (key, value) = split_kv(kv, self.e)?;
        let keys = self.keys;
        let memo = keys.get(decider as usize).ok_or(Refused("bad decider"))?;
        let found = self.e.decision(memo, parent, key, &mut self.scratch);
        let descend = self.e.deciders[decider as usize].descend;
        let Some(d) = found else {
            // Unknown key: ask, and look inside its value for the nested keys to ask too.
            let q = Question::Key { decider, parent: parent.map(str::to_string), key: key.to_string() };
            if self.asked_set.insert(q.clone()) {
                self.asked.push(q);
            }
            if let Some(v) = value {
                let path = join(parent, key);
                self.value(v, decider, &path, &[], system, depth, true)?;
            }
            return Ok(None);
        };
        let mut new_key = None;
        if let Some(k) = &d.new_key {
            for &rule in &d.key_rules {
                self.count(rule);
            }
            new_key = Some(k.as_bytes());
        }
        let value_out: Option<Vec<u8>> = match &d.op {
            Op::Keep => {
                let masks: &[u32] = if d.masks.is_empty() { inherited } else { &d.masks };
                match value {
                    Some(v) if descend || !masks.is_empty() => {
                        let path = join(parent, key);
                        self.value(v, decider, &path, masks, system, depth, false)?
                    }
                    _ => None,
                }
            }
            Op::Remove => {
                self.count(d.rule);
                return Ok(Some(None));
            }
            Op::Hash { collector } => {
                self.count(d.rule);
                let v = value.unwrap_or(&[]);
                if *collector { Some(self.collector_hash(v)?) } else { self.hash_value(v, depth)? }
            }
            Op::Replace(s) => {
                self.count(d.rule);
                Some(self.string_value(s.as_bytes()))
            }
            Op::Rewrite => {
                self.count(d.rule);
                let masks: &[u32] = if d.masks.is_empty() { inherited } else { &d.masks };
                let sys = system.get(self.e)?.map(str::to_string);
                match (self.e.rewriters.get(d.rule as usize).copied().flatten(), value) {
                    (Some(rw), Some(v)) => self.rewrite_value(v, rw, masks, sys.as_deref(), depth)?,
                    (Some(_), None) => None, // no value: nothing to sanitize
                    (None, _) => {
                        let q = Question::Rewrite { rule: d.rule, masks: masks.to_vec(), system: sys, value: value.unwrap_or(&[]).to_vec() };
                        match self.answer(q) {
                            Some(a) => {
                                self.apply(a);
                                a.out.clone()
                            }
                            None => None,
                        }
                    }
                }
            }
        };
        if new_key.is_none() && value_out.is_none() {
            return Ok(None);
        }
        let l = self.e.layout;
        let mut out = Vec::with_capacity(kv.len() + 16);
        for f in fields(kv) {
            let f = f.map_err(Refused)?;
            if f.number != l.kv_key && f.number != l.kv_value {
                out.extend_from_slice(&kv[f.start..f.end]);
            }
        }
        wire::put_len(&mut out, l.kv_key, new_key.unwrap_or(key.as_bytes()));
        match (&value_out, value) {
            (Some(v), _) => wire::put_len(&mut out, l.kv_value, v),
            (None, Some(v)) => wire::put_len(&mut out, l.kv_value, v),
            (None, None) => {}
        }
        Ok(Some(Some(out)))
    }

    /// attributes._value (with the kind checks of _scrub_kvs for a kept value): the new
    /// AnyValue, None when unchanged. `discover`: only walk for unknown nested keys.
    #[allow(clippy::too_many_arguments)]
    fn value(&mut self, v: &[u8], decider: u32, path: &str, masks: &[u32], system: &mut System, depth: u32,
             discover: bool) -> Res<Option<Vec<u8>>> {
        if depth > MAX_DEPTH {
            return Err(Refused("nested too deep"));
        }
        let l = self.e.layout;
        let (kind, payload, n) = kind_of(v, self.e)?;
        match kind {
            Kind::Kvlist => {
                let mut slots = Vec::new();
                for f in fields(payload) {
                    let f = f.map_err(Refused)?;
                    if f.number != l.kvlist_values || f.wire != LEN {
                        return Err(Refused("a KeyValueList field the engine does not know"));
                    }
                    if let Some(kv) = self.keyvalue(f.payload, decider, Some(path), masks, system, depth + 1)? {
                        let edit = match kv {
                            None => Edit::Remove,
                            Some(b) => Edit::Put(len_field(f.number, &b)),
                        };
                        slots.push(Slot { start: f.start, end: f.end, edit, prunable: false, counted: false });
                    }
                }
                Ok((!slots.is_empty() && !discover).then(|| len_field(l.kvlist, &assemble(payload, &slots))))
            }
            Kind::Array => {
                let out = self.map_values(kind, payload, depth, |w, v, d| w.value(v, decider, path, masks, system, d, discover))?;
                Ok(out.filter(|_| !discover))
            }
            _ if discover => Ok(None),
            Kind::String => {
                let s = text(payload).map_err(Refused)?;
                Ok(self.scrub_string(s, decider, path, masks, system)?.map(|out| self.string_value(out.as_bytes())))
            }
            Kind::Bytes if !masks.is_empty() => {
                let Ok(s) = std::str::from_utf8(payload) else { return Ok(None) }; // not text: key rules only
                Ok(self.scrub_string(s, decider, path, masks, system)?.map(|out| len_field(l.bytes, out.as_bytes())))
            }
            Kind::Int if !masks.is_empty() => Ok(self.mask_int(n as i64, masks).map(|out| self.string_value(out.as_bytes()))),
            _ => Ok(None),
        }
    }

    /// attributes.scrub_string: JSON text is the reference's (a question); other text
    /// is masked.
    fn scrub_string(&mut self, s: &str, decider: u32, path: &str, masks: &[u32], system: &mut System)
                    -> Res<Option<String>> {
        if looks_like_json(s) {
            let q = Question::Json {
                decider,
                path: path.to_string(),
                masks: masks.to_vec(),
                system: system.get(self.e)?.map(str::to_string),
                text: s.to_string(),
            };
            return Ok(match self.answer(q) {
                Some(a) => {
                    self.apply(a);
                    a.out.as_ref().map(|b| String::from_utf8_lossy(b).into_owned())
                }
                None => None,
            });
        }
        Ok(if masks.is_empty() { None } else { self.mask_text(s, masks) })
    }

    // --- free-text fields and bodies (text.scrub_text, attributes.scrub_value) ---------

    /// A free-text field after its ops: Some(new text), None when unchanged.
    fn text_field(&mut self, ops: u32, s: &str, system: Option<String>) -> Res<Option<String>> {
        if s.is_empty() {
            return Ok(None);
        }
        let e = self.e;
        let t = e.texts.get(ops as usize).ok_or(Refused("bad text ops"))?;
        if t.python {
            let q = Question::Text { ops, text: s.to_string(), system };
            return Ok(match self.answer(q) {
                Some(a) => {
                    self.apply(a);
                    a.out.as_ref().map(|b| String::from_utf8_lossy(b).into_owned())
                }
                None => None,
            });
        }
        // text.scrub_text: sanitizers each run (counted when they change the text), a
        // delete or replace ends the list; then the masks on what is left.
        let mut out: Cow<str> = Cow::Borrowed(s);
        for r in &t.rules {
            match r {
                TextRule::Rewrite(rule, rw) => {
                    let new = rw.apply(&out, system.as_deref());
                    if new != *out {
                        self.count(*rule);
                        out = Cow::Owned(new);
                    }
                }
                TextRule::Remove(rule) => {
                    self.count(*rule);
                    return Ok(Some(String::new()));
                }
                TextRule::Replace(rule, r) => {
                    self.count(*rule);
                    return Ok(Some(r.clone()));
                }
                TextRule::Python => return Err(Refused("a text rule with no native form")), // python is set
            }
        }
        if !t.masks.is_empty() {
            if let Some(masked) = self.mask_text(&out, &t.masks) {
                out = Cow::Owned(masked);
            }
        }
        Ok((*out != *s).then(|| out.into_owned()))
    }

    /// A log body: its whole-field rule, then key rules and masks inside it. None:
    /// unchanged; Some(None): removed; Some(Some(bytes)): the new AnyValue.
    fn body(&mut self, ops: u32, decider: u32, v: &[u8], depth: u32) -> Res<Option<Option<Vec<u8>>>> {
        let e = self.e;
        let t = e.texts.get(ops as usize);
        let (kind, _, _) = kind_of(v, e)?;
        if kind != Kind::None {
            // attributes.scrub_value: the first whole-field rule, when it deletes or replaces.
            match t.and_then(|t| t.rules.first()) {
                Some(TextRule::Remove(rule)) => {
                    self.count(*rule);
                    return Ok(Some(None));
                }
                Some(TextRule::Replace(rule, r)) => {
                    self.count(*rule);
                    return Ok(Some(Some(self.string_value(r.as_bytes()))));
                }
                _ => {}
            }
        }
        let masks: &[u32] = t.map_or(&[], |t| &t.masks);
        let descend = e.deciders.get(decider as usize).ok_or(Refused("bad decider"))?.descend;
        if !descend && masks.is_empty() {
            return Ok(None);
        }
        let mut system = System::none();
        Ok(self.value(v, decider, "", masks, &mut system, depth, false)?.map(Some))
    }
}

pub(super) fn assemble(buf: &[u8], slots: &[Slot]) -> Vec<u8> {
    let mut out = Vec::with_capacity(buf.len() + 64);
    let mut pos = 0;
    for s in slots {
        out.extend_from_slice(&buf[pos..s.start]);
        match &s.edit {
            Edit::Keep => out.extend_from_slice(&buf[s.start..s.end]),
            Edit::Remove => {}
            Edit::Put(b) => out.extend_from_slice(b),
        }
        pos = s.end;
    }
    out.extend_from_slice(&buf[pos..]);
    out
}
