//! `sanitize_sql`: every literal of an SQL statement becomes `?`, its shape stays -- a port
//! of `redact_proxy/policy/sql.py`, which is the reference and documents the dialects.
//!
//! Strategy: the same one left-to-right tokenizer over the statement's code points (a
//! `Vec<char>`, so every index, `find` window and length bound counts what Python counts),
//! branch for branch and in the same order, with Python's character predicates
//! (`pychar`). Every scan is a run of one class or a `find`, so the pass is linear and
//! iterative: no input can recurse. What Python raises `_Unparseable` on is an `Err` here,
//! and the whole result is `SQL_UNPARSEABLE`.
//!
//! This file holds the dialect table, the two-reading decision of the generic dialect and
//! the fixed-shape matchers (each a transcription of one of the reference's anchored
//! regexes); `sql_scan.rs` holds the tokenizer itself.

use super::pychar::{is_decimal, is_digit, is_space, is_word};
use super::sql_scan::{Sanitizer, Unparseable};

pub const SQL_UNPARSEABLE: &str = "[unparseable sql]";

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Backslash { Guess, Always, Never }
#[derive(Clone, Copy, PartialEq)]
pub(super) enum DoubleQuote { Guess, Str, Identifier }
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Hash { Guess, Comment, Operator, Name }
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Bracket { Guess, Identifier, Operator }
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Dollar { Pg, Param, Money, Cql }

/// How one dialect quotes, escapes and comments (`sql._Dialect`).
pub(super) struct Dialect {
    pub(super) backslash: Backslash,
    pub(super) double_quote: DoubleQuote,
    pub(super) hash: Hash,
    pub(super) bracket: Bracket,
    pub(super) dollar: Dollar,
    pub(super) backticks: bool,
    pub(super) nested_comments: bool,
    pub(super) slash_comments: bool,
    pub(super) q_quotes: bool,
    pub(super) hash_in_words: bool,
}

const GENERIC: Dialect = Dialect {
    backslash: Backslash::Guess, double_quote: DoubleQuote::Guess, hash: Hash::Guess,
    bracket: Bracket::Guess, dollar: Dollar::Pg, backticks: true, nested_comments: true,
    slash_comments: false, q_quotes: true, hash_in_words: false,
};

/// `sql.DIALECTS`, looked up by exact name; `None` or an unknown name reads generically.
fn dialect(name: Option<&str>) -> Dialect {
    let g = GENERIC;
    match name.unwrap_or("") {
        "postgresql" => Dialect { backslash: Backslash::Never, double_quote: DoubleQuote::Identifier,
            hash: Hash::Operator, bracket: Bracket::Operator, backticks: false, q_quotes: false, ..g },
        "mysql" => Dialect { backslash: Backslash::Always, double_quote: DoubleQuote::Str,
            hash: Hash::Comment, bracket: Bracket::Operator, dollar: Dollar::Param,
            nested_comments: false, q_quotes: false, ..g },
        "mssql" => Dialect { backslash: Backslash::Never, double_quote: DoubleQuote::Identifier,
            hash: Hash::Name, bracket: Bracket::Identifier, dollar: Dollar::Money, backticks: false,
            q_quotes: false, ..g },
        "oracle" => Dialect { backslash: Backslash::Never, double_quote: DoubleQuote::Identifier,
            hash: Hash::Operator, bracket: Bracket::Operator, dollar: Dollar::Param,
            backticks: false, nested_comments: false, hash_in_words: true, ..g },
        "sqlite" => Dialect { backslash: Backslash::Never, dollar: Dollar::Param,
            nested_comments: false, q_quotes: false, ..g },
        "cql" => Dialect { backslash: Backslash::Never, double_quote: DoubleQuote::Identifier,
            hash: Hash::Operator, bracket: Bracket::Operator, dollar: Dollar::Cql, backticks: false,
            nested_comments: false, slash_comments: true, q_quotes: false, ..g },
        _ => g,
    }
}


/// `statement` with literals replaced by `?`, or `SQL_UNPARSEABLE` (`sql.sanitize_sql`).
pub fn sanitize_sql(statement: &str, dialect_name: Option<&str>) -> String {
    let sql: Vec<char> = statement.chars().collect();
    sanitize_chars(&sql, dialect_name)
}

pub(super) fn sanitize_chars(sql: &[char], dialect_name: Option<&str>) -> String {
    let rules = dialect(dialect_name);
    let unparseable = || SQL_UNPARSEABLE.to_string();
    if rules.backslash != Backslash::Guess {
        let bs = rules.backslash == Backslash::Always;
        return Sanitizer::new(sql, bs, &rules).run().map_or_else(|_| unparseable(), |r| r.0);
    }
    let (mysql, ambiguous, mysql_hidden) = match Sanitizer::new(sql, true, &rules).run() {
        Ok((out, amb, hidden)) => (Some(out), amb, hidden),
        Err(Unparseable) => (None, true, Vec::new()),
    };
    if !ambiguous {
        return mysql.unwrap_or_else(unparseable);
    }
    let (standard, standard_hidden) = match Sanitizer::new(sql, false, &rules).run() {
        Ok((out, _, hidden)) => (Some(out), hidden),
        Err(Unparseable) => (None, Vec::new()),
    };
    let Some(mysql) = mysql else {
        return standard.unwrap_or_else(unparseable);
    };
    let Some(standard) = standard.filter(|s| *s != mysql) else {
        return mysql;
    };
    // Both readings tokenize but differ: one is returned only if it hides every
    // meaningful character the other hides.
    if !reveals(sql, &standard_hidden, &mysql_hidden) {
        return mysql;
    }
    if !reveals(sql, &mysql_hidden, &standard_hidden) {
        return standard;
    }
    unparseable()
}

/// Neither whitespace nor ASCII punctuation (`sql._MEANINGFUL`).
fn meaningful(c: char) -> bool {
    !is_space(c) && !c.is_ascii_punctuation()
}

/// Whether a meaningful character inside a `hidden` span lies outside every `by` span.
fn reveals(sql: &[char], hidden: &[(usize, usize)], by: &[(usize, usize)]) -> bool {
    let mut k = 0;
    for &(start, end) in hidden {
        let mut pos = start;
        while pos < end {
            while k < by.len() && by[k].1 <= pos {
                k += 1;
            }
            if k < by.len() && by[k].0 <= pos {
                pos = by[k].1;
                continue;
            }
            let gap_end = if k < by.len() { end.min(by[k].0) } else { end };
            if sql[pos.min(gap_end)..gap_end].iter().any(|&c| meaningful(c)) {
                return true;
            }
            pos = gap_end;
        }
    }
    false
}

pub(super) fn is_control(c: char) -> bool {
    matches!(c, '\x00'..='\x1f' | '\x7f')
}

/// End of the run of `[\w$]` (`[\w$#]` with `hash`) from `j`.
pub(super) fn word_end(s: &[char], mut j: usize, hash: bool) -> usize {
    while j < s.len() && (is_word(s[j]) || s[j] == '$' || (hash && s[j] == '#')) {
        j += 1;
    }
    j
}

pub(super) fn run_end(s: &[char], mut j: usize, class: impl Fn(char) -> bool) -> usize {
    while j < s.len() && class(s[j]) {
        j += 1;
    }
    j
}

pub(super) fn is_hex(c: char) -> bool {
    c.is_ascii_hexdigit()
}

/// `sql._UUID` matched at `i` (hex 8-4-4-4-12, not followed by `[\w$]`): its end.
pub(super) fn uuid_at(s: &[char], i: usize, lookahead: bool) -> Option<usize> {
    let mut k = i;
    for (n, group) in [8, 4, 4, 4, 12].into_iter().enumerate() {
        if n > 0 {
            if s.get(k) != Some(&'-') {
                return None;
            }
            k += 1;
        }
        for _ in 0..group {
            if !s.get(k).is_some_and(|&c| is_hex(c)) {
                return None;
            }
            k += 1;
        }
    }
    if lookahead && s.get(k).is_some_and(|&c| is_word(c) || c == '$') {
        return None;
    }
    Some(k)
}

pub(super) fn is_digit_at(s: &[char], k: usize) -> bool {
    s.get(k).is_some_and(|&c| is_digit(c))
}

/// `%s` or `%(name)s` at `i` (`sql._PYFORMAT`): its end.
pub(super) fn pyformat_at(s: &[char], i: usize) -> Option<usize> {
    let mut k = i + 1;
    if s.get(k) == Some(&'(') {
        let name_start = k + 1;
        if s.get(name_start).is_some_and(|&c| c.is_ascii_alphabetic() || c == '_') {
            let e = run_end(s, name_start + 1, is_word);
            if s.get(e) == Some(&')') {
                k = e + 1;
            }
        }
    }
    (s.get(k) == Some(&'s')).then_some(k + 1)
}

/// `\$(?:[A-Za-z_\x80-\U0010ffff]\w*)?\$` at `i`: its end.
pub(super) fn dollar_tag_at(s: &[char], i: usize) -> Option<usize> {
    let c = *s.get(i + 1)?;
    if c == '$' {
        return Some(i + 2);
    }
    if !(c.is_ascii_alphabetic() || c == '_' || !c.is_ascii()) {
        return None;
    }
    let e = run_end(s, i + 2, is_word);
    (s.get(e) == Some(&'$')).then_some(e + 1)
}

/// `[A-Za-z_][A-Za-z0-9_$]{0,127}`, whole.
pub(super) fn dq_ident(s: &[char]) -> bool {
    (1..=128).contains(&s.len())
        && (s[0].is_ascii_alphabetic() || s[0] == '_')
        && s[1..].iter().all(|&c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// `(?:[^\W\d]|[$#@])[\w $#@.\-]{0,127}`, whole.
pub(super) fn bracket_ident(s: &[char]) -> bool {
    (1..=128).contains(&s.len())
        && ((is_word(s[0]) && !is_decimal(s[0])) || matches!(s[0], '$' | '#' | '@'))
        && s[1..].iter().all(|&c| is_word(c) || matches!(c, ' ' | '$' | '#' | '@' | '.' | '-'))
}
