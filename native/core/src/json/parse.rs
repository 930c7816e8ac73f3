//! JSON text -> a flat tape of nodes, accepting exactly what Python's `json.loads(bytes)`
//! accepts (bar its depth, see `MAX_JSON_DEPTH`): the encoding it detects (UTF-8 with or
//! without a BOM, UTF-16 and UTF-32 by BOM or NUL pattern, all with `surrogatepass`),
//! `NaN`, `Infinity` and `-Infinity`, integers of at most 4300 digits (CPython's
//! `int_max_str_digits`), no control characters in strings, any escape `\uXXXX` (lone
//! surrogates included). Iterative: nesting costs tape, never stack.

use std::borrow::Cow;

use super::JsonError;

/// Deepest nesting of arrays and objects taken. Python's own limit is its recursion
/// limit (1000) less the caller's stack, which no input can tell; OTLP's deepest
/// message chain (100 levels, the JSON parser's own limit) needs under 200.
pub const MAX_JSON_DEPTH: usize = 512;

/// CPython's default `sys.get_int_max_str_digits()`: a longer integer literal makes
/// `json.loads` raise ValueError.
pub const MAX_INT_DIGITS: usize = 4300;

pub const NULL: u8 = 0;
pub const TRUE: u8 = 1;
pub const FALSE: u8 = 2;
pub const NUM: u8 = 3; // start..end: the literal
pub const NAN: u8 = 4;
pub const POS_INF: u8 = 5;
pub const NEG_INF: u8 = 6;
pub const STR: u8 = 7; // start..end: the raw text between the quotes
pub const OBJ: u8 = 8; // followed by key, value, key, value ...; `next` skips it all
pub const ARR: u8 = 9;

// Node flags.
pub const ESCAPED: u8 = 1; // a string holding a backslash escape
pub const FLOAT: u8 = 2; // a number with a fraction or exponent (Python: float, else int)

#[derive(Clone, Copy, Debug)]
pub struct Node {
    pub kind: u8,
    pub flags: u8,
    pub start: u32,
    pub end: u32,
    /// The index of the node after this one's subtree.
    pub next: u32,
}

pub struct Tape<'a> {
    pub text: Cow<'a, [u8]>,
    pub nodes: Vec<Node>,
    /// The text holds a UTF-8-encoded surrogate (from `surrogatepass`).
    pub surrogates: bool,
}

fn syntax(pos: usize, what: &str) -> JsonError {
    JsonError::new(format!("body is not valid JSON (byte {pos}: {what})"))
}

/// Python's `json.detect_encoding` and `bytes.decode(..., 'surrogatepass')`: the text as
/// UTF-8 in which a surrogate code point may appear (as its 3-byte form).
fn to_utf8(body: &[u8]) -> Result<(Cow<'_, [u8]>, bool), JsonError> {
    let b = body;
    let utf32 = |be: bool, skip: usize| decode_units(&b[skip..], 4, be);
    let utf16 = |be: bool, skip: usize| decode_units(&b[skip..], 2, be);
    let (text, from) = if b.starts_with(&[0, 0, 0xfe, 0xff]) {
        (utf32(true, 4)?, true)
    } else if b.starts_with(&[0xff, 0xfe, 0, 0]) {
        (utf32(false, 4)?, true)
    } else if b.starts_with(&[0xfe, 0xff]) {
        (utf16(true, 2)?, true)
    } else if b.starts_with(&[0xff, 0xfe]) {
        (utf16(false, 2)?, true)
    } else if b.starts_with(&[0xef, 0xbb, 0xbf]) {
        (Cow::Borrowed(&b[3..]), false)
    } else if b.len() >= 4 && b[0] == 0 {
        (if b[1] != 0 { utf16(true, 0)? } else { utf32(true, 0)? }, true)
    } else if b.len() >= 4 && b[1] == 0 {
        (if b[2] != 0 || b[3] != 0 { utf16(false, 0)? } else { utf32(false, 0)? }, true)
    } else if b.len() == 2 && b[0] == 0 {
        (utf16(true, 0)?, true)
    } else if b.len() == 2 && b[1] == 0 {
        (utf16(false, 0)?, true)
    } else {
        (Cow::Borrowed(b), false)
    };
    if from {
        let surrogates = has_surrogates(&text);
        return Ok((text, surrogates));
    }
    if std::str::from_utf8(&text).is_ok() {
        return Ok((text, false));
    }
    check_utf8_surrogatepass(&text)?;
    Ok((text, true))
}

fn not_decodable() -> JsonError {
    JsonError::new("body is not valid JSON (not decodable text)")
}

/// UTF-16 or UTF-32 code units to UTF-8; a lone surrogate becomes its 3-byte form.
fn decode_units(b: &[u8], width: usize, be: bool) -> Result<Cow<'static, [u8]>, JsonError> {
    if !b.len().is_multiple_of(width) {
        return Err(not_decodable());
    }
    let unit = |c: &[u8]| -> u32 {
        let mut v = 0u32;
        for i in 0..width {
            let byte = u32::from(if be { c[i] } else { c[width - 1 - i] });
            v = v << 8 | byte;
        }
        v
    };
    let units: Vec<u32> = b.chunks_exact(width).map(unit).collect();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < units.len() {
        let mut c = units[i];
        i += 1;
        if width == 2 && (0xd800..0xdc00).contains(&c) && i < units.len() && (0xdc00..0xe000).contains(&units[i]) {
            c = 0x10000 + ((c - 0xd800) << 10) + (units[i] - 0xdc00);
            i += 1;
        }
        if c > 0x10ffff {
            return Err(not_decodable());
        }
        push_code_point(&mut out, c);
    }
    Ok(Cow::Owned(out))
}

/// UTF-8 of any code point below 0x110000, surrogates included (their 3-byte form).
pub fn push_code_point(out: &mut Vec<u8>, c: u32) {
    if c < 0x80 {
        out.push(c as u8);
    } else if c < 0x800 {
        out.extend_from_slice(&[0xc0 | (c >> 6) as u8, 0x80 | (c & 0x3f) as u8]);
    } else if c < 0x10000 {
        out.extend_from_slice(&[0xe0 | (c >> 12) as u8, 0x80 | (c >> 6 & 0x3f) as u8, 0x80 | (c & 0x3f) as u8]);
    } else {
        out.extend_from_slice(&[
            0xf0 | (c >> 18) as u8,
            0x80 | (c >> 12 & 0x3f) as u8,
            0x80 | (c >> 6 & 0x3f) as u8,
            0x80 | (c & 0x3f) as u8,
        ]);
    }
}

/// Whether UTF-8 text (already checked) holds a surrogate: ED A0..BF.
pub fn has_surrogates(text: &[u8]) -> bool {
    text.windows(2).any(|w| w[0] == 0xed && w[1] >= 0xa0)
}

/// Strict UTF-8, except that surrogates (ED A0..BF xx) pass, as `surrogatepass` lets them.
fn check_utf8_surrogatepass(b: &[u8]) -> Result<(), JsonError> {
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let (n, lo, hi) = match c {
            0x00..=0x7f => {
                i += 1;
                continue;
            }
            0xc2..=0xdf => (1, 0x80, 0xbf),
            0xe0 => (2, 0xa0, 0xbf),
            0xe1..=0xef => (2, 0x80, 0xbf), // 0xed: surrogates allowed
            0xf0 => (3, 0x90, 0xbf),
            0xf1..=0xf3 => (3, 0x80, 0xbf),
            0xf4 => (3, 0x80, 0x8f),
            _ => return Err(not_decodable()),
        };
        if i + n >= b.len() {
            return Err(not_decodable());
        }
        let second = b[i + 1];
        if !(lo..=hi).contains(&second) || b[i + 2..i + 1 + n].iter().any(|&x| !(0x80..=0xbf).contains(&x)) {
            return Err(not_decodable());
        }
        i += 1 + n;
    }
    Ok(())
}

/// Bytes a string may not hold raw: `"`, `\` and control characters (strict mode).
static STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

struct Parser<'t> {
    b: &'t [u8],
    pos: usize,
    nodes: Vec<Node>,
}

impl Parser<'_> {
    #[inline]
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.pos) {
            if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                break;
            }
            self.pos += 1;
        }
    }

    #[inline]
    fn push(&mut self, kind: u8, flags: u8, start: usize, end: usize) {
        let next = self.nodes.len() as u32 + 1;
        self.nodes.push(Node { kind, flags, start: start as u32, end: end as u32, next });
    }

    fn literal(&mut self, word: &[u8], kind: u8) -> Result<(), JsonError> {
        if !self.b[self.pos..].starts_with(word) {
            return Err(syntax(self.pos, "expecting value"));
        }
        self.push(kind, 0, self.pos, self.pos + word.len());
        self.pos += word.len();
        Ok(())
    }

    fn string(&mut self) -> Result<(), JsonError> {
        let start = self.pos + 1; // after the quote
        let mut i = start;
        let mut flags = 0;
        let b = self.b;
        loop {
            // Eight bytes at a time while none is a quote, a backslash or a control byte.
            while let Some(chunk) = b.get(i..i + 8) {
                let w = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
                const ONES: u64 = 0x0101_0101_0101_0101;
                const HIGH: u64 = 0x8080_8080_8080_8080;
                let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
                let stop = zero(w ^ (ONES * u64::from(b'"'))) | zero(w ^ (ONES * u64::from(b'\\'))) | (w.wrapping_sub(ONES * 0x20) & !w & HIGH);
                if stop != 0 {
                    break;
                }
                i += 8;
            }
            while i < b.len() && !STOP[b[i] as usize] {
                i += 1;
            }
            match b.get(i) {
                None => return Err(syntax(start - 1, "unterminated string")),
                Some(b'"') => break,
                Some(b'\\') => {
                    flags |= ESCAPED;
                    match b.get(i + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                        Some(b'u') => {
                            let hex = b.get(i + 2..i + 6).ok_or_else(|| syntax(i, "invalid \\uXXXX escape"))?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return Err(syntax(i, "invalid \\uXXXX escape"));
                            }
                            i += 6;
                        }
                        _ => return Err(syntax(i, "invalid escape")),
                    }
                }
                Some(_) => return Err(syntax(i, "invalid control character")),
            }
        }
        self.push(STR, flags, start, i);
        self.pos = i + 1;
        Ok(())
    }

    fn number(&mut self) -> Result<(), JsonError> {
        let b = self.b;
        let start = self.pos;
        let mut i = start;
        if b.get(i) == Some(&b'-') {
            if b[i + 1..].starts_with(b"Infinity") {
                self.push(NEG_INF, 0, start, start + 9);
                self.pos = start + 9;
                return Ok(());
            }
            i += 1;
        }
        let digits = |i: &mut usize| {
            let from = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i - from
        };
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                digits(&mut i);
            }
            _ => return Err(syntax(start, "expecting value")),
        }
        let int_digits = i - start - usize::from(b[start] == b'-');
        let mut flags = 0;
        if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            i += 1;
            digits(&mut i);
            flags = FLOAT;
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            let mut j = i + 1;
            if matches!(b.get(j), Some(b'+' | b'-')) {
                j += 1;
            }
            if digits(&mut j) > 0 {
                i = j;
                flags = FLOAT;
            }
        }
        if flags == 0 && int_digits > MAX_INT_DIGITS {
            return Err(syntax(start, "integer of more than 4300 digits"));
        }
        self.push(NUM, flags, start, i);
        self.pos = i;
        Ok(())
    }

    /// One scalar value, or the opening of a container (pushed on `stack`).
    fn value(&mut self, stack: &mut Vec<usize>) -> Result<(), JsonError> {
        match self.b.get(self.pos) {
            Some(b'{' | b'[') => {
                if stack.len() >= MAX_JSON_DEPTH {
                    return Err(syntax(self.pos, "nested too deeply"));
                }
                let kind = if self.b[self.pos] == b'{' { OBJ } else { ARR };
                stack.push(self.nodes.len());
                self.push(kind, 0, self.pos, self.pos);
                self.pos += 1;
                Ok(())
            }
            Some(b'"') => self.string(),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'n') => self.literal(b"null", NULL),
            Some(b't') => self.literal(b"true", TRUE),
            Some(b'f') => self.literal(b"false", FALSE),
            Some(b'N') => self.literal(b"NaN", NAN),
            Some(b'I') => self.literal(b"Infinity", POS_INF),
            _ => Err(syntax(self.pos, "expecting value")),
        }
    }

    fn key(&mut self) -> Result<(), JsonError> {
        if self.b.get(self.pos) != Some(&b'"') {
            return Err(syntax(self.pos, "expecting property name enclosed in double quotes"));
        }
        self.string()?;
        self.ws();
        if self.b.get(self.pos) != Some(&b':') {
            return Err(syntax(self.pos, "expecting ':' delimiter"));
        }
        self.pos += 1;
        self.ws();
        Ok(())
    }

    fn close(&mut self, stack: &mut Vec<usize>) {
        let open = stack.pop().expect("a container is open");
        self.nodes[open].next = self.nodes.len() as u32;
        self.nodes[open].end = self.pos as u32;
        self.pos += 1;
    }

    fn run(&mut self) -> Result<(), JsonError> {
        let mut stack: Vec<usize> = Vec::new();
        self.ws();
        'value: loop {
            self.value(&mut stack)?;
            // Just opened a container: its first member, or its end.
            if let Some(&open) = stack.last() {
                if self.nodes.len() == open + 1 {
                    self.ws();
                    let obj = self.nodes[open].kind == OBJ;
                    match self.b.get(self.pos) {
                        Some(b'}') if obj => self.close(&mut stack),
                        Some(b']') if !obj => self.close(&mut stack),
                        _ => {
                            if obj {
                                self.key()?;
                            }
                            continue 'value;
                        }
                    }
                }
            }
            // After a value: a separator, the end of a container, or the end of the text.
            loop {
                self.ws();
                let Some(&open) = stack.last() else {
                    if self.pos != self.b.len() {
                        return Err(syntax(self.pos, "extra data"));
                    }
                    return Ok(());
                };
                let obj = self.nodes[open].kind == OBJ;
                match self.b.get(self.pos) {
                    Some(b',') => {
                        self.pos += 1;
                        self.ws();
                        if obj {
                            self.key()?;
                        }
                        continue 'value;
                    }
                    Some(b'}') if obj => self.close(&mut stack),
                    Some(b']') if !obj => self.close(&mut stack),
                    _ => return Err(syntax(self.pos, "expecting ',' delimiter")),
                }
            }
        }
    }
}

/// Parse a request body. Errors name the byte offset and the problem, never content.
pub fn parse(body: &[u8]) -> Result<Tape<'_>, JsonError> {
    if body.len() >= u32::MAX as usize {
        return Err(JsonError::new("body is too large for OTLP-JSON"));
    }
    let (text, surrogates) = to_utf8(body)?;
    let mut p = Parser { b: &text, pos: 0, nodes: Vec::with_capacity(text.len() / 8 + 4) };
    p.run()?;
    let nodes = p.nodes;
    Ok(Tape { text, nodes, surrogates })
}
