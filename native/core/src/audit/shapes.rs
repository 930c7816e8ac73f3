//! What a surviving value looks like: the per-value checks of
//! `redact_proxy/audit/shapes.py` (`shape_kinds`, `is_free_text`), with Python's answer
//! on every `str` (any code point but a lone surrogate).
//!
//! Strategy: `shape_kinds` works on bytes. Every class its regexes use (`_UUID`,
//! `_DIGITS`, `_TOKEN`) is ASCII, and no byte of a multi-byte UTF-8 sequence is ASCII, so a
//! non-ASCII character is simply "another byte" to each of them and byte positions can
//! stand for code points. The reference's shortcuts are all implied by what follows them,
//! so the scan needs none: a value under `DIGIT_RUN` code points cannot hold a 9-digit run,
//! a 20-character token or a 36-character UUID; an `isalpha()` value has no ASCII digit and
//! no '-' (so no run, no letter/digit switch, no UUID); and on an ASCII `isalnum()` value
//! the general rules give exactly its branch (a digit run there is bounded by letters
//! unless the value is all digits, and the one token is the whole value). What is left:
//! - a UUID anywhere (`re.search`) wins alone; it lies inside one maximal token run;
//! - `digits`: a maximal run of ASCII digits, at least `DIGIT_RUN` long, with no ASCII
//!   letter either side (the lookarounds; backtracking inside the run only ends it before
//!   another digit, which the lookahead refuses, so only whole runs match);
//! - `high_entropy`: a maximal run of `[A-Za-z0-9_-]` of at least `TOKEN_MIN` (what
//!   `finditer` yields, leftmost-greedy and non-overlapping, from the first such run) with
//!   at least `TOKEN_SWITCHES` adjacent letter/digit pairs (`classes.count(b"a0") +
//!   classes.count(b"0a")`: the two patterns cannot overlap themselves, so `count` sees
//!   every adjacent pair; '_' and '-' separate).
//!
//! A value of up to 64 bytes (nearly all of them) becomes bit masks of its classes, eight
//! bytes at a time (SWAR), and each rule is a few word operations on them: no branch per
//! byte, which ids (switching between letters and digits at random) would mispredict.
//! A longer one takes a plain scan of its token runs. `cargo test` holds the two paths to
//! each other.
//!
//! `is_free_text` counts code points and ASCII spaces, then maximal runs of at least two
//! `_WORD` characters (`[^\W\d_]`: under `re` on a str, `\w` is `isalnum()` or '_' and
//! `\d` is `isdecimal()`, so a character is a word letter when it is `isalnum()` and not
//! `isdecimal()`), with Python's own predicates (`sanitize::pychar`, tables dumped from
//! the interpreter, with a bitmap of the two-byte UTF-8 range) off the ASCII path; an ASCII
//! value of up to 64 bytes is decided on bit masks too. `tests/audit/test_native_shapes.py`
//! holds both to the reference, every code point included.

use std::sync::OnceLock;

use crate::sanitize::pychar::{is_alnum, is_decimal};

pub const UUID: u64 = 1;
pub const DIGITS: u64 = 2;
pub const HIGH_ENTROPY: u64 = 4;

/// shapes.py's thresholds, same names.
pub const DIGIT_RUN: usize = 9;
pub const TOKEN_MIN: usize = 20;
pub const TOKEN_SWITCHES: u32 = 4;
pub const FREE_TEXT_WORDS: usize = 4;
/// `is_free_text`'s minimum length, in code points.
pub const FREE_TEXT_MIN: usize = 12;
const UUID_LEN: usize = 36;

// Byte classes of the long-value scan (every non-ASCII byte is OTHER): digit, letter, and
// the token's other two characters '_' and '-'.
const OTHER: u8 = 0;
const DIGIT: u8 = 1;
const LETTER: u8 = 2;
const JOIN: u8 = 3;

static CLASS: [u8; 256] = {
    let mut t = [OTHER; 256];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        t[b] = if c.is_ascii_digit() {
            DIGIT
        } else if c.is_ascii_alphabetic() {
            LETTER
        } else if c == b'_' || c == b'-' {
            JOIN
        } else {
            OTHER
        };
        b += 1;
    }
    t
};

/// Values up to this many bytes take the bit-mask path.
const SHORT: usize = 64;

/// `len(text)` in Python: code points.
pub fn char_len(text: &str) -> usize {
    text.chars().count()
}

/// `shape_kinds(text)` on its UTF-8 bytes, as a bit set of `UUID`, `DIGITS`, `HIGH_ENTROPY` (`()` is 0; a UUID
/// comes alone).
pub fn shape_kinds(text: impl AsRef<[u8]>) -> u64 {
    let b = text.as_ref();
    if b.len() < DIGIT_RUN {
        0 // fewer bytes than DIGIT_RUN: fewer code points too
    } else if b.len() <= SHORT {
        shape_kinds_short(b)
    } else {
        scan_long(b)
    }
}

/// Bit `p` set when bits `p .. p + k` of `m` are all set (`k` >= 1): windows doubled while
/// they fit, then one overlapping shift for the rest (`k` is a constant: all unrolled).
#[inline(always)]
fn window(m: u64, k: u32) -> u64 {
    let (mut acc, mut have) = (m, 1);
    while have * 2 <= k {
        acc &= acc >> have;
        have *= 2;
    }
    if k > have {
        acc &= acc >> (k - have);
    }
    acc
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `x` whose byte is ASCII and in `lo..=hi` (`a` is `x` with
/// the high bits cleared, so that no sum carries into the next byte).
#[inline(always)]
fn in_range(a: u64, ascii: u64, lo: u8, hi: u8) -> u64 {
    (a + ONES * u64::from(0x80 - lo)) & !(a + ONES * u64::from(0x7f - hi)) & ascii
}

/// Byte i's high bit (bytes flagged by `in_range`) to bit i.
#[inline(always)]
fn compress(m: u64) -> u64 {
    ((m >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

/// The 8-byte words of `b` (8 < len <= SHORT) as little-endian integers with their index;
/// the last one zero-filled past the end (read as the last 8 bytes, shifted).
fn words(b: &[u8]) -> impl Iterator<Item = (usize, u64)> + '_ {
    let whole = b.chunks_exact(8);
    let rest = whole.remainder().len();
    let full = whole.len();
    let last = if rest == 0 {
        None
    } else {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&b[b.len() - 8..]);
        Some((full, u64::from_le_bytes(bytes) >> (8 * (8 - rest))))
    };
    whole
        .map(|w| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(w);
            u64::from_le_bytes(bytes)
        })
        .enumerate()
        .chain(last)
}

/// A value of at most `SHORT` bytes as bit masks (bit i: byte i), so that every rule is a
/// handful of word operations instead of a branch per byte (ids switch between letters and
/// digits at random, which per-byte branches mispredict). The classes are decided eight
/// bytes at a time (SWAR). Bytes past the end are 0, which is in no class: the end of the
/// text, as the regexes see it.
fn shape_kinds_short(b: &[u8]) -> u64 {
    let (mut digit, mut letter, mut dash, mut token) = (0u64, 0u64, 0u64, 0u64);
    for (k, x) in words(b) {
        let ascii = !x & HIGH; // a non-ASCII byte is in no class
        let a = x & !HIGH;
        let d = in_range(a, ascii, b'0', b'9');
        let l = in_range(a | (ONES * 0x20), ascii, b'a', b'z');
        let m = in_range(a, ascii, b'-', b'-');
        let u = in_range(a, ascii, b'_', b'_');
        digit |= compress(d) << (8 * k);
        letter |= compress(l) << (8 * k);
        dash |= compress(m) << (8 * k);
        token |= compress(d | l | m | u) << (8 * k);
    }
    if dash != 0 && b.len() >= UUID_LEN {
        let mut hex = digit;
        for (k, x) in words(b) {
            let a = x & !HIGH;
            hex |= compress(in_range(a | (ONES * 0x20), !x & HIGH, b'a', b'f')) << (8 * k);
        }
        let (h4, h8, h12) = (window(hex, 4), window(hex, 8), window(hex, 12));
        let uuid = h8 & (dash >> 8) & (h4 >> 9) & (dash >> 13) & (h4 >> 14) & (dash >> 18) & (h4 >> 19)
            & (dash >> 23) & (h12 >> 24);
        if uuid != 0 {
            return UUID; // its groups are digit runs and tokens too: the uuid says it
        }
    }
    if digit == 0 {
        return 0; // no digit run, no switch
    }
    let mut found = 0;
    // digits: starts of digit runs with no letter before and DIGIT_RUN digits from there;
    // adding each start to the digit mask carries through its run to the byte after it
    // (a carry out of bit 63 is the end of the text), which must be no letter.
    let starts = digit & !(digit << 1) & !(letter << 1) & window(digit, DIGIT_RUN as u32);
    let (after, past_end) = digit.overflowing_add(starts);
    if past_end || after & !digit & !letter != 0 {
        found |= DIGITS;
    }
    // high_entropy: token runs of TOKEN_MIN or more, with their letter/digit switches.
    let switches = (digit & (letter << 1)) | (letter & (digit << 1));
    let mut long = token & !(token << 1) & window(token, TOKEN_MIN as u32);
    while long != 0 {
        let start = long.trailing_zeros();
        let len = (token >> start).trailing_ones(); // >= TOKEN_MIN
        let run = (u64::MAX >> (64 - len)) << start;
        if (switches & run).count_ones() >= TOKEN_SWITCHES {
            found |= HIGH_ENTROPY;
            break;
        }
        long &= long - 1;
    }
    found
}

/// `shape_kinds` on a value of any length: one pass over its maximal token runs.
fn scan_long(b: &[u8]) -> u64 {
    let n = b.len();
    let mut found = 0u64;
    let mut i = 0;
    while i < n {
        if CLASS[b[i] as usize] == OTHER {
            i += 1;
            continue;
        }
        // A maximal token run b[start..i]; the byte before it (if any) is OTHER.
        let start = i;
        let mut prev = OTHER;
        let mut switches = 0u32;
        let mut dash = false;
        let mut digits_from = 0; // start of the current digit run
        let mut digits_free = false; // ... and no letter before it
        while i < n {
            let c = CLASS[b[i] as usize];
            if c == OTHER {
                break;
            }
            if c != prev {
                if c == DIGIT {
                    digits_from = i;
                    digits_free = prev != LETTER;
                    switches += (prev == LETTER) as u32;
                } else {
                    if prev == DIGIT && digits_free && c != LETTER && i - digits_from >= DIGIT_RUN {
                        found |= DIGITS;
                    }
                    if c == LETTER {
                        switches += (prev == DIGIT) as u32;
                    } else {
                        dash |= b[i] == b'-';
                    }
                }
                prev = c;
            } else if c == JOIN {
                dash |= b[i] == b'-';
            }
            i += 1;
        }
        // The run ends at the end of the text or before an OTHER byte: neither is a letter.
        if prev == DIGIT && digits_free && i - digits_from >= DIGIT_RUN {
            found |= DIGITS;
        }
        let run = &b[start..i];
        if dash && run.len() >= UUID_LEN && has_uuid(run) {
            return UUID; // its groups are digit runs and tokens too: the uuid says it
        }
        if run.len() >= TOKEN_MIN && switches >= TOKEN_SWITCHES {
            found |= HIGH_ENTROPY;
        }
    }
    found
}

/// `_UUID.search` inside one token run: a candidate starts 8 before each '-'.
fn has_uuid(run: &[u8]) -> bool {
    run.windows(UUID_LEN).any(|u| u[8] == b'-' && uuid_at(u))
}

/// `[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`, exactly
/// `u` (UUID_LEN bytes).
fn uuid_at(u: &[u8]) -> bool {
    u.iter().enumerate().all(|(k, &c)| {
        if matches!(k, 8 | 13 | 18 | 23) {
            c == b'-'
        } else {
            c.is_ascii_hexdigit()
        }
    })
}

/// `is_free_text(text)`: at least `FREE_TEXT_MIN` code points, `FREE_TEXT_WORDS - 1` ASCII
/// spaces and `FREE_TEXT_WORDS` matches of `[^\W\d_]{2,}` (maximal runs of word letters).
pub fn is_free_text(text: &str) -> bool {
    let b = text.as_bytes();
    if b.len() < FREE_TEXT_MIN {
        return false; // fewer bytes: fewer code points
    }
    if b.len() <= SHORT {
        // Bit masks of the spaces and, for ASCII, the letters (the only ASCII word letters).
        let (mut spaces, mut letter, mut ascii) = (0u64, 0u64, true);
        for (k, x) in words(b) {
            let high = !x & HIGH;
            ascii &= high == HIGH;
            let a = x & !HIGH;
            spaces |= compress(in_range(a, high, b' ', b' ')) << (8 * k);
            letter |= compress(in_range(a | (ONES * 0x20), high, b'a', b'z')) << (8 * k);
        }
        if (spaces.count_ones() as usize) < FREE_TEXT_WORDS - 1 {
            return false;
        }
        if ascii {
            let word_starts = letter & !(letter << 1) & (letter >> 1);
            return word_starts.count_ones() as usize >= FREE_TEXT_WORDS;
        }
    } else if b.iter().filter(|&&c| c == b' ').count() < FREE_TEXT_WORDS - 1 {
        return false;
    }
    // A code point is at most 4 bytes: from 4 * FREE_TEXT_MIN bytes on, no count is needed.
    if b.len() < 4 * FREE_TEXT_MIN && char_len(text) < FREE_TEXT_MIN {
        return false;
    }
    has_words(text)
}

/// `len(_WORD.findall(text)) >= FREE_TEXT_WORDS`, code point by code point.
fn has_words(text: &str) -> bool {
    let mut words = 0;
    let mut run = 0u32; // word letters in a row, counted to 2
    for c in text.chars() {
        let letter = if c.is_ascii() {
            c.is_ascii_alphabetic()
        } else {
            is_word_letter(c)
        };
        if !letter {
            run = 0;
        } else if run < 2 {
            run += 1;
            if run == 2 {
                words += 1;
                if words >= FREE_TEXT_WORDS {
                    return true;
                }
            }
        }
    }
    false
}

/// `[^\W\d_]` on a non-ASCII character: `isalnum()` and not `isdecimal()`. The two-byte
/// UTF-8 range (Latin, Greek, Cyrillic, Hebrew, Arabic, ...) from a bitmap built once from
/// the same predicates, the rest by their table searches.
fn is_word_letter(c: char) -> bool {
    static TWO_BYTE: OnceLock<[u64; 32]> = OnceLock::new();
    let cp = c as u32;
    if cp < 0x800 {
        let map = TWO_BYTE.get_or_init(|| {
            let mut map = [0u64; 32];
            for c in (0..0x800).filter_map(char::from_u32) {
                if is_alnum(c) && !is_decimal(c) {
                    map[c as usize / 64] |= 1 << (c as u32 % 64);
                }
            }
            map
        });
        map[cp as usize / 64] >> (cp % 64) & 1 != 0
    } else {
        is_alnum(c) && !is_decimal(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: &str = "123e4567-e89b-12d3-a456-426614174000";

    #[test]
    fn shortcuts() {
        assert_eq!(shape_kinds(""), 0);
        assert_eq!(shape_kinds("12345678"), 0);
        assert_eq!(shape_kinds("123456789"), DIGITS);
        assert_eq!(shape_kinds("abcdefghijklmnopqrstuvwxyz"), 0);
        assert_eq!(shape_kinds("invoice2024"), 0);
        // ASCII alnum: all digits is digits; a letter makes the run touch it.
        assert_eq!(shape_kinds("a123456789"), 0);
        assert_eq!(shape_kinds("a1b2c3d4e5f6g7h8i9j"), 0); // 19: under TOKEN_MIN
        assert_eq!(shape_kinds("a1b2c3d4e5f6g7h8i9j0"), HIGH_ENTROPY);
        assert_eq!(shape_kinds("aaaaaaaaaaaaaaaaa1a1"), 0); // 3 switches
        assert_eq!(shape_kinds("aaaaaaaaaaaaaaaa1a1a"), HIGH_ENTROPY); // 4
    }

    #[test]
    fn uuid() {
        assert_eq!(shape_kinds(U), UUID);
        assert_eq!(shape_kinds(&U.to_uppercase()), UUID);
        assert_eq!(shape_kinds(&format!("id={U} 123456789")), UUID);
        assert_eq!(shape_kinds(&format!("123456789 ffff{U}ffff")), UUID); // inside a longer run
        assert_eq!(shape_kinds(&format!("x-{U}")), UUID);
        assert_eq!(shape_kinds("abcdefab-abcd-abcd-abcd-abcdefabcdef"), UUID); // no digit
        assert_eq!(shape_kinds("123e4567-e89b-12d3-a456-42661417400"), DIGITS | HIGH_ENTROPY); // 11 in the last group
        assert_eq!(shape_kinds("123e4567-e89b-12d3-a456_426614174000"), DIGITS | HIGH_ENTROPY);
        assert_eq!(shape_kinds("123e4567-e89b-12d3-a456-42661417400g"), HIGH_ENTROPY); // the run touches g
        assert_eq!(shape_kinds("123e4567-e89b-12d3-a456 426614174000"), DIGITS | HIGH_ENTROPY);
        assert_eq!(shape_kinds("123e4567é-e89b-12d3-a456-426614174000"), DIGITS | HIGH_ENTROPY);
        assert_eq!(shape_kinds("0000-0000-0000-0000-0000-0000-0000-0000-0000"), 0);
    }

    #[test]
    fn digit_runs() {
        assert_eq!(shape_kinds("tel: 123456789"), DIGITS);
        assert_eq!(shape_kinds("tel: 12345678"), 0);
        assert_eq!(shape_kinds("x123456789 "), 0);
        assert_eq!(shape_kinds(" 123456789x"), 0);
        assert_eq!(shape_kinds("_123456789-"), DIGITS); // '_' and '-' are no letters
        assert_eq!(shape_kinds("é123456789é"), DIGITS); // nor is a non-ASCII letter
        assert_eq!(shape_kinds("١٢٣٤٥٦٧٨٩ and ١٢٣٤٥٦٧٨٩"), 0); // Arabic-Indic digits are not [0-9]
        assert_eq!(shape_kinds("a12345678 123456789"), DIGITS); // the second run
        assert_eq!(shape_kinds("a-123456789-b"), DIGITS);
    }

    #[test]
    fn tokens() {
        // Entropy is per token: two short halves do not add up.
        assert_eq!(shape_kinds("a1b2c3d4e5 f6g7h8i9j0k1l2m3"), 0);
        assert_eq!(shape_kinds("path/a1b2c3d4e5f6g7h8i9j0"), HIGH_ENTROPY);
        assert_eq!(shape_kinds("aaaaaaaaaaaaaaaaaaaaaaaa a1b2c3d4e5f6g7h8i9j0"), HIGH_ENTROPY); // a later run
        assert_eq!(shape_kinds("a_1_b_2_c_3_d_4_e_5_f"), 0); // '_' separates the switches
        assert_eq!(shape_kinds("ab12-cd34-ef56-gh78-ij90"), HIGH_ENTROPY);
        assert_eq!(shape_kinds("123456789 a1b2c3d4e5f6g7h8i9j0"), DIGITS | HIGH_ENTROPY);
        assert_eq!(shape_kinds("a1b2c3d4e5f6g7h8i9j0 123456789"), DIGITS | HIGH_ENTROPY);
        assert_eq!(shape_kinds("ééééé a1b2c3d4e5f6g7h8i9j0"), HIGH_ENTROPY);
    }

    #[test]
    fn free_text() {
        assert!(is_free_text("the quick brown fox"));
        assert!(!is_free_text("the quick brown"));
        assert!(!is_free_text("ab cd ef gh")); // 11 code points
        assert!(is_free_text("ab cd ef ghi"));
        assert!(!is_free_text("ab_cd_ef_ghij_kl"));
        assert!(!is_free_text("a b c d e f g h"));
        assert!(!is_free_text("ab1 cd2 ef3 g4h"));
        assert!(is_free_text("ab1 cd2 ef3 gh4"));
        assert!(!is_free_text("ab\tcd\tef\tgh\tij\t"));
        assert!(is_free_text("żółw ćma ślimak éé"));
        assert!(!is_free_text("éé éé éé é")); // 10 code points
        assert!(!is_free_text("éé éé éé éé")); // 11 code points, 15 bytes
        assert!(is_free_text("éé éé éé ééé"));
        assert!(is_free_text("a² b² c² d² e")); // '²' is alnum, not decimal: a word letter
        assert!(!is_free_text("a٣ b٣ c٣ d٣ e")); // '٣' is decimal
        assert!(is_free_text("ⅫⅫ ⅫⅫ ⅫⅫ ⅫⅫⅫ"));
    }

    /// A deterministic stream of strings over the pieces the rules turn on (xorshift64).
    fn generated(count: usize, max_bytes: usize, mut emit: impl FnMut(&str)) {
        const PIECES: &[&str] = &[
            "0", "1", "9", "a", "f", "g", "Z", "F", "-", "_", " ", "é", "٣", "²", "/", "\0", "ab", "123456789",
            "12345678", "a1b2c3d4e5", U, "123e4567-", "e89b-", "  ", "żółw", "Ⅻ",
        ];
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut text = String::new();
        for _ in 0..count {
            text.clear();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let target = (seed % (max_bytes as u64 + 1)) as usize;
            loop {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let piece = PIECES[(seed % PIECES.len() as u64) as usize];
                if text.len() + piece.len() > target {
                    break;
                }
                text.push_str(piece);
            }
            emit(&text);
        }
    }

    #[test]
    fn bit_masks_agree_with_the_scan() {
        generated(300_000, SHORT, |text| {
            let b = text.as_bytes();
            if b.len() >= DIGIT_RUN {
                assert_eq!(shape_kinds_short(b), scan_long(b), "{text:?}");
            }
            let slow = b.len() >= FREE_TEXT_MIN
                && b.iter().filter(|&&c| c == b' ').count() >= FREE_TEXT_WORDS - 1
                && char_len(text) >= FREE_TEXT_MIN
                && has_words(text);
            assert_eq!(is_free_text(text), slow, "{text:?}");
        });
    }

    #[test]
    fn word_letter_bitmap() {
        for c in (0..0x1000).filter_map(char::from_u32) {
            assert_eq!(is_word_letter(c), is_alnum(c) && !is_decimal(c), "{c:?}");
        }
    }

    #[test]
    fn lengths() {
        assert_eq!(char_len(""), 0);
        assert_eq!(char_len("aé٣😀"), 4);
    }
}
