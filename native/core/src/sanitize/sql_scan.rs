//! The tokenizer of `redact_proxy/policy/sql.py` (`_Sanitizer`): one left-to-right pass
//! over the code points that emits keywords, identifiers, operators and placeholders as
//! written and `?` for every literal, and records the input spans it hid.
//!
//! Strategy: `_Sanitizer`'s methods one for one, branch order included; keywords are kept
//! upper-cased (Python's `str.upper()`) only as far as the ASCII keyword tables can tell.

use super::pychar::{ascii_lower, ascii_upper, push_ascii_upper, find, find_in, is_alnum, is_alpha, is_digit, is_space, starts_with};
use super::sql::{
    bracket_ident, dollar_tag_at, dq_ident, is_control, is_digit_at, is_hex, pyformat_at, run_end,
    uuid_at, word_end, Bracket, Dialect, Dollar, DoubleQuote, Hash,
};

const BRACKET_MAX: usize = 130; // SQL Server names are <= 128 characters

const STRING_PREFIXES: &[&str] = &["e", "n", "x", "b", "r", "rb", "br"];
const OPERAND_KEYWORDS: &[&str] = &[
    "SELECT", "WHERE", "AND", "OR", "NOT", "VALUES", "VALUE", "SET", "THEN", "ELSE", "WHEN",
    "RETURN", "LIMIT", "OFFSET", "BY", "ON", "IN", "BETWEEN", "LIKE", "ILIKE", "IS", "CASE",
    "HAVING", "DEFAULT", "INTERVAL", "TOP", "DISTINCT", "ALL", "ANY", "SOME", "EXISTS", "AS",
    "FETCH", "FIRST", "NEXT", "ESCAPE", "TO", "FROM", "ARRAY",
];
const VALUE_KEYWORDS: &[&str] = &["LIKE", "ILIKE", "RLIKE", "REGEXP", "BETWEEN", "THEN", "ELSE"];
const VALUE_OPERATORS: &[&str] = &["=", "<", ">", ":"];
const LIST_KEYWORDS: &[&str] = &["IN", "VALUES", "VALUE"];
const SUBQUERY_KEYWORDS: &[&str] = &["SELECT", "WITH", "VALUES", "TABLE"];
const OPERATOR_CHARS: &str = "+-*/%=<>!~^&|,;().:?@#$[]{}\\";
// A keyword whose `str.upper()` is not ASCII: equal to no keyword of the tables above.
const NON_ASCII: &str = "\u{0}";

/// The statement cannot be tokenized; carries no text on purpose.
#[derive(Debug)]
pub(super) struct Unparseable;
type Scan<T> = Result<T, Unparseable>;
/// One reading: the text, whether a quoted token held a backslash, the input spans hidden.
type Reading = (String, bool, Vec<(usize, usize)>);

#[derive(Clone, Copy, PartialEq)]
enum Kind { Kw, QIdent, Lit, Ph, Op }

struct Paren {
    open_index: usize,
    value_list: bool,
    values_row: bool,
    in_list: bool,
    only_literals: bool,
    first: bool,
}


pub(super) struct Sanitizer<'a> {
    sql: &'a [char],
    bs: bool,
    d: &'a Dialect,
    prev2_text: String,
    saw_backslash: bool,
    hidden: Vec<(usize, usize)>,
    out: String,
    starts: Vec<usize>, // byte offset in `out` of each emitted token
    space: bool,
    prev_kind: Option<Kind>,
    prev_text: String, // upper-cased for keywords
    parens: Vec<Paren>,
    values_row_closed: bool,
    comment_open: isize, // cached next "/*" (-1: none left, -2: not searched)
    comment_close: isize,
}

impl<'a> Sanitizer<'a> {
    pub(super) fn new(sql: &'a [char], bs: bool, d: &'a Dialect) -> Self {
        Sanitizer {
            sql, bs, d, prev2_text: String::new(), saw_backslash: false, hidden: Vec::new(),
            out: String::with_capacity(sql.len()), starts: Vec::new(), space: false,
            prev_kind: None, prev_text: String::new(), parens: Vec::new(),
            values_row_closed: false, comment_open: -2, comment_close: -2,
        }
    }

    // ------------------------------------------------------------------ emission
    fn emit(&mut self, text: &[char], kind: Kind) {
        let upper = || ascii_upper(text).unwrap_or_else(|| NON_ASCII.to_string());
        let single = |c: char| text.len() == 1 && text[0] == c;
        if let Some(top) = self.parens.last_mut() {
            if top.first {
                top.first = false;
                if kind == Kind::Kw && SUBQUERY_KEYWORDS.contains(&upper().as_str()) {
                    top.value_list = false;
                }
            }
            if !(single('?') || single(',')) {
                top.only_literals = false;
            }
        }
        self.starts.push(self.out.len());
        if self.space && self.starts.len() > 1 {
            self.out.push(' ');
        }
        self.out.extend(text.iter());
        self.space = false;
        if !single(',') {
            self.values_row_closed = false;
        }
        // The two previous texts are reused buffers: no allocation per token.
        std::mem::swap(&mut self.prev2_text, &mut self.prev_text);
        self.prev_text.clear();
        self.prev_kind = Some(kind);
        if kind != Kind::Kw {
            self.prev_text.extend(text.iter());
        } else if !push_ascii_upper(&mut self.prev_text, text) {
            self.prev_text.clear();
            self.prev_text.push_str(NON_ASCII);
        }
    }

    fn prev_kw(&self) -> &str {
        if self.prev_kind == Some(Kind::Kw) { &self.prev_text } else { "" }
    }

    fn open_paren(&mut self) {
        let prev_kw = self.prev_kw();
        let row = prev_kw == "VALUES" || prev_kw == "VALUE"
            || (self.prev_text == "," && self.values_row_closed);
        let inherited = self.parens.last().is_some_and(|p| p.value_list);
        let value_list = row || LIST_KEYWORDS.contains(&prev_kw) || inherited;
        let in_list = prev_kw == "IN";
        self.emit(&['('], Kind::Op);
        self.parens.push(Paren {
            open_index: self.starts.len() - 1, value_list, values_row: row, in_list,
            only_literals: true, first: true,
        });
    }

    fn close_paren(&mut self) {
        let paren = self.parens.pop();
        if let Some(p) = &paren {
            if p.in_list && p.only_literals && !p.first && p.open_index + 2 < self.starts.len() {
                // IN (?, ?, ?) -> IN (?): keep the first literal (and its spacing) only.
                self.out.truncate(self.starts[p.open_index + 2]);
                self.starts.truncate(p.open_index + 2);
            }
        }
        self.emit(&[')'], Kind::Op);
        if paren.is_some_and(|p| p.values_row) {
            self.values_row_closed = true;
        }
    }

    fn end_statement(&mut self) {
        self.emit(&[';'], Kind::Op);
        self.parens.clear();
        self.prev_kind = None;
        self.prev_text.clear();
        self.values_row_closed = false;
    }

    fn secret_position(&self) -> bool {
        self.prev_kind == Some(Kind::Kw) && self.prev_text == "BY" && self.prev2_text == "IDENTIFIED"
    }

    fn operand_position(&self) -> bool {
        match self.prev_kind {
            None => true,
            Some(Kind::Op) => self.prev_text != ")" && self.prev_text != "]",
            Some(Kind::Kw) => OPERAND_KEYWORDS.contains(&self.prev_text.as_str()),
            _ => false,
        }
    }

    // ------------------------------------------------------------------ scanning
    pub(super) fn run(mut self) -> Scan<Reading> {
        let sql = self.sql;
        let n = sql.len();
        let mut i = 0;
        while i < n {
            let c = sql[i];
            let nxt = sql.get(i + 1).copied();
            let nxt_is = |f: fn(char) -> bool| nxt.is_some_and(f);
            if is_space(c) {
                i = run_end(sql, i, is_space).max(i + 1);
                self.space = true;
            } else if c == '-' && nxt == Some('-') {
                i = self.line_comment(i);
            } else if c == '/' && nxt == Some('*') {
                i = self.block_comment(i)?;
            } else if c == '/' && nxt == Some('/') && self.d.slash_comments {
                i = self.line_comment(i);
            } else if c == '#' {
                i = self.hash(i, nxt);
            } else if c == '\'' {
                let end = self.quoted(i, '\'', self.bs)?;
                i = self.literal(i, end);
            } else if c == '"' {
                i = self.double_quoted(i)?;
            } else if c == '`' {
                i = self.backtick(i)?;
            } else if c == '[' {
                i = self.bracket(i)?;
            } else if is_digit(c)
                || (c == '.' && nxt_is(is_digit)
                    && !matches!(self.prev_kind, Some(Kind::Kw | Kind::QIdent)))
            {
                let end = uuid_at(sql, i, true).unwrap_or_else(|| self.number(i));
                i = self.literal(i, end);
            } else if (c == '+' || c == '-')
                && (nxt_is(is_digit) || (nxt == Some('.') && is_digit_at(sql, i + 2)))
                && self.operand_position()
            {
                let end = self.number(i + 1);
                i = self.literal(i, end);
            } else if is_alpha(c) || c == '_' {
                i = self.word(i)?;
            } else if c == '$' {
                i = self.dollar(i, nxt)?;
            } else if c == '?' {
                let j = run_end(sql, i + 1, is_digit); // SQLite ?NNN
                self.emit(&sql[i..j], Kind::Ph);
                i = j;
            } else if c == ':' {
                i = self.colon(i, nxt);
            } else if c == '@' {
                let j = word_end(sql, if nxt == Some('@') { i + 2 } else { i + 1 }, false);
                self.emit(&sql[i..j], if j > i + 1 { Kind::Ph } else { Kind::Op });
                i = j;
            } else if c == '%' {
                match pyformat_at(sql, i) {
                    Some(j) => {
                        self.emit(&sql[i..j], Kind::Ph);
                        i = j;
                    }
                    None => {
                        self.emit(&['%'], Kind::Op);
                        i += 1;
                    }
                }
            } else if c == '(' {
                self.open_paren();
                i += 1;
            } else if c == ')' {
                self.close_paren();
                i += 1;
            } else if c == ';' {
                self.end_statement();
                i += 1;
            } else if OPERATOR_CHARS.contains(c) {
                self.emit(&[c], Kind::Op);
                i += 1;
            } else {
                return Err(Unparseable); // control characters (NUL), stray symbols
            }
        }
        Ok((self.out, self.saw_backslash, self.hidden))
    }

    fn literal(&mut self, start: usize, end: usize) -> usize {
        self.hidden.push((start, end));
        self.emit(&['?'], Kind::Lit);
        end
    }

    fn line_comment(&mut self, i: usize) -> usize {
        let end = find(self.sql, &['\n'], i).map_or(self.sql.len(), |e| e + 1);
        self.hidden.push((i, end));
        self.space = true;
        end
    }

    fn block_comment(&mut self, i: usize) -> Scan<usize> {
        // Nested (PostgreSQL); the next "/*" and "*/" are cached as in the reference.
        let sql = self.sql;
        let start = i;
        if !self.d.nested_comments {
            let close = find(sql, &['*', '/'], i + 2).ok_or(Unparseable)?;
            self.hidden.push((start, close + 2));
            self.space = true;
            return Ok(close + 2);
        }
        let at = |k: Option<usize>| k.map_or(-1, |k| k as isize);
        let mut i = i as isize;
        let mut depth = 0;
        loop {
            if self.comment_open != -1 && self.comment_open < i {
                self.comment_open = at(find(sql, &['/', '*'], i as usize));
            }
            if self.comment_close < i {
                self.comment_close = at(find(sql, &['*', '/'], i as usize));
                if self.comment_close < 0 {
                    return Err(Unparseable);
                }
            }
            if self.comment_open != -1 && self.comment_open < self.comment_close {
                depth += 1;
                i = self.comment_open + 2;
            } else {
                depth -= 1;
                i = self.comment_close + 2;
                if depth == 0 {
                    self.hidden.push((start, i as usize));
                    self.space = true;
                    return Ok(i as usize);
                }
            }
        }
    }

    fn hash(&mut self, i: usize, nxt: Option<char>) -> usize {
        let sql = self.sql;
        let named = nxt.is_some_and(|c| is_alpha(c) || c == '_' || c == '#');
        match self.d.hash {
            Hash::Comment => return self.line_comment(i),
            Hash::Operator => {
                let len = if starts_with(sql, i, "#>>") { 3 }
                    else if matches!(nxt, Some('>' | '-')) { 2 } else { 1 };
                self.emit(&sql[i..i + len], Kind::Op);
                return i + len;
            }
            Hash::Name if !named => {
                self.emit(&['#'], Kind::Op);
                return i + 1;
            }
            _ => {}
        }
        if nxt == Some('>') {
            let len = if starts_with(sql, i, "#>>") { 3 } else { 2 };
            self.emit(&sql[i..i + len], Kind::Op);
            return i + len;
        }
        if named {
            let j = run_end(sql, i + 1, |c| c == '#');
            let j = word_end(sql, j, false);
            self.emit(&sql[i..j], Kind::Kw); // SQL Server #temp / ##global table
            return j;
        }
        self.line_comment(i)
    }

    /// Skip a quoted token starting at `i`; the index after it.
    fn quoted(&mut self, i: usize, quote: char, backslash: bool) -> Scan<usize> {
        let sql = self.sql;
        let mut pos = i + 1;
        loop {
            let q = find(sql, &[quote], pos).ok_or(Unparseable)?;
            if backslash {
                let mut k = q;
                while k > pos && sql[k - 1] == '\\' {
                    k -= 1;
                }
                if (q - k) % 2 == 1 {
                    pos = q + 1; // odd run of backslashes: the quote is escaped
                    continue;
                }
            }
            if sql.get(q + 1) == Some(&quote) {
                pos = q + 2; // doubled quote
                continue;
            }
            if !self.saw_backslash && sql[i + 1..q].contains(&'\\') {
                self.saw_backslash = true;
            }
            return Ok(q + 1);
        }
    }

    fn double_quoted(&mut self, i: usize) -> Scan<usize> {
        let sql = self.sql;
        let mode = self.d.double_quote;
        let end = self.quoted(i, '"', self.bs && mode != DoubleQuote::Identifier)?;
        if mode == DoubleQuote::Str || self.secret_position() {
            return Ok(self.literal(i, end));
        }
        let plain = dq_ident(&sql[i + 1..end - 1]);
        if mode == DoubleQuote::Guess && !plain {
            return Ok(self.literal(i, end));
        }
        let dotted = self.prev_text == "." || sql.get(end) == Some(&'.');
        let in_values = self.parens.last().is_some_and(|p| p.value_list);
        let value_position = in_values
            || (self.prev_kind == Some(Kind::Op) && VALUE_OPERATORS.contains(&self.prev_text.as_str()))
            || (self.prev_kind == Some(Kind::Kw) && VALUE_KEYWORDS.contains(&self.prev_text.as_str()));
        if mode == DoubleQuote::Identifier {
            if value_position && !dotted && !plain {
                return Ok(self.literal(i, end));
            }
            if sql[i..end].iter().any(|&c| is_control(c)) {
                return Err(Unparseable);
            }
            self.emit(&sql[i..end], Kind::QIdent);
        } else if value_position && !dotted {
            self.literal(i, end);
        } else {
            self.emit(&sql[i..end], Kind::QIdent);
        }
        Ok(end)
    }

    fn backtick(&mut self, i: usize) -> Scan<usize> {
        if !self.d.backticks {
            return Err(Unparseable);
        }
        let end = self.quoted(i, '`', false)?;
        if self.secret_position() {
            return Ok(self.literal(i, end));
        }
        if self.sql[i..end].iter().any(|&c| is_control(c)) {
            return Err(Unparseable); // MySQL forbids NUL in names; kept text must be clean
        }
        self.emit(&self.sql[i..end], Kind::QIdent);
        Ok(end)
    }

    fn bracket(&mut self, i: usize) -> Scan<usize> {
        let sql = self.sql;
        match self.d.bracket {
            Bracket::Operator => {
                self.emit(&['['], Kind::Op);
                return Ok(i + 1);
            }
            Bracket::Identifier => {
                let end = self.quoted(i, ']', false)?;
                if end - i > BRACKET_MAX + 2 || sql[i..end].iter().any(|&c| is_control(c)) {
                    return Err(Unparseable);
                }
                if self.secret_position() {
                    return Ok(self.literal(i, end));
                }
                self.emit(&sql[i..end], Kind::QIdent);
                return Ok(end);
            }
            Bracket::Guess => {}
        }
        if let Some(close) = find_in(sql, &[']'], i + 1, i + 1 + BRACKET_MAX) {
            if close > i + 1 && bracket_ident(&sql[i + 1..close]) {
                self.emit(&sql[i..close + 1], Kind::QIdent);
                return Ok(close + 1);
            }
        }
        self.emit(&['['], Kind::Op);
        Ok(i + 1)
    }

    fn number(&self, i: usize) -> usize {
        let sql = self.sql;
        let digits = |c: char| c.is_ascii_digit() || c == '_';
        let j = if starts_with(sql, i, "0x") || starts_with(sql, i, "0X") {
            run_end(sql, i + 2, |c| is_hex(c) || c == '_')
        } else if starts_with(sql, i, "0b") || starts_with(sql, i, "0B") {
            run_end(sql, i + 2, digits)
        } else {
            let mut j = run_end(sql, i, digits);
            if sql.get(j) == Some(&'.') {
                j = run_end(sql, j + 1, digits);
            }
            // [eE][+-]?[0-9]+
            if matches!(sql.get(j), Some('e' | 'E')) {
                let k = if matches!(sql.get(j + 1), Some('+' | '-')) { j + 2 } else { j + 1 };
                let e = run_end(sql, k, |c| c.is_ascii_digit());
                if e > k {
                    j = e;
                }
            }
            j
        };
        // Glued word characters (1abc, 0xZZ, 1e) belong to the same literal.
        word_end(sql, j, false).max(i + 1)
    }

    fn word(&mut self, i: usize) -> Scan<usize> {
        let sql = self.sql;
        if let Some(end) = uuid_at(sql, i, true) {
            return Ok(self.literal(i, end));
        }
        let j = word_end(sql, i, self.d.hash_in_words).max(i + 1);
        let word = &sql[i..j];
        // Only a quote or `&` after the word makes its lower-case form matter.
        let after = sql.get(j).copied().filter(|c| *c == '\'' || *c == '&');
        let lower = after.and_then(|_| ascii_lower(word));
        let lower = lower.as_deref().unwrap_or(NON_ASCII);
        if let Some(after) = after {
            if after == '\'' && (lower == "q" || lower == "nq") && self.d.q_quotes {
                let end = self.q_quote(j)?;
                return Ok(self.literal(i, end));
            }
            if after == '\'' && (STRING_PREFIXES.contains(&lower) || word[0] == '_') {
                // E'..', N'..', X'..', B'..', _utf8mb4'..': one literal.
                let end = self.quoted(j, '\'', self.bs || lower == "e")?;
                return Ok(self.literal(i, end));
            }
            if after == '&' && lower == "u" && sql.get(j + 1) == Some(&'\'') {
                let end = self.quoted(j + 1, '\'', self.bs)?; // PostgreSQL U&'...'
                return Ok(self.literal(i, end));
            }
        }
        // upper() never shortens a text: only a word of at most 5 code points can be TRUE/FALSE.
        let secret = self.secret_position();
        let upper = if secret || word.len() <= 5 { ascii_upper(word) } else { None };
        let upper = upper.as_deref().unwrap_or(NON_ASCII);
        if (upper == "TRUE" || upper == "FALSE" || secret) && upper != "VALUES" {
            return Ok(self.literal(i, j));
        }
        self.emit(word, Kind::Kw);
        Ok(j)
    }

    /// Oracle `q'<delim>...<close>'` from the quote at `j`; the index after it.
    fn q_quote(&self, j: usize) -> Scan<usize> {
        let sql = self.sql;
        let Some(&delim) = sql.get(j + 1).filter(|&&c| !is_space(c)) else {
            return Err(Unparseable);
        };
        let closer = match delim { '[' => ']', '{' => '}', '(' => ')', '<' => '>', c => c };
        let close = find(sql, &[closer, '\''], j + 2).ok_or(Unparseable)?;
        Ok(close + 2)
    }

    fn dollar(&mut self, i: usize, nxt: Option<char>) -> Scan<usize> {
        let sql = self.sql;
        let mode = self.d.dollar;
        let nxt_is = |f: fn(char) -> bool| nxt.is_some_and(f);
        if mode == Dollar::Money && (nxt_is(is_digit) || nxt == Some('.')) {
            let end = self.number(i + 1);
            return Ok(self.literal(i, end));
        }
        let param = mode == Dollar::Param || mode == Dollar::Money;
        if param && (nxt_is(is_alnum) || nxt == Some('_')) {
            let j = word_end(sql, i + 1, self.d.hash_in_words);
            self.emit(&sql[i..j], Kind::Ph); // SQLite $name, T-SQL $action, MySQL $ in names
            return Ok(j);
        }
        if param || (mode == Dollar::Cql && nxt != Some('$')) {
            self.emit(&['$'], Kind::Op);
            return Ok(i + 1);
        }
        if nxt_is(is_digit) {
            let j = run_end(sql, i + 1, |c| c.is_ascii_digit() || c == '_');
            self.emit(&sql[i..j], Kind::Ph);
            return Ok(j);
        }
        let Some(tag_end) = dollar_tag_at(sql, i) else {
            self.emit(&['$'], Kind::Op);
            return Ok(i + 1);
        };
        let tag = &sql[i..tag_end];
        let close = find(sql, tag, tag_end).ok_or(Unparseable)?;
        Ok(self.literal(i, close + tag.len()))
    }

    fn colon(&mut self, i: usize, nxt: Option<char>) -> usize {
        let sql = self.sql;
        if nxt == Some(':') {
            self.emit(&[':', ':'], Kind::Op); // PostgreSQL cast
            return i + 2;
        }
        if nxt.is_some_and(|c| is_alpha(c) || c == '_' || is_digit(c)) {
            let j = word_end(sql, i + 1, false);
            self.emit(&sql[i..j], Kind::Ph); // :name, :1
            return j;
        }
        self.emit(&[':'], Kind::Op);
        i + 1
    }
}

