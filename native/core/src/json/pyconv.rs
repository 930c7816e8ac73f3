//! What Python itself does to a value on its way through `json_format`: `int(str)`,
//! `float(str)`, `base64.urlsafe_b64decode`, `binascii.unhexlify`, JSON string escapes,
//! and `repr(float)` on the way out. Each is CPython 3.11's rule, quoted where it is
//! surprising, because OTLP-JSON decoded here must be the message the Python codec reads.

use std::borrow::Cow;

use super::parse::{push_code_point, Node, ESCAPED};

/// Non-ASCII code points `str.isspace()` holds (Unicode 14, CPython 3.11): `int()` and
/// `float()` read them as spaces.
const SPACES: &[u32] = &[
    0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a,
    0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
];

/// The zero of each run of ten Unicode decimal digits (category Nd, Unicode 14): `int()`
/// and `float()` read `zero + k` as the digit k. Generated from `unicodedata.decimal`.
const DECIMAL_ZEROS: &[u32] = &[
    0x660, 0x6f0, 0x7c0, 0x966, 0x9e6, 0xa66, 0xae6, 0xb66, 0xbe6, 0xc66, 0xce6, 0xd66, 0xde6, 0xe50, 0xed0, 0xf20,
    0x1040, 0x1090, 0x17e0, 0x1810, 0x1946, 0x19d0, 0x1a80, 0x1a90, 0x1b50, 0x1bb0, 0x1c40, 0x1c50, 0xa620, 0xa8d0,
    0xa900, 0xa9d0, 0xa9f0, 0xaa50, 0xabf0, 0xff10, 0x104a0, 0x10d30, 0x11066, 0x110f0, 0x11136, 0x111d0, 0x112f0,
    0x11450, 0x114d0, 0x11650, 0x116c0, 0x11730, 0x118e0, 0x11950, 0x11c50, 0x11d50, 0x11da0, 0x16a60, 0x16ac0,
    0x16b50, 0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0, 0x1e950, 0x1fbf0,
];

/// Decoded text of a string node: escapes undone (an escaped surrogate pair joined, as
/// Python's scanner joins it), and whether a surrogate code point is left in it. Python
/// cannot encode such a string to UTF-8, so no string or bytes field takes it.
#[inline]
pub fn text<'t>(src: &'t [u8], node: &Node, surrogates: bool) -> (Cow<'t, [u8]>, bool) {
    let raw = &src[node.start as usize..node.end as usize];
    let raw_surrogate = surrogates && super::parse::has_surrogates(raw);
    if node.flags & ESCAPED == 0 {
        return (Cow::Borrowed(raw), raw_surrogate);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut lone = raw_surrogate;
    let mut i = 0;
    let hex4 = |at: usize| -> u32 {
        raw[at..at + 4].iter().fold(0, |v, &c| v << 4 | (c as char).to_digit(16).unwrap_or(0))
    };
    while i < raw.len() {
        let c = raw[i];
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        // The tape only holds valid escapes.
        let e = raw[i + 1];
        i += 2;
        let simple = match e {
            b'b' => 8,
            b'f' => 12,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => 0,
            other => other, // " \ /
        };
        if e != b'u' {
            out.push(simple);
            continue;
        }
        let mut cp = hex4(i);
        i += 4;
        if (0xd800..0xdc00).contains(&cp) && raw.get(i..i + 2) == Some(b"\\u") && raw.len() >= i + 6 {
            let low = hex4(i + 2);
            if (0xdc00..0xe000).contains(&low) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
                i += 6;
            }
        }
        lone |= (0xd800..0xe000).contains(&cp);
        push_code_point(&mut out, cp);
    }
    (Cow::Owned(out), lone)
}

/// Next code point of generalized UTF-8 (surrogates allowed), from `i`.
fn next_cp(s: &[u8], i: &mut usize) -> u32 {
    let c = s[*i];
    let (n, init) = match c {
        0x00..=0x7f => (0, u32::from(c)),
        0xc0..=0xdf => (1, u32::from(c & 0x1f)),
        0xe0..=0xef => (2, u32::from(c & 0x0f)),
        _ => (3, u32::from(c & 0x07)),
    };
    let mut cp = init;
    for k in 1..=n {
        cp = cp << 6 | u32::from(s.get(*i + k).copied().unwrap_or(0x80) & 0x3f);
    }
    *i += 1 + n;
    cp
}

/// CPython's `_PyUnicode_TransformDecimalAndSpaceToASCII`: non-ASCII spaces become ' ',
/// non-ASCII decimal digits their ASCII digit; anything else non-ASCII (and DEL) makes
/// the text unreadable as a number (None).
fn to_ascii(s: &[u8]) -> Option<Cow<'_, [u8]>> {
    if s.iter().all(|&c| c < 0x7f) {
        return Some(Cow::Borrowed(s));
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let cp = next_cp(s, &mut i);
        if cp < 0x7f {
            out.push(cp as u8);
        } else if SPACES.contains(&cp) {
            out.push(b' ');
        } else {
            let zero = DECIMAL_ZEROS.iter().rev().find(|&&z| z <= cp && cp < z + 10)?;
            out.push(b'0' + (cp - zero) as u8);
        }
    }
    Some(Cow::Owned(out))
}

/// `Py_ISSPACE`: the ASCII whitespace `int()` and `float()` strip.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn strip(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_space(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_space(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// An integer outside every field's range (any value beyond i128 is one).
pub const HUGE: i128 = i128::MAX;

/// `int(s)` in base 10: None when it raises (a syntax error, or more digits than
/// `MAX_INT_DIGITS`); values beyond i128 saturate to HUGE (out of range for any field).
fn int_ascii(s: &[u8]) -> Option<i128> {
    let s = strip(s);
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, s),
    };
    let mut value: i128 = 0;
    let mut count = 0;
    let mut prev_digit = false;
    for (k, &c) in digits.iter().enumerate() {
        if c == b'_' {
            // Only between two digits.
            if !prev_digit || !digits.get(k + 1).is_some_and(u8::is_ascii_digit) {
                return None;
            }
            prev_digit = false;
            continue;
        }
        if !c.is_ascii_digit() {
            return None;
        }
        prev_digit = true;
        count += 1;
        value = value.checked_mul(10).and_then(|v| v.checked_add(i128::from(c - b'0'))).unwrap_or(HUGE);
    }
    if count == 0 || count > super::parse::MAX_INT_DIGITS {
        return None;
    }
    Some(if neg && value != HUGE { -value } else { value })
}

/// `float(s)` for text already made ASCII: None when it raises.
fn float_ascii(s: &[u8]) -> Option<f64> {
    let s = strip(s);
    let cleaned: Cow<[u8]> = if s.contains(&b'_') {
        // `_Py_string_to_number_with_underscores`: each '_' between two digits.
        let mut out = Vec::with_capacity(s.len());
        let mut prev = 0u8;
        for &c in s {
            if c == b'_' {
                if !prev.is_ascii_digit() {
                    return None;
                }
            } else {
                if prev == b'_' && !c.is_ascii_digit() {
                    return None;
                }
                out.push(c);
            }
            prev = c;
        }
        if prev == b'_' {
            return None;
        }
        Cow::Owned(out)
    } else {
        Cow::Borrowed(s)
    };
    let (neg, body) = match &*cleaned {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        all => (false, all),
    };
    let lower = body.to_ascii_lowercase();
    let special = match &lower[..] {
        b"inf" | b"infinity" => Some(f64::INFINITY),
        b"nan" => Some(f64::NAN),
        _ => None,
    };
    if let Some(v) = special {
        return Some(if neg { -v } else { v });
    }
    // [digits] [. [digits]] with a digit somewhere, then an optional e[sign]digits.
    let mut i = 0;
    let mut mantissa = 0;
    while body.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
        mantissa += 1;
    }
    if body.get(i) == Some(&b'.') {
        i += 1;
        while body.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
            mantissa += 1;
        }
    }
    if mantissa == 0 {
        return None;
    }
    if matches!(body.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(body.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let from = i;
        while body.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == from {
            return None;
        }
    }
    if i != body.len() {
        return None;
    }
    std::str::from_utf8(&cleaned).ok()?.parse::<f64>().ok()
}

/// `float(s)` of a Python str (decoded text): None when it raises.
pub fn py_float(s: &[u8]) -> Option<f64> {
    float_ascii(&to_ascii(s)?)
}

/// An integer-valued float as the int Python makes of it (HUGE past i128).
pub fn float_to_int(f: f64) -> Option<i128> {
    if !f.is_finite() || f.fract() != 0.0 {
        return None;
    }
    Some(if f.abs() < 1.7e38 { f as i128 } else { HUGE })
}

/// `json_format._ConvertInteger` of a str: no ASCII space anywhere; `int(s)`, else an
/// integer-valued `float(s)`.
pub fn py_int_str(s: &[u8]) -> Option<i128> {
    // The common case, plain digits that fit: what the slow path reads them as.
    if !s.is_empty() && s.len() <= 38 && s.iter().all(u8::is_ascii_digit) {
        return Some(s.iter().fold(0i128, |v, &c| v * 10 + i128::from(c - b'0')));
    }
    if s.contains(&b' ') {
        return None;
    }
    let ascii = to_ascii(s)?;
    if let Some(v) = int_ascii(&ascii) {
        return Some(v);
    }
    float_to_int(float_ascii(&ascii)?)
}

/// A JSON integer literal (`-?digits`, at most 4300 digits) as Python's int.
pub fn int_literal(lit: &[u8]) -> i128 {
    int_ascii(lit).unwrap_or(HUGE)
}

/// A JSON number literal as Python's float of it: `float(int)` for an integer literal
/// (so "-0" is 0.0), the literal's own float otherwise. Infinite: too large (Python
/// raises OverflowError for an int, reads inf for a float literal).
pub fn literal_f64(lit: &[u8], is_float: bool) -> f64 {
    let v: f64 = std::str::from_utf8(lit).ok().and_then(|s| s.parse().ok()).unwrap_or(f64::INFINITY);
    if !is_float && v == 0.0 {
        0.0
    } else {
        v
    }
}

/// `base64.urlsafe_b64decode(s + b'=' * (4 - len(s) % 4))` as `json_format` calls it:
/// `-` and `_` read as `+` and `/` (which also stay valid); other bytes outside the
/// alphabet are skipped (binascii's non-strict mode); decoding stops at the first
/// padding that completes a quantum. None: binascii.Error.
pub fn py_b64decode(s: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let pad = 4 - s.len() % 4;
    let (mut quad, mut pads, mut left) = (0u8, 0usize, 0u8);
    for &c in s.iter().chain(std::iter::repeat_n(&b'=', pad)) {
        if c == b'=' {
            if quad >= 2 {
                pads += 1;
                if usize::from(quad) + pads >= 4 {
                    return Some(());
                }
            }
            continue;
        }
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => continue,
        };
        pads = 0;
        match quad {
            0 => left = v,
            1 => {
                out.push(left << 2 | v >> 4);
                left = v & 0x0f;
            }
            2 => {
                out.push(left << 4 | v >> 2);
                left = v & 0x03;
            }
            _ => out.push(left << 6 | v),
        }
        quad = (quad + 1) % 4;
    }
    (quad == 0).then_some(())
}

/// `binascii.unhexlify(s)` of a str: ASCII hex digit pairs only.
pub fn unhex(s: &[u8], out: &mut Vec<u8>) -> Option<()> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    for pair in s.chunks_exact(2) {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out.push((hi << 4 | lo) as u8);
    }
    Some(())
}

/// `repr(x)` of a finite float: the shortest digits that read back as `x`, in fixed
/// notation when the decimal exponent is in -4..16 (with ".0" if integral), else as
/// `d[.ddd]e±XX`.
pub fn push_float_repr(out: &mut Vec<u8>, x: f64) {
    let sci = format!("{x:e}"); // shortest round-trip digits: "-1.2345e-7"
    let (mant, exp) = sci.split_once('e').expect("LowerExp has an exponent");
    let exp: i32 = exp.parse().expect("LowerExp exponent is an integer");
    let (neg, mant) = mant.strip_prefix('-').map_or((false, mant), |m| (true, m));
    let digits: Vec<u8> = mant.bytes().filter(|&c| c != b'.').collect();
    let decpt = exp + 1; // x = 0.DIGITS * 10^decpt
    if neg {
        out.push(b'-');
    }
    if (-4 < decpt) && decpt <= 16 {
        if decpt <= 0 {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', (-decpt) as usize));
            out.extend_from_slice(&digits);
        } else {
            let d = decpt as usize;
            if digits.len() <= d {
                out.extend_from_slice(&digits);
                out.extend(std::iter::repeat_n(b'0', d - digits.len()));
                out.extend_from_slice(b".0");
            } else {
                out.extend_from_slice(&digits[..d]);
                out.push(b'.');
                out.extend_from_slice(&digits[d..]);
            }
        }
    } else {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        let e = decpt - 1;
        out.push(b'e');
        out.push(if e < 0 { b'-' } else { b'+' });
        let a = e.unsigned_abs();
        if a < 10 {
            out.push(b'0');
        }
        out.extend_from_slice(a.to_string().as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr(x: f64) -> String {
        let mut out = Vec::new();
        push_float_repr(&mut out, x);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn float_repr_is_pythons() {
        for (x, text) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.5, "1.5"),
            (100.0, "100.0"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (123456789.125, "123456789.125"),
            (0.1, "0.1"),
            (-2.5e100, "-2.5e+100"),
        ] {
            assert_eq!(repr(x), text);
        }
    }

    #[test]
    fn int_and_float_text_read_as_python_reads_them() {
        assert_eq!(py_int_str(b"\t12\n"), Some(12));
        assert_eq!(py_int_str(b" 12"), None); // json_format refuses an ASCII space
        assert_eq!(py_int_str("\u{3000}12".as_bytes()), Some(12));
        assert_eq!(py_int_str("١٢".as_bytes()), Some(12));
        assert_eq!(py_int_str(b"1_2"), Some(12));
        assert_eq!(py_int_str(b"1__2"), None);
        assert_eq!(py_int_str(b"1.5e1"), Some(15));
        assert_eq!(py_int_str(b"1.5"), None);
        assert_eq!(py_int_str(b"0x10"), None);
        assert_eq!(py_int_str(b"\x1c12"), None);
        assert_eq!(py_int_str(b"-0"), Some(0));
        let long = format!("{}5", "0".repeat(4301));
        assert_eq!(py_int_str(long.as_bytes()), Some(5)); // past int()'s digit limit: float()
        assert_eq!(py_float(b"-nan").map(f64::to_bits), Some((-f64::NAN).to_bits()));
        assert_eq!(py_float(b"iNfInItY"), Some(f64::INFINITY));
        assert_eq!(py_float(b"1e5_0"), Some(1e50));
        assert_eq!(py_float(b"1_.5"), None);
        assert_eq!(py_float(b"."), None);
        assert_eq!(py_float(b"1e"), None);
        assert_eq!(py_float(b"+.5e-3"), Some(0.0005));
        assert_eq!(py_float(b"1e999"), Some(f64::INFINITY));
    }

    #[test]
    fn base64_reads_as_binascii_does() {
        let dec = |s: &str| {
            let mut out = Vec::new();
            py_b64decode(s.as_bytes(), &mut out).map(|_| out)
        };
        assert_eq!(dec("QQ"), Some(b"A".to_vec()));
        assert_eq!(dec("QQ=="), Some(b"A".to_vec()));
        assert_eq!(dec("QQ==QQ=="), Some(b"A".to_vec()));
        assert_eq!(dec("Q"), None);
        assert_eq!(dec("Q-_/+"), None);
        assert_eq!(dec("\u{e9}"), Some(vec![]));
        assert_eq!(dec("-_-_"), Some(vec![0xfb, 0xff, 0xbf]));
    }
}
