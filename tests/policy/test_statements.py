"""statements.sanitize / sanitize_span_name: the per-dialect corpora in
tests/testdata/statements/ plus properties (planted literals never survive, nothing raises)."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redact_proxy.policy import statements
from redact_proxy.policy.sql import SQL_UNPARSEABLE
from redact_proxy.policy.statements import STATEMENT_UNPARSEABLE, sanitize, sanitize_span_name

DATA = Path(__file__).parent.parent / "testdata" / "statements"
# Minimum sizes: a corpus that shrinks by accident fails here rather than passing quietly.
MIN_CASES = {
    "sql_postgresql.yaml": 30, "sql_mysql.yaml": 20, "sql_mssql.yaml": 15, "sql_oracle.yaml": 15,
    "sql_sqlite.yaml": 9, "sql_cassandra.yaml": 9, "sql_generic.yaml": 10, "redis.yaml": 35,
    "memcached.yaml": 19, "json.yaml": 27, "span_names.yaml": 30,
}


def _load(name: str) -> list[dict]:
    doc = yaml.safe_load((DATA / name).read_text("utf-8"))
    default = doc["system"]
    return [{"system": default, **case} for case in doc["cases"]]


CORPORA = {name: _load(name) for name in MIN_CASES}
STATEMENT_CASES = [(f, c) for f, cases in CORPORA.items() if f != "span_names.yaml" for c in cases]
NAME_CASES = CORPORA["span_names.yaml"]


def _id(item) -> str:
    file, case = item
    return f"{file[:-5]}: {case['name']}"


def test_every_corpus_file_is_listed():
    assert {p.name for p in DATA.glob("*.yaml")} == set(MIN_CASES)


@pytest.mark.parametrize("file", sorted(MIN_CASES))
def test_corpus_is_well_formed(file):
    cases = CORPORA[file]
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "duplicate case names"
    assert len(cases) >= MIN_CASES[file]
    for case in cases:
        assert set(case) <= {"name", "system", "input", "expected", "secrets"}, case["name"]
        assert isinstance(case["input"], str) and isinstance(case["expected"], str)
        # A secret that occurs in the placeholder would make its check meaningless.
        for secret in case.get("secrets", []):
            assert secret in case["input"], (case["name"], secret)
            assert secret not in SQL_UNPARSEABLE + STATEMENT_UNPARSEABLE, (case["name"], secret)


@pytest.mark.parametrize("item", STATEMENT_CASES, ids=[_id(i) for i in STATEMENT_CASES])
def test_statement_corpus(item):
    _, case = item
    out = sanitize(case["input"], case["system"])
    assert out == case["expected"]
    for secret in case.get("secrets", []):
        assert secret not in out


@pytest.mark.parametrize("case", NAME_CASES, ids=[c["name"] for c in NAME_CASES])
def test_span_name_corpus(case):
    out = sanitize_span_name(case["input"], case["system"])
    assert out == case["expected"]
    for secret in case.get("secrets", []):
        assert secret not in out


def test_span_names_that_are_not_statements_are_the_same_object():
    # "Unchanged" means the very input, not an equal re-rendering of it.
    for name, system in [("SELECT users", "postgresql"), ("GET", "redis"), ("find users", "mongodb"),
                         ("Update order 42", None), ("GET /users/42", "mysql")]:
        assert sanitize_span_name(name, system) is name


# ------------------------------------------------------------------ dispatch


@pytest.mark.parametrize("system,dialect", [
    ("postgresql", "postgresql"), ("POSTGRESQL", "postgresql"), (" mysql ", "mysql"),
    ("mariadb", "mysql"), ("microsoft.sql_server", "mssql"), ("mssql", "mssql"),
    ("oracle.db", "oracle"), ("oracle", "oracle"), ("sqlite", "sqlite"), ("cassandra", "cql"),
    ("couchbase", "mysql"), ("cockroachdb", "postgresql"), ("other_sql", "generic"),
    ("h2database", "generic"), (None, None), ("", None),
])
def test_sql_systems_pick_their_dialect(system, dialect):
    assert statements._family(system) == ("sql", dialect)


@pytest.mark.parametrize("system,family", [
    ("redis", "redis"), ("valkey", "redis"), ("memcached", "memcached"), ("mongodb", "mongodb"),
    ("elasticsearch", "json"), ("opensearch", "json"), ("Elasticsearch", "json"),
])
def test_other_systems_pick_their_reader(system, family):
    assert statements._family(system) == (family, None)


def test_every_semconv_system_value_is_dispatched():
    # Each registry value either has a reader or is read as generic SQL; none raises.
    from opentelemetry.semconv._incubating.attributes import db_attributes as db

    values = {v.value for v in db.DbSystemNameValues} | {v.value for v in db.DbSystemValues}
    assert {"postgresql", "mysql", "redis", "mongodb", "microsoft.sql_server", "oracle.db"} <= values
    for value in values:
        family, dialect = statements._family(value)
        assert family in ("sql", "redis", "memcached", "mongodb", "json")
        # (SELECT is a Redis command too; JSON readers take no SQL.)
        assert sanitize("SELECT 'x1' FROM t", value) in ("SELECT ? FROM t", "SELECT ? ? ?",
                                                         "? ? ? ?", STATEMENT_UNPARSEABLE)


def test_non_string_input_fails_closed():
    assert sanitize(None, "postgresql") == SQL_UNPARSEABLE  # type: ignore[arg-type]
    assert sanitize(b"GET k", "redis") == STATEMENT_UNPARSEABLE  # type: ignore[arg-type]
    assert sanitize(42, "mongodb") == STATEMENT_UNPARSEABLE  # type: ignore[arg-type]
    assert sanitize_span_name(None, "redis") is None  # type: ignore[arg-type]


def test_internal_errors_carry_no_text():
    for reader, text in [(statements._redis, 'SET k "hunter2'), (statements._memcached, "hunter2 x"),
                         (statements._json_plain, '{"a": "hunter2')]:
        with pytest.raises(statements._Unparseable) as info:
            reader(text)
        assert info.value.args == ()
        assert "hunter2" not in str(info.value) and "hunter2" not in repr(info.value)


# ------------------------------------------------------------------ size and depth


def test_deep_json_nesting_needs_no_recursion():
    depth = 200_000
    doc = '{"a": ' * depth + '"s3cr3t"' + "}" * depth
    out = sanitize(doc, "mongodb")
    assert out == '{"a": ' * depth + '"?"' + "}" * depth
    assert sanitize("[" * depth, "elasticsearch") == STATEMENT_UNPARSEABLE


def test_large_statements():
    assert sanitize("MSET " + "k v " * 200_000, "redis") == "MSET" + " ?" * 400_000
    assert sanitize('SET k "' + '\\"' * 300_000 + '"', "redis") == "SET ? ?"
    big = '{"ids": [' + ", ".join(str(i) for i in range(100_000)) + "]}"
    assert sanitize(big, "mongodb") == '{"ids": [' + ", ".join(["?"] * 100_000) + "]}"
    assert sanitize("get " + "k " * 100_000, "memcached") == "get" + " ?" * 100_000
    assert sanitize('{"s": "' + "x" * 1_000_000 + '"}', "opensearch") == '{"s": "?"}'


# ------------------------------------------------------------------ properties

_SENTINEL = "Zq7"
_planted = st.text().map(lambda s: _SENTINEL + s + _SENTINEL)


def _redis_double(content: str) -> str:
    return '"' + content.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _redis_single(content: str) -> str:
    # redis-cli: inside '...' only \' is an escape; any backslash before a quote escapes it.
    return "'" + content.replace("\\", "").replace("'", "\\'") + "'"


def _redis_bare(content: str) -> str:
    bare = "".join(ch for ch in content if not ch.isspace() and ch not in ";\"'")
    return bare or _SENTINEL


_REDIS_COMMANDS = ["SET", "GET", "HSET", "AUTH", "CLIENT SETNAME", "CONFIG SET", "ZADD", "EVAL",
                   "FT.SEARCH", "XADD", "NOSUCHCMD", "acl setuser"]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    command=st.sampled_from(_REDIS_COMMANDS),
    before=st.lists(st.sampled_from(["k", "EX", "10", "user:1", "'q'", '"w"']), max_size=3),
    after=st.lists(st.sampled_from(["k", "NX", "5", '"x y"']), max_size=3),
    planted=_planted,
    quoter=st.sampled_from([_redis_double, _redis_single, _redis_bare]),
    sep=st.sampled_from(["\n", "; ", ";", "\r\n", "\n\n"]),
    system=st.sampled_from(["redis", "valkey"]),
)
def test_planted_redis_argument_never_survives(command, before, after, planted, quoter, sep, system):
    line = " ".join([command, *before, quoter(planted), *after])
    text = sep.join(["PING", line, "GET last"])
    out = sanitize(text, system)
    assert _SENTINEL not in out
    # Only known command words, subcommands, "?" and separators can come out.
    if out != STATEMENT_UNPARSEABLE:
        words = out.replace(";", " ").split()
        assert all(w == "?" or statements._redis_command_word(w)
                   or any(w.upper() in subs for subs in statements._REDIS_SUBCOMMANDS.values())
                   for w in words)


@settings(max_examples=300)
@given(
    key=_planted, data=_planted,
    command=st.sampled_from(["set", "add", "replace", "append", "prepend", "cas", "ms"]),
    tail=st.sampled_from(["", "\r\nget other\r\n", "\r\n", "\n"]),
)
def test_planted_memcached_key_and_data_never_survive(key, data, command, tail):
    key = "".join(ch for ch in key if not ch.isspace()) or _SENTINEL
    args = {"cas": "0 0 5 77", "ms": "5 T10"}.get(command, "0 60 5")
    text = f"{command} {key} {args}\r\n{data}{tail}"
    out = sanitize(text, "memcached")
    assert _SENTINEL not in out


_json_keys = st.text(alphabet=string.ascii_letters + "_$.", min_size=1, max_size=8)
_json_scalars = st.one_of(_planted, st.integers(), st.floats(allow_nan=False), st.booleans(),
                          st.none())
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(_json_keys, inner, max_size=4)),
    max_leaves=20,
)


def _shape(value):
    """The expected output of a JSON value: keys kept, strings "?", other scalars ?."""
    if isinstance(value, dict):
        return "{" + ", ".join(json.dumps(k) + ": " + _shape(v) for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_shape(v) for v in value) + "]"
    return '"?"' if isinstance(value, str) else "?"


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    doc=st.one_of(st.dictionaries(_json_keys, _json_values, min_size=1), st.lists(_json_values)),
    system=st.sampled_from(["mongodb", "elasticsearch", "opensearch"]),
    indent=st.sampled_from([None, 2]),
    ensure_ascii=st.booleans(),
)
def test_planted_json_values_never_survive_and_shape_is_kept(doc, system, indent, ensure_ascii):
    text = json.dumps(doc, indent=indent, ensure_ascii=ensure_ascii)
    out = sanitize(text, system)
    assert _SENTINEL not in out
    assert out == _shape(doc)


@settings(max_examples=300)
@given(
    content=_planted,
    prefix=st.sampled_from(["SELECT * FROM users WHERE name = ", "UPDATE t SET v = ",
                            "INSERT INTO t (a) VALUES (1, ", "SELECT f("]),
    system=st.sampled_from(["postgresql", "mysql", "microsoft.sql_server", "oracle.db", "sqlite",
                            "cassandra", None, "other_sql"]),
)
def test_planted_sql_string_never_survives_in_any_dialect(content, prefix, system):
    text = prefix + "'" + content.replace("'", "''").replace("\\", "") + "'" + " AND x = 1"
    assert _SENTINEL not in sanitize(text, system)


@settings(max_examples=300)
@given(
    content=_planted,
    system=st.sampled_from(["postgresql", "mysql", "redis", "memcached", "mongodb", None]),
    shape=st.sampled_from([
        "SELECT * FROM t WHERE a = '{}'", "UPDATE t SET b = '{}' WHERE id = 1",
        "GET {}", "AUTH {}", "get {}", 'find {{"q": "{}"}}', '{{"q": "{}"}}',
    ]),
)
def test_planted_literal_never_survives_in_a_span_name(content, system, shape):
    content = "".join(ch for ch in content if ch.isalnum()) or _SENTINEL
    name = shape.format(_SENTINEL + content)
    out = sanitize_span_name(name, system)
    assert isinstance(out, str)
    if out != name:
        assert _SENTINEL not in out
    # A statement of the span's own dialect always loses the literal.
    own = {"postgresql": "SELECT", "mysql": "UPDATE", "redis": "GET", "memcached": "get",
           "mongodb": "find"}
    if system in own and name.startswith(own[system]) or (system in ("redis",) and "AUTH" in name):
        assert _SENTINEL not in out


_SYSTEMS = ["postgresql", "mysql", "microsoft.sql_server", "oracle.db", "sqlite", "cassandra",
            "redis", "valkey", "memcached", "mongodb", "elasticsearch", "opensearch", "couchbase",
            None, "nonsense"]


@settings(max_examples=600)
@given(st.text(), st.sampled_from(_SYSTEMS))
def test_never_raises(text, system):
    assert isinstance(sanitize(text, system), str)
    assert isinstance(sanitize_span_name(text, system), str)


@settings(max_examples=400)
@given(st.text(alphabet=st.sampled_from(list("{}[]()\"':,;\\ \n\r\t$#`-/*?=xX0q")), max_size=60),
       st.sampled_from(_SYSTEMS))
def test_never_raises_on_delimiter_soup(text, system):
    out = sanitize(text, system)
    assert isinstance(out, str)
    assert isinstance(sanitize_span_name(text, system), str)
