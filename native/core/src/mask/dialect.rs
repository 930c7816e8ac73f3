//! The engine's regex dialect: RE2 syntax, run by the `regex` crate's engines.
//!
//! Strategy: the Python reference compiles patterns with RE2 and searches UTF-8 bytes.
//! RE2's `\d \s \w \b \B` are ASCII; the `regex` crate's are Unicode. A pattern is parsed
//! with `regex-syntax` and rewritten before it is compiled, splicing at the parser's exact
//! byte spans (nothing is re-printed, so everything else stays as written):
//!
//! | written          | compiled as                           | why                                  |
//! |------------------|---------------------------------------|--------------------------------------|
//! | `\d` / `\D`      | `[0-9]` / `[^0-9]`                    | RE2's digits are ASCII               |
//! | `\s` / `\S`      | `[\t\n\x0C\r ]` / its negation        | RE2's `\s` has no `\v` (`regex`'s ASCII one has) |
//! | `\w` / `\W`      | `[0-9A-Za-z_]` / its negation         | ASCII word characters                |
//! | the above in `[...]` | the same ranges (negations as their complement up to U+10FFFF) | |
//! | `\b` / `\B`      | `(?-u:\b)` / `(?-u:\B)`               | ASCII word boundary, as RE2          |
//! | `\<` / `\>`      | `<` / `>`                             | RE2 reads them as escaped punctuation |
//!
//! Everything else keeps its meaning in both: leftmost-first alternation, Unicode classes
//! and case folding (`(?i)k` also matches U+212A, in both), `.` and `[^...]` matching one
//! code point (never a newline for `.` without `s`), `^ $` at the text's ends unless `m`.
//! Constructs that are not RE2, or that RE2 reads differently, are refused rather than
//! silently given another meaning: the flags `x`, `u` and `R`; class set operations
//! (`&&`, `--`, `~~`) and nested classes (`[[a]]`); `\b{start}`-style boundaries; a
//! repetition of a repetition (`a**`, `a{2}{3}`); a counted repetition above 1000 or nested counts whose product exceeds 1000 (RE2's
//! `kMaxRepeat` rule, computed the same way). RE2 syntax the `regex` crate lacks (`\C`,
//! `\Q...\E`, `{,n}` as a literal) is refused by the parser. A refused pattern is an
//! error the policy check reports, never a different match.
//!
//! Known residue: Unicode tables. `\pL`-style classes and `(?i)` folding follow the
//! Unicode version of each library (`regex-syntax` may know newer letters and case pairs
//! than the RE2 build), so a user regex naming a script or folding a letter added in a
//! recent Unicode version can differ on text in that script. The built-in detectors use
//! no Unicode property classes, and their `(?i)` spans ASCII words only.
//!
//! Patterns are compiled for byte haystacks (`regex-automata`'s meta engine) with the
//! Unicode mode on, so a class still matches whole UTF-8 sequences.

use regex_automata::meta;
use regex_automata::util::syntax;
use regex_syntax::ast::{self, Ast, ClassPerlKind, ClassSetItem};

/// RE2's limit on a counted repetition, and on the product of nested ones.
const MAX_REPEAT: u32 = 1000;
/// Size limits of one compiled regex: far above the built-ins together (a few MiB), and
/// a bound on what a policy can make one regex cost.
const NFA_LIMIT: usize = 64 << 20;
/// The lazy DFA's cache per thread: room for the states of every detector at once, so a
/// search does not fall back to the slower engines (filled only as states are met).
const DFA_CACHE: usize = 8 << 20;

const DIGITS: &str = r"0-9";
const SPACE: &str = r"\t\n\x0C\r ";
const WORD: &str = r"0-9A-Za-z_";
// The complements, for a negated Perl class inside brackets (`[^\S]`, `[\D.]`).
const NOT_DIGITS: &str = r"\x00-\x2F\x3A-\x{10FFFF}";
const NOT_SPACE: &str = r"\x00-\x08\x0B\x0E-\x1F\x21-\x{10FFFF}";
const NOT_WORD: &str = r"\x00-\x2F\x3A-\x40\x5B-\x5E\x60\x7B-\x{10FFFF}";
// Under `(?i)`, RE2 takes `\W` as the complement of the case-folded `\w`, which holds
// U+017F (folds to s) and U+212A (folds to k); listing them here would make the class's
// own folding add `s S k K` back.
const NOT_WORD_FOLDED: &str = r"\x00-\x2F\x3A-\x40\x5B-\x5E\x60\x7B-\x{17E}\x{180}-\x{2129}\x{212B}-\x{10FFFF}";

fn perl_ranges(kind: &ClassPerlKind, negated: bool, folded: bool) -> &'static str {
    match (kind, negated) {
        (ClassPerlKind::Word, true) if folded => NOT_WORD_FOLDED,
        (ClassPerlKind::Digit, false) => DIGITS,
        (ClassPerlKind::Digit, true) => NOT_DIGITS,
        (ClassPerlKind::Space, false) => SPACE,
        (ClassPerlKind::Space, true) => NOT_SPACE,
        (ClassPerlKind::Word, false) => WORD,
        (ClassPerlKind::Word, true) => NOT_WORD,
    }
}

struct Rewrite {
    edits: Vec<(usize, usize, String)>,
    /// Whether case folding (`i`) is on, per open group; the last entry is the current one.
    fold: Vec<bool>,
}

impl Rewrite {
    fn edit(&mut self, span: &ast::Span, text: String) {
        self.edits.push((span.start.offset, span.end.offset, text));
    }

    fn folded(&self) -> bool {
        self.fold.last().copied().unwrap_or(false)
    }

    /// Check `flags` and apply them to the current group (a flag group `(?i)` lasts to the
    /// end of the enclosing group, in RE2 and here alike).
    fn flags(&mut self, flags: &ast::Flags) -> Result<(), String> {
        let mut on = true;
        for item in &flags.items {
            match &item.kind {
                ast::FlagsItemKind::Negation => on = false,
                ast::FlagsItemKind::Flag(ast::Flag::CaseInsensitive) => {
                    if let Some(fold) = self.fold.last_mut() {
                        *fold = on;
                    }
                }
                ast::FlagsItemKind::Flag(ast::Flag::MultiLine | ast::Flag::DotMatchesNewLine | ast::Flag::SwapGreed) => {}
                ast::FlagsItemKind::Flag(ast::Flag::Unicode | ast::Flag::CRLF | ast::Flag::IgnoreWhitespace) => {
                    return Err("invalid or unsupported flag (RE2 takes i, m, s and U)".into());
                }
            }
        }
        Ok(())
    }
}

impl ast::Visitor for &mut Rewrite {
    type Output = ();
    type Err = String;

    fn finish(self) -> Result<(), String> {
        Ok(())
    }

    fn visit_pre(&mut self, node: &Ast) -> Result<(), String> {
        match node {
            Ast::Flags(set) => self.flags(&set.flags)?,
            Ast::Group(group) => {
                self.fold.push(self.folded());
                if let ast::GroupKind::NonCapturing(flags) = &group.kind {
                    self.flags(flags)?;
                }
            }
            Ast::ClassPerl(class) => {
                // A bracket negated as a whole folds first and negates after, as RE2 does.
                let caret = if class.negated { "^" } else { "" };
                let ranges = perl_ranges(&class.kind, false, false);
                self.edit(&class.span, format!("[{caret}{ranges}]"));
            }
            Ast::Assertion(assertion) => {
                let text = match assertion.kind {
                    ast::AssertionKind::WordBoundary => r"(?-u:\b)",
                    ast::AssertionKind::NotWordBoundary => r"(?-u:\B)",
                    ast::AssertionKind::WordBoundaryStartAngle => "<",
                    ast::AssertionKind::WordBoundaryEndAngle => ">",
                    ast::AssertionKind::StartLine
                    | ast::AssertionKind::EndLine
                    | ast::AssertionKind::StartText
                    | ast::AssertionKind::EndText => return Ok(()),
                    _ => return Err("invalid escape sequence (\\b{...} is not RE2)".into()),
                };
                self.edit(&assertion.span, text.into());
            }
            Ast::Repetition(rep) => {
                if matches!(*rep.ast, Ast::Repetition(_)) {
                    return Err("bad repetition operator (a repeated repetition, as a** or a{2}{3})".into());
                }
                if let ast::RepetitionKind::Range(range) = &rep.op.kind {
                    let (low, high) = match *range {
                        ast::RepetitionRange::Exactly(n) => (n, n),
                        ast::RepetitionRange::AtLeast(n) => (n, 0),
                        ast::RepetitionRange::Bounded(m, n) => (m, n),
                    };
                    if low > MAX_REPEAT || high > MAX_REPEAT {
                        return Err(format!("bad repetition operator (counts above {MAX_REPEAT})"));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn visit_post(&mut self, node: &Ast) -> Result<(), String> {
        if let Ast::Group(_) = node {
            self.fold.pop();
        }
        Ok(())
    }

    fn visit_class_set_item_pre(&mut self, item: &ClassSetItem) -> Result<(), String> {
        match item {
            ClassSetItem::Perl(class) => {
                let folded = self.folded();
                self.edit(&class.span, perl_ranges(&class.kind, class.negated, folded).into());
            }
            ClassSetItem::Bracketed(_) => {
                return Err("missing ] in a character class (a nested class [[...]] is not RE2)".into());
            }
            _ => {}
        }
        Ok(())
    }

    fn visit_class_set_binary_op_pre(&mut self, _op: &ast::ClassSetBinaryOp) -> Result<(), String> {
        Err("class set operations (&&, --, ~~) are not RE2".into())
    }
}

/// RE2's `RepetitionWalker`: the budget left under `node`, dividing by every counted
/// repetition's count on the way down (its max, or its min when unbounded); 0 means the
/// nested counts multiply past `MAX_REPEAT`. Recursion depth is bounded by the parser's
/// nesting limit.
fn repeat_budget(node: &Ast, budget: u32) -> u32 {
    match node {
        Ast::Repetition(rep) => {
            let mut arg = budget;
            if let ast::RepetitionKind::Range(range) = &rep.op.kind {
                let m = match *range {
                    ast::RepetitionRange::Exactly(n) => n,
                    ast::RepetitionRange::AtLeast(n) => n,
                    ast::RepetitionRange::Bounded(_, n) => n,
                };
                arg = arg.checked_div(m).unwrap_or(arg); // a count of 0 divides nothing
            }
            arg.min(repeat_budget(&rep.ast, arg))
        }
        Ast::Group(group) => budget.min(repeat_budget(&group.ast, budget)),
        Ast::Alternation(alt) => alt.asts.iter().map(|a| repeat_budget(a, budget)).fold(budget, u32::min),
        Ast::Concat(cat) => cat.asts.iter().map(|a| repeat_budget(a, budget)).fold(budget, u32::min),
        _ => budget,
    }
}

/// `pattern` (RE2 syntax) as the `regex` crate must be given it for RE2's meaning, or why
/// it is refused.
pub fn translate(pattern: &str) -> Result<String, String> {
    let parsed = ast::parse::ParserBuilder::new()
        .build()
        .parse(pattern)
        .map_err(|err| err.kind().to_string())?;
    let mut rewrite = Rewrite { edits: Vec::new(), fold: vec![false] };
    ast::visit(&parsed, &mut rewrite)?;
    if repeat_budget(&parsed, MAX_REPEAT) == 0 {
        return Err(format!("bad repetition operator (nested counts multiply past {MAX_REPEAT})"));
    }
    rewrite.edits.sort_by_key(|edit| edit.0);
    let mut out = String::with_capacity(pattern.len() + 16 * rewrite.edits.len());
    let mut last = 0;
    for (start, end, text) in &rewrite.edits {
        // Spans of a well-formed AST never overlap; `get` keeps a surprise from panicking.
        out.push_str(pattern.get(last..*start).ok_or("internal: overlapping rewrite")?);
        out.push_str(text);
        last = *end;
    }
    out.push_str(pattern.get(last..).ok_or("internal: rewrite past the end")?);
    Ok(out)
}

/// One regex over byte haystacks holding each of `patterns` (already translated) as its
/// own pattern id, leftmost-first across them like an alternation in their order.
/// `captures`: whether the groups are wanted (else only whole matches are tracked).
pub fn build(patterns: &[String], captures: bool) -> Result<meta::Regex, String> {
    let which = if captures { regex_automata::nfa::thompson::WhichCaptures::All } else { regex_automata::nfa::thompson::WhichCaptures::Implicit };
    meta::Builder::new()
        .configure(
            meta::Config::new()
                .utf8_empty(false)
                .which_captures(which)
                .nfa_size_limit(Some(NFA_LIMIT))
                .hybrid_cache_capacity(DFA_CACHE),
        )
        .syntax(syntax::Config::new().utf8(false))
        .build_many(patterns)
        .map_err(|err| match err.syntax_error() {
            Some(syntax) => syntax.to_string(),
            None => err.to_string(),
        })
}

/// Whether `pattern` is a regex of the engine's dialect: `Err` says why not.
pub fn check_regex(pattern: &str) -> Result<(), String> {
    build(&[translate(pattern)?], true).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finds(pattern: &str, text: &str) -> Option<(usize, usize)> {
        let regex = build(&[translate(pattern).unwrap()], false).unwrap();
        regex.find(text.as_bytes()).map(|m| (m.start(), m.end()))
    }

    #[test]
    fn perl_classes_and_boundaries_are_ascii() {
        assert_eq!(finds(r"\d+", "x٣4"), Some((3, 4))); // ARABIC-INDIC THREE is no digit
        assert_eq!(finds(r"\w+", "é_a"), Some((2, 4)));
        assert_eq!(finds(r"\s", "\u{0b}\u{a0} "), Some((3, 4))); // neither \v nor NBSP
        assert_eq!(finds(r"\bx", "éx"), Some((2, 3))); // é is no word character
        assert_eq!(finds(r"[^\s]+", " é "), Some((1, 3)));
        assert_eq!(finds(r"[\D]", "1é"), Some((1, 3)));
        assert_eq!(finds(r"[^\W]", "é_"), Some((2, 3)));
        assert_eq!(finds(r"\<a\>", "<a>"), Some((0, 3)));
        assert_eq!(finds(r"\S+", "\u{0b}"), Some((0, 1)));
    }

    #[test]
    fn case_folding_stays_unicode_as_in_re2() {
        assert_eq!(finds(r"(?i:k)", "\u{212a}"), Some((0, 3)));
        assert_eq!(finds(r"(?i)[a-z]+", "ſ"), Some((0, 2)));
        // RE2's folded \W is the complement of the folded \w, also inside brackets.
        assert_eq!(finds(r"(?i)s|[^\W_]", "\u{212a}"), Some((0, 3)));
        assert_eq!(finds(r"(?i)[^\W]", "k"), Some((0, 1)));
        assert_eq!(finds(r"(?i)[\W]", "k\u{212a}-"), Some((4, 5)));
        assert_eq!(finds(r"[\W]", "k\u{212a}-"), Some((1, 4)));
        assert_eq!(finds(r"(?i:x)[\W]", "xſ"), Some((0, 3))); // the fold ends with its group
        assert_eq!(finds(r"(?i)\W", "k\u{212a}ſ-"), Some((6, 7)));
    }

    #[test]
    fn constructs_that_are_not_re2_are_refused() {
        for bad in [r"(?x)a b", r"(?u)a", r"(?R)a", r"[a&&b]", r"[[a]]", r"[a--b]", r"\b{start}", r"a{1001}",
                    r"(a{100}){100}", r"((a{10}){10}){11}", r"\Qa\E", r"a{,3}", r"(", r"\C", r"a**", r"a{2}{3}", r"\07"] {
            assert!(check_regex(bad).is_err(), "{bad}");
        }
        for good in [r"a{1000}", r"(a{10}){100}", r"(?i)x", r"(?P<n>a)", r"[[:alpha:]]", r"\pL", r"(?sm:^.$)",
                     r"a{2,}", r"x*?"] {
            assert!(check_regex(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn untouched_text_keeps_its_escapes() {
        assert_eq!(translate(r"a\.b[\d\-]").unwrap(), r"a\.b[0-9\-]");
        assert_eq!(translate(r"\D").unwrap(), r"[^0-9]");
    }
}
