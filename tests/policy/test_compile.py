"""policy/compile.py: the hash key is resolved and checked once, each key's decision is
computed once per (signal, level), and drop conditions become plain predicates."""

from __future__ import annotations

import hashlib
import hmac
import textwrap
from pathlib import Path

import pytest

from redact_proxy.errors import PolicyError
from redact_proxy.policy import KEEP, Action, Level
from redact_proxy.policy.compile import (
    DECISION_CACHE_LIMIT, MAX_MASK_PROGRAM, MAX_REGEX_PROGRAM, MIN_KEY_BYTES, compile_policy, load, tails,
)
from redact_proxy.policy.schema import LEVELS_OF, load_file, parse

POLICIES = Path(__file__).resolve().parents[1] / "testdata" / "policies"
KEY = "k" * 32
ENV = {"REDACT_PROXY_HASH_KEY": KEY}


def doc_of(text: str):
    return parse(textwrap.dedent(text).lstrip("\n").encode(), "p.yaml")


HASHING = """
    version: 1
    rules:
      - name: h
        action: hash
        keys: [user.id]
    """


# --- the hash key -----------------------------------------------------------------------


def test_missing_env_key_is_an_error():
    with pytest.raises(PolicyError) as info:
        compile_policy(doc_of(HASHING), {})
    assert info.value.errors == [
        "p.yaml:1:1: hash.key_env: environment variable REDACT_PROXY_HASH_KEY is not set; the hash key is required"
    ]


def test_empty_env_key_is_missing():
    with pytest.raises(PolicyError) as info:
        compile_policy(doc_of(HASHING), {"REDACT_PROXY_HASH_KEY": ""})
    assert "REDACT_PROXY_HASH_KEY is not set" in info.value.errors[0]


def test_custom_key_env_is_named_with_its_location():
    doc = doc_of("""
        version: 1
        hash:
          key_env: MY_KEY
        rules:
          - name: h
            action: hash
            keys: [user.id]
        """)
    with pytest.raises(PolicyError) as info:
        compile_policy(doc, {"REDACT_PROXY_HASH_KEY": KEY})  # the default name is not read
    assert info.value.errors == [
        "p.yaml:3:3: hash.key_env: environment variable MY_KEY is not set; the hash key is required"
    ]
    policy = compile_policy(doc, {"MY_KEY": KEY})
    assert policy.hasher(b"x") == hmac.new(KEY.encode(), b"x", hashlib.sha256).hexdigest()


def test_short_key_is_refused():
    short = "s" * (MIN_KEY_BYTES - 1)
    with pytest.raises(PolicyError) as info:
        compile_policy(doc_of(HASHING), {"REDACT_PROXY_HASH_KEY": short})
    assert info.value.errors == [
        "p.yaml:1:1: hash: hash key is 15 bytes; at least 16 are required (e.g. `openssl rand -hex 32`)"
    ]
    # exactly the minimum is enough
    compile_policy(doc_of(HASHING), {"REDACT_PROXY_HASH_KEY": "s" * MIN_KEY_BYTES})


def test_key_length_counts_bytes_not_characters():
    key = "é" * 8  # 8 characters, 16 UTF-8 bytes
    policy = compile_policy(doc_of(HASHING), {"REDACT_PROXY_HASH_KEY": key})
    assert policy.hasher(b"v") == hmac.new(key.encode(), b"v", hashlib.sha256).hexdigest()


def _key_file_policy(key_path) -> str:
    return f"""
        version: 1
        hash:
          key_file: {key_path}
        rules:
          - name: h
            action: hash
            keys: [user.id]
        """


def test_key_file_unreadable(tmp_path):
    missing = tmp_path / "no-such-key"
    with pytest.raises(PolicyError) as info:
        compile_policy(doc_of(_key_file_policy(missing)), ENV)
    assert info.value.errors == [
        f"p.yaml:3:3: hash.key_file: cannot read {missing}: No such file or directory"
    ]


def test_key_file_is_read_and_its_trailing_newline_ignored(tmp_path):
    key = b"0123456789abcdef0123456789abcdef"
    path = tmp_path / "key"
    path.write_bytes(key + b"\n")
    policy = compile_policy(doc_of(_key_file_policy(path)), {})
    assert policy.hasher(b"alice") == hmac.new(key, b"alice", hashlib.sha256).hexdigest()


def test_short_key_file_is_refused(tmp_path):
    path = tmp_path / "key"
    path.write_bytes(b"tooshort\n")
    with pytest.raises(PolicyError) as info:
        compile_policy(doc_of(_key_file_policy(path)), {})
    assert info.value.errors == [
        "p.yaml:3:3: hash: hash key is 8 bytes; at least 16 are required (e.g. `openssl rand -hex 32`)"
    ]


@pytest.mark.parametrize("name", ["everywhere.yaml", "first_match_delete_first.yaml"])
def test_policies_with_hash_rules_need_the_key(name):
    # both have hash rules: without a key they do not compile
    with pytest.raises(PolicyError):
        load(POLICIES / name, {})


@pytest.mark.parametrize("text", [
    """
    version: 1
    rules:
      - name: d
        action: delete
        keys: [a]
    """,
    """
    version: 1
    rules:
      - name: k
        action: keep_only
        keys: [a]
      - name: x
        action: drop
        when: {key: a, equals: b}
    """,
])
def test_no_key_needed_when_nothing_hashes(text):
    policy = compile_policy(doc_of(text), {})  # no REDACT_PROXY_HASH_KEY, and no error
    assert len(policy.rules) == len(doc_of(text).rules)


def test_sha256_needs_no_key():
    policy = load(POLICIES / "hash_sha256.yaml", {})
    assert policy.hasher("alice@example.com".encode()) == hashlib.sha256(b"alice@example.com").hexdigest()


def test_hmac_hasher_is_hmac_sha256_lowercase_hex():
    policy = load(POLICIES / "hash_values.yaml", ENV)
    for data in (b"", b"alice", bytes(range(256))):
        assert policy.hasher(data) == hmac.new(KEY.encode(), data, hashlib.sha256).hexdigest()
    # the keyed state is copied per call: hashing twice gives the same answer
    assert policy.hasher(b"alice") == policy.hasher(b"alice")


# --- deciders ---------------------------------------------------------------------------


def test_a_decider_for_every_level_of_every_signal_and_no_other():
    policy = load(POLICIES / "everywhere.yaml", ENV)
    expected = {(s, lv) for s, levels in LEVELS_OF.items() for lv in levels}
    assert set(policy.deciders) == expected
    with pytest.raises(KeyError):
        policy.decider("logs", Level.SPAN)


def test_first_match_wins_in_file_order():
    d = load(POLICIES / "first_match_delete_first.yaml", ENV).decider("traces", Level.SPAN)
    assert (d.decide("user.id").action, d.decide("user.id").rule) == (Action.DELETE, 0)
    assert (d.decide("enduser.id").action, d.decide("enduser.id").rule) == (Action.HASH, 1)
    assert d.decide("other") is KEEP
    d = load(POLICIES / "first_match_hash_first.yaml", ENV).decider("traces", Level.SPAN)
    assert (d.decide("user.id").action, d.decide("user.id").rule) == (Action.HASH, 0)


@pytest.mark.parametrize("key, deleted", [
    ("http.request.header.authorization", True),
    ("http.request.header.", True),
    ("x.http.request.header.a", False),  # full match: no prefix
    ("http.request.headerX", False),
    ("http_request_header_a", False),  # the dots are escaped
    ("token", True),
    ("token.id", False),  # full match: no suffix
    ("my.token", False),
])
def test_patterns_match_the_whole_key(key, deleted):
    d = load(POLICIES / "patterns_full_match.yaml", ENV).decider("logs", Level.LOG)
    assert (d.decide(key).action is Action.DELETE) is deleted
    # Nested, a key is also matched by the dotted tails of its path ("my.token" -> "token").
    by_tail = any(d.decide(tail).action is Action.DELETE for tail in tails(key))
    assert (d.decide_nested("", key).action is Action.DELETE) is by_tail
    assert (d.decide_nested("a.b", key).action is Action.DELETE) is by_tail


def test_keep_only_applies_to_top_level_attributes_of_covered_levels_only():
    policy = load(POLICIES / "keep_only_spans.yaml", ENV)
    span = policy.decider("traces", Level.SPAN)
    assert span.decide("http.route") is KEEP
    assert span.decide("db.system") is KEEP  # by pattern
    assert (span.decide("random").action, span.decide("random").rule) == (Action.KEEP_ONLY, 2)
    assert span.decide("user.email").action is Action.DELETE  # key rules come first
    assert span.decide("user.id").action is Action.HASH
    # keys inside kvlists: key rules only
    assert span.decide_nested("", "random") is KEEP
    assert span.decide_nested("", "user.email").action is Action.DELETE
    assert span.decide_nested("user", "email").action is Action.DELETE  # {"user": {"email": ...}}
    # levels and signals the rule does not cover keep everything
    assert policy.decider("traces", Level.EVENT).decide("random") is KEEP
    assert policy.decider("traces", Level.RESOURCE).decide("random") is KEEP
    assert policy.decider("logs", Level.LOG).decide("random") is KEEP


def test_signals_and_levels_select_the_rules_of_a_decider():
    policy = load(POLICIES / "scoped.yaml", {})
    deleted = {
        (s, lv): {k for k in "abcd" if policy.decider(s, lv).decide(k).action is Action.DELETE}
        for s, lv in policy.deciders
    }
    assert deleted == {
        ("traces", Level.RESOURCE): {"b"},
        ("traces", Level.SCOPE): set(),
        ("traces", Level.SPAN): {"a"},
        ("traces", Level.EVENT): {"d"},
        ("traces", Level.LINK): set(),
        ("metrics", Level.RESOURCE): {"b"},
        ("metrics", Level.SCOPE): set(),
        ("metrics", Level.DATAPOINT): set(),
        ("metrics", Level.EXEMPLAR): {"d"},
        ("logs", Level.RESOURCE): {"b", "c"},
        ("logs", Level.SCOPE): {"c"},
        ("logs", Level.LOG): {"c"},
    }


def test_decisions_are_memoised_and_the_memo_is_bounded():
    d = load(POLICIES / "everywhere.yaml", ENV).decider("traces", Level.SPAN)
    first = d.decide("secret")
    assert d.decide("secret") is first
    assert d.top["secret"] is first
    for i in range(DECISION_CACHE_LIMIT + 10):
        d.decide(f"k{i}")
        d.decide_nested("", f"k{i}")
    assert len(d.top) <= DECISION_CACHE_LIMIT
    assert len(d.nested) <= DECISION_CACHE_LIMIT
    assert d.decide("secret").action is Action.DELETE  # still right after a reset


# --- drop predicates --------------------------------------------------------------------


def test_drop_rules_compile_to_predicates_per_signal():
    policy = load(POLICIES / "drop.yaml", {})
    def in_file_order(signal):  # drops are grouped by the key they test
        return sorted((d for rules in policy.drops[signal].values() for d in rules), key=lambda d: d.index)

    by_name = {policy.rules[d.index].name: d for d in in_file_order("logs")}
    assert [policy.rules[d.index].name for d in in_file_order("traces")] == [
        "drop-health", "drop-status", "drop-synthetic",
    ]
    assert list(by_name) == ["drop-health", "drop-status", "drop-synthetic", "drop-internal"]
    health, status, synthetic, internal = by_name.values()
    assert health.key == "url.path"
    assert health.test("/health") and health.test("/healthz") and not health.test("/health/x")
    assert status.test("204") and not status.test("200")
    assert synthetic.test("true") and not synthetic.test("false")
    assert internal.test("internal-42") and not internal.test("internal-") and not internal.test("x-internal-42")


def test_summary_counts_rules_by_action():
    policy = load(POLICIES / "drop.yaml", {})
    assert policy.summary() == "5 rules (4 drop, 1 delete)"
    assert policy.sha256 == load_file(POLICIES / "drop.yaml").sha256


# --- regexes that cost too much per value (issue 11) ----------------------------------------


HOSTILE = r"[\s\S]{0,1000}[\s\S]{0,1000}[\s\S]{0,1000}x"  # ~24k RE2 instructions: ~26-130 s per MiB


def compile_errors(text: str) -> list[str]:
    with pytest.raises(PolicyError) as info:
        compile_policy(doc_of(text), ENV)
    return info.value.errors


def test_mask_regex_with_a_huge_program_is_refused_located():
    errors = compile_errors(rf"""
        version: 1
        rules:
          - name: fine
            action: delete
            keys: [user.email]
          - name: m
            action: mask
            regexes: ['acct-[0-9]{{6,}}', '{HOSTILE}']
        """)
    assert errors == [f"p.yaml:6:5: rules[1].regexes[1]: regex compiles to 24005 RE2 instructions; at most "
                      f"{MAX_REGEX_PROGRAM} are accepted (a program this large costs seconds per MiB of value): "
                      f"use shorter bounded repetitions such as {{0,100}} instead of {{0,1000}}"]


def test_every_costly_regex_is_reported_at_once():
    errors = compile_errors(rf"""
        version: 1
        rules:
          - name: k
            action: delete
            patterns: ['{HOSTILE}']
          - name: d
            action: drop
            when: {{key: url.path, matches: '[a-z]{{0,1000}}[a-z]{{0,1000}}'}}
          - name: m
            action: mask
            regexes: ['{HOSTILE}']
        """)
    assert [e.split(": regex")[0] for e in errors] == [
        "p.yaml:3:5: rules[0].patterns[0]", "p.yaml:8:11: rules[1].when.matches", "p.yaml:9:5: rules[2].regexes[0]"]


def test_mask_rule_whose_detectors_and_regexes_together_are_too_big_is_refused():
    from redact_proxy.policy import detectors

    everything = ", ".join(detectors.DETECTORS)
    errors = compile_errors(rf"""
        version: 1
        rules:
          - name: m
            action: mask
            detectors: [{everything}]
            regexes: ['[\s\S]{{0,250}}x']
        """)
    assert len(errors) == 1
    assert errors[0].startswith("p.yaml:3:5: rules[0]: the regexes and detectors of this mask rule compile to ")
    assert f"at most {MAX_MASK_PROGRAM} are accepted" in errors[0]
    # Every detector alone, or with a modest regex, is within the bound.
    compile_policy(doc_of(rf"""
        version: 1
        rules:
          - name: m
            action: mask
            detectors: [{everything}]
            regexes: ['acct-[0-9]{{6,}}']
        """), ENV)


def test_shipped_policies_are_within_the_regex_bounds():
    for name in ("doctrine.yaml", "doctrine-strict.yaml"):
        load(Path(__file__).resolve().parents[2] / "policies" / name, ENV)


def test_check_refuses_a_costly_regex_with_file_line_col(tmp_path):
    import subprocess
    import sys

    policy = tmp_path / "costly.yaml"
    policy.write_text(f"version: 1\nrules:\n  - name: m\n    action: mask\n    regexes: ['{HOSTILE}']\n")
    result = subprocess.run([sys.executable, "-m", "redact_proxy", "check", "--policy", str(policy)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"{policy}:3:5: rules[0].regexes[0]: regex compiles to 24005 RE2 instructions" in result.stderr + result.stdout
