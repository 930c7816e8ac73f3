//! Statement and URL sanitizers: the port of `redact_proxy/policy/{sql,statements,url}.py`,
//! byte for byte the same output as the Python reference for every input.
//!
//! Strategy: each reader is transcribed branch for branch from the reference, over code
//! points (`Vec<char>`) wherever the reference indexes or counts, with Python's own
//! character predicates and case maps (`pychar`, tables generated from the interpreter).
//! Every pass is iterative and linear; nothing recurses on input nesting, and nothing
//! panics: what the reference finds unparseable yields the same fixed placeholder.
//! `tests/policy/test_native_sanitize.py` holds the port to the reference on the corpora
//! and on generated input.
//!
//! Entry points (what the engine calls):
//! - `sanitize_statement(text, system)` = `statements.sanitize`
//! - `sanitize_sql(statement, dialect)` = `sql.sanitize_sql`
//! - `sql_span_name(name, system)` = `statements.sanitize_span_name`
//! - `sanitize_url(value, path_ids)` = `url.sanitize_url`
//! - `url_span_name(name, path_ids)` = `url.sanitize_span_name`
//! - `sanitize_query(value)` = `url.sanitize_query`

mod json;
pub(crate) mod pychar;
mod pychar_tables;
mod sql;
mod sql_scan;
mod statements;
mod url;

pub use sql::{sanitize_sql, SQL_UNPARSEABLE};
pub use statements::{sanitize_statement, sql_span_name, STATEMENT_UNPARSEABLE};
pub use url::{sanitize_query, sanitize_url, url_span_name, ID_PLACEHOLDER, URL_UNPARSEABLE, VALUE_PLACEHOLDER};

/// The Unicode version the character tables come from (Python's `unicodedata.unidata_version`).
pub const UNICODE_VERSION: &str = pychar::UNICODE_VERSION;

#[cfg(test)]
mod tests;
