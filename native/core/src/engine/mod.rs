//! The per-request engine: one OTLP protobuf body in, the scrubbed body (or "unchanged")
//! and its counts out, in one pass over the wire bytes.
//!
//! Strategy: the walk is driven by a table built in Python from the protobuf descriptors
//! and `fields.py` (`redact_proxy/engine.py`), so this module knows no OTLP field number.
//! It reads each field once and splices: an unchanged field is copied as its bytes, a
//! changed one re-encoded, and only the messages on the path to a change (and their
//! length prefixes) are rebuilt. Key rules, keep_only, hash, replace, delete, masks,
//! drops and the pruning of emptied containers are done here. What only the Python
//! reference can compute -- a key's decision (its rules are RE2 patterns over paths and
//! tails), a sanitizer's output, JSON text, a mask this build has no native masker for --
//! the engine does not guess: the call returns those *questions*, Python answers them
//! into the engine's bounded memos (`learn_*`), and the call is made again. Keys repeat,
//! so in steady state a batch is one call; a memo that fills is cleared before it learns,
//! so a batch whose questions do not fit at once fails over to the reference path.
//!
//! Threads: the memos sit behind `RwLock`s. A call holds the read locks for its whole
//! walk (it never writes); `learn_*` takes the write lock between two calls. Counts are
//! per call, returned to the caller, never shared.

mod ops;
mod scrub;
pub mod spec;
pub mod value;
pub mod wire;

use std::sync::{Arc, RwLock};

use rustc_hash::FxHashMap as HashMap;

use crate::hash::Hasher;

/// What the walk does with a field of a message (the `role` of a table entry).
pub const PLAIN: u8 = 0; // copied as it is
pub const MSG: u8 = 1; // a submessage (`target`: its message), walked
pub const ITEMS: u8 = 2; // an item (span, data point, log record): counted, drop-checked, walked
pub const ATTRS: u8 = 3; // a KeyValue of an attribute list (`target`: its decider)
pub const TEXT: u8 = 4; // a free-text string (`target`: its text ops)
pub const BODY: u8 = 5; // a log body AnyValue (`target`: text ops, `extra`: decider)

/// Entry flags.
pub const REPEATED: u8 = 1; // a repeated field: an emptied string stays as an element
pub const SIZE: u8 = 2; // counts toward the message's size (elements, or the child's size)
pub const PRUNE: u8 = 4; // after a drop below, elements of size 0 are removed
pub const SYSTEM: u8 = 8; // TEXT: read with the item's database system

/// Nesting the walk follows (values in kvlists and arrays included); deeper bodies go to
/// the reference path, whose decoder has its own limit (100).
pub const MAX_DEPTH: u32 = 128;

pub type Entry = (u32, u8, u32, u8, u32); // (number, role, target, flags, extra)

#[derive(Clone, Copy, Default)]
pub struct Role {
    pub role: u8,
    pub target: u32,
    pub flags: u8,
    pub extra: u32,
}

pub struct Message {
    pub fields: Vec<Role>, // by field number; PLAIN beyond the end
    pub attrs: u32,        // the number of its ATTRS field, 0: none
}

impl Message {
    #[inline]
    pub fn role(&self, number: u32) -> Role {
        self.fields.get(number as usize).copied().unwrap_or_default()
    }
}

/// Field numbers of the common messages (from the descriptors, like the table).
#[derive(Clone, Copy)]
pub struct Layout {
    pub kv_key: u32,
    pub kv_value: u32,
    pub string: u32,
    pub boolean: u32,
    pub int: u32,
    pub double: u32,
    pub array: u32,
    pub kvlist: u32,
    pub bytes: u32,
    pub array_values: u32,
    pub kvlist_values: u32,
}

impl Layout {
    /// From the numbers in this order (what `engine.py` `_layout` lists).
    pub fn from_numbers(numbers: [u32; 11]) -> Layout {
        let [kv_key, kv_value, string, boolean, int, double, array, kvlist, bytes, array_values, kvlist_values] = numbers;
        Layout { kv_key, kv_value, string, boolean, int, double, array, kvlist, bytes, array_values, kvlist_values }
    }
}

pub struct Signal {
    pub messages: Vec<Message>, // 0: the export request
    pub drops: HashMap<String, Vec<(u32, DropTest)>>, // tested key -> (rule, test), file order
}

pub enum DropTest {
    Values(rustc_hash::FxHashSet<String>),
    Regex(regex::bytes::Regex),
}

impl DropTest {
    pub fn test(&self, text: &str) -> bool {
        match self {
            DropTest::Values(set) => set.contains(text),
            DropTest::Regex(re) => re.is_match(text.as_bytes()),
        }
    }
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Op {
    Keep,
    Remove,
    Hash { collector: bool },
    Replace(String),
    Rewrite,
}

/// A key's fate, as the Python decider computed it.
#[derive(Clone, Debug)]
pub struct Decision {
    pub op: Op,
    pub rule: u32,
    pub masks: Vec<u32>, // mask rules on the value (policy rule indices)
    pub new_key: Option<String>,
    pub key_rules: Vec<u32>,
}

/// A free-text field's rules (`TextOps` of the compiler), in file order, then its masks.
/// `python`: a rule the engine has no native form of is among them: the whole field is
/// then a question.
#[derive(Clone)]
pub struct TextOps {
    pub python: bool,
    pub rules: Vec<TextRule>,
    pub masks: Vec<u32>,
}

#[derive(Clone)]
pub enum TextRule {
    Remove(u32),
    Replace(u32, String),
    Rewrite(u32, Rewriter),
    Python,
}

/// The sanitizers (`policy/statements.py`, `policy/url.py`, ported in `crate::sanitize`).
#[derive(Clone, Copy, Debug)]
pub enum Rewriter {
    Statement,              // statements.sanitize(text, system): values
    Url { path_ids: bool }, // url.sanitize_url: values
    StatementName,          // statements.sanitize_span_name: span names
    UrlName { path_ids: bool }, // url.sanitize_span_name: span names
}

impl Rewriter {
    pub fn apply(self, text: &str, system: Option<&str>) -> String {
        use crate::sanitize;
        match self {
            Rewriter::Statement => sanitize::sanitize_statement(text, system),
            Rewriter::Url { path_ids } => sanitize::sanitize_url(text, path_ids),
            Rewriter::StatementName => sanitize::sql_span_name(text, system),
            Rewriter::UrlName { path_ids } => sanitize::url_span_name(text, path_ids),
        }
    }
}

/// One native mask rule: the masker over all its detectors and regexes, and the one over
/// its digit detectors (for integers).
pub trait TextMask: Send + Sync {
    fn mask(&self, text: &str) -> Option<String>;
}

pub struct MaskRule {
    pub all: Box<dyn TextMask>,
    pub digits: Option<Box<dyn TextMask>>,
}

impl TextMask for crate::mask::Masker {
    fn mask(&self, text: &str) -> Option<String> {
        crate::mask::Masker::mask(self, text)
    }
}

/// What the engine asks Python. `system`: the item's database system.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Question {
    Key { decider: u32, parent: Option<String>, key: String },
    Text { ops: u32, text: String, system: Option<String> },
    Rewrite { rule: u32, masks: Vec<u32>, system: Option<String>, value: Vec<u8> },
    Json { decider: u32, path: String, masks: Vec<u32>, system: Option<String>, text: String },
    Mask { rule: u32, digits: bool, text: String },
}

/// Python's answer to a non-key question: the new text (or AnyValue bytes for Rewrite),
/// None when unchanged, and the redactions it counted, by rule.
#[derive(Clone)]
pub struct Answer {
    pub out: Option<Vec<u8>>,
    pub counts: Vec<(u32, u32)>,
}

pub struct Decider {
    pub descend: bool,
}

#[derive(Default)]
pub struct KeyMemo {
    top: HashMap<Box<str>, Decision>,
    nested: HashMap<Box<[u8]>, Decision>, // nested_key(parent, key)
}

pub fn nested_key(parent: &str, key: &str, buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(&(parent.len() as u32).to_le_bytes());
    buf.extend_from_slice(parent.as_bytes());
    buf.extend_from_slice(key.as_bytes());
}

/// Entries per memo before it is cleared (keys per decider; answers overall).
pub const KEY_MEMO_LIMIT: usize = 16384;
pub const ANSWER_MEMO_LIMIT: usize = 65536;
pub const ANSWER_MEMO_BYTES: usize = 64 << 20;

#[derive(Default)]
pub struct AnswerMemo {
    map: HashMap<Box<[u8]>, Answer>,
    bytes: usize,
}

pub struct Engine {
    pub layout: Layout,
    pub signals: Vec<Signal>,
    pub deciders: Vec<Decider>,
    pub texts: Vec<TextOps>,
    pub masks: Vec<Option<MaskRule>>, // by rule index; None: not a mask rule, or not native
    pub mask_digits: Vec<bool>,       // by rule index: the mask rule has digit detectors
    pub rewriters: Vec<Option<Rewriter>>, // by rule index: a sanitize_* key rule's sanitizer
    pub int_short: i64,               // integers closer to 0 than this have too few digits to mask
    pub hasher: Option<Arc<Hasher>>,
    pub n_rules: usize,
    keys: Vec<RwLock<KeyMemo>>,
    answers: RwLock<AnswerMemo>,
}

/// The result of one call.
pub enum Outcome {
    Done(Report),
    Ask(Vec<Question>),
}

pub struct Report {
    pub body: Option<Vec<u8>>, // None: unchanged
    pub items_in: u64,
    pub redactions: Vec<u64>,
    pub dropped: Vec<u64>,
}

#[derive(Debug)]
pub struct Refused(pub &'static str);

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub fn new(layout: Layout, signals: Vec<Signal>, deciders: Vec<Decider>, texts: Vec<TextOps>,
               masks: Vec<Option<MaskRule>>, mask_digits: Vec<bool>, int_short: i64, hasher: Option<Arc<Hasher>>,
               n_rules: usize) -> Engine {
        let keys = deciders.iter().map(|_| RwLock::new(KeyMemo::default())).collect();
        Engine {
            layout, signals, deciders, texts, masks, mask_digits, rewriters: Vec::new(), int_short, hasher, n_rules, keys,
            answers: RwLock::new(AnswerMemo::default()),
        }
    }

    /// Scrub one body of signal `signal`. Err: the body is not what the table describes
    /// (the caller takes the reference path, whose decoder gives the client its answer).
    pub fn scrub(&self, signal: usize, body: &[u8]) -> Result<Outcome, Refused> {
        let sig = self.signals.get(signal).ok_or(Refused("unknown signal"))?;
        let keys: Vec<_> = self.keys.iter().map(|k| k.read().unwrap_or_else(|e| e.into_inner())).collect();
        let answers = self.answers.read().unwrap_or_else(|e| e.into_inner());
        scrub::run(self, sig, body, &keys, &answers.map)
    }

    pub fn learn_key(&self, decider: usize, parent: Option<&str>, key: &str, d: Decision) {
        let Some(lock) = self.keys.get(decider) else { return };
        let mut memo = lock.write().unwrap_or_else(|e| e.into_inner());
        match parent {
            None => {
                if memo.top.len() >= KEY_MEMO_LIMIT {
                    memo.top.clear();
                }
                memo.top.insert(key.into(), d);
            }
            Some(parent) => {
                if memo.nested.len() >= KEY_MEMO_LIMIT {
                    memo.nested.clear();
                }
                let mut buf = Vec::new();
                nested_key(parent, key, &mut buf);
                memo.nested.insert(buf.into_boxed_slice(), d);
            }
        }
    }

    /// Learn the answers to one call's questions, all at once: when they do not fit
    /// beside what the memo holds, it is cleared first.
    pub fn learn_answers(&self, answers: Vec<(Question, Answer)>) {
        let mut memo = self.answers.write().unwrap_or_else(|e| e.into_inner());
        let mut encoded = Vec::with_capacity(answers.len());
        let mut bytes = 0;
        for (q, a) in answers {
            let mut key = Vec::new();
            if !encode_question(&q, &mut key) {
                continue; // a key question: learnt by learn_key
            }
            bytes += key.len() + a.out.as_ref().map_or(0, Vec::len) + 64;
            encoded.push((key.into_boxed_slice(), a));
        }
        if memo.map.len() + encoded.len() > ANSWER_MEMO_LIMIT || memo.bytes + bytes > ANSWER_MEMO_BYTES {
            memo.map.clear();
            memo.bytes = 0;
        }
        memo.bytes += bytes;
        memo.map.extend(encoded);
    }
}

/// The memo key of a non-key question (false for a key question): a kind byte, then
/// each part length-prefixed, so no two questions share a key.
pub fn encode_question(q: &Question, out: &mut Vec<u8>) -> bool {
    fn part(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    fn system(out: &mut Vec<u8>, s: &Option<String>) {
        match s {
            None => out.push(0),
            Some(s) => {
                out.push(1);
                part(out, s.as_bytes());
            }
        }
    }
    fn masks(out: &mut Vec<u8>, m: &[u32]) {
        out.extend_from_slice(&(m.len() as u32).to_le_bytes());
        for r in m {
            out.extend_from_slice(&r.to_le_bytes());
        }
    }
    out.clear();
    match q {
        Question::Key { .. } => return false,
        Question::Text { ops, text, system: s } => {
            out.push(1);
            out.extend_from_slice(&ops.to_le_bytes());
            system(out, s);
            part(out, text.as_bytes());
        }
        Question::Rewrite { rule, masks: m, system: s, value } => {
            out.push(2);
            out.extend_from_slice(&rule.to_le_bytes());
            masks(out, m);
            system(out, s);
            part(out, value);
        }
        Question::Json { decider, path, masks: m, system: s, text } => {
            out.push(3);
            out.extend_from_slice(&decider.to_le_bytes());
            masks(out, m);
            system(out, s);
            part(out, path.as_bytes());
            part(out, text.as_bytes());
        }
        Question::Mask { rule, digits, text } => {
            out.push(4);
            out.extend_from_slice(&rule.to_le_bytes());
            out.push(u8::from(*digits));
            part(out, text.as_bytes());
        }
    }
    true
}

impl Engine {
    /// Looks up a key decision (used by the walk).
    fn decision<'m>(&self, memo: &'m KeyMemo, parent: Option<&str>, key: &str, buf: &mut Vec<u8>) -> Option<&'m Decision> {
        match parent {
            None => memo.top.get(key),
            Some(parent) => {
                nested_key(parent, key, buf);
                memo.nested.get(buf.as_slice())
            }
        }
    }
}
