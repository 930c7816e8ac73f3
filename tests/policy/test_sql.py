"""sanitize_sql: the corpus in tests/testdata/sql_corpus.yaml plus properties."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redact_proxy.policy.sql import DIALECTS, SQL_UNPARSEABLE, sanitize_sql

CORPUS = yaml.safe_load((Path(__file__).parent.parent / "testdata" / "sql_corpus.yaml").read_text("utf-8"))


def test_corpus_is_well_formed():
    names = [case["name"] for case in CORPUS]
    assert len(names) == len(set(names)), "duplicate case names"
    assert len(CORPUS) >= 50
    for case in CORPUS:
        assert set(case) == {"name", "input", "expected"}, case["name"]


@pytest.mark.parametrize("case", CORPUS, ids=[c["name"] for c in CORPUS])
def test_corpus(case):
    expected = SQL_UNPARSEABLE if case["expected"] == "UNPARSEABLE" else case["expected"]
    assert sanitize_sql(case["input"]) == expected


def test_marker_is_the_documented_constant():
    assert SQL_UNPARSEABLE == "[unparseable sql]"
    assert sanitize_sql("SELECT 'x") == SQL_UNPARSEABLE


def test_non_string_input_fails_closed():
    assert sanitize_sql(b"SELECT 1") == SQL_UNPARSEABLE  # type: ignore[arg-type]
    assert sanitize_sql(None) == SQL_UNPARSEABLE  # type: ignore[arg-type]


def test_megabyte_string_literal():
    secret = "s3cr3t-" * 150_000
    out = sanitize_sql(f"INSERT INTO t (v) VALUES ('{secret}')")
    assert out == "INSERT INTO t (v) VALUES (?)"


def test_megabyte_unterminated_literal():
    out = sanitize_sql("SELECT '" + "x" * 1_000_000)
    assert out == SQL_UNPARSEABLE


def test_many_escaped_quotes_are_linear():
    # 500k doubled quotes and 500k backslash escapes: quadratic scanning would time out.
    assert sanitize_sql("SELECT '" + "''" * 500_000 + "'") == "SELECT ?"
    assert sanitize_sql("SELECT '" + "\\'" * 500_000 + "'") == "SELECT ?"


def test_many_comment_openers_are_linear():
    assert sanitize_sql("SELECT 1 " + "/*" * 200_000) == SQL_UNPARSEABLE
    deep = "/*" * 100_000 + "*/" * 100_000
    assert sanitize_sql("SELECT " + deep + " 1") == "SELECT ?"


def test_many_brackets_and_dollars():
    assert sanitize_sql("SELECT a" + "[" * 200_000) == "SELECT a" + "[" * 200_000
    assert sanitize_sql("SELECT " + "$x$ " * 200_001) == SQL_UNPARSEABLE  # last tag unclosed
    assert sanitize_sql("SELECT " + "$x$ " * 200_000) == "SELECT " + " ".join(["?"] * 100_000)
    big_in = "SELECT * FROM t WHERE id IN (" + ", ".join(str(i) for i in range(100_000)) + ")"
    assert sanitize_sql(big_in) == "SELECT * FROM t WHERE id IN (?)"


def test_deep_parentheses():
    sql = "SELECT " + "(" * 50_000 + "1" + ")" * 50_000
    assert sanitize_sql(sql) == "SELECT " + "(" * 50_000 + "?" + ")" * 50_000


def test_hostile_inputs_never_return_the_input():
    hostile = [
        "SELECT 'abc",
        "SELECT \"abc",
        "SELECT $$abc",
        "SELECT $q$abc$$",
        "SELECT /* abc",
        "SELECT `abc",
        "SELECT abc\x00",
        "SELECT abc\x1b[31m",
        "'" * 7,
        "\"secret",
        "SELECT E'abc\\'",
        "SELECT 'a' 'b",
    ]
    for sql in hostile:
        out = sanitize_sql(sql)
        assert out != sql
        assert "abc" not in out or out == SQL_UNPARSEABLE


def test_double_quoted_identifier_rules():
    # identifier-shaped, not in a value position: kept (PostgreSQL identifier)
    assert sanitize_sql('SELECT "userId" FROM "Users"') == 'SELECT "userId" FROM "Users"'
    # not identifier-shaped: always a literal, whatever the position
    assert sanitize_sql('SELECT "john smith" FROM t') == "SELECT ? FROM t"
    assert sanitize_sql('SELECT "a@b.c"') == "SELECT ?"
    # value positions
    assert sanitize_sql('SELECT * FROM t WHERE a <> "bob"') == "SELECT * FROM t WHERE a <> ?"
    assert sanitize_sql('SELECT CASE WHEN a THEN "yes" ELSE "no" END') == "SELECT CASE WHEN a THEN ? ELSE ? END"
    # qualified names are names even after "="
    assert sanitize_sql('SELECT 1 FROM a JOIN b ON a.x = "b"."x"') == 'SELECT ? FROM a JOIN b ON a.x = "b"."x"'


def test_statement_context_resets_after_semicolon():
    # The VALUES context of the first statement must not leak into the second.
    sql = "INSERT INTO t VALUES (\"a\"); SELECT \"col\" FROM t"
    assert sanitize_sql(sql) == "INSERT INTO t VALUES (?); SELECT \"col\" FROM t"


def test_placeholders_untouched():
    sql = "SELECT * FROM t WHERE a = ? AND b = $1 AND c = :name AND d = @p1 AND e = %s AND f = %(x)s AND g = :1"
    assert sanitize_sql(sql) == sql


def test_keywords_and_operators_preserved():
    sql = "SELECT a.b, COUNT(*) FROM t AS a LEFT OUTER JOIN u ON a.id = u.id GROUP BY a.b HAVING COUNT(*) >= 2 ORDER BY 1 DESC"
    assert sanitize_sql(sql) == (
        "SELECT a.b, COUNT(*) FROM t AS a LEFT OUTER JOIN u ON a.id = u.id GROUP BY a.b HAVING COUNT(*) >= ? ORDER BY ? DESC"
    )


# ------------------------------------------------------------------ properties

_SENTINEL = "Zq7"
_PREFIXES = [
    "SELECT * FROM users WHERE name = ",
    "INSERT INTO t (a, b) VALUES (1, ",
    "UPDATE t SET note = ",
    "SELECT id FROM t WHERE a IN (1, ",
    "SELECT ",
    "SELECT * FROM t WHERE x LIKE ",
    "SELECT f(",
]
_SUFFIXES = ["", ")", " AND b = 'x'", " AND c = 'y' AND d = 'z'", "; SELECT 'w'", " -- done", " /* c */"]


def _standard(content: str) -> str:
    return "'" + content.replace("'", "''") + "'"


def _mysql(content: str) -> str:
    return "'" + content.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _escape_string(content: str) -> str:
    return "E'" + content.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _mysql_double(content: str) -> str:
    return '"' + content.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dollar(content: str) -> str:
    tag = "$q$"
    return tag + content.replace(tag, "") + tag


_QUOTERS = [_standard, _mysql, _escape_string, _dollar]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    content=st.text(),
    prefix=st.sampled_from(_PREFIXES),
    suffix=st.sampled_from(_SUFFIXES),
    quoter=st.sampled_from(_QUOTERS),
)
def test_planted_literal_never_survives(content, prefix, suffix, quoter):
    planted = _SENTINEL + content + _SENTINEL
    sql = prefix + quoter(planted) + suffix
    out = sanitize_sql(sql)
    assert isinstance(out, str)
    assert _SENTINEL not in out


@settings(max_examples=200)
@given(content=st.text(), suffix=st.sampled_from(_SUFFIXES))
def test_planted_mysql_double_quoted_value_never_survives(content, suffix):
    sql = "SELECT * FROM t WHERE a = " + _mysql_double(_SENTINEL + content + _SENTINEL) + suffix
    assert _SENTINEL not in sanitize_sql(sql)


@settings(max_examples=500)
@given(st.text())
def test_never_raises_on_arbitrary_text(text):
    out = sanitize_sql(text)
    assert isinstance(out, str)


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from(list("'\"`$/*-#\\[]();=?:@%xE0 \n\x00")), max_size=60))
def test_never_raises_on_quote_soup(text):
    out = sanitize_sql(text)
    assert isinstance(out, str)
    if "\x00" in text:
        # NUL can only be inside a literal; either way it never survives.
        assert "\x00" not in out


# ------------------------------------------------------------------ dialects

def test_dialect_names():
    assert set(DIALECTS) == {"generic", "postgresql", "mysql", "mssql", "oracle", "sqlite", "cql"}


def test_unknown_or_missing_dialect_reads_generically():
    sql = "SELECT 'a\\' , 'b' FROM t WHERE x = \"y\""
    assert sanitize_sql(sql, None) == sanitize_sql(sql) == sanitize_sql(sql, "nonsense")
    assert sanitize_sql(sql, "generic") == sanitize_sql(sql)


@pytest.mark.parametrize("dialect,sql,expected", [
    # The same text, read by each dialect's own rules.
    ("mysql", "SELECT 'a\\'b' FROM t", "SELECT ? FROM t"),
    ("postgresql", "SELECT 'a\\'b' FROM t", SQL_UNPARSEABLE),     # 'a\' then b' unterminated
    ("mysql", 'SELECT "col" FROM t', "SELECT ? FROM t"),
    ("postgresql", 'SELECT "col" FROM t', 'SELECT "col" FROM t'),
    ("mysql", "SELECT a # b\nFROM t", "SELECT a FROM t"),
    ("postgresql", "SELECT a # b\nFROM t", "SELECT a # b FROM t"),
    ("mssql", "SELECT [a b] FROM t", "SELECT [a b] FROM t"),
    ("postgresql", "SELECT a[1] FROM t", "SELECT a[?] FROM t"),
    ("oracle", "SELECT q'[x]' FROM dual", "SELECT ? FROM dual"),
    ("mssql", "SELECT $5 FROM t", "SELECT ? FROM t"),
    ("postgresql", "SELECT $5 FROM t", "SELECT $5 FROM t"),
    ("cql", "SELECT a FROM t // c 'x'", "SELECT a FROM t"),
    ("postgresql", "SELECT /* a /* b */ c */ 1", "SELECT ?"),
    ("mysql", "SELECT /* a /* b */ c */ 1", "SELECT c */ ?"),  # MySQL: the comment ends early
])
def test_dialects_read_differently(dialect, sql, expected):
    assert sanitize_sql(sql, dialect) == expected


def _national(content: str) -> str:
    return "N" + _standard(content)


def _q_quote(content: str) -> str:
    return "q'[" + content.replace("]'", "") + "]'"


def _cql_dollar(content: str) -> str:
    return "$$" + content.replace("$$", "") + "$$"


_DIALECT_QUOTERS = {
    "postgresql": [_standard, _escape_string, _dollar],
    "mysql": [_mysql, _mysql_double],
    "mssql": [_standard, _national],
    "oracle": [_standard, _q_quote],
    "sqlite": [_standard],
    "cql": [_standard, _cql_dollar],
}
_DIALECT_CASES = [(d, q) for d, quoters in _DIALECT_QUOTERS.items() for q in quoters]


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(
    content=st.text(),
    prefix=st.sampled_from(_PREFIXES),
    suffix=st.sampled_from([s for s in _SUFFIXES if "'" not in s]),
    case=st.sampled_from(_DIALECT_CASES),
)
def test_planted_literal_never_survives_in_its_dialect(content, prefix, suffix, case):
    dialect, quoter = case
    out = sanitize_sql(prefix + quoter(_SENTINEL + content + _SENTINEL) + suffix, dialect)
    assert isinstance(out, str)
    assert _SENTINEL not in out


_IDENT = st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True).filter(
    lambda w: w not in ("true", "false", "q", "nq", "e", "n", "x", "b", "r", "u"))


@settings(max_examples=300)
@given(col=_IDENT, table=_IDENT, dialect=st.sampled_from(sorted(DIALECTS)))
def test_identifiers_and_shape_are_kept_in_every_dialect(col, table, dialect):
    sql = f"SELECT {col}, COUNT(*) FROM {table} WHERE {col} = 'v' AND {col} IN (1, 2) GROUP BY {col}"
    out = sanitize_sql(sql, dialect)
    assert out == f"SELECT {col}, COUNT(*) FROM {table} WHERE {col} = ? AND {col} IN (?) GROUP BY {col}"


@settings(max_examples=300)
@given(st.text(), st.sampled_from(sorted(DIALECTS)))
def test_no_dialect_raises(text, dialect):
    assert isinstance(sanitize_sql(text, dialect), str)
