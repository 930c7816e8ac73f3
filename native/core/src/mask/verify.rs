//! The verifiers of the built-in detectors: exact ports of `detectors.py`'s `_verify_*`.
//!
//! Strategy: a verifier gets the whole value's bytes and a candidate's span and returns
//! the end of the accepted match (`<= end`, `> start`) or `None` to refuse it; the whole
//! value is passed so it can read the context. Each function below names the Python one
//! it ports and keeps its order of checks, so a difference is a bug of this file. They
//! run only on candidates, index only within the value (`get`, bounded loops: no input
//! can make one panic) and allocate nothing but the password check's regex captures.

use std::sync::OnceLock;

use regex_automata::{meta, util::captures::Captures, Anchored, Input};

/// The verifiers, a closed set (see `detectors::DETECTORS` for who uses which).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verify {
    Card,
    Iban,
    Phone,
    Ipv4,
    Ipv6,
    AwsSecret,
    OpenAi,
    Password,
}

impl Verify {
    /// Whether the verifier reads the candidate's groups (`caps` must then be given).
    pub fn needs_captures(self) -> bool {
        self == Verify::Password
    }

    pub fn run(self, data: &[u8], start: usize, end: usize, caps: Option<&Captures>) -> Option<usize> {
        if start >= end || end > data.len() {
            return None;
        }
        match self {
            Verify::Card => card(data, start, end),
            Verify::Iban => iban(data, start, end),
            Verify::Phone => phone(data, start, end),
            Verify::Ipv4 => ipv4(data, start, end),
            Verify::Ipv6 => ipv6(data, start, end),
            Verify::AwsSecret => aws_secret(data, end),
            Verify::OpenAi => openai(data, start, end),
            Verify::Password => password(data, end, caps?),
        }
    }
}

fn is_digit(c: u8) -> bool {
    c.is_ascii_digit()
}
fn is_letter(c: u8) -> bool {
    c.is_ascii_alphabetic()
}
fn is_alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}
fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}
fn is_separator(c: u8) -> bool {
    matches!(c, b' ' | b'-' | b'.' | b'/')
}
fn is_hex_colon(c: u8) -> bool {
    c.is_ascii_hexdigit() || c == b':'
}
fn is_base64(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=')
}
/// Python's `bytes.isdigit()`: non-empty and all ASCII digits.
fn all_digits(text: &[u8]) -> bool {
    !text.is_empty() && text.iter().all(|&c| is_digit(c))
}
fn at(data: &[u8], i: usize) -> u8 {
    data.get(i).copied().unwrap_or(0)
}

/// `_group_ends`: `end`, then every position just before a separator that follows a
/// non-separator, longest first, down to `start + min_len`.
fn group_ends(data: &[u8], start: usize, end: usize, min_len: usize) -> impl Iterator<Item = usize> + '_ {
    let low = start + min_len;
    std::iter::once(end).chain(
        (low.max(1)..end)
            .rev()
            .filter(move |&i| is_separator(at(data, i)) && !is_separator(at(data, i - 1))),
    )
}

/// `_word_around`: the maximal run of letters and digits containing `data[start..end]`.
fn word_around(data: &[u8], mut start: usize, mut end: usize) -> &[u8] {
    while start > 0 && is_alnum(data[start - 1]) {
        start -= 1;
    }
    while end < data.len() && is_alnum(data[end]) {
        end += 1;
    }
    &data[start..end]
}

/// Up to `N` bytes of `text` without the bytes `drop` selects; `None` if more remain.
fn compact<const N: usize>(text: &[u8], drop: impl Fn(u8) -> bool) -> Option<([u8; N], usize)> {
    let mut out = [0u8; N];
    let mut len = 0;
    for &c in text.iter().filter(|&&c| !drop(c)) {
        *out.get_mut(len)? = c;
        len += 1;
    }
    Some((out, len))
}

// ------------------------------------------------------------------ cards

const DOUBLED: [u32; 10] = [0, 2, 4, 6, 8, 1, 3, 5, 7, 9];

/// `_luhn` over ASCII digits.
pub fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &c)| {
            let d = u32::from(c.wrapping_sub(b'0')) % 10;
            if i % 2 == 0 { d } else { DOUBLED[d as usize] }
        })
        .sum();
    sum.is_multiple_of(10)
}

const ANY: &[u8] = &[13, 14, 15, 16, 17, 18, 19];
/// `_ISSUERS`: (first digits from, to, card lengths), the IIN ranges issuers publish.
const ISSUERS: &[(&str, &str, &[u8])] = &[
    ("4", "4", &[13, 16, 19]),                       // visa
    ("51", "55", &[16]),                             // mastercard
    ("2221", "2720", &[16]),                         // mastercard
    ("34", "34", &[15]),                             // amex
    ("37", "37", &[15]),                             // amex
    ("6011", "6011", &[16, 17, 18, 19]),             // discover
    ("644", "649", &[16, 17, 18, 19]),               // discover
    ("65", "65", &[16, 17, 18, 19]),                 // discover
    ("300", "305", &[14, 15, 16, 17, 18, 19]),       // diners
    ("3095", "3095", &[14, 15, 16, 17, 18, 19]),     // diners
    ("36", "36", &[14, 15, 16, 17, 18, 19]),         // diners
    ("38", "39", &[16, 17, 18, 19]),                 // diners
    ("3528", "3589", &[16, 17, 18, 19]),             // jcb
    ("62", "62", &[16, 17, 18, 19]),                 // unionpay
    ("81", "81", &[16, 17, 18, 19]),                 // unionpay
    ("5018", "5018", ANY),                           // maestro
    ("5020", "5020", ANY),                           // maestro
    ("5038", "5038", ANY),                           // maestro
    ("5893", "5893", ANY),                           // maestro
    ("6304", "6304", ANY),                           // maestro
    ("6759", "6759", ANY),                           // maestro
    ("6761", "6763", ANY),                           // maestro
    ("5019", "5019", &[16]),                         // dankort
    ("2200", "2204", &[16, 17, 18, 19]),             // mir
    ("60", "60", &[16]),                             // rupay
    ("82", "82", &[16]),                             // rupay
    ("353", "353", &[16]),                           // rupay
    ("356", "356", &[16]),                           // rupay
    ("508", "508", &[16]),                           // rupay
    ("506099", "506198", &[16, 18, 19]),             // verve
    ("507865", "507964", &[16, 18, 19]),             // verve
    ("636", "636", &[16, 17, 18, 19]),               // interpayment
    ("637", "639", &[16]),                           // instapayment
    ("9792", "9792", &[16]),                         // troy
];

fn number(digits: &[u8]) -> u64 {
    digits.iter().fold(0u64, |n, &c| n.saturating_mul(10).saturating_add(u64::from(c.wrapping_sub(b'0') % 10)))
}

/// `_issuer_ok`: a published prefix and length.
pub fn issuer_ok(digits: &[u8]) -> bool {
    let size = digits.len();
    ISSUERS.iter().any(|(low, high, lengths)| {
        let width = low.len();
        lengths.contains(&(size as u8))
            && size >= width
            && (number(low.as_bytes())..=number(high.as_bytes())).contains(&number(&digits[..width]))
    })
}

/// `_verify_card`.
fn card(data: &[u8], mut start: usize, end: usize) -> Option<usize> {
    if !is_digit(data[start]) {
        start += 1; // the letter the pattern took as its left boundary
    }
    let size = data.len();
    if (start > 0 && is_word(data[start - 1])) || (end < size && is_word(data[end])) {
        let word = word_around(data, start, end);
        if word.len() >= 16 && word.iter().all(u8::is_ascii_hexdigit) && !all_digits(word) {
            return None; // digits inside a trace id or digest, not a card glued to a word
        }
    }
    for stop in group_ends(data, start, end, 13) {
        if stop < size && is_digit(data[stop]) {
            continue; // cut inside a longer number or digit group
        }
        let Some((digits, len)) = compact::<19>(data.get(start..stop)?, |c| matches!(c, b' ' | b'.' | b'-')) else {
            continue;
        };
        let digits = &digits[..len];
        if (13..=19).contains(&len) && luhn(digits) && issuer_ok(digits) {
            return Some(stop);
        }
    }
    None
}

// ------------------------------------------------------------------ IBAN

/// `_IBAN_BBAN_TEXT`: the BBAN structure per country (SWIFT IBAN registry), counts of
/// n = digits, a = upper-case letters, c = letters or digits.
const IBAN_BBAN_TEXT: &str = "AD:4n4n12c AE:3n16n AL:8n16c AT:5n11n AZ:4a20c BA:3n3n8n2n BE:3n7n2n BG:4a4n2n8c \
    BH:4a14c BI:5n5n11n2n BR:8n5n10n1a1c BY:4c4n16c CH:5n12c CR:4n14n CY:3n5n16c \
    CZ:4n16n DE:8n10n DJ:5n5n11n2n DK:4n9n1n DO:4c20n EE:2n14n EG:4n4n17n \
    ES:4n4n1n1n10n FI:3n11n FK:2a12n FO:4n9n1n FR:5n5n11c2n GB:4a6n8n GE:2a16n \
    GI:4a15c GL:4n9n1n GR:3n4n16c GT:4c20c HN:4a20n HR:7n10n HU:3n4n1n15n1n IE:4a6n8n \
    IL:3n3n13n IQ:4a3n12n IS:4n2n6n10n IT:1a5n5n12c JO:4a4n18c KW:4a22c KZ:3n13c \
    LB:4n20c LC:4a24c LI:5n12c LT:5n11n LU:3n13c LV:4a13c LY:3n3n15n MC:5n5n11c2n \
    MD:2c18c ME:3n13n2n MK:3n10c2n MN:4n12n MR:5n5n11n2n MT:4a5n18c MU:4a2n2n12n3n3a \
    NI:4a20n NL:4a10n NO:4n6n1n OM:3n16c PK:4a16c PL:8n16n PS:4a21c PT:4n4n11n2n \
    QA:4a21c RO:4a16c RS:3n13n2n RU:9n5n15c SA:2n18c SC:4a2n2n16n3a SD:2n12n \
    SE:3n16n1n SI:5n8n2n SK:4n6n10n SM:1a5n5n12c SO:4n3n12n ST:4n4n11n2n SV:4a20n \
    TL:3n14n2n TN:2n3n13n2n TR:5n1n16c UA:6n19c VA:3n15n VG:4a16n XK:4n10n2n YE:4a4n18c";

/// A country's IBAN length and its BBAN's shape, one class byte (`n`, `a`, `c`) per position.
pub struct Bban {
    pub country: [u8; 2],
    pub length: usize,
    pub shape: Vec<u8>,
}

/// The table, parsed once (`_bban_table`).
pub fn bban_table() -> &'static [Bban] {
    static TABLE: OnceLock<Vec<Bban>> = OnceLock::new();
    TABLE.get_or_init(|| {
        IBAN_BBAN_TEXT
            .split_whitespace()
            .filter_map(|entry| {
                let (country, structure) = entry.split_once(':')?;
                let mut shape = Vec::new();
                let mut count = 0usize;
                for c in structure.bytes() {
                    if c.is_ascii_digit() {
                        count = count * 10 + usize::from(c - b'0');
                    } else {
                        shape.extend(std::iter::repeat_n(c, count));
                        count = 0;
                    }
                }
                let country: [u8; 2] = country.as_bytes().try_into().ok()?;
                Some(Bban { country, length: 4 + shape.len(), shape })
            })
            .collect()
    })
}

/// `_mod97_ok`: ISO 7064 MOD 97-10 over the rearranged IBAN (letters A=10 .. Z=35).
pub fn mod97_ok(compact: &[u8]) -> bool {
    if compact.len() < 4 {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut remainder: i64 = 0;
    for &ch in tail.iter().chain(head) {
        let value = if ch < 65 { i64::from(ch) - 48 } else { i64::from(ch) - 55 };
        remainder = (remainder * (if value > 9 { 100 } else { 10 }) + value).rem_euclid(97);
    }
    remainder == 1
}

/// `_iban_ok`.
pub fn iban_ok(text: &[u8]) -> bool {
    // The longest IBAN is 34 characters; a longer candidate fails the length check anyway.
    let Some((mut buf, len)) = compact::<64>(text, |c| c == b' ' || c == b'-') else {
        return false;
    };
    let compact = &mut buf[..len];
    // bytes.isupper() / islower(): at least one cased byte, and none of the other case.
    let upper = compact.iter().any(u8::is_ascii_uppercase);
    let lower = compact.iter().any(u8::is_ascii_lowercase);
    if upper == lower {
        return false; // mixed case (or no letter): a word or an id, not a written IBAN
    }
    compact.make_ascii_uppercase();
    let Some(known) = bban_table().iter().find(|b| compact.get(..2) == Some(&b.country[..])) else {
        return false;
    };
    if compact.len() != known.length {
        return false;
    }
    let shape_ok = compact[4..].iter().zip(&known.shape).all(|(&c, &kind)| match kind {
        b'n' => c.is_ascii_digit(),
        b'a' => c.is_ascii_uppercase(),
        _ => c.is_ascii_digit() || c.is_ascii_uppercase(),
    });
    shape_ok && mod97_ok(compact)
}

/// `_verify_iban`.
fn iban(data: &[u8], start: usize, end: usize) -> Option<usize> {
    group_ends(data, start, end, 15).find(|&stop| data.get(start..stop).is_some_and(iban_ok))
}

// ------------------------------------------------------------------ phone

/// `_DATE_SHAPE.fullmatch`: `\d{1,2}[ ./-]\d{1,2}[ ./-]\d{2,4}`. Digits and separators
/// are disjoint, so the split is the only parse.
fn date_shape(text: &[u8]) -> bool {
    let mut parts = text.split(|&c| matches!(c, b' ' | b'.' | b'/' | b'-'));
    let mut ok = |low: usize, high: usize| parts.next().is_some_and(|p| all_digits(p) && (low..=high).contains(&p.len()));
    ok(1, 2) && ok(1, 2) && ok(2, 4) && parts.next().is_none()
}

/// `_verify_phone`.
fn phone(data: &[u8], start: usize, end: usize) -> Option<usize> {
    let size = data.len();
    // Never a piece of a longer dashed token: UUID groups ("0cea3fad-0427-8320-c732").
    if start > 1 && data[start - 1] == b'-' && is_alnum(data[start - 2]) {
        return None;
    }
    if end + 1 < size && data[end] == b'-' && is_alnum(data[end + 1]) {
        return None;
    }
    let text = &data[start..end];
    if all_digits(text) {
        // Only the unformatted national form is all digits.
        if start > 0 && (data[start - 1] == b'-' || (data[start - 1] == b'.' && start > 1 && is_alnum(data[start - 2]))) {
            return None; // a UUID group, a dashed id, "v1.0612345678"
        }
        if end < size && (data[end] == b'-' || (data[end] == b'.' && end + 1 < size && is_alnum(data[end + 1]))) {
            return None;
        }
        return Some(end);
    }
    group_ends(data, start, end, 7).find(|&stop| {
        let text = &data[start..stop];
        let count = text.iter().filter(|&&c| is_digit(c)).count();
        (7..=15).contains(&count) && !date_shape(text)
    })
}

// ------------------------------------------------------------------ IP addresses

/// `_verify_ipv4`.
fn ipv4(data: &[u8], start: usize, end: usize) -> Option<usize> {
    let size = data.len();
    if data[start..end].contains(&b'-') {
        // The dashed form inside a host name.
        if start >= 2 && data[start - 1] == b'-' && is_digit(data[start - 2]) {
            let mut first = start - 2;
            while first > 0 && is_digit(data[first - 1]) {
                first -= 1;
            }
            if first == 0 || !is_letter(data[first - 1]) {
                return None; // a longer dashed number ("06-12-34-56-78"), not a label ("ec2-")
            }
        }
        if end + 1 < size && data[end] == b'-' && is_digit(data[end + 1]) {
            return None;
        }
        let label = data[start.saturating_sub(5)..start].to_ascii_lowercase();
        for prefix in [&b"ip-"[..], b"ec2-"] {
            if label.ends_with(prefix) && (label.len() == prefix.len() || !is_alnum(label[label.len() - prefix.len() - 1])) {
                return Some(end);
            }
        }
        if end + 1 < size && data[end] == b'.' && is_letter(data[end + 1]) {
            return Some(end); // 10-1-2-3.example.com
        }
        return None;
    }
    // Part of a longer dotted number (version, OID): not an address ...
    if start >= 2 && data[start - 1] == b'.' && is_digit(data[start - 2]) {
        return None;
    }
    if end + 1 < size && data[end] == b'.' && is_digit(data[end + 1]) {
        // ... unless it is tcpdump's addr.port: exactly one more part, a 2-5 digit port.
        let mut stop = end + 1;
        while stop < size && is_digit(data[stop]) {
            stop += 1;
        }
        let port = &data[end + 1..stop];
        if !(2..=5).contains(&port.len()) || number(port) > 65535 {
            return None;
        }
        if stop + 1 < size && data[stop] == b'.' && is_digit(data[stop + 1]) {
            return None;
        }
    }
    Some(end)
}

/// `ipaddress.IPv4Address(text)` succeeds (Python 3.11: four decimal octets, no leading zeros).
fn ipv4_address_ok(text: &[u8]) -> bool {
    if text.contains(&b'/') {
        return false;
    }
    let mut count = 0;
    for octet in text.split(|&c| c == b'.') {
        count += 1;
        let ok = all_digits(octet) && octet.len() <= 3 && (octet == b"0" || octet[0] != b'0') && number(octet) <= 255;
        if !ok {
            return false;
        }
    }
    count == 4
}

/// `ipaddress.IPv6Address(text)` succeeds: Python 3.11's `_split_scope_id` and
/// `_ip_int_from_string`, check for check.
pub fn ipv6_address_ok(text: &[u8]) -> bool {
    const HEXTETS: usize = 8;
    if text.contains(&b'/') {
        return false;
    }
    let addr = match text.iter().position(|&c| c == b'%') {
        None => text,
        Some(i) => {
            let scope = &text[i + 1..];
            if scope.is_empty() || scope.contains(&b'%') {
                return false;
            }
            &text[..i]
        }
    };
    if addr.is_empty() {
        return false;
    }
    let mut parts: Vec<&[u8]> = addr.split(|&c| c == b':').collect();
    if parts.len() < 3 {
        return false;
    }
    if parts.last().is_some_and(|p| p.contains(&b'.')) {
        if !parts.pop().is_some_and(ipv4_address_ok) {
            return false;
        }
        parts.extend([&b"0"[..], b"0"]); // two valid hextets in its place
    }
    if parts.len() > HEXTETS + 1 {
        return false;
    }
    let n = parts.len();
    let mut skip = None;
    for (i, part) in parts.iter().enumerate().take(n - 1).skip(1) {
        if part.is_empty() {
            if skip.is_some() {
                return false; // at most one "::"
            }
            skip = Some(i);
        }
    }
    let (hi, lo) = match skip {
        Some(i) => {
            let (mut hi, mut lo) = (i, n - i - 1);
            if parts[0].is_empty() {
                hi -= 1;
                if hi > 0 {
                    return false;
                }
            }
            if parts[n - 1].is_empty() {
                lo -= 1;
                if lo > 0 {
                    return false;
                }
            }
            if HEXTETS < hi + lo + 1 {
                return false;
            }
            (hi, lo)
        }
        None => {
            if n != HEXTETS || parts[0].is_empty() || parts[n - 1].is_empty() {
                return false;
            }
            (n, 0)
        }
    };
    let hextet = |p: &[u8]| !p.is_empty() && p.len() <= 4 && p.iter().all(u8::is_ascii_hexdigit);
    parts[..hi].iter().all(|p| hextet(p)) && parts[n - lo..].iter().all(|p| hextet(p))
}

/// `_verify_ipv6`.
fn ipv6(data: &[u8], start: usize, end: usize) -> Option<usize> {
    if end < data.len() && is_word(data[end]) {
        return None; // "de::Error", "fe80::1g": glued to a word
    }
    if start >= 2 && data[start - 1] == b':' && is_hex_colon(data[start - 2]) {
        return None; // the tail of a longer colon run that is not an address ("1:2:...:9")
    }
    let mut stop = end;
    // Trailing sentence punctuation may be swallowed by the greedy tail; try up to two
    // characters shorter.
    for _ in 0..3 {
        let text = &data[start..stop];
        if stop > start && text.iter().any(|&c| is_digit(c)) && ipv6_address_ok(text) {
            let glued = stop + 1 < data.len() && data[stop] == b':' && is_hex_colon(data[stop + 1]);
            return if glued { None } else { Some(stop) };
        }
        if stop > start && matches!(data[stop - 1], b'.' | b':') {
            stop -= 1;
        } else {
            break;
        }
    }
    None
}

// ------------------------------------------------------------------ secrets

/// `_verify_aws_secret`: exactly 40 characters; a longer base64 run is something else.
fn aws_secret(data: &[u8], end: usize) -> Option<usize> {
    if end < data.len() && is_base64(data[end]) { None } else { Some(end) }
}

/// `_verify_openai`.
fn openai(data: &[u8], start: usize, end: usize) -> Option<usize> {
    let body = data.get(start + 3..end)?;
    if body.contains(&b'-') {
        return Some(end); // sk-proj-..., sk-svcacct-..., sk-admin-...: the prefix decides
    }
    let digit = body.iter().any(|&c| is_digit(c));
    let has_lower = body.iter().any(u8::is_ascii_lowercase);
    let has_upper = body.iter().any(u8::is_ascii_uppercase);
    if digit && has_lower && has_upper { Some(end) } else { None }
}

/// `_PLACEHOLDER`: compiled through the dialect (its `(?i:...)` folds like RE2's) and
/// anchored at both ends for `fullmatch`.
const PLACEHOLDER: &str = r"\?|\$[0-9]{0,3}|\$\{.*|\{\{.*|%[sd]|%\([A-Za-z0-9_]{1,64}\)s|[*xX#.]{1,64}|(?i:null|none|nil|true|false|undefined|empty|redacted)";

fn placeholder(value: &[u8]) -> bool {
    static REGEX: OnceLock<Option<meta::Regex>> = OnceLock::new();
    let regex = REGEX.get_or_init(|| {
        let pattern = super::dialect::translate(&format!(r"(?:{PLACEHOLDER})\z")).ok()?;
        super::dialect::build(&[pattern], false).ok()
    });
    // The pattern is a constant the unit tests compile: None cannot happen at run time.
    regex.as_ref().is_some_and(|r| r.search(&Input::new(value).anchored(Anchored::Yes)).is_some())
}

/// `_BIND_NAME.fullmatch`: `[:@$][A-Za-z_][A-Za-z0-9_]{0,63}`.
fn bind_name(value: &[u8]) -> bool {
    matches!(value, [b':' | b'@' | b'$', first, rest @ ..]
        if (first.is_ascii_alphabetic() || *first == b'_') && rest.len() <= 63 && rest.iter().all(|&c| is_word(c)))
}

/// `_PROSE_WORD.fullmatch`: `[A-Za-z][a-z]*[.!?]?`.
fn prose_word(value: &[u8]) -> bool {
    let body = match value {
        [body @ .., b'.' | b'!' | b'?'] => body,
        _ => value,
    };
    matches!(body, [first, rest @ ..] if first.is_ascii_alphabetic() && rest.iter().all(u8::is_ascii_lowercase))
}

/// `_verify_password`, given the password pattern's captures at the candidate.
fn password(data: &[u8], end: usize, caps: &Captures) -> Option<usize> {
    if !caps.is_match() {
        return None;
    }
    let group = |name: &str| caps.get_group_by_name(name).and_then(|s| data.get(s.range()));
    let bare = group("pw_bare");
    let value = [group("pw_edq"), group("pw_dq"), group("pw_sq"), bare]
        .into_iter()
        .flatten()
        .find(|v| !v.is_empty())?;
    if placeholder(value) {
        return None;
    }
    let separator = group("pw_sep").unwrap_or_default();
    if bare.is_some() {
        if separator.contains(&b' ') && bind_name(value) {
            return None;
        }
        if !separator.contains(&b'=') && prose_word(value) {
            return None; // "invalid token: expired"
        }
    }
    if group("pw_name").is_some_and(|n| n.eq_ignore_ascii_case(b"pwd")) && matches!(value.first(), Some(b'/' | b'~')) {
        return None; // PWD=/home/app: the shell's working directory
    }
    Some(end)
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
