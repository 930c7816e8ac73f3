//! The engine on arbitrary bytes. Invariants: it never panics; a body it scrubs comes out
//! as protobuf the table reads again, within a bounded size; and no planted value (the
//! fuzz policy masks `PLANTED` + 8 hex digits everywhere it scrubs) and no sensitive key
//! is left in any attribute, value or scrubbed text field. Questions are answered here
//! the way the fuzz policy would: sensitive keys deleted, `user.id` hashed, every other
//! key kept with the mask; masks and JSON text by the same regex.
//!
//! The shadow audit's walk (`redact_core::audit`) reads every input and every output too,
//! under the table of `audit.json`: it never panics, whatever the bytes, and what it holds
//! stays bounded. Its questions are answered with made-up plans (every few keys with the
//! detectors, keys with an '@' as personal), the way the ledger would make real ones.
#![no_main]

use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use redact_core::audit::{self, Audit, Plan, ProgramOp};
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

type AuditArgs = ([u32; 11], Vec<Vec<Vec<audit::EntrySpec>>>, usize, Vec<String>);

fn auditor() -> &'static Mutex<Audit> {
    static A: OnceLock<Mutex<Audit>> = OnceLock::new();
    A.get_or_init(|| {
        let (layout, tables, spaces, detectors): AuditArgs =
            serde_json::from_str(include_str!("../audit.json")).expect("audit.json");
        let mut a = Audit::new(layout, tables, spaces, detectors.clone()).expect("the audit table builds");
        a.add_detectors(&detectors).expect("the detector set builds");
        Mutex::new(a)
    })
}

/// A made-up plan for one question: its own field up to a cap (then field 0, as the
/// ledger pools fields), the detectors on every third, personal when the key has an '@'.
fn plan(a: &mut Audit, n: usize, personal: bool) -> u32 {
    let field = if a.fields().len() < 4096 { a.add_field(n % 2 == 0, false) } else { 0 };
    let detectors = (n % 3 == 0).then_some(0);
    let key_kinds = if personal { 1 << 3 } else { 0 };
    a.add_plan(Plan { field, level: (n % 8) as u8, skip: n % 7 == 0, shapes: n % 2 == 0, prose: n % 5 == 0, detectors, key_kinds })
        .expect("a plan of a field")
}

fn audit_body(signal: usize, body: &[u8]) {
    let mut a = auditor().lock().unwrap_or_else(|p| p.into_inner());
    if a.plan_count() > audit::MAX_PLANS {
        a.reset_plans();
    }
    let texts: Vec<u32> = (0..12).map(|i| plan(&mut a, i, false)).collect();
    a.set_texts(signal, texts).expect("text plans");
    for round in 0..4 {
        match a.observe(signal, body) {
            audit::Outcome::Done(t) => {
                assert!(t.samples.iter().all(|(f, _)| (*f as usize) < a.fields().len()), "a sample of no field");
                break;
            }
            audit::Outcome::Refused(_) => break,
            audit::Outcome::Ask(questions) => {
                for (i, q) in questions.into_iter().enumerate() {
                    match q {
                        audit::Question::Key { space, parent, path, key } => {
                            let p = plan(&mut a, round * 31 + i, key.contains('@'));
                            a.learn_key(space, parent, &path, &key, p).expect("a key answer");
                        }
                        audit::Question::Json { plan: p, text, .. } => {
                            let ops = vec![ProgramOp::Other { plan: p }, ProgramOp::Text { plan: p, data: text.as_bytes().to_vec(), chars: 1, kinds: 1 }];
                            a.learn_program(p, &text, ops).expect("a program");
                        }
                    }
                }
            }
        }
    }
    assert!(a.approx_bytes() < 256 << 20, "the audit's tables grew without bound");
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else { return };
    let f = fixture();
    let signal = usize::from(first % 3);
    audit_body(signal, body);
    for _ in 0..4 {
        match f.engine.scrub(signal, body) {
            Err(_) => return, // declined: the reference path decides
            Ok(Outcome::Ask(questions)) => answer(f, questions),
            Ok(Outcome::Done(report)) => {
                let out = report.body.as_deref().unwrap_or(body);
                assert!(out.len() <= 80 * body.len() + 1024, "output out of proportion to the input");
                check(f, signal, 0, out, 0);
                audit_body(signal, out);
                return;
            }
        }
    }
});
