"""policy/schema.py: every way a policy file can be wrong is reported as one line
``FILE:LINE:COL: yaml.path: message``, with the line and column of the offending node,
and all problems of a file come back together in one PolicyError."""

from __future__ import annotations

import gc
import textwrap
import tracemalloc
from pathlib import Path

import pytest

from redact_proxy.errors import PolicyError
from redact_proxy.policy.schema import (
    DEFAULT_KEY_ENV, MAX_POLICY_BYTES, Action, Level, load_file, parse,
)

POLICIES = Path(__file__).resolve().parents[1] / "testdata" / "policies"
ACTIONS = "delete, hash, mask, replace, sanitize_sql, sanitize_url, keep_only, drop"
LEVELS = "resource, scope, span, event, link, datapoint, exemplar, log"


def errors_of(text: str) -> list[str]:
    data = textwrap.dedent(text).lstrip("\n").encode()
    with pytest.raises(PolicyError) as info:
        parse(data, "p.yaml")
    assert str(info.value) == "\n".join(info.value.errors)
    return info.value.errors


# (id, policy text, the exact error lines). Line and column are 1-based; the text is
# dedented and its leading newline dropped, so line 1 is the first line shown.
CASES = [
    ("yaml-syntax", """
        version: 1
        rules: x: y
        """, ["p.yaml:2:9: (yaml): mapping values are not allowed here"]),
    ("yaml-unclosed-flow", """
        version: 1
        rules:
          - name: a
            action: delete
            keys: [a, b
        """, ["p.yaml:6:1: (yaml): expected ',' or ']', but got '<stream end>'"]),
    ("yaml-tab", "version: 1\nrules:\n\t- a\n",
     ["p.yaml:3:1: (yaml): found character '\\t' that cannot start any token"]),
    ("empty", "", ["p.yaml:1:1: (root): the file is empty; expected a policy"]),
    ("only-comments", "# nothing here\n", ["p.yaml:1:1: (root): the file is empty; expected a policy"]),
    ("root-list", """
        - version: 1
        """, ["p.yaml:1:1: (root): expected a mapping, got a list"]),
    ("root-scalar", "hello\n", ["p.yaml:1:1: (root): expected a mapping, got str 'hello'"]),
    ("unknown-top-level", """
        version: 1
        rulez: []
        rules: []
        """, ["p.yaml:2:1: rulez: unknown field for a policy; expected one of: hash, rules, tests, version"]),
    ("missing-version", """
        rules: []
        """, ["p.yaml:1:1: version: missing; expected `version: 1`"]),
    ("unsupported-version", """
        version: 2
        rules: []
        """, ["p.yaml:1:10: version: unsupported version int 2; expected 1"]),
    ("version-as-string", """
        version: "1"
        rules: []
        """, ["p.yaml:1:10: version: unsupported version str '1'; expected 1"]),
    ("missing-rules", """
        version: 1
        """, ["p.yaml:1:1: rules: missing; a policy needs a `rules:` list"]),
    ("hash-not-mapping", """
        version: 1
        hash: 3
        rules: []
        """, ["p.yaml:2:7: hash: expected a mapping, got int 3"]),
    ("hash-unknown-field", """
        version: 1
        hash:
          algo: sha256
        rules: []
        """, ["p.yaml:3:3: hash.algo: unknown field for the hash section; expected one of: algorithm, key_env, key_file"]),
    ("hash-unknown-algorithm", """
        version: 1
        hash:
          algorithm: md5
        rules: []
        """, ["p.yaml:3:14: hash.algorithm: unknown algorithm 'md5'; expected one of: hmac-sha256, sha256"]),
    ("hash-key-env-and-key-file", """
        version: 1
        hash:
          key_env: MY_KEY
          key_file: /run/secrets/key
        rules: []
        """, ["p.yaml:3:3: hash: give key_env or key_file, not both"]),
    ("hash-sha256-with-key", """
        version: 1
        hash:
          algorithm: sha256
          key_env: MY_KEY
        rules: []
        """, ["p.yaml:3:3: hash: sha256 is unkeyed; remove key_env/key_file or use hmac-sha256"]),
    ("rules-not-list", """
        version: 1
        rules:
          a: b
        """, ["p.yaml:3:3: rules: expected a list of rules, got a mapping"]),
    ("rule-not-mapping", """
        version: 1
        rules:
          - hello
        """, ["p.yaml:3:5: rules[0]: expected a mapping, got str 'hello'"]),
    ("missing-name", """
        version: 1
        rules:
          - action: delete
            keys: [a]
        """, ["p.yaml:3:5: rules[0].name: missing; every rule needs a unique name"]),
    ("invalid-name", """
        version: 1
        rules:
          - name: Bad Name
            action: delete
            keys: [a]
        """, ["p.yaml:3:11: rules[0].name: invalid rule name 'Bad Name'; use 1-63 of a-z 0-9 _ . - (it becomes a metric label)"]),
    ("name-too-long", f"""
        version: 1
        rules:
          - name: {"a" * 64}
            action: delete
            keys: [a]
        """, [f"p.yaml:3:11: rules[0].name: invalid rule name '{'a' * 64}'; use 1-63 of a-z 0-9 _ . - (it becomes a metric label)"]),
    ("duplicate-name", """
        version: 1
        rules:
          - name: a
            action: delete
            keys: [a]
          - name: a
            action: hash
            keys: [b]
        """, ["p.yaml:6:11: rules[1].name: duplicate rule name 'a' (first used by rules[0])"]),
    ("duplicate-name-not-first-field", """
        version: 1
        rules:
          - name: a
            action: delete
            keys: [a]
          - keys: [b]
            action: hash
            name: a
        """, ["p.yaml:8:11: rules[1].name: duplicate rule name 'a' (first used by rules[0])"]),
    ("missing-action", """
        version: 1
        rules:
          - name: a
            keys: [a]
        """, [f"p.yaml:3:5: rules[0].action: missing; expected one of: {ACTIONS}"]),
    ("unknown-action", """
        version: 1
        rules:
          - name: a
            action: obliterate
            keys: [a]
        """, [f"p.yaml:4:13: rules[0].action: unknown action 'obliterate'; expected one of: {ACTIONS}"]),
    ("when-on-delete", """
        version: 1
        rules:
          - name: a
            action: delete
            keys: [a]
            when: {key: a, equals: b}
        """, ["p.yaml:6:5: rules[0].when: unknown field for action delete; expected one of: action, description, fields, keys, levels, name, patterns, signals"]),
    ("keys-on-drop", """
        version: 1
        rules:
          - name: a
            action: drop
            keys: [a]
            when: {key: a, equals: b}
        """, ["p.yaml:5:5: rules[0].keys: unknown field for action drop; expected one of: action, description, name, signals, when"]),
    ("levels-on-drop", """
        version: 1
        rules:
          - name: a
            action: drop
            levels: [event]
            when: {key: a, equals: b}
        """, ["p.yaml:5:5: rules[0].levels: unknown field for action drop; expected one of: action, description, name, signals, when"]),
    ("delete-without-keys", """
        version: 1
        rules:
          - name: a
            action: delete
        """, ["p.yaml:3:5: rules[0]: action delete needs `keys:`, `patterns:` or `fields:`"]),
    ("hash-without-keys", """
        version: 1
        rules:
          - name: a
            action: hash
        """, ["p.yaml:3:5: rules[0]: action hash needs `keys:` or `patterns:`"]),
    # An empty list selects nothing: the rule would silently never apply.
    ("delete-with-empty-keys", """
        version: 1
        rules:
          - name: a
            action: delete
            keys: []
        """, ["p.yaml:3:5: rules[0]: action delete needs `keys:`, `patterns:` or `fields:`"]),
    ("keys-not-list", """
        version: 1
        rules:
          - name: a
            action: delete
            keys: a
        """, ["p.yaml:5:11: rules[0].keys: expected a list of strings, got str 'a'"]),
    ("key-not-string", """
        version: 1
        rules:
          - name: a
            action: delete
            keys: [a, 3]
        """, ["p.yaml:5:15: rules[0].keys[1]: expected a non-empty string, got int 3"]),
    ("regex-lookahead", """
        version: 1
        rules:
          - name: a
            action: delete
            patterns: ['ok', '(?=x)y']
        """, ["p.yaml:5:22: rules[0].patterns[1]: invalid RE2 regex '(?=x)y': invalid perl operator: (?="]),
    ("regex-backreference", r"""
        version: 1
        rules:
          - name: a
            action: hash
            patterns: ['(a)\1']
        """, [r"p.yaml:5:16: rules[0].patterns[0]: invalid RE2 regex '(a)\\1': invalid escape sequence: \1"]),
    ("regex-unbalanced", """
        version: 1
        rules:
          - name: a
            action: delete
            patterns: ['(ab']
        """, ["p.yaml:5:16: rules[0].patterns[0]: invalid RE2 regex '(ab': missing ): (ab"]),
    ("unknown-signal", """
        version: 1
        rules:
          - name: a
            action: delete
            keys: [a]
            signals: [traces, profiles]
        """, ["p.yaml:6:23: rules[0].signals[1]: unknown value 'profiles'; expected one of: traces, metrics, logs"]),
    ("signals-not-list", """
        version: 1
        rules:
          - name: a
            action: delete
            keys: [a]
            signals: traces
        """, ["p.yaml:6:14: rules[0].signals: expected a list of strings, got str 'traces'"]),
    ("unknown-level", """
        version: 1
        rules:
          - name: a
            action: delete
            keys: [a]
            levels: [span, body]
        """, [f"p.yaml:6:20: rules[0].levels[1]: unknown value 'body'; expected one of: {LEVELS}"]),
    ("levels-not-in-signals", """
        version: 1
        rules:
          - name: a
            action: delete
            keys: [a]
            signals: [logs]
            levels: [span, link]
        """, ["p.yaml:7:13: rules[0].levels: none of these levels exists in signals ['logs']; the rule would never apply"]),
    ("drop-without-when", """
        version: 1
        rules:
          - name: a
            action: drop
        """, ["p.yaml:3:5: rules[0]: action drop needs `when: {key: K, in: [...]}` (or equals:/matches:)"]),
    ("when-no-operator", """
        version: 1
        rules:
          - name: a
            action: drop
            when: {key: a}
        """, ["p.yaml:5:11: rules[0].when: give exactly one of `in:`, `equals:`, `matches:`"]),
    ("when-two-operators", """
        version: 1
        rules:
          - name: a
            action: drop
            when: {key: a, equals: b, in: [c]}
        """, ["p.yaml:5:11: rules[0].when: give exactly one of `in:`, `equals:`, `matches:`"]),
    ("when-missing-key", """
        version: 1
        rules:
          - name: a
            action: drop
            when: {in: [x]}
        """, ["p.yaml:5:11: rules[0].when.key: missing; the attribute key to test"]),
    ("when-unknown-field", """
        version: 1
        rules:
          - name: a
            action: drop
            when: {key: a, equals: b, not: c}
        """, ["p.yaml:5:31: rules[0].when.not: unknown field for a drop condition; expected one of: equals, in, key, matches"]),
    ("when-in-not-list", """
        version: 1
        rules:
          - name: a
            action: drop
            when: {key: a, in: b}
        """, ["p.yaml:5:24: rules[0].when.in: expected a non-empty list of values, got str 'b'"]),
    ("when-in-empty", """
        version: 1
        rules:
          - name: a
            action: drop
            when: {key: a, in: []}
        """, ["p.yaml:5:24: rules[0].when.in: expected a non-empty list of values, got a list"]),
    ("when-equals-list", """
        version: 1
        rules:
          - name: a
            action: drop
            when: {key: a, equals: [x]}
        """, ["p.yaml:5:28: rules[0].when.equals: expected a scalar value, got a list"]),
    ("when-matches-bad-regex", """
        version: 1
        rules:
          - name: a
            action: drop
            when: {key: a, matches: '(?!x)'}
        """, ["p.yaml:5:29: rules[0].when.matches: invalid RE2 regex '(?!x)': invalid perl operator: (?!"]),
    ("duplicate-mapping-key", """
        version: 1
        rules:
          - name: a
            action: delete
            keys: [a]
            keys: [b]
        """, ["p.yaml:6:5: rules[0].keys: duplicate key"]),
    ("duplicate-top-level-key", """
        version: 1
        rules: []
        version: 1
        """, ["p.yaml:3:1: version: duplicate key"]),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_error_is_one_located_line(text, expected):
    assert errors_of(text) == expected


def test_every_error_of_a_file_is_reported_at_once():
    errors = errors_of("""
        version: 2
        bogus: true
        rules:
          - name: A
            action: delete
          - action: nope
        """)
    assert sorted(errors) == sorted([
        "p.yaml:1:10: version: unsupported version int 2; expected 1",
        "p.yaml:2:1: bogus: unknown field for a policy; expected one of: hash, rules, tests, version",
        "p.yaml:4:11: rules[0].name: invalid rule name 'A'; use 1-63 of a-z 0-9 _ . - (it becomes a metric label)",
        "p.yaml:4:5: rules[0]: action delete needs `keys:`, `patterns:` or `fields:`",
        "p.yaml:6:5: rules[1].name: missing; every rule needs a unique name",
        f"p.yaml:6:13: rules[1].action: unknown action 'nope'; expected one of: {ACTIONS}",
    ])


def test_load_file_names_the_file_in_every_line():
    path = POLICIES / "several_errors.yaml"
    with pytest.raises(PolicyError) as info:
        load_file(path)
    src = str(path)
    assert sorted(info.value.errors) == sorted([
        f"{src}:1:10: version: unsupported version int 2; expected 1",
        f"{src}:2:1: bogus: unknown field for a policy; expected one of: hash, rules, tests, version",
        f"{src}:4:14: hash.algorithm: unknown algorithm 'md5'; expected one of: hmac-sha256, sha256",
        f"{src}:6:11: rules[0].name: invalid rule name 'Bad Name'; use 1-63 of a-z 0-9 _ . - (it becomes a metric label)",
        f"{src}:6:5: rules[0]: action delete needs `keys:`, `patterns:` or `fields:`",
        f"{src}:9:13: rules[1].action: unknown action 'obliterate'; expected one of: {ACTIONS}",
        f"{src}:12:16: rules[2].patterns[0]: invalid RE2 regex '(?=lookahead)': invalid perl operator: (?=",
    ])


def test_load_file_unreadable(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(PolicyError) as info:
        load_file(missing)
    assert info.value.errors == [f"{missing}:1:1: cannot read policy file: No such file or directory"]


# --- what a valid file becomes --------------------------------------------------------


def test_valid_policy_model():
    doc = load_file(POLICIES / "keep_only_spans.yaml")
    assert [r.name for r in doc.rules] == ["delete-email", "hash-user", "allow-span-keys"]
    assert [r.index for r in doc.rules] == [0, 1, 2]
    assert [r.action for r in doc.rules] == [Action.DELETE, Action.HASH, Action.KEEP_ONLY]
    keep = doc.rules[2]
    assert keep.keys == ("http.route", "http.method")
    assert keep.patterns == (r"db\..*",)
    assert keep.signals == frozenset({"traces"})
    assert keep.levels == frozenset({Level.SPAN})
    assert (keep.where.line, keep.where.col, keep.where.path) == (10, 5, "rules[2]")
    # defaults: every signal, every level
    assert doc.rules[0].signals == frozenset({"traces", "metrics", "logs"})
    assert doc.rules[0].levels == frozenset(Level)
    assert doc.hash.algorithm == "hmac-sha256"
    assert doc.hash.key_env == DEFAULT_KEY_ENV
    assert not doc.from_collector


def test_sha256_of_the_file_bytes():
    import hashlib

    path = POLICIES / "everywhere.yaml"
    assert load_file(path).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_hash_section_variants():
    doc = parse(b"version: 1\nhash:\n  algorithm: sha256\nrules: []\n", "p.yaml")
    assert (doc.hash.algorithm, doc.hash.key_env, doc.hash.key_file) == ("sha256", None, None)
    doc = parse(b"version: 1\nhash:\n  key_file: /k\nrules: []\n", "p.yaml")
    assert (doc.hash.algorithm, doc.hash.key_env, doc.hash.key_file) == ("hmac-sha256", None, "/k")
    doc = parse(b"version: 1\nhash: {}\nrules: []\n", "p.yaml")
    assert (doc.hash.algorithm, doc.hash.key_env) == ("hmac-sha256", DEFAULT_KEY_ENV)


def test_when_values_are_canonical_text():
    doc = parse(textwrap.dedent("""\
        version: 1
        rules:
          - name: a
            action: drop
            when: {key: k, in: [1, true, false, 1.5, x, '/health']}
          - name: b
            action: drop
            when: {key: k, equals: 204}
          - name: c
            action: drop
            when: {key: k, matches: 'internal-[0-9]+'}
        """).encode(), "p.yaml")
    whens = [r.when for r in doc.rules]
    assert [(w.key, w.op, w.values) for w in whens] == [
        ("k", "in", ("1", "true", "false", "1.5", "x", "/health")),
        ("k", "equals", ("204",)),
        ("k", "matches", ("internal-[0-9]+",)),
    ]
    assert (whens[0].where.line, whens[0].where.col) == (5, 11)


def test_tests_section_is_parsed():
    doc = parse(textwrap.dedent("""\
        version: 1
        rules:
          - name: a
            action: delete
            keys: [user.email]
        tests:
          - name: email is deleted
            signal: logs
            level: log
            input: {user.email: a@b.c, http.route: /x}
            expect: {http.route: /x}
        """).encode(), "p.yaml")
    (case,) = doc.tests
    assert (case.name, case.signal, case.level) == ("email is deleted", "logs", Level.LOG)
    assert case.input == {"user.email": "a@b.c", "http.route": "/x"}
    assert case.expect == {"http.route": "/x"}
    assert (case.where.line, case.where.col) == (7, 5)


# --- hostile files (issue 11): bounded size, nothing kept per load ---------------------


DOCTRINE = Path(__file__).resolve().parents[2] / "policies" / "doctrine.yaml"


@pytest.mark.parametrize("size", [MAX_POLICY_BYTES + 1, 50 * 1000 * 1000], ids=["one-past", "50mb"])
def test_policy_over_the_size_bound_is_refused_unread(tmp_path, size):
    big = tmp_path / "big.yaml"
    with big.open("wb") as f:
        f.write(b"version: 1\nrules: []\n# ")
        f.truncate(size)  # the rest reads as NUL bytes; never parsed
    with pytest.raises(PolicyError) as info:
        load_file(big)
    assert info.value.errors == [f"{big}:1:1: (file): the policy file is larger than {MAX_POLICY_BYTES} bytes "
                                 f"(1 MiB), the most a policy may be"]


def test_policy_at_the_size_bound_is_parsed(tmp_path):
    head = b"version: 1\nrules:\n  - name: d\n    action: delete\n    keys: [user.email]\n"
    at = tmp_path / "at.yaml"
    at.write_bytes(head + b"#" * (MAX_POLICY_BYTES - len(head) - 1) + b"\n")
    assert at.stat().st_size == MAX_POLICY_BYTES
    assert [r.name for r in load_file(at).rules] == ["d"]


def test_loading_keeps_nothing_of_the_previous_load():
    # A YAML constructor remembers every node it built; one shared by all loads kept each
    # policy ever loaded (~0.5-1 MiB per reload of the doctrine, never freed).
    load_file(DOCTRINE)
    tracemalloc.start()
    try:
        load_file(DOCTRINE)
        start, _ = tracemalloc.get_traced_memory()
        for _ in range(20):
            load_file(DOCTRINE)
        gc.collect()
        end, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert end - start < 512 * 1024, f"{(end - start) / 20 / 1024:.0f} KiB kept per load"


def test_aliases_in_a_test_case_are_built_once():
    # A fresh constructor per value must still share what an alias repeats (no billion
    # laughs from a `tests:` input).
    levels = ["a: &l0 [x, x, x, x, x, x, x, x, x, x]"] + [
        f"l{i}: &l{i} [*l{i - 1}, *l{i - 1}, *l{i - 1}, *l{i - 1}, *l{i - 1}, *l{i - 1}, *l{i - 1}, *l{i - 1}, "
        f"*l{i - 1}, *l{i - 1}]" for i in range(1, 9)]
    text = "\n".join(["version: 1", "rules:", "  - name: d", "    action: delete", "    keys: [user.email]",
                      "tests:", "  - name: t", "    input:"] + [f"      {line}" for line in levels]
                     + ["    expect: {}"])
    doc = parse(text.encode(), "p.yaml")
    top = doc.tests[0].input["l8"]
    assert top[0] is top[1], "an alias was expanded instead of shared"


def test_a_policy_nested_too_deep_is_a_located_error_not_a_crash():
    deep = b"version: 1\nrules:\n  - name: a\n    action: delete\n    keys: " + b"[" * 5000 + b"]" * 5000 + b"\n"
    with pytest.raises(PolicyError) as info:
        parse(deep, "p.yaml")
    assert info.value.errors == ["p.yaml:1:1: (yaml): nesting too deep; a policy is a few levels deep"]
