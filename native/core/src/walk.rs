//! The triage wire walk, in plain Rust (no PyO3), so `cargo test -p redact-core`
//! tests it without Python. The crate docs (`lib.rs`) state the contract ("never guesses"),
//! which every check below serves; `native/python` is the PyO3 shell around it.

use rustc_hash::FxHashSet as HashSet;

/// What a field is to the walk (the `kind` of a schema entry).
pub const PLAIN: u8 = 0; // a known field with nothing to collect: checked and stepped over
pub const MESSAGE: u8 = 1; // a submessage of the schema's message `target`: walked
pub const KEY: u8 = 2; // an attribute key: collected, once per distinct value
pub const TEXT: u8 = 3; // a string or bytes a rule reads: appended to text channel `target`
pub const SCALAR: u8 = 4; // a double in a value: its attribute's key is collected
pub const INT: u8 = 5; // an int64 in a value: its decimal text to channel `target`
pub const BOOL: u8 = 6; // a bool in a value: `true` or `false` to channel `target`

/// Entry flags.
pub const ITEM: u8 = 1; // each occurrence is one item (span, data point, log record)
pub const UTF8: u8 = 2; // a protobuf `string`: the decoder refuses invalid UTF-8
pub const REPEATED: u8 = 4; // may occur any number of times; without it, at most once
pub const NESTED: u8 = 8; // its occurrence anywhere sets `Found::nested` (keys under keys)
// A TEXT with a NUL inside refuses the body, so its channel splits back into exactly its
// texts (a whole-field rule is judged per text; a mask pattern needs no split).
pub const NUL_FREE: u8 = 16;
const FLAGS: u8 = ITEM | UTF8 | REPEATED | NESTED | NUL_FREE;

/// Below protobuf's own default recursion limit (100): deeper bodies go to the decoder,
/// which decides; the bound also keeps hostile input off the stack.
pub const MAX_DEPTH: u32 = 64;

/// Field numbers above this are never in the table (OTLP's are below 20).
pub const MAX_FIELD: u32 = 1024;

/// Largest oneof index in a message (OTLP messages have at most two oneofs).
pub const MAX_ONEOF: u8 = 15;

/// Most text channels a schema may ask for (triage uses one per text target, ~14).
pub const MAX_CHANNELS: u32 = 64;

/// Most singular fields in one message: each has a bit of a u64 (OTLP's have at most ~15).
pub const MAX_SINGULAR: usize = 64;

/// One schema entry as Python gives it: `(number, kind, target, wires, packed, oneof, flags)`.
pub type Entry = (u32, u8, u32, u8, u8, u8, u8);

#[derive(Clone, Copy, Default)]
struct Field {
    known: bool,
    kind: u8,
    target: u32, // MESSAGE: message index; TEXT, INT: channel index
    wires: u8,   // bit w set: wire type w is accepted
    packed: u8,  // a repeated number sent as wire type 2: 1 varints, 4 or 8 fixed-size
    oneof: u8,   // 1.. : the oneof it belongs to; 0: none
    flags: u8,
    slot: u8, // singular fields: its bit in the message's seen-set
}

/// Per message: field number -> Field. Index 0 is the root message.
pub struct Schema {
    messages: Vec<Vec<Field>>,
    has_key: Vec<bool>, // the message is an attribute (it has a KEY field)
    channels: usize,
}

const LEN: u8 = 1 << 2; // wire type 2 (length-delimited) as a `wires` bit
const VARINT: u8 = 1 << 0;

impl Schema {
    /// `messages[i]` lists the entries of message `i`; `channels` is how many text
    /// channels TEXT and INT entries write to. Refuses a table the walk could misread: a
    /// collecting kind with a wire type it does not collect from, a target out of range,
    /// a field listed twice.
    pub fn new(messages: Vec<Vec<Entry>>, channels: u32) -> Result<Schema, String> {
        let count = messages.len() as u32;
        if count == 0 {
            return Err("a schema needs at least its root message".into());
        }
        if channels > MAX_CHANNELS {
            return Err(format!("{channels} text channels; at most {MAX_CHANNELS}"));
        }
        let mut tables = Vec::with_capacity(messages.len());
        for fields in messages {
            let mut table: Vec<Field> = Vec::new();
            for (number, kind, target, wires, packed, oneof, flags) in fields {
                if number == 0 || number > MAX_FIELD {
                    return Err(format!("field number {number} out of range"));
                }
                let bad = match kind {
                    PLAIN | SCALAR => false,
                    MESSAGE => target >= count || wires != LEN,
                    KEY => wires != LEN,
                    TEXT => target >= channels || wires != LEN,
                    INT | BOOL => target >= channels || wires != VARINT,
                    _ => true,
                };
                let bad_packed = !matches!(packed, 0 | 1 | 4 | 8)
                    || (packed != 0 && (kind != PLAIN || flags & REPEATED == 0));
                if bad || bad_packed || wires & !0b10_0111 != 0 || oneof > MAX_ONEOF || flags & !FLAGS != 0 {
                    return Err(format!("bad entry for field {number}"));
                }
                let i = number as usize;
                if table.len() <= i {
                    table.resize(i + 1, Field::default());
                }
                if table[i].known {
                    return Err(format!("field {number} listed twice"));
                }
                table[i] = Field { known: true, kind, target, wires, packed, oneof, flags, slot: 0 };
            }
            for (slot, field) in table.iter_mut().filter(|f| f.known && f.flags & REPEATED == 0).enumerate() {
                if slot == MAX_SINGULAR {
                    return Err(format!("more than {MAX_SINGULAR} singular fields in one message"));
                }
                field.slot = slot as u8;
            }
            tables.push(table);
        }
        let has_key = tables.iter().map(|t| t.iter().any(|f| f.known && f.kind == KEY)).collect();
        Ok(Schema { messages: tables, has_key, channels: channels as usize })
    }

    pub fn channels(&self) -> usize {
        self.channels
    }
}

/// What one walk collects.
pub struct Found<'a> {
    pub keys: HashSet<&'a [u8]>,
    pub scalar_keys: HashSet<&'a [u8]>,
    /// One per channel: NUL, then each text followed by a NUL, in wire order.
    pub texts: Vec<Vec<u8>>,
    pub items: u64,
    pub nested: bool,
}

/// Walk `body` as the schema's root message. None: cannot vouch (see the crate docs).
pub fn scan<'a>(body: &'a [u8], schema: &Schema) -> Option<Found<'a>> {
    let found = Found {
        keys: HashSet::default(),
        scalar_keys: HashSet::default(),
        texts: vec![vec![0]; schema.channels], // each text sits between two NULs
        items: 0,
        nested: false,
    };
    let mut walk = Walk { schema, found };
    walk.message(body, 0, 0)?;
    Some(walk.found)
}

/// A varint as protobuf decoders read it, refusing the encodings they read but never
/// write: more than 64 bits, or more bytes than the value needs (a last byte of zero
/// after a continuation). An overlong varint decodes to the same value, but the bytes
/// then differ from any encoder's, and the SPEC forwards original bytes only when they
/// hold nothing a decoder normalises.
#[inline(always)]
pub fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let first = *buf.get(*pos)?;
    if first < 0x80 {
        *pos += 1; // one byte: most tags, lengths and small numbers
        return Some(u64::from(first));
    }
    long_varint(buf, pos)
}

fn long_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..10 {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        if i == 9 && byte > 1 {
            return None; // more than 64 bits
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return (byte != 0 || i == 0).then_some(value);
        }
    }
    None
}

fn advance(buf: &[u8], pos: usize, n: u64) -> Option<usize> {
    let end = pos.checked_add(usize::try_from(n).ok()?)?;
    (end <= buf.len()).then_some(end)
}

/// A packed run of numbers: whole minimal varints, or a whole number of fixed-size values.
fn packed_ok(data: &[u8], packed: u8) -> bool {
    if packed != 1 {
        return data.len().is_multiple_of(packed as usize);
    }
    let mut pos = 0;
    while pos < data.len() {
        if varint(data, &mut pos).is_none() {
            return false;
        }
    }
    true
}

/// The decimal text of an int64 (Python's `str(int_value)`), appended without `fmt`.
fn push_decimal(out: &mut Vec<u8>, value: i64) {
    if value < 0 {
        out.push(b'-');
    }
    push_digits(out, u128::from(value.unsigned_abs()));
}

/// The decimal digits of `n`, appended without `fmt` (the hot paths' integer texts).
pub fn push_digits(out: &mut Vec<u8>, mut n: u128) {
    let mut digits = [0u8; 40];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

struct Walk<'s, 'a> {
    schema: &'s Schema,
    found: Found<'a>,
}

impl<'a> Walk<'_, 'a> {
    /// Walk one message; Some(true) when it has a SCALAR field itself (a value that is a
    /// double: ints and bools go to their channel as text), which its parent attribute,
    /// if any, records by key.
    fn message(&mut self, buf: &'a [u8], msg: usize, depth: u32) -> Option<bool> {
        if depth > MAX_DEPTH {
            return None;
        }
        let schema = self.schema;
        let table = &schema.messages[msg];
        let mut key: &'a [u8] = b""; // absent on the wire: the empty string, as decoded
        let mut scalar = false; // this message is a value holding a number or boolean
        let mut scalar_child = false; // ...or, for an attribute, its value is
        let mut oneofs = [0u64; MAX_ONEOF as usize + 1]; // field number seen per oneof
        let mut seen = 0u64; // singular fields met so far, by slot
        let mut pos = 0;
        while pos < buf.len() {
            let tag = varint(buf, &mut pos)?;
            let number = tag >> 3;
            let wire = (tag & 7) as u8;
            let field = usize::try_from(number).ok().and_then(|n| table.get(n)).copied().unwrap_or_default();
            if !field.known || wire > 5 || field.wires & (1 << wire) == 0 {
                return None; // unknown to the decoder, or kept by it as an unknown field
            }
            if field.flags & REPEATED == 0 {
                // Twice: the decoder keeps the last (or merges two messages) while these
                // bytes still carry the first; only a re-encoding is what it read.
                let bit = 1u64 << field.slot;
                if seen & bit != 0 {
                    return None;
                }
                seen |= bit;
            }
            if field.oneof != 0 {
                // Two members of one oneof: the decoder keeps the last; we do not follow.
                let member = &mut oneofs[field.oneof as usize];
                if *member != 0 && *member != number {
                    return None;
                }
                *member = number;
            }
            match wire {
                0 => {
                    let value = varint(buf, &mut pos)?;
                    if field.kind == INT {
                        let channel = &mut self.found.texts[field.target as usize];
                        push_decimal(channel, value as i64); // int64: two's complement
                        channel.push(0);
                    } else if field.kind == BOOL {
                        let channel = &mut self.found.texts[field.target as usize];
                        channel.extend_from_slice(if value != 0 { b"true" } else { b"false" }); // as decoded
                        channel.push(0);
                    }
                }
                1 => pos = advance(buf, pos, 8)?,
                5 => pos = advance(buf, pos, 4)?,
                _ => {
                    let len = varint(buf, &mut pos)?;
                    let end = advance(buf, pos, len)?;
                    let data = &buf[pos..end];
                    pos = end;
                    if field.packed != 0 {
                        if !packed_ok(data, field.packed) {
                            return None;
                        }
                    } else if field.flags & UTF8 != 0 && std::str::from_utf8(data).is_err() {
                        return None;
                    }
                    match field.kind {
                        MESSAGE => scalar_child |= self.message(data, field.target as usize, depth + 1)?,
                        KEY => key = data,
                        TEXT => {
                            if field.flags & NUL_FREE != 0 && data.contains(&0) {
                                return None;
                            }
                            let channel = &mut self.found.texts[field.target as usize];
                            channel.extend_from_slice(data);
                            channel.push(0);
                        }
                        _ => {}
                    }
                }
            }
            scalar |= field.kind == SCALAR;
            if field.flags & ITEM != 0 {
                self.found.items += 1;
            }
            if field.flags & NESTED != 0 {
                self.found.nested = true;
            }
        }
        if schema.has_key[msg] {
            self.found.keys.insert(key);
            if scalar_child {
                self.found.scalar_keys.insert(key);
            }
        }
        Some(scalar)
    }
}

#[cfg(test)]
mod tests {
    //! A miniature OTLP: Root { repeated Attr attrs = 1; string name = 2; repeated string
    //! tags = 3; Root child = 4; repeated fixed64 counts = 5 (packed); int32 n = 6 } and
    //! Attr (a KeyValue) { string key = 1; Value value = 2 }, Value (an AnyValue) {
    //! oneof { string s = 1; bool b = 2; int64 i = 3; bytes raw = 7; List list = 6 } },
    //! List (a KeyValueList) { repeated Attr values = 1 }. Channel 0 holds values,
    //! channel 1 names and tags.
    use super::*;

    const ROOT: u32 = 0;
    const ATTR: u32 = 1;
    const VALUE: u32 = 2;
    const LIST: u32 = 3;

    fn schema() -> Schema {
        let r = REPEATED;
        Schema::new(
            vec![
                vec![
                    (1, MESSAGE, ATTR, LEN, 0, 0, r | ITEM),
                    (2, TEXT, 1, LEN, 0, 0, UTF8 | NUL_FREE),
                    (3, TEXT, 1, LEN, 0, 0, UTF8 | r | NUL_FREE),
                    (4, MESSAGE, ROOT, LEN, 0, 0, 0),
                    (5, PLAIN, 0, LEN | (1 << 1), 8, 0, r),
                    (6, PLAIN, 0, VARINT, 0, 0, 0),
                ],
                vec![(1, KEY, 0, LEN, 0, 0, UTF8), (2, MESSAGE, VALUE, LEN, 0, 0, 0)],
                vec![
                    (1, TEXT, 0, LEN, 0, 1, UTF8),
                    (2, SCALAR, 0, VARINT, 0, 1, 0),
                    (3, INT, 0, VARINT, 0, 1, 0),
                    (4, BOOL, 0, VARINT, 0, 1, 0),
                    (6, MESSAGE, LIST, LEN, 0, 1, 0),
                    (7, TEXT, 0, LEN, 0, 1, 0),
                ],
                vec![(1, MESSAGE, ATTR, LEN, 0, 0, r | NESTED)],
            ],
            2,
        )
        .unwrap()
    }

    fn tag(number: u32, wire: u8) -> Vec<u8> {
        enc(u64::from(number) << 3 | u64::from(wire))
    }

    fn enc(mut n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        while n >= 0x80 {
            out.push(n as u8 | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
        out
    }

    fn ld(number: u32, payload: &[u8]) -> Vec<u8> {
        [tag(number, 2), enc(payload.len() as u64), payload.to_vec()].concat()
    }

    fn vint(number: u32, value: u64) -> Vec<u8> {
        [tag(number, 0), enc(value)].concat()
    }

    fn attr(key: &[u8], value: &[u8]) -> Vec<u8> {
        ld(1, &[ld(1, key), ld(2, value)].concat())
    }

    fn sorted(set: &HashSet<&[u8]>) -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = set.iter().map(|k| k.to_vec()).collect();
        v.sort();
        v
    }

    #[test]
    fn collects_keys_texts_ints_and_items() {
        let s = schema();
        let body = [
            attr(b"a", &ld(1, b"x@y")),
            attr(b"n", &vint(3, 4111111111111111)),
            attr(b"neg", &vint(3, (-42i64) as u64)),
            attr(b"raw", &ld(7, b"\xff\x00b")),
            attr(b"t", &vint(2, 1)),
            attr(b"yes", &vint(4, 7)),
            attr(b"no", &vint(4, 0)),
            ld(2, b"span"),
            ld(3, b"t1"),
            ld(3, b"t2"),
        ]
        .concat();
        let found = scan(&body, &s).unwrap();
        assert_eq!(found.items, 7);
        assert!(!found.nested);
        let keys: Vec<Vec<u8>> = [&b"a"[..], b"n", b"neg", b"no", b"raw", b"t", b"yes"].iter().map(|k| k.to_vec()).collect();
        assert_eq!(sorted(&found.keys), keys);
        // Only SCALAR values mark their key: ints and bools are in the channel as text.
        assert_eq!(sorted(&found.scalar_keys), vec![b"t".to_vec()]);
        assert_eq!(found.texts[0], b"\0x@y\x004111111111111111\0-42\0\xff\x00b\0true\0false\0".to_vec());
        assert_eq!(found.texts[1], b"\0span\0t1\0t2\0".to_vec());
    }

    #[test]
    fn int64_extremes_read_as_python_prints_them() {
        let s = schema();
        for (value, text) in [(0i64, "0"), (i64::MIN, "-9223372036854775808"), (i64::MAX, "9223372036854775807"), (-1, "-1")] {
            let body = attr(b"k", &vint(3, value as u64));
            let found = scan(&body, &s).unwrap();
            assert_eq!(found.texts[0], [b"\0", text.as_bytes(), b"\0"].concat());
        }
    }

    #[test]
    fn a_kvlist_anywhere_sets_nested() {
        let s = schema();
        let inner = attr(b"in", &ld(1, b"v"));
        let body = attr(b"outer", &ld(6, &inner));
        let found = scan(&body, &s).unwrap();
        assert!(found.nested);
        assert_eq!(sorted(&found.keys), vec![b"in".to_vec(), b"outer".to_vec()]);
        // An empty kvlist has no `values` on the wire: no key under a key.
        assert!(!scan(&attr(b"outer", &ld(6, b"")), &s).unwrap().nested);
    }

    #[test]
    fn a_singular_field_twice_is_refused() {
        let s = schema();
        let twice_key = ld(1, &[ld(1, b"a"), ld(1, b"b"), ld(2, &ld(1, b"v"))].concat());
        assert!(scan(&twice_key, &s).is_none());
        assert!(scan(&[ld(2, b"one"), ld(2, b"two")].concat(), &s).is_none());
        assert!(scan(&[ld(4, b""), ld(4, &ld(2, b"x"))].concat(), &s).is_none()); // a message twice: merged
        assert!(scan(&[vint(6, 1), vint(6, 1)].concat(), &s).is_none());
        // One oneof member twice, and two members.
        assert!(scan(&attr(b"k", &[ld(1, b"a"), ld(1, b"b")].concat()), &s).is_none());
        assert!(scan(&attr(b"k", &[ld(1, b"a"), vint(3, 1)].concat()), &s).is_none());
        // Repeated fields may repeat, and the same field in two instances is fine.
        assert!(scan(&[ld(3, b"a"), ld(3, b"b"), attr(b"k", b""), attr(b"k", b"")].concat(), &s).is_some());
        assert!(scan(&[ld(4, &ld(2, b"x")), ld(2, b"y")].concat(), &s).is_some());
    }

    #[test]
    fn overlong_varints_are_refused_everywhere() {
        let s = schema();
        let good = vint(6, 5);
        assert!(scan(&good, &s).is_some());
        assert!(scan(&[0x30, 0x85, 0x00], &s).is_none()); // value 5 in two bytes
        assert!(scan(&[0xb0, 0x00, 0x05], &s).is_none()); // tag 6/varint in two bytes
        assert!(scan(&[0x12, 0x81, 0x00, b'x'], &s).is_none()); // a length of 1 in two bytes
        assert!(scan(&vint(6, 0), &s).is_some()); // zero is one byte 0x00: minimal
        let packed_good = [tag(5, 2), enc(8), vec![0; 8]].concat();
        assert!(scan(&packed_good, &s).is_some());
        // Ten bytes: the longest a 64-bit value takes; the tenth may only be 0 or 1.
        assert!(scan(&[vec![0x30], vec![0xff; 9], vec![0x01]].concat(), &s).is_some());
        assert!(scan(&[vec![0x30], vec![0xff; 9], vec![0x02]].concat(), &s).is_none());
        assert!(scan(&[vec![0x30], vec![0x80; 9], vec![0x00]].concat(), &s).is_none());
    }

    #[test]
    fn overlong_varints_in_packed_runs_are_refused() {
        let s = Schema::new(vec![vec![(1, PLAIN, 0, LEN | VARINT, 1, 0, REPEATED)]], 0).unwrap();
        assert!(scan(&ld(1, &[0x01, 0xac, 0x02]), &s).is_some());
        assert!(scan(&ld(1, &[0x01, 0x81, 0x00]), &s).is_none());
        assert!(scan(&ld(1, &[0x01, 0x81]), &s).is_none()); // cut short
    }

    #[test]
    fn varint_reads_minimal_encodings_only() {
        for value in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let bytes = enc(value);
            let mut pos = 0;
            assert_eq!(varint(&bytes, &mut pos), Some(value));
            assert_eq!(pos, bytes.len());
        }
        let mut pos = 0;
        assert_eq!(varint(&[0x80, 0x80, 0x00], &mut pos), None);
    }

    #[test]
    fn what_the_decoder_reads_otherwise_is_refused() {
        let s = schema();
        assert!(scan(&ld(2, b"\xff"), &s).is_none()); // invalid UTF-8 in a string
        assert!(scan(&ld(2, b"a\0b"), &s).is_none()); // a NUL in a NUL_FREE text
        assert_eq!(scan(&attr(b"k", &ld(1, b"a\0b")), &s).unwrap().texts[0], b"\0a\0b\0".to_vec()); // ...in a value: kept
        assert!(scan(&attr(b"k", &ld(7, b"\xff")), &s).is_some()); // ...in bytes: fine
        assert!(scan(&ld(9, b"x"), &s).is_none()); // unknown field
        assert!(scan(&vint(2, 1), &s).is_none()); // a string as a varint
        assert!(scan(&[tag(5, 2), enc(7), vec![0; 7]].concat(), &s).is_none()); // 7 bytes of fixed64
        assert!(scan(&ld(2, b"abc")[..4], &s).is_none()); // cut short
        let mut deep = ld(2, b"x");
        for _ in 0..=MAX_DEPTH {
            deep = ld(4, &deep);
        }
        assert!(scan(&deep, &s).is_none());
    }

    #[test]
    fn bad_tables_are_refused() {
        assert!(Schema::new(vec![vec![(1, PLAIN, 0, VARINT, 0, 0, 32)]], 0).is_err()); // unknown flag
        assert!(Schema::new(vec![], 0).is_err());
        assert!(Schema::new(vec![vec![(1, MESSAGE, 5, LEN, 0, 0, 0)]], 0).is_err()); // no message 5
        assert!(Schema::new(vec![vec![(0, PLAIN, 0, VARINT, 0, 0, 0)]], 0).is_err()); // number 0
        assert!(Schema::new(vec![vec![(1, TEXT, 1, LEN, 0, 0, 0)]], 1).is_err()); // no channel 1
        assert!(Schema::new(vec![vec![(1, INT, 0, LEN, 0, 0, 0)]], 1).is_err()); // INT is a varint
        assert!(Schema::new(vec![vec![(1, KEY, 0, VARINT, 0, 0, 0)]], 0).is_err()); // KEY is a string
        assert!(Schema::new(vec![vec![(1, PLAIN, 0, LEN, 8, 0, 0)]], 0).is_err()); // packed, not repeated
        assert!(Schema::new(vec![vec![(1, PLAIN, 0, VARINT, 0, 0, 0), (1, PLAIN, 0, VARINT, 0, 0, 0)]], 0).is_err());
        let many: Vec<Entry> = (1..=65).map(|n| (n, PLAIN, 0, VARINT, 0, 0, 0)).collect();
        assert!(Schema::new(vec![many], 0).is_err()); // 65 singular fields: no bit for one
        let many: Vec<Entry> = (1..=65).map(|n| (n, PLAIN, 0, VARINT, 0, 0, if n == 1 { REPEATED } else { 0 })).collect();
        assert!(Schema::new(vec![many], 0).is_ok());
        assert!(Schema::new(vec![vec![(1, TEXT, 0, LEN, 0, 0, 0)]], 1).is_ok());
    }
}
