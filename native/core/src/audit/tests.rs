//! The audit's native half without Python: a one-message table (attributes and a name),
//! asked, taught, then counted; the walk's refusals; the sketch.

use super::walk::looks_like;
use super::*;
use crate::engine::wire::{len_field, put_len};

// KeyValue key 1 / value 2; AnyValue string 1, bool 2, int 3, double 4, array 5, kvlist 6, bytes 7;
// ArrayValue values 1; KeyValueList values 1 (the OTLP numbers).
const LAYOUT: [u32; 11] = [1, 2, 1, 2, 3, 4, 5, 6, 7, 1, 1];

/// One message: attributes at field 1 (space 0, nested space 1), a name at field 2 (text 0, ALWAYS).
fn audit() -> Audit {
    let table = vec![vec![vec![(1, ATTRS, 0, REPEATED, 1), (2, TEXT, 0, ALWAYS, 0)]]];
    Audit::new(LAYOUT, table, 2, vec!["email".into(), "ipv4".into()]).unwrap()
}

fn kv(key: &str, value: &str) -> Vec<u8> {
    let mut any = Vec::new();
    put_len(&mut any, 1, value.as_bytes());
    let mut out = Vec::new();
    put_len(&mut out, 1, key.as_bytes());
    put_len(&mut out, 2, &any);
    len_field(1, &out)
}

fn plan(a: &mut Audit, detectors: Option<u32>) -> u32 {
    let field = a.add_field(true, false);
    a.add_plan(Plan { field, level: 0, skip: false, shapes: true, prose: false, detectors, key_kinds: 0 }).unwrap()
}

#[test]
fn an_unknown_key_is_asked_then_counted() {
    let mut a = audit();
    let name = plan(&mut a, None);
    a.set_texts(0, vec![name]).unwrap();
    let body = kv("user.contact", "bob@example.com");
    match a.observe(0, &body) {
        Outcome::Ask(q) => assert_eq!(q, vec![Question::Key { space: 0, parent: None, path: String::new(), key: "user.contact".into() }]),
        _ => panic!("expected a question"),
    }
    assert_eq!(a.fields()[0].values, 0, "a call that asks counts nothing");
    let set = a.add_detectors(&["email".into()]).unwrap();
    let contact = plan(&mut a, Some(set));
    a.learn_key(0, None, "", "user.contact", contact).unwrap();
    let Outcome::Done(t) = a.observe(0, &body) else { panic!("expected counts") };
    assert_eq!(t.found, vec![(0, 1 << 3, 1)], "an e-mail, at level 0");
    assert_eq!(t.samples, vec![(1, b"bob@example.com".to_vec())]);
    let f = &a.fields()[1];
    assert_eq!((f.values, f.chars, f.longest), (1, 15, 15));
    assert_eq!(a.fields()[0].values, 1, "the absent name counted, empty");
}

#[test]
fn what_a_decoder_would_normalise_is_refused() {
    let mut a = audit();
    let name = plan(&mut a, None);
    a.set_texts(0, vec![name]).unwrap();
    let twice = [len_field(2, b"a"), len_field(2, b"b")].concat();
    assert!(matches!(a.observe(0, &twice), Outcome::Refused("a singular field twice")));
    let mut any = Vec::new();
    put_len(&mut any, 1, b"x");
    put_len(&mut any, 7, b"y");
    let mut two_values = Vec::new();
    put_len(&mut two_values, 1, b"k");
    put_len(&mut two_values, 2, &any);
    let k = plan(&mut a, None);
    a.learn_key(0, None, "", "k", k).unwrap();
    assert!(matches!(a.observe(0, &len_field(1, &two_values)), Outcome::Refused("two members of one AnyValue")));
    assert!(matches!(a.observe(0, b"\x0a\x05\x0a"), Outcome::Refused(_)), "truncated");
}

#[test]
fn json_text_is_asked_as_a_program_and_replayed() {
    let mut a = audit();
    let name = plan(&mut a, None);
    a.set_texts(0, vec![name]).unwrap();
    let k = plan(&mut a, None);
    a.learn_key(0, None, "", "k", k).unwrap();
    let body = kv("k", " {\"a\": 1}");
    let Outcome::Ask(q) = a.observe(0, &body) else { panic!("expected a question") };
    assert_eq!(q, vec![Question::Json { plan: k, space: 1, path: "k".into(), text: " {\"a\": 1}".into() }]);
    let inner = plan(&mut a, None);
    a.learn_program(k, " {\"a\": 1}", vec![ProgramOp::Other { plan: k }, ProgramOp::Digits { plan: inner, data: b"1".to_vec(), kinds: 0 }]).unwrap();
    assert!(matches!(a.observe(0, &body), Outcome::Done(_)));
    assert_eq!((a.fields()[1].values, a.fields()[2].values), (1, 1));
}

#[test]
fn looks_like_is_the_first_non_blank_character() {
    assert!(looks_like("{") && looks_like("[1]") && looks_like(" \u{3000}{") && looks_like("\u{85}[x"));
    assert!(!looks_like("") && !looks_like("a{") && !looks_like("  x") && !looks_like("\u{200b}{"));
}

#[test]
fn the_sketch_is_exact_below_k_and_bounded_above() {
    let mut s = Sketch::default();
    for h in [5u64, 3, 5, 9] {
        s.add(h);
    }
    assert_eq!((s.mins.clone(), s.estimate()), (vec![3, 5, 9], 3));
    let mut s = Sketch::default();
    for i in 0..10_000u64 {
        s.add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    }
    assert_eq!(s.mins.len(), SKETCH_K);
    assert!(s.mins.windows(2).all(|w| w[0] < w[1]));
    let e = s.estimate();
    assert!((5_000..20_000).contains(&e), "estimate {e} of 10000");
}
