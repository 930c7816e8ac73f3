//! The engine on arbitrary bytes. Invariants: it never panics; a body it scrubs comes out
//! as protobuf the table reads again, within a bounded size; and no planted value (the
//! fuzz policy masks `PLANTED` + 8 hex digits everywhere it scrubs) and no sensitive key
//! is left in any attribute, value or scrubbed text field. Questions are answered here
//! the way the fuzz policy would: sensitive keys deleted, `user.id` hashed, every other
//! key kept with the mask; masks and JSON text by the same regex.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use redact_core::engine::spec::{build, Spec};
use redact_core::engine::wire::fields;
use redact_core::engine::{Answer, Decision, Engine, Op, Outcome, Question, ATTRS, BODY, ITEMS, MSG, TEXT};
use redact_core::hash::{HashAlg, Hasher};
use regex::Regex;

const SENSITIVE: [&str; 3] = ["user.email", "message.content", "http.request.header.authorization"];

struct Fixture {
    engine: Engine,
    planted: Regex,
    mask_rule: u32,
    hash_rule: u32,
    delete_rule: u32,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let spec: Spec = serde_json::from_str(include_str!("../spec.json")).expect("spec.json");
        let engine = build(spec, Some(Hasher::new(HashAlg::Sha256)))
            .expect("the table builds");
        // Rule order of tests/fuzz/fuzz_target.py's policy: delete, hash, mask, drop.
        Fixture { engine, planted: Regex::new("PLANTED[0-9a-f]{8}").unwrap(), delete_rule: 0, hash_rule: 1, mask_rule: 2 }
    })
}

fn masked(f: &Fixture, text: &str) -> Option<Vec<u8>> {
    f.planted.is_match(text).then(|| f.planted.replace_all(text, "[REDACTED]").into_owned().into_bytes())
}

fn answer(f: &Fixture, questions: Vec<Question>) {
    let mut answers = Vec::new();
    for q in questions {
        match &q {
            Question::Key { decider, parent, key } => {
                let op = if SENSITIVE.contains(&key.as_str()) {
                    Op::Remove
                } else if key == "user.id" && parent.is_none() {
                    Op::Hash { collector: false }
                } else {
                    Op::Keep
                };
                let rule = match op { Op::Remove => f.delete_rule, Op::Hash { .. } => f.hash_rule, _ => 0 };
                let masks = if op == Op::Keep && parent.is_none() { vec![f.mask_rule] } else { vec![] };
                let d = Decision { op, rule, masks, new_key: None, key_rules: vec![] };
                f.engine.learn_key(*decider as usize, parent.as_deref(), key, d);
            }
            Question::Text { text, .. } | Question::Json { text, .. } | Question::Mask { text, .. } => {
                let out = masked(f, text);
                let counts = if out.is_some() { vec![(f.mask_rule, 1)] } else { vec![] };
                answers.push((q.clone(), Answer { out, counts }));
            }
            Question::Rewrite { .. } => answers.push((q.clone(), Answer { out: None, counts: vec![] })),
        }
    }
    f.engine.learn_answers(answers);
}

/// Every attribute, value and scrubbed text of `buf` (message `m` of signal `s`).
fn check(f: &Fixture, s: usize, m: usize, buf: &[u8], depth: u32) {
    assert!(depth < 200, "output nested deeper than any input could be");
    let msg = &f.engine.signals[s].messages[m];
    for field in fields(buf) {
        let field = field.expect("the engine's output is protobuf");
        let r = msg.role(field.number);
        match r.role {
            MSG | ITEMS => check(f, s, r.target as usize, field.payload, depth + 1),
            ATTRS => check_kv(f, field.payload, true, depth + 1),
            TEXT => assert!(!f.planted.is_match(&String::from_utf8_lossy(field.payload)), "planted value in a text"),
            BODY => check_value(f, field.payload, depth + 1),
            _ => {}
        }
    }
}

/// A KeyValue; `top`: of an attribute list. A hashed value keeps its shape (the
/// reference's `hash_value`: kvlist keys stay, every scalar is a hash), so it is skipped.
fn check_kv(f: &Fixture, kv: &[u8], top: bool, depth: u32) {
    let l = f.engine.layout;
    let mut key = String::new();
    let mut value = None;
    for field in fields(kv) {
        let field = field.expect("a KeyValue is protobuf");
        if field.number == l.kv_key {
            key = String::from_utf8_lossy(field.payload).into_owned();
        } else if field.number == l.kv_value {
            value = Some(field.payload);
        }
    }
    assert!(!SENSITIVE.contains(&key.as_str()), "sensitive key survived");
    if let Some(v) = value.filter(|_| !(top && key == "user.id")) {
        check_value(f, v, depth + 1);
    }
}

fn check_value(f: &Fixture, v: &[u8], depth: u32) {
    let l = f.engine.layout;
    for field in fields(v) {
        let field = field.expect("an AnyValue is protobuf");
        let n = field.number;
        if n == l.string || n == l.bytes {
            if std::str::from_utf8(field.payload).is_ok() {
                assert!(!f.planted.is_match(&String::from_utf8_lossy(field.payload)), "planted value survived");
            }
        } else if n == l.array || n == l.kvlist {
            let member = if n == l.array { l.array_values } else { l.kvlist_values };
            for inner in fields(field.payload) {
                let inner = inner.expect("a list is protobuf");
                if inner.number != member || inner.wire != 2 {
                    continue; // not an element: copied as the input had it, as any field the table does not read
                }
                if n == l.array { check_value(f, inner.payload, depth + 1) } else { check_kv(f, inner.payload, false, depth + 1) }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else { return };
    let f = fixture();
    let signal = usize::from(first % 3);
    for _ in 0..4 {
        match f.engine.scrub(signal, body) {
            Err(_) => return, // declined: the reference path decides
            Ok(Outcome::Ask(questions)) => answer(f, questions),
            Ok(Outcome::Done(report)) => {
                let out = report.body.as_deref().unwrap_or(body);
                assert!(out.len() <= 80 * body.len() + 1024, "output out of proportion to the input");
                check(f, signal, 0, out, 0);
                return;
            }
        }
    }
});
