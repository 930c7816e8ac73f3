"""The native statement and URL sanitizers against the Python reference: identical output.

Strategy: every input goes through the reference (``redact_proxy.policy.sql``,
``statements`` and ``url``) and through ``redact_proxy._native`` (``native/core/src/
sanitize/``), for every dialect and ``db.system`` value and both ``path_ids``, and the two
strings must be equal. Inputs: the whole corpora (``tests/testdata/sql_corpus.yaml``,
``tests/testdata/statements/``), every string the reference's own tests
(``test_sql.py``, ``test_statements.py``, ``test_url.py``) parametrize or list, hostile
shapes (deep nesting, megabyte literals, comment-opener floods), every code point where
one of Python's character predicates changes (the port's tables must agree at each edge)
in templates that reach each predicate, and hypothesis-generated mixes of corpus
fragments, quotes, comments, placeholders, case-mapping oddities, Unicode digits and
spaces, NUL and long runs.
"""

from __future__ import annotations

import importlib.util
import unicodedata
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redact_proxy import _native
from redact_proxy.policy import sql, statements, url

HERE = Path(__file__).parent
DATA = HERE.parent / "testdata"

DIALECTS = [None, "", "unknown", "POSTGRESQL", *sql.DIALECTS]
# Every value the dispatch knows, plus spellings that exercise strip()/lower(): case, outer
# whitespace (Python's, \x1c and U+3000 included), the Kelvin sign (lower() -> "k").
SYSTEMS = [
    None, "", " ", "other", "PostgreSQL", " mysql\t", "\u3000redis\x1c", "coc\u212aroachdb",
    "\u017fqlite", "MONGODB", *statements._SQL_DIALECTS, *statements._FAMILIES,
]


# ------------------------------------------------------------------ the comparisons

def _check_statement(text: str, systems=SYSTEMS, dialects=DIALECTS) -> None:
    for system in systems:
        assert _native.sanitize_statement(text, system) == statements.sanitize(text, system), \
            ("sanitize", system, text)
        assert _native.sql_span_name(text, system) == statements.sanitize_span_name(text, system), \
            ("span name", system, text)
    for dialect in dialects:
        assert _native.sanitize_sql(text, dialect) == sql.sanitize_sql(text, dialect), \
            ("sanitize_sql", dialect, text)


def _check_url(value: str) -> None:
    for path_ids in (False, True):
        assert _native.sanitize_url(value, path_ids) == url.sanitize_url(value, path_ids), \
            ("sanitize_url", path_ids, value)
        assert _native.url_span_name(value, path_ids) == url.sanitize_span_name(value, path_ids), \
            ("span name", path_ids, value)
    assert _native.sanitize_query(value) == url.sanitize_query(value), ("sanitize_query", value)


# ------------------------------------------------------------------ corpora

def _corpus_inputs() -> list[str]:
    found = [case["input"] for case in yaml.safe_load((DATA / "sql_corpus.yaml").read_text("utf-8"))]
    for path in sorted((DATA / "statements").glob("*.yaml")):
        found += [case["input"] for case in yaml.safe_load(path.read_text("utf-8"))["cases"]]
    return found


def _strings(value, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            _strings(item, out)
    elif isinstance(value, dict):
        for k, v in value.items():
            _strings(k, out)
            _strings(v, out)


def _test_module_strings(name: str) -> list[str]:
    """Every string a reference test parametrizes or keeps in a module-level collection."""
    spec = importlib.util.spec_from_file_location(f"_reference_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out: list[str] = []
    for attr in vars(module).values():
        for mark in getattr(attr, "pytestmark", []):
            if mark.name == "parametrize":
                _strings(mark.args[1], out)
        if isinstance(attr, (list, tuple, dict, set, frozenset)):
            _strings(attr, out)
    return out


CORPUS = _corpus_inputs()
STATEMENT_STRINGS = sorted(set(CORPUS + _test_module_strings("test_sql")
                               + _test_module_strings("test_statements")))
URL_STRINGS = sorted(set(_test_module_strings("test_url")))


def test_the_corpora_are_all_here():
    # A corpus that went missing would make this test pass on nothing.
    assert len(CORPUS) >= 300 and len(STATEMENT_STRINGS) >= 1000 and len(URL_STRINGS) >= 300


@pytest.mark.parametrize("text", STATEMENT_STRINGS)
def test_statement_strings(text):
    _check_statement(text)


@pytest.mark.parametrize("value", URL_STRINGS + STATEMENT_STRINGS[::7])
def test_url_strings(value):
    _check_url(value)


_HOSTILE = [
    "(" * 100_000 + ")" * 100_000,
    "[" * 100_000 + "]" * 100_000,
    "{\"a\": " * 20_000 + "1" + "}" * 20_000,
    "{\"a\": " * 20_000,
    "SELECT '" + "x" * 1_000_000 + "'",
    "SELECT '" + "x" * 1_000_000,
    "SELECT " + "'\\'" * 20_000,
    "/*" * 100_000,
    "/*" * 50_000 + "*/" * 50_000,
    "$$" * 100_000,
    "$a$" * 100_001,
    "[" * 10_000 + "x",
    "SELECT " + "?, " * 20_000 + "?",
    "x IN (" + "1, " * 20_000 + "1)",
    "q'[" * 50_000,
    "\"" * 100_001,
    "GET " + "\"a\\\"\" " * 10_000,
    "set k 0 0 1\r\nget k\r\n" * 5_000,
    "a" * 1_000_000,
    "\u3000" * 100_000 + "SELECT 1",
    "é" * 200_000 + "'",
]


@pytest.mark.parametrize("index", range(len(_HOSTILE)))
def test_hostile_statements(index):
    _check_statement(_HOSTILE[index], systems=[None, "mysql", "postgresql", "redis", "memcached",
                                               "mongodb", "elasticsearch"],
                     dialects=[None, "mysql", "mssql", "oracle", "cql"])


def test_hostile_urls():
    for value in ("http://" + "a" * 1_000_000 + "/", "/p?" + "a=1&" * 100_000,
                  "/" + "%40" * 100_000, "http://[" + ":" * 100_000, "/" + "x;" * 100_000,
                  "?" + "%" * 100_000):
        _check_url(value)


# ------------------------------------------------------------------ every predicate edge

def _edges() -> list[str]:
    """Code points where isspace/isalpha/isalnum/isdigit/isdecimal or upper()/lower()'s
    ASCII-ness changes, with their neighbours, plus a stride through the whole range."""
    preds = (str.isspace, str.isalpha, str.isalnum, str.isdigit, str.isdecimal,
             lambda c: c.upper().isascii(), lambda c: c.lower().isascii())
    points: set[int] = set(range(0, 0x110000, 997))
    prev = None
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        now = tuple(p(chr(cp)) for p in preds)
        if now != prev:
            points.update((cp - 1, cp, cp + 1))
        prev = now
    return [chr(cp) for cp in sorted(points) if 0 <= cp < 0x110000 and not 0xD800 <= cp <= 0xDFFF]


_SQL = ([None, "mysql", "oracle", "mssql"], [None, "postgresql", "sqlite", "cql"])
# (template, systems, dialects): each template reaches the predicates of its readers.
_STATEMENT_TEMPLATES = [
    ("SELECT {c}x, x{c} FROM t{c} WHERE a = {c}1 AND b = 1{c}", *_SQL),
    ("${c}a$ b ${c}a$ ${c}", *_SQL),
    ("[{c}] [x{c}] :{c} :a{c} @{c} ?{c} .{c} $1{c} %({c})s", *_SQL),
    ("\"{c}\" = \"a{c}\" \"x\"{c}", *_SQL),
    ("#{c} #a{c}\nx", *_SQL),
    ("q'{c}x{c}' nq'{c}y{c}' {c}'s' N{c}'t'", *_SQL),
    ("x{c}-1 {c}+.5 {c}.5e{c}3", *_SQL),
    ("{c}SELECT * FROM t WHERE x = 1", [None, "mysql", "redis", "memcached", "mongodb"], []),
    ("SELECT {c}FROM t", [None], []),
    ("{c}et k v\n{c}LIENT {c}ETNAME x; FT.{c}EARCH i q; ft.\u017fearch{c} a", ["redis"], []),
    ("set{c}k 0 0 1\nmg k {c}1 {c}\n{c}", ["memcached"], []),
    ("{{{c}a: 1, \"b\"{c}: {c}1, c: x{c}(1)}} {c}[{c}1]", [None, "mongodb"], []),
]
_URL_TEMPLATES = [
    "http://h{c}st:8{c}/p{c}?{c}=1&a{c}=2#{c}",
    "/{c}123/a{c}/550e8400-e29b-41d4-a716-44665544000{c}/%4{c}",
    "{c}=1&b",
    "{c}example.com/p",
    "GET{c}/x?a=1",
    "u{c}er@h/p",
]


@settings(max_examples=1, deadline=None)
@given(st.just(None))
def test_every_predicate_edge(_):
    for c in _edges():
        for template, systems, dialects in _STATEMENT_TEMPLATES:
            _check_statement(template.format(c=c), systems=systems, dialects=dialects)
        for template in _URL_TEMPLATES:
            _check_url(template.format(c=c))


# ------------------------------------------------------------------ generated

_ODD = ["ß", "ſ", "ı", "İ", "ﬀ", "ﬅ", "\u212a", "²", "١", "①", "一", "Ⅻ", "é", "e\u0301", "\u0301",
        "\U0001F600", "€", "\u200b", "\u3000", "\xa0", "\x85", "\u2028", "\x1c", "\x1f", "\x00",
        "\x7f", "\t", "\r", "\n", "\r\n", "\ufeff", "\U00010400", "ǅ", "ʰ"]
_SQL_ATOMS = [
    "'", '"', "`", "[", "]", "(", ")", "{", "}", ",", ";", ":", "::", "$", "$$", "$tag$", "$1",
    "$a", "?", "?1", "@", "@@", "@p1", "%s", "%(name)s", "%", "#", "##", "#t", "#>", "#>>", "#-",
    "--", "/*", "*/", "//", "\\", "\\'", "''", '""', "\\\\", " ", "  ", "E'", "e'", "N'", "X'",
    "B'", "r'", "rb'", "q'[", "]'", "q'{", "}'", "q'x", "x'", "nq'", "U&'", "u&", "_utf8mb4'",
    "0x1F", "0X", "0b101", "1e10", "1e", "1.5", ".5", "-5", "+3", "- 1", "1abc", "1_000",
    "550e8400-e29b-41d4-a716-446655440000", "deadbeef-dead-beef-dead-beefdeadbeef", "IN",
    "in", "VALUES", "VALUE", "SELECT", "select", "WITH", "TABLE", "IDENTIFIED", "BY", "TRUE",
    "false", "NULL", "LIKE", "THEN", "ELSE", "BETWEEN", "FROM", "INTO", "WHERE", "SET", "JOIN",
    "INSERT", "UPDATE", "DELETE", "=", "<>", ">=", "<", ".", "*", "+", "-", "!", "~", "^", "&",
    "|", "x", "t", "col", "a.b", "emp#", "v$session", "[a b]", "[1]", "[]", "\"t\".\"c\"",
    "\"a b\"", "`t`", "x = ", "IN (", "VALUES (", "), (", "IDENTIFIED BY ",
]
_OTHER_ATOMS = [
    "GET", "SET", "get", "CLIENT", "SETNAME", "CONFIG", "FT.SEARCH", "json.set", "TOPK.ADD",
    "AUTH", "HELLO", "set", "add", "cas", "mg", "ms", "stats", "noreply", "0", "900", "5",
    "T30", "v", "k", "user:1", "find", "aggregate", "ObjectId(", "ISODate(", "True", "None",
    "NaN", "-Infinity", "b'", "u\"", "rb\"", "{\"a\": ", "1}", "[1, 2]", "{$gt: 5}", "{a: 'b'}",
    ", ", ": ", "-1", "0x1F", "1e5", "\"\\\"\"", "'\\''",
]
_URL_ATOMS = [
    "http", "https", "HTTP", "ftp", "mailto", "urn", "data", "tel", "javascript", "ws", "a+b.c-d",
    ":", "://", "//", "/", "?", "#", "&", "=", ";", "@", "[", "]", "[::1]", "::1", "%", "%40",
    "%2F", "%E2%82%AC", "%C3", "%ZZ", "%4", "%%", "user", "pw", "example.com", "localhost",
    "127.0.0.1", ":8080", ":abc", ":", "*", ".", "..", "-", "_", "~", "+", "!", "$", "'", "(",
    ")", ",", " ", "42", "2024", "550e8400-e29b-41d4-a716-446655440000", "deadbeefdeadbeef00",
    "aB3dE5fG7hJ9kL1mN3pQ5", "usr_plant0316", "u-42", "best-laptops-2024", "jsessionid",
    "/api-v2", "/v1", "/x_1", "/ab-cd", "/abcdefghijklm-12", "/u-4a2", "/Ab3dE5fG7hJ9kL1mN3pQ5rS",
    "REDACTED", "{id}", "例え", "パス", "n" * 65, "GET ", "POST ", "_OTHER ", "get ", "PURGE ",
]


def _slices(texts: list[str]):
    return st.sampled_from(texts).flatmap(
        lambda s: st.tuples(st.integers(0, len(s)), st.integers(0, len(s))).map(
            lambda ab: s[min(ab):max(ab)]))


_text = st.text(max_size=8)
_statement_parts = st.one_of(
    st.sampled_from(_SQL_ATOMS), st.sampled_from(_OTHER_ATOMS), st.sampled_from(_ODD),
    _slices(STATEMENT_STRINGS), _text)
statements_st = st.lists(_statement_parts, max_size=30).map("".join)
_url_parts = st.one_of(st.sampled_from(_URL_ATOMS), st.sampled_from(_ODD), _slices(URL_STRINGS), _text)
urls_st = st.lists(_url_parts, max_size=20).map("".join)
_SETTINGS = settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(statements_st)
def test_generated_statements(text):
    _check_statement(text)


@_SETTINGS
@given(st.sampled_from(["SELECT ", "select ", "UPDATE t SET ", "GET ", "set ", "find ", "{", "[",
                        "  WITH ", "INSERT INTO t VALUES (", ""]), statements_st)
def test_generated_span_names(head, text):
    _check_statement(head + text, dialects=[])


@_SETTINGS
@given(urls_st)
def test_generated_urls(value):
    _check_url(value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_statement_parts, min_size=1, max_size=6).map("".join), st.integers(200, 5000))
def test_generated_long_statements(unit, times):
    _check_statement(unit * times, systems=[None, "mysql", "redis", "memcached", "mongodb"],
                     dialects=[None, "postgresql", "mssql", "oracle", "sqlite", "cql"])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_url_parts, min_size=1, max_size=6).map("".join), st.integers(200, 5000))
def test_generated_long_urls(unit, times):
    _check_url(unit * times)


def test_unicode_tables_come_from_this_interpreter():
    # The port's character tables were dumped from a Python with this Unicode database;
    # on another the edge test above is what would fail, this says why.
    assert _native.SANITIZE_UNICODE_VERSION == unicodedata.unidata_version
