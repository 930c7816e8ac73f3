//! The engine's build input as plain data: what `redact_proxy/engine.py` computes from a
//! compiled policy and the protobuf descriptors, and what the PyO3 shell and the fuzz
//! target (from JSON) hand to `build`. Checked here, once: a table the walk could misread
//! is refused.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use serde::Deserialize;

use super::{
    Decider, DropTest, Engine, Entry, Layout, MaskRule, Message, Rewriter, Role, Signal, TextOps, TextRule, BODY, ITEMS, MSG,
};
use std::sync::Arc;

use crate::hash::Hasher;
use crate::mask::{MaskSpec, Masker};

pub type MessageSpec = (u32, Vec<Entry>); // (attributes field number, entries)
pub type DropSpec = (String, u32, bool, Vec<String>); // (key, rule, is_regex, values or [pattern])
pub type MaskSpecTuple = (Vec<String>, Vec<String>, String, Vec<String>);
/// (rules: (kind, rule, replacement, path_ids) each, kind 1 delete, 2 replace, 3 statement
/// span name, 4 URL span name, 0 none native; masks)
pub type TextSpec = (Vec<(u8, u32, String, bool)>, Vec<u32>);
/// Per rule index: a sanitize_* key rule's sanitizer: (1 statement | 2 URL, path_ids).
pub type RewriterSpec = (u8, bool);

#[derive(Deserialize)]
pub struct Spec {
    pub layout: [u32; 11],
    /// Per rule index: the mask rule's (detectors, regexes, replacement, digit detectors),
    /// or None. A rule whose masker cannot be built natively (a regex outside the
    /// engine's dialect) is asked of Python instead.
    #[serde(default)]
    pub masks: Vec<Option<MaskSpecTuple>>,
    #[serde(default)]
    pub rewriters: Vec<Option<RewriterSpec>>,
    pub signals: Vec<(Vec<MessageSpec>, Vec<DropSpec>)>,
    pub descend: Vec<bool>,
    pub texts: Vec<TextSpec>,
    pub mask_digits: Vec<bool>,
    pub int_short: i64,
    pub n_rules: usize,
}

/// The engine for `spec`, hashing with `hasher`; its native maskers are built here.
pub fn build(spec: Spec, hasher: Option<Hasher>) -> Result<Engine, String> {
    let hasher = hasher.map(Arc::new);
    let mut masks: Vec<Option<MaskRule>> = (0..spec.n_rules).map(|_| None).collect();
    for (i, m) in spec.masks.iter().enumerate() {
        let (Some((detectors, regexes, replacement, digits)), Some(slot)) = (m, masks.get_mut(i)) else { continue };
        let all = MaskSpec { detectors: detectors.clone(), regexes: regexes.clone(), replacement: replacement.clone() };
        let Ok(all) = Masker::new(&all, hasher.clone()) else { continue };
        let digits = if digits.is_empty() {
            None
        } else {
            let d = MaskSpec { detectors: digits.clone(), regexes: vec![], replacement: replacement.clone() };
            match Masker::new(&d, hasher.clone()) {
                Ok(d) => Some(Box::new(d) as Box<dyn super::TextMask>),
                Err(_) => continue,
            }
        };
        *slot = Some(MaskRule { all: Box::new(all), digits });
    }
    let layout = Layout::from_numbers(spec.layout);
    let n = spec.n_rules;
    let bad_rule = |r: u32| r as usize >= n.max(1);
    let signals = spec.signals.into_iter().map(|(m, d)| signal(m, d, spec.descend.len(), spec.texts.len()))
        .collect::<Result<Vec<_>, _>>()?;
    let deciders = spec.descend.into_iter().map(|descend| Decider { descend }).collect();
    let mut texts = Vec::with_capacity(spec.texts.len());
    for (rules, masks) in spec.texts {
        if masks.iter().any(|m| bad_rule(*m)) || rules.iter().any(|r| r.0 != 0 && bad_rule(r.1)) {
            return Err("a text rule out of range".into());
        }
        let rules: Vec<TextRule> = rules
            .into_iter()
            .map(|(kind, rule, replacement, path_ids)| match kind {
                1 => TextRule::Remove(rule),
                2 => TextRule::Replace(rule, replacement),
                3 => TextRule::Rewrite(rule, Rewriter::StatementName),
                4 => TextRule::Rewrite(rule, Rewriter::UrlName { path_ids }),
                _ => TextRule::Python,
            })
            .collect();
        let python = rules.iter().any(|r| matches!(r, TextRule::Python));
        texts.push(TextOps { python, rules, masks });
    }
    let rewriters = (0..n)
        .map(|i| match spec.rewriters.get(i).copied().flatten() {
            Some((1, _)) => Some(Rewriter::Statement),
            Some((2, path_ids)) => Some(Rewriter::Url { path_ids }),
            _ => None,
        })
        .collect();
    if spec.mask_digits.len() != n || masks.len() != n {
        return Err("one mask entry per rule".into());
    }
    let mut engine = Engine::new(layout, signals, deciders, texts, masks, spec.mask_digits, spec.int_short, hasher, n);
    engine.rewriters = rewriters;
    Ok(engine)
}

fn signal(messages: Vec<MessageSpec>, drops: Vec<DropSpec>, deciders: usize, texts: usize) -> Result<Signal, String> {
    let count = messages.len() as u32;
    let mut out = Vec::with_capacity(messages.len());
    for (attrs, entries) in messages {
        let mut fields = Vec::new();
        for (number, role, target, flags, extra) in entries {
            let bad = match role {
                MSG | ITEMS => target >= count,
                super::ATTRS => target as usize >= deciders,
                super::TEXT => target as usize >= texts,
                BODY => (target as usize >= texts && target != u32::MAX) || extra as usize >= deciders,
                _ => role != super::PLAIN,
            };
            if number == 0 || number > 1024 || bad {
                return Err(format!("bad table entry for field {number}"));
            }
            let i = number as usize;
            if fields.len() <= i {
                fields.resize(i + 1, Role::default());
            }
            fields[i] = Role { role, target, flags, extra };
        }
        out.push(Message { fields, attrs });
    }
    let mut by_key: HashMap<String, Vec<(u32, DropTest)>> = HashMap::default();
    for (key, rule, is_regex, values) in drops {
        let test = if is_regex {
            let pattern = values.first().ok_or("a regex drop needs its pattern")?;
            // RE2's meaning (`fullmatch`), through the masks' dialect translation.
            let pattern = crate::mask::translate(pattern)?;
            DropTest::Regex(regex::bytes::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| e.to_string())?)
        } else {
            DropTest::Values(values.into_iter().collect::<HashSet<_>>())
        };
        by_key.entry(key).or_default().push((rule, test));
    }
    Ok(Signal { messages: out, drops: by_key })
}
