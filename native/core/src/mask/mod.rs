//! The `mask` action: replaces every detected substring of a value -- an exact port of
//! `redact_proxy/policy/detectors.py`'s `Masker` (the reference; see its docstring for
//! what each detector matches).
//!
//! Strategy: a `Masker` is built once per rule. The user regexes (first) and the chosen
//! detectors (in the table's order) become ONE multi-pattern regex, leftmost-first across
//! the patterns exactly like the Python's RE2 alternation, so masking a value is a single
//! left-to-right scan of one lazy DFA; a value nothing matches costs that pass, allocates
//! nothing and returns `None`. Verifiers run only on the candidates of detectors that
//! have one. A refused candidate is left as it is; the later patterns are then tried
//! anchored at the same position (what leftmost-first precedence shadowed), and
//! otherwise the scan resumes one character further on. Past a budget of refusals
//! (`REJECTED_BASE` + 1 per `REJECTED_PER_BYTES` bytes) the whole value is replaced:
//! fail closed, bounded time -- as the Python does.
//!
//! Regex dialect: RE2 syntax with RE2's meaning (ASCII `\d \s \w \b`; see `dialect`).
//!
//! Threads: a `Masker` is immutable and `Send + Sync`. The only mutable state of a search
//! is the regex engines' scratch space. `mask` takes it from each regex's own pool (the
//! `regex` crate's: the first thread to search owns a slot it takes without locking;
//! other threads take a cache from a few mutex-guarded stacks sharded by thread id, one
//! uncontended lock per search). `mask_with` uses a `MaskCache` the caller keeps per
//! thread: nothing shared, no lock -- the engine's per-thread path.
//!
//! Nothing here does I/O, and no error message contains a value being masked.

mod detectors;
mod dialect;
mod verify;

use std::sync::Arc;

use regex_automata::{meta, Anchored, Input};

pub use detectors::{DETECTORS, DIGIT_DETECTORS, DIGIT_MIN_RUN, GROUPS};
pub use dialect::{check_regex, translate};
pub use verify::Verify;

use crate::hash::Hasher;

/// Refused candidates one value may cost before it is replaced whole: 256, plus one per
/// 16 bytes of value (`detectors.REJECTED_BASE` / `REJECTED_PER_BYTES`).
pub const REJECTED_BASE: usize = 256;
pub const REJECTED_PER_BYTES: usize = 16;
/// The most value groups a built-in detector has (`password_assignment`'s four).
const MAX_SPANS: usize = 4;

/// What one `mask` rule asks for: detector and group names, user regexes (RE2 syntax),
/// and the replacement (`{hash}` stands for the keyed hash of the matched text).
pub struct MaskSpec {
    pub detectors: Vec<String>,
    pub regexes: Vec<String>,
    pub replacement: String,
}

/// Detector names for `names` with every group replaced by its members, each name once,
/// in first-mention order (`detectors.expand_detectors`); `Err` names every unknown one.
pub fn expand_detectors(names: &[String]) -> Result<Vec<&'static str>, String> {
    let mut out: Vec<&'static str> = Vec::new();
    let mut unknown = Vec::new();
    let mut add = |name: &'static str| {
        if !out.contains(&name) {
            out.push(name);
        }
    };
    for name in names {
        if let Some((_, members)) = GROUPS.iter().find(|(group, _)| group == name) {
            members.iter().for_each(|d| add(d.name));
        } else if let Some(det) = DETECTORS.iter().find(|d| d.name == name) {
            add(det.name);
        } else {
            unknown.push(format!("'{name}'"));
        }
    }
    if !unknown.is_empty() {
        let valid: Vec<&str> = DETECTORS.iter().map(|d| d.name).collect();
        let groups: Vec<&str> = GROUPS.iter().map(|g| g.0).collect();
        return Err(format!(
            "unknown detector(s) {}; valid detectors: {}; valid groups: {}",
            unknown.join(", "),
            valid.join(", "),
            groups.join(", ")
        ));
    }
    Ok(out)
}

/// One alternative: its own regex (anchored retries and captures), verifier, and the
/// group indexes (in that regex) to replace instead of the whole match.
struct Spec {
    regex: meta::Regex,
    verify: Option<Verify>,
    value_groups: Vec<usize>,
}

enum Replace {
    Fixed(Vec<u8>),
    /// The template split at each `{hash}`: parts joined by the hex digest (`str.replace`).
    Hash(Vec<Vec<u8>>, Arc<Hasher>),
}

impl Replace {
    fn push(&self, out: &mut Vec<u8>, text: &[u8]) {
        match self {
            Replace::Fixed(fixed) => out.extend_from_slice(fixed),
            Replace::Hash(parts, hasher) => {
                for (i, part) in parts.iter().enumerate() {
                    if i > 0 {
                        hasher.hex_into(text, out);
                    }
                    out.extend_from_slice(part);
                }
            }
        }
    }
}

/// Scratch space for `Masker::mask_with`, one per thread (`Masker::cache`).
pub struct MaskCache {
    main: Option<meta::Cache>,
    specs: Vec<meta::Cache>,
}

/// An accepted candidate: the spans to replace and where the scan resumes.
struct Hit {
    spans: [(usize, usize); MAX_SPANS],
    count: usize,
    end: usize,
}

pub struct Masker {
    specs: Vec<Spec>,
    main: Option<meta::Regex>,
    replace: Replace,
}

impl Masker {
    /// `Err`: an unknown detector name, a user regex the dialect refuses (the message names
    /// its index and the reason; patterns come from the policy, never from telemetry), or
    /// `{hash}` in the replacement without a hasher.
    pub fn new(spec: &MaskSpec, hasher: Option<Arc<Hasher>>) -> Result<Masker, String> {
        let wanted = expand_detectors(&spec.detectors)?;
        let mut patterns: Vec<(String, Option<Verify>, &[&str])> = Vec::new();
        for (index, pattern) in spec.regexes.iter().enumerate() {
            let translated = dialect::translate(pattern)
                .and_then(|t| dialect::build(std::slice::from_ref(&t), true).map(|_| t))
                .map_err(|reason| format!("regexes[{index}]: invalid regex: {reason}"))?;
            patterns.push((translated, None, &[]));
        }
        for det in DETECTORS.iter().filter(|d| wanted.contains(&d.name)) {
            let translated = dialect::translate(det.pattern).map_err(|e| format!("detector {}: {e}", det.name))?;
            patterns.push((translated, det.verify, det.value_groups));
        }
        // Each pattern is its own regex (and pattern id in `main`), so a group name two of
        // them use is no conflict -- RE2 accepts it in the Python's alternation too.
        let mut specs = Vec::with_capacity(patterns.len());
        for (pattern, verify, groups) in &patterns {
            let regex = dialect::build(std::slice::from_ref(pattern), true)?;
            let info = regex.group_info();
            let value_groups = groups
                .iter()
                .map(|g| info.to_index(regex_automata::PatternID::ZERO, g).ok_or(format!("internal: no group {g}")))
                .collect::<Result<Vec<_>, _>>()?;
            specs.push(Spec { regex, verify: *verify, value_groups });
        }
        let main = if patterns.is_empty() {
            None
        } else {
            let all: Vec<String> = patterns.into_iter().map(|p| p.0).collect();
            Some(dialect::build(&all, false)?)
        };
        let replace = if spec.replacement.contains("{hash}") {
            let hasher = hasher.ok_or("the replacement uses {hash}, but no hash key was given")?;
            Replace::Hash(spec.replacement.split("{hash}").map(|p| p.as_bytes().to_vec()).collect(), hasher)
        } else {
            Replace::Fixed(spec.replacement.as_bytes().to_vec())
        };
        Ok(Masker { specs, main, replace })
    }

    /// Scratch space for `mask_with` (allocates; keep one per thread).
    pub fn cache(&self) -> MaskCache {
        MaskCache {
            main: self.main.as_ref().map(meta::Regex::create_cache),
            specs: self.specs.iter().map(|s| s.regex.create_cache()).collect(),
        }
    }

    /// The value with every detection replaced, or `None` if nothing was replaced.
    pub fn mask(&self, text: &str) -> Option<String> {
        self.mask_utf8(text.as_bytes()).map(|out| self.to_text(out, text.as_bytes()))
    }

    /// `mask` with the caller's scratch space (made by this masker's `cache`).
    pub fn mask_with(&self, cache: &mut MaskCache, text: &str) -> Option<String> {
        self.mask_utf8_with(cache, text.as_bytes()).map(|out| self.to_text(out, text.as_bytes()))
    }

    /// `mask` over the UTF-8 bytes of a value, as the wire holds them (the caller has
    /// checked they are UTF-8, as the triage walk does): the output is then UTF-8 too.
    /// On bytes that are not UTF-8 it still never panics, but no longer promises to
    /// agree with the Python reference.
    pub fn mask_utf8(&self, data: &[u8]) -> Option<Vec<u8>> {
        self.run(data, &mut Pooled)
    }

    /// `mask_utf8` with the caller's scratch space.
    pub fn mask_utf8_with(&self, cache: &mut MaskCache, data: &[u8]) -> Option<Vec<u8>> {
        if cache.specs.len() != self.specs.len() {
            *cache = self.cache(); // another masker's cache: replace it rather than misuse it
        }
        self.run(data, cache)
    }

    /// Spans end at character boundaries (patterns match whole characters, verifiers cut
    /// at ASCII bytes); were one not to, the value is replaced whole (fail closed).
    fn to_text(&self, out: Vec<u8>, data: &[u8]) -> String {
        String::from_utf8(out).unwrap_or_else(|_| {
            let mut whole = Vec::new();
            self.replace.push(&mut whole, data);
            String::from_utf8_lossy(&whole).into_owned()
        })
    }

    fn run(&self, data: &[u8], scratch: &mut impl Scratch) -> Option<Vec<u8>> {
        let main = self.main.as_ref()?;
        if data.is_empty() {
            return None;
        }
        let size = data.len();
        let mut found = scratch.main(main, &Input::new(data))?;
        let mut out: Vec<u8> = Vec::new();
        let mut last = 0;
        let mut rejected = 0;
        let budget = REJECTED_BASE + size / REJECTED_PER_BYTES;
        loop {
            let pos = match self.resolve(data, found.pattern().as_usize(), found.start(), found.end(), scratch) {
                None => {
                    rejected += 1;
                    if rejected > budget {
                        let mut whole = Vec::new();
                        self.replace.push(&mut whole, data);
                        return Some(whole);
                    }
                    next_char(data, found.start())
                }
                Some(hit) => {
                    for &(start, end) in &hit.spans[..hit.count] {
                        out.extend_from_slice(data.get(last..start).unwrap_or_default());
                        self.replace.push(&mut out, &data[start..end]);
                        last = end;
                    }
                    hit.end
                }
            };
            if pos > size {
                break;
            }
            match scratch.main(main, &Input::new(data).range(pos..)) {
                Some(next) => found = next,
                None => break,
            }
        }
        if last == 0 {
            return None; // no hit (an accepted span ends past 0)
        }
        out.extend_from_slice(data.get(last..).unwrap_or_default());
        (out != data).then_some(out)
    }

    /// `_resolve`: the accepted hit for the candidate of pattern `k` at `start..end`, or
    /// one of the later patterns matching anchored at `start`, or `None`.
    fn resolve(&self, data: &[u8], mut k: usize, start: usize, mut end: usize, scratch: &mut impl Scratch) -> Option<Hit> {
        loop {
            if let Some(hit) = self.accept(data, k, start, end, scratch) {
                return Some(hit);
            }
            // Leftmost-first: the later patterns are what the refused one shadowed; the
            // first of them matching here wins, with its own extent.
            let anchored = Input::new(data).range(start..).anchored(Anchored::Yes);
            let (next, next_end) = (k + 1..self.specs.len())
                .find_map(|j| scratch.spec(&self.specs[j].regex, j, &anchored).map(|m| (j, m.end())))?;
            k = next;
            end = next_end;
        }
    }

    /// `_accept`: verify the candidate and pick the spans to replace.
    fn accept<S: Scratch>(&self, data: &[u8], k: usize, start: usize, mut end: usize, scratch: &mut S) -> Option<Hit> {
        if end <= start {
            return None; // an empty match replaces nothing and must not stall the scan
        }
        let spec = self.specs.get(k)?;
        let wants_groups = !spec.value_groups.is_empty() || spec.verify.is_some_and(Verify::needs_captures);
        let mut caps = None;
        // The pattern alone, anchored at the candidate: the same match, now with its groups.
        let capture = |scratch: &mut S| {
            let mut c = spec.regex.create_captures();
            scratch.captures(&spec.regex, k, &Input::new(data).range(start..).anchored(Anchored::Yes), &mut c);
            c
        };
        if let Some(verify) = spec.verify {
            if verify.needs_captures() {
                caps = Some(capture(scratch));
            }
            end = verify.run(data, start, end, caps.as_ref())?;
        }
        if spec.value_groups.is_empty() {
            return Some(Hit { spans: [(start, end); MAX_SPANS], count: 1, end });
        }
        if wants_groups && caps.is_none() {
            caps = Some(capture(scratch));
        }
        let caps = caps?;
        let mut hit = Hit { spans: [(0, 0); MAX_SPANS], count: 0, end };
        for &group in &spec.value_groups {
            if let Some(span) = caps.get_group(group) {
                let stop = span.end.min(end); // a verifier that shortened the match shortens the groups
                if stop > span.start && hit.count < MAX_SPANS {
                    hit.spans[hit.count] = (span.start, stop);
                    hit.count += 1;
                }
            }
        }
        (hit.count > 0).then_some(hit)
    }
}

/// Where a search gets its scratch space: the regexes' pools, or a `MaskCache`.
trait Scratch {
    fn main(&mut self, regex: &meta::Regex, input: &Input) -> Option<regex_automata::Match>;
    fn spec(&mut self, regex: &meta::Regex, index: usize, input: &Input) -> Option<regex_automata::Match>;
    fn captures(&mut self, regex: &meta::Regex, index: usize, input: &Input, caps: &mut regex_automata::util::captures::Captures);
}

struct Pooled;

impl Scratch for Pooled {
    fn main(&mut self, regex: &meta::Regex, input: &Input) -> Option<regex_automata::Match> {
        regex.search(input)
    }
    fn spec(&mut self, regex: &meta::Regex, _index: usize, input: &Input) -> Option<regex_automata::Match> {
        regex.search(input)
    }
    fn captures(&mut self, regex: &meta::Regex, _index: usize, input: &Input, caps: &mut regex_automata::util::captures::Captures) {
        regex.search_captures(input, caps)
    }
}

impl Scratch for MaskCache {
    fn main(&mut self, regex: &meta::Regex, input: &Input) -> Option<regex_automata::Match> {
        match &mut self.main {
            Some(cache) => regex.search_with(cache, input),
            None => regex.search(input),
        }
    }
    fn spec(&mut self, regex: &meta::Regex, index: usize, input: &Input) -> Option<regex_automata::Match> {
        match self.specs.get_mut(index) {
            Some(cache) => regex.search_with(cache, input),
            None => regex.search(input),
        }
    }
    fn captures(&mut self, regex: &meta::Regex, index: usize, input: &Input, caps: &mut regex_automata::util::captures::Captures) {
        match self.specs.get_mut(index) {
            Some(cache) => regex.search_captures_with(cache, input, caps),
            None => regex.search_captures(input, caps),
        }
    }
}

/// `_next_char`: the offset of the character after the one at `pos` (UTF-8 aware).
fn next_char(data: &[u8], pos: usize) -> usize {
    let mut pos = pos + 1;
    while pos < data.len() && data[pos] & 0xC0 == 0x80 {
        pos += 1;
    }
    pos
}

#[cfg(test)]
#[path = "mask_tests.rs"]
mod tests;
