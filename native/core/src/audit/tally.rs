//! The audit's tallies: per field, the counts `ledger.Field` keeps (values, characters,
//! the longest, findings by their set of kinds, whether a sample was taken, whether it was
//! judged high-cardinality) and its k-minimum-values sketch; and the running of value
//! operations into them, `Ledger.text` / `digits` / `other` / `key` step for step.

use super::shapes::{is_free_text, shape_kinds, HIGH_ENTROPY};
use super::walk::Op;
use super::{DetectorSet, Plan, ProgramOp, SketchHash};
use crate::mask::Masker;

pub const SKETCH_K: usize = 64; // shapes.SKETCH_K
const HIGH_CARDINALITY_MIN: u64 = 50; // ledger.HIGH_CARDINALITY_MIN
const HIGH_CARDINALITY_SHARE: f64 = 0.5;
const DIGITS_SMALL: i64 = 1_000_000; // ledger.digits: smaller integers are not read

/// `shapes.Sketch`: the SKETCH_K smallest hashes seen, ascending.
#[derive(Default)]
pub struct Sketch {
    pub mins: Vec<u64>,
}

impl Sketch {
    #[inline]
    pub fn add(&mut self, h: u64) {
        let mins = &mut self.mins;
        if mins.len() == SKETCH_K && h >= mins[SKETCH_K - 1] {
            return;
        }
        if let Err(i) = mins.binary_search(&h) {
            mins.insert(i, h);
            mins.truncate(SKETCH_K);
        }
    }

    /// `Sketch.estimate` (Python divides the integers exactly and truncates; in f64 the
    /// two agree but for a quotient within a rounding step of an integer).
    pub fn estimate(&self) -> u64 {
        let n = self.mins.len();
        if n < SKETCH_K {
            return n as u64;
        }
        ((SKETCH_K as f64 - 1.0) * 18_446_744_073_709_551_616.0 / (self.mins[n - 1] as f64 + 1.0)) as u64
    }
}

pub struct FieldState {
    pub values: u64,
    pub chars: u64,
    pub longest: u64,
    pub sketch: Sketch,
    pub kinds: Vec<(u64, u64)>, // (set of kinds, values found with it)
    pub sampled: bool,
    pub flagged: bool,
    pub shapes: bool,
    pub pooled: bool, // the "(other fields)" entry of a (signal, level)
}

impl FieldState {
    pub fn new(shapes: bool, pooled: bool) -> FieldState {
        FieldState {
            values: 0,
            chars: 0,
            longest: 0,
            sketch: Sketch::default(),
            kinds: Vec::new(),
            sampled: false,
            flagged: false,
            shapes,
            pooled,
        }
    }

    /// `Field.high_cardinality`.
    fn high_cardinality(&self) -> bool {
        self.shapes
            && self.values >= HIGH_CARDINALITY_MIN
            && !self.pooled
            && self.sketch.estimate() as f64 >= HIGH_CARDINALITY_SHARE * self.values as f64
    }
}

/// One call's findings, by (level, set of kinds), and the first finding of each field
/// that had none yet (Python keeps its keyed hash as the field's sample).
#[derive(Default)]
pub struct Tallied {
    pub found: Vec<(u8, u64, u64)>,
    pub samples: Vec<(u32, Vec<u8>)>,
}

pub(super) struct Tally<'a> {
    pub(super) fields: &'a mut [FieldState],
    pub(super) plans: &'a [Plan],
    pub(super) programs: &'a [Vec<ProgramOp>],
    pub(super) sets: &'a [DetectorSet],
    pub(super) single: &'a [Masker],
    pub(super) hasher: &'a SketchHash,
    pub(super) hc_bit: u64,
    pub(super) free_text_bit: u64,
    pub(super) out: Tallied,
}

enum Kinds {
    Read,       // classify the text here
    Given(u64), // the reference classified it (a program)
}

/// `len(text)`: code points of UTF-8 bytes (the bytes that do not continue one).
fn char_count(b: &[u8]) -> u64 {
    if b.is_ascii() {
        b.len() as u64
    } else {
        b.iter().filter(|&&c| (c as i8) >= -0x40).count() as u64
    }
}

impl<'a> Tally<'a> {
    pub(super) fn op(&mut self, op: &Op<'_>) {
        match *op {
            Op::Text(plan, s) => self.text(plan, s, char_count(s), Kinds::Read),
            Op::Int(plan, n) => self.int(plan, n),
            Op::Bytes(plan, b) => match std::str::from_utf8(b) {
                Ok(_) => self.text(plan, b, char_count(b), Kinds::Read),
                Err(_) => self.other(plan),
            },
            Op::Other(plan) => self.other(plan),
            Op::Key(plan, key) => {
                let kinds = self.plans[plan as usize].key_kinds;
                self.found(plan, kinds, key);
            }
            Op::Program(id) => {
                let programs = self.programs;
                for op in &programs[id as usize] {
                    self.program_op(op);
                }
            }
        }
    }

    pub(super) fn program_op(&mut self, op: &ProgramOp) {
        match op {
            ProgramOp::Text { plan, data, chars, kinds } => self.text(*plan, data, *chars, Kinds::Given(*kinds)),
            ProgramOp::Digits { plan, data, kinds } => {
                self.fields[self.plans[*plan as usize].field as usize].values += 1;
                if *kinds != 0 {
                    self.found(*plan, *kinds, data);
                }
            }
            ProgramOp::Other { plan } => self.other(*plan),
            ProgramOp::Key { plan, data } => {
                let kinds = self.plans[*plan as usize].key_kinds;
                self.found(*plan, kinds, data);
            }
        }
    }

    /// `Ledger.text`: one surviving string (`data`, `chars` code points long).
    fn text(&mut self, plan: u32, data: &[u8], chars: u64, kinds: Kinds) {
        let p = self.plans[plan as usize];
        let hash = if p.skip || chars == 0 { 0 } else { self.hasher.hash(data) };
        let f = &mut self.fields[p.field as usize];
        f.values += 1;
        f.chars += chars;
        f.longest = f.longest.max(chars);
        if p.skip || chars == 0 {
            return;
        }
        f.sketch.add(hash);
        if p.shapes {
            let v = f.values;
            if v >= HIGH_CARDINALITY_MIN && v.is_power_of_two() && !f.flagged && f.high_cardinality() {
                f.flagged = true; // judged at each power of two: a field counts once, when it crosses
                add(&mut self.out.found, p.level, self.hc_bit, 1);
            }
        }
        let kinds = match kinds {
            Kinds::Given(k) => k,
            Kinds::Read => self.classify(&p, data, chars),
        };
        if kinds != 0 {
            self.found(plan, kinds, data);
        }
    }

    /// The kinds `Ledger.text` finds in a value of `p`: its shapes, the detectors the
    /// policy did not run on it (a named detector says more than "high entropy"), and
    /// free text under a key the registry does not know.
    fn classify(&self, p: &Plan, s: &[u8], chars: u64) -> u64 {
        let mut kinds = if p.shapes { shape_kinds(s) } else { 0 };
        if let Some(set) = p.detectors {
            let named = self.detect(set, s);
            if named != 0 {
                kinds = (kinds & !HIGH_ENTROPY) | named;
            }
        }
        if p.prose
            && chars >= 12
            && s.iter().filter(|&&b| b == b' ').count() >= 3
            && std::str::from_utf8(s).is_ok_and(is_free_text)
        {
            kinds |= self.free_text_bit;
        }
        kinds
    }

    /// `shapes.Detectors.kinds`: the kinds of the set's detectors with a match in `s`.
    fn detect(&self, set: u32, s: &[u8]) -> u64 {
        let set = &self.sets[set as usize];
        if set.all.mask_utf8(s).is_none() {
            return 0;
        }
        let mut kinds = 0;
        for &(bit, index) in &set.single {
            if self.single[index].mask_utf8(s).is_some() {
                kinds |= bit;
            }
        }
        kinds
    }

    /// `Ledger.digits`: one surviving integer; only the detectors that read digits care.
    fn int(&mut self, plan: u32, n: i64) {
        let p = self.plans[plan as usize];
        self.fields[p.field as usize].values += 1;
        let Some(set) = p.detectors else { return };
        if p.skip || (-DIGITS_SMALL < n && n < DIGITS_SMALL) {
            return;
        }
        let text = n.to_string();
        let kinds = self.detect(set, text.as_bytes());
        if kinds != 0 {
            self.found(plan, kinds, text.as_bytes());
        }
    }

    fn other(&mut self, plan: u32) {
        let field = self.plans[plan as usize].field;
        self.fields[field as usize].values += 1;
    }

    /// `Ledger._found`.
    fn found(&mut self, plan: u32, kinds: u64, data: &[u8]) {
        let p = self.plans[plan as usize];
        let f = &mut self.fields[p.field as usize];
        match f.kinds.iter_mut().find(|(k, _)| *k == kinds) {
            Some((_, n)) => *n += 1,
            None => f.kinds.push((kinds, 1)),
        }
        if !f.sampled {
            f.sampled = true;
            self.out.samples.push((p.field, data.to_vec()));
        }
        add(&mut self.out.found, p.level, kinds, 1);
    }

    pub(super) fn finish(self) -> Tallied {
        self.out
    }
}

fn add(found: &mut Vec<(u8, u64, u64)>, level: u8, kinds: u64, n: u64) {
    match found.iter_mut().find(|(l, k, _)| *l == level && *k == kinds) {
        Some(entry) => entry.2 += n,
        None => found.push((level, kinds, n)),
    }
}
