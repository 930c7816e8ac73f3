//! Unit tests on a miniature schema; `tests/test_otlpjson.py` holds the differential
//! tests against the Python codec on the real OTLP schema.
//!
//! Root { repeated Item items = 1; string name = 2; int64 count = 3; Root child = 4;
//!        repeated double vals = 5 [packed]; bytes id = 6 (a 4-byte hex id);
//!        fixed64 big_num = 7 }
//! Item { oneof v { string s = 1; int32 n = 2; Item sub_item = 3; } Kind kind = 4;
//!        bool flag = 5; bytes raw = 6 }
//! enum Kind { K_ZERO = 0; K_ONE = 1; }

use super::*;

const STRING: u8 = 9;
const MESSAGE: u8 = 11;

fn f(number: u32, name: &str, json: &str, t: u8, flags: u8, target: u32, id: u8, oneof: u8) -> FieldEntry {
    (number, name.into(), json.into(), t, flags, target, id, oneof)
}

fn schema() -> JsonSchema {
    JsonSchema::new(
        vec![
            (
                "Root".into(),
                vec![
                    f(7, "big_num", "bigNum", 6, 0, 0, 0, 0), // listed out of order on purpose
                    f(1, "items", "items", MESSAGE, REPEATED, 1, 0, 0),
                    f(2, "name", "name", STRING, 0, 0, 0, 0),
                    f(3, "count", "count", 3, 0, 0, 0, 0),
                    f(4, "child", "child", MESSAGE, PRESENCE, 0, 0, 0),
                    f(5, "vals", "vals", 1, REPEATED | PACKED, 0, 0, 0),
                    f(6, "id", "id", 12, 0, 0, 4, 0),
                ],
            ),
            (
                "Item".into(),
                vec![
                    f(1, "s", "s", STRING, PRESENCE, 0, 0, 1),
                    f(2, "n", "n", 5, PRESENCE, 0, 0, 1),
                    f(3, "sub_item", "subItem", MESSAGE, PRESENCE, 1, 0, 1),
                    f(4, "kind", "kind", 14, 0, 0, 0, 0),
                    f(5, "flag", "flag", 8, 0, 0, 0, 0),
                    f(6, "raw", "raw", 12, 0, 0, 0, 0),
                ],
            ),
        ],
        vec![vec![("K_ZERO".into(), 0), ("K_ONE".into(), 1)]],
        vec![(0, "otherRoot".into(), "others".into())],
    )
    .unwrap()
}

fn pb(json: &str) -> Result<Vec<u8>, String> {
    json_to_pb(json.as_bytes(), &schema(), 0).map_err(|e| e.to_string())
}

fn js(pb: &[u8]) -> String {
    String::from_utf8(pb_to_json(pb, &schema(), 0).unwrap()).unwrap()
}

#[test]
fn writes_canonical_protobuf_in_field_number_order() {
    let out = pb(r#"{"bigNum": "1", "name": "x", "count": -1, "items": [{"kind": "K_ONE", "s": ""}], "unknown": [1, NaN]}"#).unwrap();
    let expected = [
        &[0x0a, 0x04, 0x0a, 0x00, 0x20, 0x01][..], // items: s="" (oneof: present), kind=1
        &[0x12, 0x01, b'x'],
        &[0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
        &[0x39, 1, 0, 0, 0, 0, 0, 0, 0],
    ]
    .concat();
    assert_eq!(out, expected);
    assert_eq!(js(&out), r#"{"items":[{"s":"","kind":1}],"name":"x","count":"-1","bigNum":"1"}"#);
}

#[test]
fn long_submessages_get_minimal_length_prefixes() {
    let name = "n".repeat(300);
    let out = pb(&format!(r#"{{"child": {{"child": {{"name": "{name}"}}}}}}"#)).unwrap();
    // child(4) len 306 > child(4) len 303 > name(2) len 300
    assert_eq!(&out[..9], &[0x22, 0xb2, 0x02, 0x22, 0xaf, 0x02, 0x12, 0xac, 0x02]);
    assert_eq!(out.len(), 9 + 300);
    assert!(js(&out).contains(&name));
}

#[test]
fn dict_semantics_decide_the_message() {
    // A repeated key keeps its first place and its last value.
    assert_eq!(pb(r#"{"name": 5, "name": "ok"}"#).unwrap(), pb(r#"{"name": "ok"}"#).unwrap());
    // Both spellings: the later wins; a singular message merges.
    assert_eq!(pb(r#"{"bigNum": "1", "big_num": "2"}"#).unwrap(), pb(r#"{"bigNum": "2"}"#).unwrap());
    let merged = pb(r#"{"items": [{"subItem": {"kind": 1}, "sub_item": {"flag": true}}]}"#);
    assert!(merged.is_err(), "two non-null members of one oneof in one object");
    // null clears a field, and a oneof member only while it is the one set.
    assert_eq!(pb(r#"{"name": "a", "name": null}"#).unwrap(), b"");
    assert_eq!(pb(r#"{"items": [{"s": "a", "n": null}]}"#).unwrap(), pb(r#"{"items": [{"s": "a"}]}"#).unwrap());
    // ...but an overridden value is still checked, as ParseDict checks it.
    assert!(pb(r#"{"bigNum": "x", "big_num": "2"}"#).is_err());
}

#[test]
fn refusals_name_the_place_never_the_content() {
    let err = pb(r#"{"items": [{}, {"kind": "SECRET-VALUE"}]}"#).unwrap_err();
    assert_eq!(err, "body is not valid OTLP-JSON: Item.kind must be an enum number at items[1].kind");
    for body in [
        r#"{"name": "SECRET" "#,
        r#"{"id": "SECRET"}"#,
        r#"{"items": "SECRET"}"#,
        r#"{"count": "SECRET"}"#,
        r#"{"SECRET": 1, "[x.y]": 2}"#,
        r#"{"otherRoot": []}"#,
        r#"["SECRET"]"#,
    ] {
        let err = pb(body).unwrap_err();
        assert!(!err.contains("SECRET"), "{err}");
    }
    assert_eq!(pb(r#"{"otherRoot": []}"#).unwrap_err(), "OTLP-JSON body is an export request for others, not for this endpoint");
    assert_eq!(pb(r#"{"id": "0011"}"#).unwrap_err(), "a trace id is neither 4 bytes nor empty (Root.id) at id".replace("trace", "span"));
}

#[test]
fn hostile_nesting_is_refused_without_recursion() {
    let deep = "[".repeat(200_000);
    assert!(pb(&deep).unwrap_err().contains("nested too deeply"));
    let mut chain = String::from("{}");
    for _ in 0..150 {
        chain = format!(r#"{{"child": {chain}}}"#);
    }
    assert!(pb(&chain).unwrap_err().contains("nested more than 100"));
    let mut wire = Vec::new();
    for _ in 0..200 {
        wire = [vec![0x22], vec![wire.len() as u8 | 0x80, (wire.len() >> 7) as u8], wire].concat();
    }
    assert!(pb_to_json(&wire, &schema(), 0).is_err());
}

#[test]
fn protobuf_is_read_as_upb_reads_it() {
    // child twice: merged; unknown field 9 skipped; name twice: the last; vals packed and not.
    let wire = [
        &[0x22, 0x03, 0x12, 0x01, b'a'][..],
        &[0x4a, 0x01, 0x00],
        &[0x12, 0x01, b'x', 0x12, 0x01, b'y'],
        &[0x22, 0x02, 0x18, 0x05],
        &[0x29, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f],
        &[0x2a, 0x08, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f],
    ]
    .concat();
    assert_eq!(js(&wire), r#"{"name":"y","child":{"name":"a","count":"5"},"vals":[1.0,"NaN"]}"#);
    // A oneof member starts afresh after another member.
    let item = [&[0x1a, 0x02, 0x20, 0x01][..], &[0x0a, 0x00], &[0x1a, 0x02, 0x28, 0x01]].concat();
    let wire = [vec![0x0a, item.len() as u8], item].concat();
    assert_eq!(js(&wire), r#"{"items":[{"subItem":{"flag":true}}]}"#);
    for bad in [&[0x12, 0x01, 0xff][..], &[0x00], &[0x0c], &[0x12, 0x05, b'a'], &[0x2a, 0x03, 0, 0, 0]] {
        assert!(pb_to_json(bad, &schema(), 0).is_err());
    }
}

#[test]
fn never_panics_on_garbage() {
    let s = schema();
    let seed = br#"{"items":[{"s":"\u00e9\ud83d\ude00","kind":1,"raw":"QQ=="},{"subItem":{"n":"1_0"}}],"vals":[1e3,"NaN"],"id":"00112233","count":"-0"}"#;
    let good = json_to_pb(seed, &s, 0).unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut body = if round % 2 == 0 { seed.to_vec() } else { good.clone() };
        let pos = (x as usize) % body.len();
        match round % 3 {
            0 => body[pos] = (x >> 32) as u8,
            1 => body.truncate(pos),
            _ => body.insert(pos, (x >> 40) as u8),
        }
        let _ = json_to_pb(&body, &s, 0);
        let _ = pb_to_json(&body, &s, 0);
        let _ = json_to_pb(&body, &s, 1);
    }
    assert!(json_to_pb(seed, &s, 2).is_err()); // no such root
}

#[test]
fn bad_tables_are_refused() {
    let one = |field: FieldEntry| JsonSchema::new(vec![("M".into(), vec![field])], vec![], vec![]);
    assert!(one(f(1, "x", "x", 2, 0, 0, 0, 0)).is_err()); // float
    assert!(one(f(1, "x", "x", MESSAGE, 0, 5, 0, 0)).is_err()); // no message 5
    assert!(one(f(1, "x", "x", 14, 0, 0, 0, 0)).is_err()); // no enum 0
    assert!(one(f(1, "x", "x", STRING, 0, 0, 16, 0)).is_err()); // an id that is not bytes
    assert!(one(f(1, "x", "x", STRING, REPEATED | PACKED, 0, 0, 0)).is_err()); // packed strings
    assert!(one(f(0, "x", "x", STRING, 0, 0, 0, 0)).is_err());
    let twice = vec![f(1, "a_b", "aB", STRING, 0, 0, 0, 0), f(2, "aB", "aB2", STRING, 0, 0, 0, 0)];
    assert!(JsonSchema::new(vec![("M".into(), twice)], vec![], vec![]).is_err()); // one member, two fields
    assert!(one(f(1, "x", "x", STRING, 0, 0, 0, 0)).is_ok());
}
