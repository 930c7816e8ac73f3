//! `sanitize_url` / `sanitize_query` / `url_span_name`: a port of
//! `redact_proxy/policy/url.py` (the reference, which documents the rules).
//!
//! Strategy: the same hand split along RFC 3986's generic syntax, on `&str`. Every split
//! point is an ASCII character (`# ? / @ : ; & =`), so byte offsets never cut a code point
//! and partitions equal Python's; the patterns are ASCII classes except `\w` in a host and
//! `\s`, which use Python's predicates (`pychar`). What Python rejects with `_Garbage` is
//! an `Err` here and the result is `URL_UNPARSEABLE`.

use super::pychar::{is_space, is_word};

pub const VALUE_PLACEHOLDER: &str = "REDACTED";
pub const ID_PLACEHOLDER: &str = "{id}";
pub const URL_UNPARSEABLE: &str = "[unparseable url]";

const OPAQUE_SCHEMES: &[&str] = &[
    "mailto", "tel", "sms", "sip", "sips", "urn", "data", "javascript", "magnet", "news",
];
const HTTP_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY",
    "_OTHER", "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH",
    "REPORT", "MKCALENDAR", "PURGE",
];

/// Not a URL we can take apart; carries no text on purpose.
struct Garbage;

/// `value` without userinfo, query values and fragment, or `URL_UNPARSEABLE`.
pub fn sanitize_url(value: &str, path_ids: bool) -> String {
    sanitize(value, path_ids).unwrap_or_else(|Garbage| URL_UNPARSEABLE.to_string())
}

/// A query string (leading `?` optional) with every value replaced; never fails.
pub fn sanitize_query(value: &str) -> String {
    match value.strip_prefix('?') {
        Some(rest) => format!("?{}", query(rest)),
        None => query(value),
    }
}

/// A span name that is a URL or `METHOD url` with the URL sanitized; else `name`.
pub fn url_span_name(name: &str, path_ids: bool) -> String {
    if let Some((method, target)) = name.split_once(' ') {
        if HTTP_METHODS.contains(&method) {
            if !url_name(target) {
                return name.to_string();
            }
            return format!("{method} {}", sanitize_url(target, path_ids));
        }
    }
    if url_name(name) {
        return sanitize_url(name, path_ids);
    }
    name.to_string()
}

/// `(?:[A-Za-z][A-Za-z0-9+.\-]*:)?//|/` matched at the start.
fn url_name(s: &str) -> bool {
    s.starts_with('/') || scheme_len(s).is_some_and(|k| s[k..].starts_with("//"))
}

/// Length of `[A-Za-z][A-Za-z0-9+.\-]*:` at the start of `s`.
fn scheme_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if !b.first().is_some_and(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let k = b.iter().position(|&c| !(c.is_ascii_alphanumeric() || b"+.-".contains(&c)))?;
    (b[k] == b':').then_some(k + 1)
}

fn partition(s: &str, sep: char) -> (&str, bool, &str) {
    match s.split_once(sep) {
        Some((a, b)) => (a, true, b),
        None => (s, false, ""),
    }
}

fn sanitize(value: &str, path_ids: bool) -> Result<String, Garbage> {
    if value.bytes().any(|c| c < 0x20 || c == 0x7f) {
        return Err(Garbage);
    }
    // Fragment first: it is dropped whatever it contains.
    let head = partition(value, '#').0;
    let (rest, qmark, q) = partition(head, '?');
    let new_query = if qmark { format!("?{}", query(q)) } else { String::new() };
    let scheme = scheme_len(rest);
    if scheme.is_none() && !rest.starts_with('/') {
        let first = partition(rest, '/').0;
        if first.contains('=') || first.contains('&') {
            return Ok(query(head)); // url.query-style value: "a=1&b=2" (spaces allowed)
        }
    }
    if rest.chars().any(is_space) {
        return Err(Garbage);
    }
    if rest.is_empty() || rest == "*" {
        return Ok(format!("{rest}{new_query}"));
    }
    let mut prefix = String::new();
    let mut authority = None;
    let mut path = rest;
    if let Some(after) = rest.strip_prefix("//") {
        (authority, path) = split_authority(after);
        prefix.push_str("//");
    } else if let Some(k) = scheme {
        let (name, after) = (&rest[..k], &rest[k..]);
        let opaque = || format!("{name}{}", if after.is_empty() { "" } else { VALUE_PLACEHOLDER });
        if OPAQUE_SCHEMES.contains(&name[..k - 1].to_ascii_lowercase().as_str()) {
            return Ok(opaque());
        }
        if let Some(tail) = after.strip_prefix("//") {
            (authority, path) = split_authority(tail);
            prefix = format!("{name}//");
        } else if after.split('/').next().unwrap_or("").contains('@') || leading_port(after) {
            (authority, path) = split_authority(rest); // user:pw@host/p, host:8080/p
        } else {
            // Non-hierarchical (mailto:, tel:, urn:, data:): the whole rest is payload.
            return Ok(opaque());
        }
    } else if !rest.starts_with('/') {
        let (first, slash, _) = partition(rest, '/');
        if first.contains('@') || (first.contains('.') && slash) || first == "localhost" {
            (authority, path) = split_authority(rest); // example.com/p, user@host
        }
    }
    let mut out = String::with_capacity(value.len());
    out.push_str(&prefix);
    if let Some(authority) = authority {
        host_port(authority, &mut out)?;
    }
    out.push_str(&sanitize_path(path, path_ids));
    out.push_str(&new_query);
    Ok(out)
}

/// `[0-9]+(?=[/?#]|$)` at the start (`?` and `#` are already split off).
fn leading_port(after: &str) -> bool {
    let k = after.bytes().position(|c| !c.is_ascii_digit()).unwrap_or(after.len());
    k > 0 && (k == after.len() || after.as_bytes()[k] == b'/')
}

fn split_authority(text: &str) -> (Option<&str>, &str) {
    match text.find('/') {
        None => (Some(text), ""),
        Some(slash) => (Some(&text[..slash]), &text[slash..]),
    }
}

fn host_port(authority: &str, out: &mut String) -> Result<(), Garbage> {
    // Userinfo removed (RFC 3986: up to the last @).
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port_part) = if hostport.starts_with('[') {
        // \[[0-9A-Za-z:.%_~\-]+\]
        let b = hostport.as_bytes();
        let k = 1 + b[1..]
            .iter()
            .position(|&c| !(c.is_ascii_alphanumeric() || b":.%_~-".contains(&c)))
            .ok_or(Garbage)?;
        if k == 1 || b[k] != b']' {
            return Err(Garbage);
        }
        let (host, port_part) = hostport.split_at(k + 1);
        if !port_part.is_empty() && !port_part.starts_with(':') {
            return Err(Garbage);
        }
        (host, port_part)
    } else {
        let (host, port_part) = match hostport.find(':') {
            Some(k) => hostport.split_at(k),
            None => (hostport, ""),
        };
        if !is_host(host) {
            return Err(Garbage);
        }
        (host, port_part)
    };
    if !port_part.is_empty() && !port_part[1..].bytes().all(|c| c.is_ascii_digit()) {
        return Err(Garbage);
    }
    out.push_str(host);
    out.push_str(port_part);
    Ok(())
}

/// `(?:[\w\-.~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*`, whole.
fn is_host(host: &str) -> bool {
    let mut chars = host.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            let mut hex = chars.clone().take(2);
            if !(hex.next().is_some_and(|h| h.is_ascii_hexdigit())
                && hex.next().is_some_and(|h| h.is_ascii_hexdigit()))
            {
                return false;
            }
            chars.nth(1);
        } else if !(is_word(c) || "-.~!$&'()*+,;=".contains(c)) {
            return false;
        }
    }
    true
}

fn sanitize_path(path: &str, path_ids: bool) -> String {
    if path.is_empty() || (!path.contains(';') && !path_ids) {
        return path.to_string();
    }
    let segments: Vec<String> = path.split('/').map(|s| segment(s, path_ids)).collect();
    segments.join("/")
}

fn segment(segment: &str, path_ids: bool) -> String {
    let (name, semi, params) = partition(segment, ';');
    let name = if path_ids && !name.is_empty() && is_id(name) { ID_PLACEHOLDER } else { name };
    if !semi {
        return name.to_string();
    }
    let params: Vec<String> = params.split(';').map(param).collect();
    format!("{name};{}", params.join(";"))
}

fn query(q: &str) -> String {
    let parts: Vec<String> = q.split('&').map(param).collect();
    parts.join("&")
}

/// `name=value` -> `name=REDACTED`; a bare or odd-looking name -> kept or REDACTED.
fn param(part: &str) -> String {
    if part.is_empty() {
        return String::new();
    }
    let (name, eq, val) = partition(part, '=');
    let name = if !name.is_empty() && !is_name(name) { VALUE_PLACEHOLDER } else { name };
    if !eq {
        return name.to_string();
    }
    format!("{name}={}", if val.is_empty() { "" } else { VALUE_PLACEHOLDER })
}

/// `(?:[A-Za-z0-9_.\-~\[\]+]|%[0-9A-Fa-f]{2}){1,64}`, whole, and not id-like.
fn is_name(name: &str) -> bool {
    let b = name.as_bytes();
    let (mut k, mut units) = (0, 0);
    while k < b.len() {
        if b[k] == b'%' {
            if !(b.get(k + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(k + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return false;
            }
            k += 3;
        } else if b[k].is_ascii_alphanumeric() || b"_.-~[]+".contains(&b[k]) {
            k += 1;
        } else {
            return false;
        }
        units += 1;
    }
    (1..=64).contains(&units) && !is_id(name)
}

/// `urllib.parse.unquote`: `%XX` runs decoded as UTF-8 (errors replaced), the rest kept.
fn unquote(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut bytes = Vec::new();
    let b = s.as_bytes();
    let mut k = 0;
    let flush = |bytes: &mut Vec<u8>, out: &mut String| {
        out.push_str(&String::from_utf8_lossy(bytes));
        bytes.clear();
    };
    while k < b.len() {
        let hex = |c: Option<&u8>| c.and_then(|c| (*c as char).to_digit(16));
        if b[k] == b'%' {
            if let (Some(h), Some(l)) = (hex(b.get(k + 1)), hex(b.get(k + 2))) {
                bytes.push((h * 16 + l) as u8);
                k += 3;
                continue;
            }
        }
        if b[k].is_ascii() {
            bytes.push(b[k]);
            k += 1;
        } else {
            // A non-ASCII code point ends the ASCII run being decoded and is kept as is.
            flush(&mut bytes, &mut out);
            let c = s[k..].chars().next().unwrap_or('\u{fffd}');
            out.push(c);
            k += c.len_utf8();
        }
    }
    flush(&mut bytes, &mut out);
    out
}

fn is_id(segment: &str) -> bool {
    let decoded;
    let text = if segment.contains('%') {
        decoded = unquote(segment);
        decoded.as_str()
    } else {
        segment
    };
    if text.contains('@') {
        return true;
    }
    let b = text.as_bytes();
    let all = |f: fn(&u8) -> bool| b.iter().all(f);
    if !b.is_empty() && all(u8::is_ascii_digit) {
        return true;
    }
    let chars: Vec<char> = if b.len() == 36 { text.chars().collect() } else { Vec::new() };
    if chars.len() == 36 && super::sql::uuid_at(&chars, 0, false) == Some(36) {
        return true;
    }
    if b.len() >= 16 && all(u8::is_ascii_hexdigit) {
        return true;
    }
    if prefixed_id(b) {
        return true;
    }
    b.len() >= 20
        && all(|c| c.is_ascii_alphanumeric() || b"_-+/=.~".contains(c))
        && b.iter().any(u8::is_ascii_uppercase)
        && b.iter().any(u8::is_ascii_lowercase)
        && b.iter().any(u8::is_ascii_digit)
}

/// `[A-Za-z]{1,12}[_-](?=(?:[A-Za-z]*[0-9]){2})[A-Za-z0-9]{2,64}`, whole.
fn prefixed_id(b: &[u8]) -> bool {
    let k = b.iter().position(|c| !c.is_ascii_alphabetic()).unwrap_or(b.len());
    if !(1..=12).contains(&k) || !matches!(b.get(k), Some(b'_' | b'-')) {
        return false;
    }
    let tail = &b[k + 1..];
    (2..=64).contains(&tail.len())
        && tail.iter().all(u8::is_ascii_alphanumeric)
        && tail.iter().filter(|c| c.is_ascii_digit()).count() >= 2
}
