//! The JSON reader of `redact_proxy/policy/statements.py` (MongoDB, Elasticsearch,
//! OpenSearch, and a generic-SQL text that is a JSON document): keys kept, every scalar
//! replaced, shape kept.
//!
//! Strategy: the reference's iterative reader, state for state: `stack` holds one
//! (closer, state) per open container, so nesting costs heap, never recursion. The
//! reference's token list is one `String` here: every token it appends is non-empty, so
//! "the last token ends with c" is "the output ends with c".

use super::pychar::{is_space, is_word, starts_with};

/// The document cannot be read; carries no text on purpose.
pub(super) struct Unparseable;

const MONGO_COMMANDS: &[&str] = &[
    "aggregate", "bulkWrite", "collMod", "count", "create", "createIndexes", "delete",
    "distinct", "drop", "dropIndexes", "endSessions", "explain", "find", "findAndModify",
    "findOneAndDelete", "findOneAndReplace", "findOneAndUpdate", "getMore", "hello", "insert",
    "isMaster", "killCursors", "listCollections", "listDatabases", "listIndexes", "mapReduce",
    "ping", "update", "deleteOne", "deleteMany", "insertOne", "insertMany", "updateOne",
    "updateMany", "replaceOne", "countDocuments", "estimatedDocumentCount", "watch",
];

pub(super) fn is_mongo_command(word: &[char]) -> bool {
    MONGO_COMMANDS.iter().any(|c| c.chars().eq(word.iter().copied()))
}

#[derive(Clone, Copy, PartialEq)]
enum State { Key, Colon, Value, After }

fn ws_end(s: &[char], mut i: usize) -> usize {
    while i < s.len() && is_space(s[i]) {
        i += 1;
    }
    i
}

fn run_end(s: &[char], mut i: usize, class: impl Fn(char) -> bool) -> usize {
    while i < s.len() && class(s[i]) {
        i += 1;
    }
    i
}

fn ascii_digit_at(s: &[char], i: usize) -> bool {
    s.get(i).is_some_and(|c| c.is_ascii_digit())
}

/// `[-+]?(?:0[xX][0-9A-Fa-f]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)\w*` at `i`.
fn number_at(s: &[char], i: usize) -> Option<usize> {
    let mut k = i;
    if matches!(s.get(k), Some('+' | '-')) {
        k += 1;
    }
    if (starts_with(s, k, "0x") || starts_with(s, k, "0X"))
        && s.get(k + 2).is_some_and(|c| c.is_ascii_hexdigit())
    {
        return Some(run_end(s, k + 2, is_word)); // hex digits are \w
    }
    let digits = |c: char| c.is_ascii_digit();
    if ascii_digit_at(s, k) {
        k = run_end(s, k, digits);
        if s.get(k) == Some(&'.') {
            k = run_end(s, k + 1, digits);
        }
    } else if s.get(k) == Some(&'.') && ascii_digit_at(s, k + 1) {
        k = run_end(s, k + 1, digits);
    } else {
        return None;
    }
    if matches!(s.get(k), Some('e' | 'E')) {
        let m = if matches!(s.get(k + 1), Some('+' | '-')) { k + 2 } else { k + 1 };
        if ascii_digit_at(s, m) {
            k = run_end(s, m, digits);
        }
    }
    Some(run_end(s, k, is_word))
}

/// `-?[A-Za-z_$][\w$.]*` at `i`.
pub(super) fn word_at(s: &[char], i: usize) -> Option<usize> {
    let k = if s.get(i) == Some(&'-') { i + 1 } else { i };
    let first = *s.get(k)?;
    if !(first.is_ascii_alphabetic() || first == '_' || first == '$') {
        return None;
    }
    Some(run_end(s, k + 1, |c| is_word(c) || c == '$' || c == '.'))
}

/// `[bBuUrR]{1,2}(?=['"])` at `i`.
fn string_prefix_at(s: &[char], i: usize) -> Option<usize> {
    let p = |k: usize| s.get(k).is_some_and(|c| "bBuUrR".contains(*c));
    let q = |k: usize| matches!(s.get(k), Some('\'' | '"'));
    if p(i) && p(i + 1) && q(i + 2) {
        Some(i + 2)
    } else if p(i) && q(i + 1) {
        Some(i + 1)
    } else {
        None
    }
}

/// Every top-level document of `text` with its scalars replaced (`statements._json`).
pub(super) fn json(text: &[char], allow_command: bool) -> Result<String, Unparseable> {
    let n = text.len();
    let mut out = String::with_capacity(n);
    let mut i = ws_end(text, 0);
    if allow_command {
        if let Some(e) = word_at(text, i) {
            if is_mongo_command(&text[i..e]) {
                let j = ws_end(text, e);
                if j > e && matches!(text.get(j), Some('{' | '[')) {
                    out.extend(text[i..e].iter());
                    out.push(' ');
                    i = j;
                }
            }
        }
    }
    if i >= n {
        return if out.is_empty() { Ok(out) } else { Err(Unparseable) };
    }
    let mut gap = 0;
    let mut first = true;
    while i < n {
        if !matches!(text[i], '{' | '[') {
            return Err(Unparseable); // a document is an object or an array, not a bare scalar
        }
        if !first {
            out.push(if text[gap..i].contains(&'\n') { '\n' } else { ' ' });
        }
        i = document(text, i, &mut out)?;
        gap = i;
        i = ws_end(text, i);
        first = false;
    }
    Ok(out)
}

/// Read one document from `i`; append its sanitized form; the index after it.
fn document(text: &[char], mut i: usize, out: &mut String) -> Result<usize, Unparseable> {
    let n = text.len();
    let mut stack: Vec<(char, State)> = Vec::new();
    loop {
        i = ws_end(text, i);
        if i >= n {
            return Err(Unparseable);
        }
        let c = text[i];
        let (closer, state) = stack.last().copied().unwrap_or(('\0', State::Value));
        let empty = || matches!(out.chars().next_back(), Some('[' | '{' | '('));
        if !stack.is_empty()
            && c == closer
            && (state == State::After || (matches!(state, State::Key | State::Value) && empty()))
        {
            stack.pop();
            out.push(c);
            i += 1;
        } else if state == State::After {
            if c != ',' {
                return Err(Unparseable);
            }
            out.push_str(", ");
            set_top(&mut stack, if closer == '}' { State::Key } else { State::Value });
            i += 1;
            continue;
        } else if state == State::Colon {
            if c != ':' {
                return Err(Unparseable);
            }
            out.push_str(": ");
            set_top(&mut stack, State::Value);
            i += 1;
            continue;
        } else if state == State::Key {
            i = key(text, i, out)?;
            set_top(&mut stack, State::Colon);
            continue;
        } else if c == '{' || c == '[' {
            out.push(c);
            stack.push(if c == '{' { ('}', State::Key) } else { (']', State::Value) });
            i += 1;
            continue;
        } else {
            i = scalar(text, i, out, &mut stack)?;
            if out.ends_with('(') {
                continue; // a constructor call opened: its arguments come next
            }
        }
        // A value (or a container) is complete.
        if stack.is_empty() {
            return Ok(i);
        }
        set_top(&mut stack, State::After);
    }
}

fn set_top(stack: &mut [(char, State)], state: State) {
    if let Some(top) = stack.last_mut() {
        top.1 = state;
    }
}

fn key(text: &[char], i: usize, out: &mut String) -> Result<usize, Unparseable> {
    let c = text[i];
    if c == '"' || c == '\'' {
        let end = string_end(text, i)?;
        out.extend(text[i..end].iter());
        return Ok(end);
    }
    if let Some(e) = word_at(text, i).filter(|_| c != '-') {
        out.extend(text[i..e].iter()); // a bare key ({name: 1}, {$gt: 5})
        return Ok(e);
    }
    if let Some(e) = number_at(text, i) {
        out.push('?'); // a number used as a key is data, not a name
        return Ok(e);
    }
    Err(Unparseable)
}

fn scalar(
    text: &[char],
    mut i: usize,
    out: &mut String,
    stack: &mut Vec<(char, State)>,
) -> Result<usize, Unparseable> {
    if let Some(e) = string_prefix_at(text, i) {
        i = e;
    }
    let c = text[i];
    if c == '"' || c == '\'' {
        out.push_str("\"?\"");
        return string_end(text, i);
    }
    if let Some(e) = number_at(text, i) {
        out.push('?');
        return Ok(e);
    }
    let e = word_at(text, i).ok_or(Unparseable)?;
    let j = ws_end(text, e);
    if text.get(j) == Some(&'(') && c != '-' {
        out.extend(text[i..e].iter()); // ObjectId("..."), datetime.datetime(...)
        out.push('(');
        stack.push((')', State::Value));
        return Ok(j + 1);
    }
    out.push('?'); // true, null, None, NaN, -Infinity, MinKey, ...
    Ok(e)
}

fn string_end(text: &[char], i: usize) -> Result<usize, Unparseable> {
    let quote = text[i];
    let mut pos = i + 1;
    loop {
        let q = pos + text[pos..].iter().position(|&c| c == quote).ok_or(Unparseable)?;
        let mut k = q;
        while k > pos && text[k - 1] == '\\' {
            k -= 1;
        }
        if (q - k).is_multiple_of(2) {
            return Ok(q + 1);
        }
        pos = q + 1;
    }
}
