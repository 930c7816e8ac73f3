//! The audit's walk of one body: `walk.py`'s reference walk step for step, on wire bytes,
//! into a list of value operations (or the questions that must be answered first). It
//! reads the plans and memos and writes nothing.

use rustc_hash::FxHashSet as HashSet;

use super::{Message, Plans, Question, ALWAYS, ATTRS, BODY, MAX_DEPTH, MSG, REPEATED, TEXT};
use crate::engine::wire::{fields, FIXED64, LEN, VARINT};
use crate::engine::Layout;
use crate::sanitize::pychar::is_space;

/// One value operation, on the body's own bytes. Strings stay bytes: they were checked as
/// UTF-8 before the audit saw them (triage's walk, the engine, the protobuf encoder), and
/// the tallies decode only the few that need code points.
pub enum Op<'b> {
    Text(u32, &'b [u8]),
    Int(u32, i64),
    Bytes(u32, &'b [u8]), // text when it is UTF-8 (as `bytes.decode` decides), else a value with no text
    Other(u32),
    Key(u32, &'b [u8]), // an occurrence of a key that itself looks personal
    Program(u32),
}

pub enum Walked<'b> {
    Ops(Vec<Op<'b>>),
    Ask(Vec<Question>),
}

type Res<T> = Result<T, &'static str>;

pub fn run<'b>(layout: &Layout, table: &[Message], texts: &[u32], p: &Plans, body: &'b [u8]) -> Res<Walked<'b>> {
    // About one value operation per 40 bytes of a typical body: grown once or not at all.
    let ops = Vec::with_capacity(body.len() / 32);
    let mut w = Walk { l: layout, table, texts, p, ops, asked: Vec::new(), asked_set: HashSet::default(), stop: false };
    w.message(0, body, 0)?;
    Ok(if w.asked.is_empty() { Walked::Ops(w.ops) } else { Walked::Ask(w.asked) })
}

struct Walk<'a, 'b> {
    l: &'a Layout,
    table: &'a [Message],
    texts: &'a [u32],
    p: &'a Plans,
    ops: Vec<Op<'b>>,
    asked: Vec<Question>,
    asked_set: HashSet<Question>,
    // Set when a question's answer decides what comes next (the value under an unknown key
    // is a kvlist, an array or JSON text): later questions would be asked out of the
    // reference's order, so none are, until the next call.
    stop: bool,
}

/// An AnyValue, as a decoder reads it (the one member set).
enum Any<'b> {
    None,
    Str(&'b [u8]),
    Int(i64),
    Plain, // bool, double
    Array(&'b [u8]),
    Kvlist(&'b [u8]),
    Bytes(&'b [u8]),
}

/// `jsontext.looks_like`: the first non-blank character opens an object or an array.
pub fn looks_like(s: &str) -> bool {
    match s.chars().next() {
        Some('{' | '[') => true,
        Some(c) if is_space(c) => matches!(s.trim_start_matches(is_space).chars().next(), Some('{' | '[')),
        _ => false,
    }
}

/// `looks_like` on a string's bytes: decoded only when it starts blank or non-ASCII.
fn looks_like_bytes(b: &[u8]) -> bool {
    match b.first() {
        Some(b'{' | b'[') => true,
        Some(&c) if c >= 0x80 || c.is_ascii_whitespace() || (0x1c..=0x1f).contains(&c) || c == 0x0b => {
            std::str::from_utf8(b).is_ok_and(looks_like)
        }
        _ => false,
    }
}

fn join(path: &[u8], key: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        key.to_vec()
    } else {
        [path, b".", key].concat()
    }
}

/// The elements of an ArrayValue (AnyValue payloads).
fn elements<'b>(l: &Layout, items: &'b [u8]) -> impl Iterator<Item = Res<&'b [u8]>> {
    let number = l.array_values;
    fields(items).filter_map(move |f| match f {
        Err(e) => Some(Err(e)),
        Ok(f) if f.number != number => None,
        Ok(f) if f.wire != LEN => Some(Err("an array element that is not length-delimited")),
        Ok(f) => Some(Ok(f.payload)),
    })
}

fn owned(b: &[u8]) -> Res<String> {
    String::from_utf8(b.to_vec()).map_err(|_| "invalid UTF-8 in a string")
}

impl<'a, 'b> Walk<'a, 'b> {
    fn message(&mut self, index: u32, buf: &'b [u8], depth: u32) -> Res<()> {
        if depth > MAX_DEPTH {
            return Err("nesting too deep");
        }
        let m: &Message = &self.table[index as usize];
        let (mut seen, mut oneof) = (0u64, [u8::MAX; 16]);
        for f in fields(buf) {
            let f = f?;
            let Some(e) = m.entry(f.number) else { continue };
            if f.wire != LEN {
                return Err("a read field that is not length-delimited");
            }
            let bit = 1u64 << e.slot;
            if e.flags & REPEATED == 0 && seen & bit != 0 {
                return Err("a singular field twice"); // a decoder keeps the last, or merges
            }
            seen |= bit;
            if (e.role == MSG || e.role == TEXT) && e.extra != 0 {
                let g = oneof.get_mut(e.extra as usize).ok_or("a oneof past the table")?;
                if *g != u8::MAX && *g != e.slot {
                    return Err("two members of a oneof");
                }
                *g = e.slot;
            }
            match e.role {
                MSG => self.message(e.target, f.payload, depth + 1)?,
                ATTRS => self.attribute(e.target, e.extra, f.payload, depth + 1)?,
                TEXT => {
                    let s = f.payload;
                    if !s.is_empty() || e.flags & ALWAYS != 0 {
                        let plan = self.text_plan(e.target)?;
                        self.ops.push(Op::Text(plan, s));
                    }
                }
                BODY => {
                    // A value of its own plan, keys inside from the body root ("").
                    let plan = self.text_plan(e.target)?;
                    self.value(plan, f.payload, b"", e.extra, depth + 1)?;
                }
                _ => return Err("unknown role"),
            }
            if self.stop {
                return Ok(());
            }
        }
        for &(slot, text) in &m.always {
            if seen & (1u64 << slot) == 0 {
                let plan = self.text_plan(text)?; // absent: empty, counted all the same
                self.ops.push(Op::Text(plan, b""));
            }
        }
        Ok(())
    }

    fn text_plan(&self, index: u32) -> Res<u32> {
        self.texts.get(index as usize).copied().ok_or("a free-text field with no plan")
    }

    fn ask(&mut self, q: Question) {
        if self.asked_set.insert(q.clone()) {
            self.asked.push(q);
        }
    }

    fn ask_key(&mut self, space: u32, parent: Option<u32>, path: &[u8], key: &[u8]) -> Res<()> {
        self.ask(Question::Key { space, parent, path: owned(path)?, key: owned(key)? });
        Ok(())
    }

    /// A top-level attribute (`walk._attrs`).
    fn attribute(&mut self, space: u32, nested: u32, kv: &'b [u8], depth: u32) -> Res<()> {
        let (key, value) = self.kv(kv)?;
        let known = self.p.top.get(space as usize).ok_or("a space past the table")?.get(key).copied();
        match known {
            Some(plan) => {
                self.key(plan, key)?;
                if let Some(v) = value {
                    self.value(plan, v, key, nested, depth + 1)?;
                }
            }
            None => {
                self.ask_key(space, None, b"", key)?;
                self.stop_if_it_descends(value)?;
            }
        }
        Ok(())
    }

    fn stop_if_it_descends(&mut self, value: Option<&'b [u8]>) -> Res<()> {
        if let Some(v) = value {
            if match self.any(v)? {
                Any::Str(s) => looks_like_bytes(s),
                Any::Array(_) | Any::Kvlist(_) => true,
                _ => false,
            } {
                self.stop = true;
            }
        }
        Ok(())
    }

    fn key(&mut self, plan: u32, key: &'b [u8]) -> Res<()> {
        if self.p.plans.get(plan as usize).ok_or("no such plan")?.key_kinds != 0 {
            self.ops.push(Op::Key(plan, key));
        }
        Ok(())
    }

    /// A value of `plan` at `path`, nested keys in `space` (`walk._value`).
    fn value(&mut self, plan: u32, v: &'b [u8], path: &[u8], space: u32, depth: u32) -> Res<()> {
        if depth > MAX_DEPTH {
            return Err("nesting too deep");
        }
        let skip = self.p.plans[plan as usize].skip;
        match self.any(v)? {
            Any::None => {}
            Any::Str(s) => {
                if !skip && looks_like_bytes(s) {
                    self.json(plan, space, path, s)?;
                } else {
                    self.ops.push(Op::Text(plan, s));
                }
            }
            Any::Int(n) => self.ops.push(Op::Int(plan, n)),
            Any::Plain => self.ops.push(Op::Other(plan)),
            Any::Bytes(b) => self.ops.push(Op::Bytes(plan, b)),
            Any::Kvlist(kvs) => {
                self.ops.push(Op::Other(plan));
                if !skip {
                    self.kvlist(plan, kvs, path, space, depth + 1)?;
                }
            }
            Any::Array(items) => {
                for item in elements(self.l, items) {
                    self.value(plan, item?, path, space, depth + 1)?;
                    if self.stop {
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    fn json(&mut self, plan: u32, space: u32, path: &[u8], s: &'b [u8]) -> Res<()> {
        match self.p.programs.get(&plan).and_then(|m| m.get(s)) {
            Some(&program) => self.ops.push(Op::Program(program)),
            None => self.ask(Question::Json { plan, space, path: owned(path)?, text: owned(s)? }),
        }
        Ok(())
    }

    /// The keys of a kvlist under `parent`'s value at `path` (`walk._kvlist`).
    fn kvlist(&mut self, parent: u32, kvs: &'b [u8], path: &[u8], space: u32, depth: u32) -> Res<()> {
        for f in fields(kvs) {
            let f = f?;
            if f.number != self.l.kvlist_values {
                continue;
            }
            if f.wire != LEN {
                return Err("a kvlist element that is not length-delimited");
            }
            let (key, value) = self.kv(f.payload)?;
            let memo = self.p.nested.get(space as usize).ok_or("a space past the table")?;
            match memo.get(path).and_then(|keys| keys.get(key)).copied() {
                Some(plan) => {
                    self.key(plan, key)?;
                    if let Some(v) = value {
                        self.value(plan, v, &join(path, key), space, depth + 1)?;
                    }
                }
                None => {
                    self.ask_key(space, Some(parent), path, key)?;
                    self.stop_if_it_descends(value)?;
                }
            }
            if self.stop {
                return Ok(());
            }
        }
        Ok(())
    }

    /// A KeyValue's key and value (each at most once: a decoder would keep the last).
    fn kv(&self, kv: &'b [u8]) -> Res<(&'b [u8], Option<&'b [u8]>)> {
        let (mut key, mut value) = (None, None);
        for f in fields(kv) {
            let f = f?;
            if f.number == self.l.kv_key {
                if f.wire != LEN || key.is_some() {
                    return Err("a KeyValue key the walk does not take");
                }
                key = Some(f.payload);
            } else if f.number == self.l.kv_value {
                if f.wire != LEN || value.is_some() {
                    return Err("a KeyValue value the walk does not take");
                }
                value = Some(f.payload);
            }
        }
        Ok((key.unwrap_or(b""), value))
    }

    fn any(&self, v: &'b [u8]) -> Res<Any<'b>> {
        let l = self.l;
        let mut out = Any::None;
        let mut n = 0;
        for f in fields(v) {
            let f = f?;
            let (wire, got) = if f.number == l.string {
                (LEN, Any::Str(f.payload))
            } else if f.number == l.int {
                (VARINT, Any::Int(f.value as i64))
            } else if f.number == l.boolean {
                (VARINT, Any::Plain)
            } else if f.number == l.double {
                (FIXED64, Any::Plain)
            } else if f.number == l.array {
                (LEN, Any::Array(f.payload))
            } else if f.number == l.kvlist {
                (LEN, Any::Kvlist(f.payload))
            } else if f.number == l.bytes {
                (LEN, Any::Bytes(f.payload))
            } else {
                continue;
            };
            if f.wire != wire {
                return Err("an AnyValue member of the wrong wire type");
            }
            n += 1;
            if n > 1 {
                return Err("two members of one AnyValue");
            }
            out = got;
        }
        Ok(out)
    }
}
