//! The shadow audit's native half: one scrubbed OTLP protobuf body in, its values counted
//! into the audit's per-field tallies, the request's findings out -- what
//! `redact_proxy/audit/walk.py` and `ledger.py` do on a decoded message, on the wire bytes.
//!
//! Strategy: as with the engine, everything the policy decides stays in Python. A field's
//! *plan* (which rule decided the key, whether the registry knows it, which detectors the
//! policy did not already run on it, whether its values are the policy's own output) is
//! made by `ledger.Ledger` and registered here as numbers; a key this walk has not seen
//! becomes a question, and so does JSON text in a value (Python reads it with `json` and
//! answers with a *program*: the value operations its tree comes to, replayed here in
//! order). The walk itself is pure: it turns the body into a list of value operations and
//! questions without touching a tally, so a call that asks changes nothing; only a call
//! with every answer at hand runs its operations into the tallies (`tally.rs`). What the
//! walk does not take exactly as the decoder would (a singular field twice, two values in
//! one AnyValue, nesting past `MAX_DEPTH`) is refused, and Python records the reference
//! walk's operations and runs them here instead: either way the tallies live in one place.
//!
//! Bounds: plans, key memos and programs are dropped together when they fill
//! (`reset_plans`, Python re-registers what it needs); fields are bounded by the ledger's
//! field cap; each field holds a fixed-size sketch.

pub mod shapes;
mod tally;
mod walk;

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use rustc_hash::{FxHashMap as HashMap, FxSeededState};

use crate::engine::Layout;
use crate::mask::{MaskSpec, Masker};

pub use tally::{FieldState, Sketch, Tallied, SKETCH_K};

/// Roles and flags of the table (`redact_proxy/audit/table.py`).
pub const MSG: u8 = 1;
pub const ATTRS: u8 = 3;
pub const TEXT: u8 = 4;
pub const BODY: u8 = 5;
pub const REPEATED: u8 = 1;
pub const ALWAYS: u8 = 2;

/// Nesting the walk follows (messages, kvlists, arrays); deeper bodies are refused.
pub const MAX_DEPTH: u32 = 128;

pub type EntrySpec = (u32, u8, u32, u8, u32); // (number, role, target, flags, extra)

#[derive(Clone, Copy)]
pub struct Entry {
    pub role: u8,
    pub target: u32,
    pub flags: u8,
    pub extra: u32, // ATTRS: nested space; BODY: body space; MSG/TEXT: oneof group + 1
    pub slot: u8,   // index among the message's entries (duplicate and oneof checks)
}

pub struct Message {
    pub by_number: Vec<Option<Entry>>,
    pub always: Vec<(u8, u32)>, // TEXT entries counted on every item: (slot, text field index)
}

impl Message {
    #[inline]
    fn entry(&self, number: u32) -> Option<Entry> {
        self.by_number.get(number as usize).copied().flatten()
    }
}

/// How one key's (or free-text field's) values are checked: `ledger.Plan` as numbers.
#[derive(Clone, Copy)]
pub struct Plan {
    pub field: u32,
    pub level: u8,
    pub skip: bool,
    pub shapes: bool,
    pub prose: bool,
    pub detectors: Option<u32>, // the detector set the policy did not run on the field
    pub key_kinds: u64,         // what the key itself holds (0: nothing)
}

/// The detectors of one set: one masker over all (most values: one pass, no hit), and
/// each detector's own (to name the kinds of a hit).
struct DetectorSet {
    all: Masker,
    single: Vec<(u64, usize)>, // (kind bit, index into Audit::single)
}

/// What the walk asks Python.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Question {
    /// A key's plan: top-level (`parent` None, `path` "") or nested under `parent`'s value at `path`.
    Key { space: u32, parent: Option<u32>, path: String, key: String },
    /// The program of JSON text `text` in a value of `plan` (at `path`, nested keys in `space`).
    Json { plan: u32, space: u32, path: String, text: String },
}

/// One value operation of a program (Python's replay of the reference walk): the kinds
/// are the ones the reference computed.
#[derive(Clone, Debug)]
pub enum ProgramOp {
    Text { plan: u32, data: Vec<u8>, chars: u64, kinds: u64 },
    Digits { plan: u32, data: Vec<u8>, kinds: u64 },
    Other { plan: u32 },
    Key { plan: u32, data: Vec<u8> },
}

pub enum Outcome {
    Done(Tallied),
    Ask(Vec<Question>),
    Refused(&'static str),
}

/// Plans and memos, dropped together (`reset_plans`).
#[derive(Default)]
struct Plans {
    plans: Vec<Plan>,
    top: Vec<HashMap<Box<[u8]>, u32>>,                      // by space: key -> plan
    nested: Vec<HashMap<Box<[u8]>, HashMap<Box<[u8]>, u32>>>, // by space: path -> key -> plan
    programs: HashMap<u32, HashMap<Box<[u8]>, u32>>,        // plan -> JSON text -> program
    program_ops: Vec<Vec<ProgramOp>>,
    program_bytes: usize,
    texts: Vec<Option<Vec<u32>>>, // by signal: the plan of each free-text field
    keys: usize,
}

pub const MAX_PLANS: usize = 16384;
pub const MAX_PROGRAMS: usize = 4096;
pub const MAX_PROGRAM_BYTES: usize = 8 << 20;

pub struct Audit {
    layout: Layout,
    tables: Vec<Vec<Message>>,
    n_spaces: usize,
    p: Plans,
    fields: Vec<FieldState>,
    sets: Vec<DetectorSet>,
    single: Vec<Masker>,
    single_names: Vec<String>,
    detector_names: Vec<String>, // in DETECTORS order: kind bit 3 + index
    hasher: SketchHash,
}

/// The sketches' hash of a value: rustc-hash's byte hash under a random seed (per
/// process, like Python's `hash`: nothing to reverse from a dump of a sketch), finished
/// with murmur3's fmix64 so every bit avalanches (rustc-hash leaves that to the hash
/// table's multiply; a sketch orders the whole 64 bits). A few ns, where SipHash costs ~15.
pub struct SketchHash(FxSeededState);

impl SketchHash {
    fn new() -> SketchHash {
        SketchHash(FxSeededState::with_seed(RandomState::new().hash_one(0u64) as usize))
    }

    #[inline]
    pub fn hash(&self, data: &[u8]) -> u64 {
        let mut h = self.0.hash_one(data);
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

pub const UUID: u64 = shapes::UUID;
pub const DIGITS: u64 = shapes::DIGITS;
pub const HIGH_ENTROPY: u64 = shapes::HIGH_ENTROPY;

impl Audit {
    /// `tables`: per signal, per message, its entries (`table.py`); `detectors`: every
    /// detector name, in `detectors.DETECTORS` order.
    pub fn new(layout: [u32; 11], tables: Vec<Vec<Vec<EntrySpec>>>, n_spaces: usize, detectors: Vec<String>)
               -> Result<Audit, String> {
        if detectors.len() + 5 > 64 {
            return Err("more detectors than a kind set has bits".into()); // 3 shapes, 2 field kinds
        }
        let layout = Layout::from_numbers(layout);
        let mut built = Vec::with_capacity(tables.len());
        for messages in &tables {
            let mut sig = Vec::with_capacity(messages.len());
            for entries in messages {
                let mut by_number: Vec<Option<Entry>> = Vec::new();
                let mut always = Vec::new();
                if entries.len() > 64 {
                    return Err("a message with more than 64 entries".into());
                }
                for (slot, &(number, role, target, flags, extra)) in entries.iter().enumerate() {
                    if !matches!(role, MSG | ATTRS | TEXT | BODY) {
                        return Err(format!("unknown role {role}"));
                    }
                    if role == MSG && target as usize >= messages.len() {
                        return Err("a message entry past the table".into());
                    }
                    let n = number as usize;
                    if by_number.len() <= n {
                        by_number.resize(n + 1, None);
                    }
                    by_number[n] = Some(Entry { role, target, flags, extra, slot: slot as u8 });
                    if role == TEXT && flags & ALWAYS != 0 {
                        always.push((slot as u8, target));
                    }
                }
                sig.push(Message { by_number, always });
            }
            built.push(sig);
        }
        let mut audit = Audit {
            layout,
            tables: built,
            n_spaces,
            p: Plans::default(),
            fields: Vec::new(),
            sets: Vec::new(),
            single: Vec::new(),
            single_names: Vec::new(),
            detector_names: detectors,
            hasher: SketchHash::new(),
        };
        audit.reset_plans();
        Ok(audit)
    }

    pub fn hc_bit(&self) -> u64 {
        1 << (3 + self.detector_names.len())
    }

    pub fn free_text_bit(&self) -> u64 {
        1 << (4 + self.detector_names.len())
    }

    /// The sketch's hash of a value's UTF-8 bytes (random per process, like Python's `hash`).
    pub fn hash64(&self, data: &[u8]) -> u64 {
        self.hasher.hash(data)
    }

    // --- registration (from Python, between calls) --------------------------------------

    pub fn add_field(&mut self, shapes: bool, pooled: bool) -> u32 {
        self.fields.push(FieldState::new(shapes, pooled));
        (self.fields.len() - 1) as u32
    }

    pub fn set_field_shapes(&mut self, field: u32, shapes: bool) -> Result<(), String> {
        self.fields.get_mut(field as usize).ok_or("no such field")?.shapes = shapes;
        Ok(())
    }

    /// A detector set (names from `detectors.DETECTORS`); its id.
    pub fn add_detectors(&mut self, names: &[String]) -> Result<u32, String> {
        let spec = MaskSpec { detectors: names.to_vec(), regexes: Vec::new(), replacement: String::new() };
        let all = Masker::new(&spec, None)?;
        let mut single = Vec::with_capacity(names.len());
        for (i, name) in self.detector_names.iter().enumerate() {
            if !names.contains(name) {
                continue;
            }
            let index = match self.single_names.iter().position(|n| n == name) {
                Some(j) => j,
                None => {
                    let spec = MaskSpec { detectors: vec![name.clone()], regexes: Vec::new(), replacement: String::new() };
                    self.single.push(Masker::new(&spec, None)?);
                    self.single_names.push(name.clone());
                    self.single.len() - 1
                }
            };
            single.push((1u64 << (3 + i), index));
        }
        if single.len() != names.len() {
            return Err("a detector name outside the detector list".into());
        }
        self.sets.push(DetectorSet { all, single });
        Ok((self.sets.len() - 1) as u32)
    }

    pub fn add_plan(&mut self, plan: Plan) -> Result<u32, String> {
        if plan.field as usize >= self.fields.len() {
            return Err("a plan of no field".into());
        }
        if plan.detectors.is_some_and(|d| d as usize >= self.sets.len()) {
            return Err("a plan of no detector set".into());
        }
        self.p.plans.push(plan);
        Ok((self.p.plans.len() - 1) as u32)
    }

    pub fn plan_count(&self) -> usize {
        self.p.plans.len() + self.p.keys
    }

    /// The plans of `signal`'s free-text fields, in the table's order.
    pub fn set_texts(&mut self, signal: usize, plans: Vec<u32>) -> Result<(), String> {
        if plans.iter().any(|&p| p as usize >= self.p.plans.len()) {
            return Err("no such plan".into());
        }
        *self.p.texts.get_mut(signal).ok_or("no such signal")? = Some(plans);
        Ok(())
    }

    pub fn learn_key(&mut self, space: u32, parent: Option<u32>, path: &str, key: &str, plan: u32) -> Result<(), String> {
        let s = space as usize;
        if s >= self.n_spaces || plan as usize >= self.p.plans.len() {
            return Err("bad key answer".into());
        }
        self.p.keys += 1;
        if parent.is_none() {
            self.p.top[s].insert(key.as_bytes().into(), plan);
        } else {
            self.p.nested[s].entry(path.as_bytes().into()).or_default().insert(key.as_bytes().into(), plan);
        }
        Ok(())
    }

    pub fn learn_program(&mut self, plan: u32, text: &str, ops: Vec<ProgramOp>) -> Result<(), String> {
        self.check_program(&ops)?;
        if self.p.program_ops.len() >= MAX_PROGRAMS || self.p.program_bytes >= MAX_PROGRAM_BYTES {
            self.p.programs.clear();
            self.p.program_ops.clear();
            self.p.program_bytes = 0;
        }
        self.p.program_bytes += text.len() + ops.iter().map(|op| match op {
            ProgramOp::Text { data, .. } | ProgramOp::Digits { data, .. } | ProgramOp::Key { data, .. } => data.len() + 32,
            ProgramOp::Other { .. } => 32,
        }).sum::<usize>();
        self.p.program_ops.push(ops);
        let id = (self.p.program_ops.len() - 1) as u32;
        self.p.programs.entry(plan).or_default().insert(text.as_bytes().into(), id);
        Ok(())
    }

    fn check_program(&self, ops: &[ProgramOp]) -> Result<(), String> {
        let n = self.p.plans.len() as u32;
        for op in ops {
            let plan = match op {
                ProgramOp::Text { plan, .. } | ProgramOp::Digits { plan, .. } | ProgramOp::Other { plan } | ProgramOp::Key { plan, .. } => *plan,
            };
            if plan >= n {
                return Err("a program op of no plan".into());
            }
        }
        Ok(())
    }

    /// Drop every plan, key memo and program (Python registers anew what it needs).
    pub fn reset_plans(&mut self) {
        self.p = Plans {
            top: (0..self.n_spaces).map(|_| HashMap::default()).collect(),
            nested: (0..self.n_spaces).map(|_| HashMap::default()).collect(),
            texts: vec![None; self.tables.len()],
            ..Plans::default()
        };
    }

    // --- the request path --------------------------------------------------------------

    /// Count one scrubbed body of signal `signal`, or say what must be answered first.
    pub fn observe(&mut self, signal: usize, body: &[u8]) -> Outcome {
        let Some(table) = self.tables.get(signal) else { return Outcome::Refused("no such signal") };
        let Some(Some(texts)) = self.p.texts.get(signal) else { return Outcome::Refused("free-text plans not set") };
        let walked = walk::run(&self.layout, table, texts, &self.p, body);
        match walked {
            Err(why) => Outcome::Refused(why),
            Ok(walk::Walked::Ask(questions)) => Outcome::Ask(questions),
            Ok(walk::Walked::Ops(ops)) => Outcome::Done(self.tally(|t| {
                for op in &ops {
                    t.op(op);
                }
            })),
        }
    }

    /// Run a program Python recorded from the reference walk (a body the walk refused).
    pub fn run(&mut self, ops: Vec<ProgramOp>) -> Result<Tallied, String> {
        self.check_program(&ops)?;
        Ok(self.tally(|t| {
            for op in &ops {
                t.program_op(op);
            }
        }))
    }

    fn tally(&mut self, body: impl FnOnce(&mut tally::Tally<'_>)) -> Tallied {
        let hc = self.hc_bit();
        let free = self.free_text_bit();
        let mut t = tally::Tally {
            fields: &mut self.fields,
            plans: &self.p.plans,
            programs: &self.p.program_ops,
            sets: &self.sets,
            single: &self.single,
            hasher: &self.hasher,
            hc_bit: hc,
            free_text_bit: free,
            out: Tallied::default(),
        };
        body(&mut t);
        t.finish()
    }

    pub fn fields(&self) -> &[FieldState] {
        &self.fields
    }

    /// Bytes the tallies, plans and memos hold, about (tables at their capacity, keys and
    /// programs by length): what tests/audit/test_ledger.py holds bounded.
    pub fn approx_bytes(&self) -> usize {
        use std::mem::size_of;
        let entry = size_of::<(Box<[u8]>, u32)>() + 1;
        let p = &self.p;
        let keys = |m: &HashMap<Box<[u8]>, u32>| m.capacity() * entry + m.keys().map(|k| k.len()).sum::<usize>();
        let top: usize = p.top.iter().map(keys).sum();
        let nested: usize = p
            .nested
            .iter()
            .flat_map(|m| m.iter())
            .map(|(path, m)| path.len() + entry + size_of::<HashMap<Box<[u8]>, u32>>() + keys(m))
            .sum();
        let programs: usize = p.programs.values().map(keys).sum::<usize>() + p.program_bytes;
        let fields: usize = self
            .fields
            .iter()
            .map(|f| size_of::<FieldState>() + f.sketch.mins.capacity() * 8 + f.kinds.capacity() * 16)
            .sum();
        p.plans.capacity() * size_of::<Plan>() + top + nested + programs + fields
    }
}

#[cfg(test)]
mod tests;
