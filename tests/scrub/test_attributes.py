"""scrub/attributes.py: one attribute list under one Decider. First matching key rule
decides, patterns are full matches, keep_only removes unlisted top-level keys only where it
applies, kvlists are walked at any depth, and ``hash`` hashes canonical bytes of every
scalar while keeping the value's shape (SPEC section 6)."""

from __future__ import annotations

import hashlib
import math

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from redact_proxy.policy import Action, Level
from redact_proxy.policy.compile import Decider, Decision, _KeyRule, load
from redact_proxy.policy.schema import Rule
from redact_proxy.scrub.attributes import (
    Tally, hash_value, rewrite_value, scrub_attributes, scrub_value, text_of,
)
from scrub_support import ENV, H, POLICIES, av, kvs


def hashed(s: str) -> AnyValue:
    return AnyValue(string_value=s)


def run(policy_name: str, attributes, signal="traces", level=Level.SPAN):
    policy = load(POLICIES / policy_name, ENV)
    span = Span(attributes=kvs(attributes))
    tally = Tally(len(policy.rules))
    scrub_attributes(span.attributes, policy.decider(signal, level), tally, policy.hasher)
    return list(span.attributes), tally


# --- first match wins -------------------------------------------------------------------


def test_delete_before_hash_deletes():
    out, tally = run("first_match_delete_first.yaml", {"user.id": "u1", "enduser.id": "e1", "other": "o"})
    assert out == kvs({"enduser.id": hashed(H(b"e1")), "other": "o"})
    assert tally.redactions == [1, 1]
    assert tally.changed


def test_hash_before_delete_hashes():
    out, tally = run("first_match_hash_first.yaml", {"user.id": "u1", "enduser.id": "e1", "other": "o"})
    assert out == kvs({"user.id": hashed(H(b"u1")), "enduser.id": hashed(H(b"e1")), "other": "o"})
    assert tally.redactions == [2, 0]


def test_repeated_keys_are_all_removed():
    out, tally = run("everywhere.yaml", [("secret", "a"), ("ok", 1), ("secret", "b"), ("secret", "c"), ("ok2", 2)])
    assert out == kvs([("ok", 1), ("ok2", 2)])
    assert tally.redactions == [3, 0]


def test_nothing_matched_means_unchanged_and_not_changed():
    attributes = {"http.route": "/x", "n": 3, "nested": {"also": ["fine", {"k": True}]}}
    out, tally = run("everywhere.yaml", attributes)
    assert out == kvs(attributes)
    assert tally.redactions == [0, 0]
    assert tally.dropped == [0, 0]
    assert not tally.changed


# --- patterns are full matches ----------------------------------------------------------


def test_patterns_are_full_matches():
    attributes = {
        "http.request.header.authorization": "Bearer x",
        "http.request.header.cookie": "c",
        "x.http.request.header.cookie": "kept",
        "token": "t",
        "token.count": 3,
        "access_token": "kept",
    }
    out, tally = run("patterns_full_match.yaml", attributes)
    assert out == kvs({"x.http.request.header.cookie": "kept", "token.count": 3, "access_token": "kept"})
    assert tally.redactions == [3]


def test_patterns_match_keys_with_newlines():
    # Keys are whatever the sender wrote. A `.*` in a key pattern must not stop at a
    # line break, or "http.request.header.x\ny" walks past a delete rule in clear.
    out, tally = run("patterns_full_match.yaml", {
        "http.request.header.\n": "a",
        "http.request.header.x\ny": "b",
        "kept": "c",
    })
    assert out == kvs({"kept": "c"})
    assert tally.redactions == [2]


# --- keep_only ----------------------------------------------------------------------------


def test_keep_only_deletes_unlisted_top_level_keys():
    attributes = {
        "http.route": "/users/{id}",
        "random": "x",
        "db.params": {"random": 1, "user.email": "a@b.c"},  # kept by pattern; nested: key rules only
        "user.email": "a@b.c",  # delete rule, before keep_only
        "user.id": "u1",  # hash rule beats keep_only: kept, hashed
        "other": {"http.route": "/inner"},  # not listed: removed whole
    }
    out, tally = run("keep_only_spans.yaml", attributes)
    assert out == kvs({
        "http.route": "/users/{id}",
        "db.params": {"random": 1},
        "user.id": hashed(H(b"u1")),
    })
    assert tally.redactions == [2, 1, 2]


@pytest.mark.parametrize("signal, level", [
    ("traces", Level.RESOURCE), ("traces", Level.SCOPE), ("traces", Level.EVENT),
    ("traces", Level.LINK), ("logs", Level.LOG), ("metrics", Level.DATAPOINT),
])
def test_keep_only_leaves_levels_it_does_not_cover(signal, level):
    out, tally = run("keep_only_spans.yaml", {"random": "x", "user.email": "e", "user.id": "u"}, signal, level)
    assert out == kvs({"random": "x", "user.id": hashed(H(b"u"))})
    assert tally.redactions == [1, 1, 0]


# --- nested kvlists and arrays ------------------------------------------------------------


def test_keys_are_scrubbed_at_any_depth():
    attributes = {
        "outer": {
            "secret": "s1",
            "uid": "u1",
            "list": [
                {"secret": "s2", "uid": 7, "ok": 1},
                "plain",
                [{"deeper": {"secret": b"s3", "keep": 2.5}}],
            ],
        },
        "secret": "s0",
    }
    out, tally = run("everywhere.yaml", attributes)
    assert out == kvs({
        "outer": {
            "uid": hashed(H(b"u1")),
            "list": [
                {"uid": hashed(H(b"7")), "ok": 1},
                "plain",
                [{"deeper": {"keep": 2.5}}],
            ],
        },
    })
    assert tally.redactions == [4, 2]


def test_log_body_keys_are_scrubbed_but_scalars_untouched():
    policy = load(POLICIES / "everywhere.yaml", ENV)
    decider = policy.decider("logs", Level.LOG)
    body = av({"secret": "s", "msg": "secret uid", "items": [{"uid": "u"}]})
    tally = Tally(2)
    scrub_value(body, decider, tally, policy.hasher)
    assert body == av({"msg": "secret uid", "items": [{"uid": hashed(H(b"u"))}]})
    assert tally.redactions == [1, 1]
    text = av("secret=s uid=u")
    scrub_value(text, decider, tally, policy.hasher)
    assert text == av("secret=s uid=u")


# --- hash: canonical bytes -----------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    ("alice", H(b"alice")),
    ("héllo ✓", H("héllo ✓".encode())),
    ("", H(b"")),
    (b"\x00\xff\xfe", H(b"\x00\xff\xfe")),
    (0, H(b"0")),
    (-42, H(b"-42")),
    (2**63 - 1, H(b"9223372036854775807")),
    (-(2**63), H(b"-9223372036854775808")),
    (True, H(b"true")),
    (False, H(b"false")),
    (0.1, H(b"0.1")),
    (1.0, H(b"1.0")),
    (-0.0, H(b"-0.0")),
    (1e16, H(b"1e+16")),
    (1.5e-300, H(b"1.5e-300")),
    (math.inf, H(b"inf")),
    (2 / 3, H(repr(2 / 3).encode())),
], ids=repr)
def test_hash_of_a_scalar(value, expected):
    out, _ = run("hash_values.yaml", {"v": value})
    assert out == kvs({"v": hashed(expected)})


def test_hash_keeps_the_shape_of_arrays_and_kvlists():
    value = [1, "a", True, [2.5, b"\x01"], {"k": "x", "n": {"deep": -1}}]
    out, tally = run("hash_values.yaml", {"v": value, "w": "untouched"})
    assert out == kvs({
        "v": [
            hashed(H(b"1")), hashed(H(b"a")), hashed(H(b"true")),
            [hashed(H(b"2.5")), hashed(H(b"\x01"))],
            {"k": hashed(H(b"x")), "n": {"deep": hashed(H(b"-1"))}},
        ],
        "w": "untouched",
    })
    assert tally.redactions == [1]  # one attribute, however many scalars


def test_hash_of_an_empty_value_stays_empty():
    out, tally = run("hash_values.yaml", {"v": None, "a": []})
    assert out == kvs({"v": None, "a": []})
    assert tally.redactions == [1]


def test_sha256_algorithm_is_the_collector_hash_for_strings():
    out, _ = run("hash_sha256.yaml", {"user.id": "alice@example.com"})
    assert out == kvs({"user.id": hashed(hashlib.sha256(b"alice@example.com").hexdigest())})


def test_hash_value_directly():
    v = av({"a": [1, "x"]})
    hash_value(v, lambda b: b"|".join([b"h", b]).decode())
    assert v == av({"a": ["h|1", "h|x"]})


# --- value rewriters (sanitize_*) -----------------------------------------------------------


def test_rewrite_value_touches_strings_and_bytes_only():
    v = av(["SELECT 1", b"\xffraw", 3, 1.5, True, {"q": "x"}, None])
    rewrite_value(v, lambda text, system: text.upper(), None)
    assert v == av(["SELECT 1", "\ufffdRAW", 3, 1.5, True, {"q": "X"}, None])


def test_sanitize_decisions_dispatch_to_their_rewriter():
    rule = Rule(index=0, name="sql", action=Action.SANITIZE_SQL, keys=("db.statement",))
    decider = Decider((_KeyRule(rule, Decision(Action.SANITIZE_SQL, 0, lambda s, system: "<" + s + ">")),), ())
    span = Span(attributes=kvs({"db.statement": "select", "x": {"db.statement": ["a", 1]}}))
    tally = Tally(1)
    scrub_attributes(span.attributes, decider, tally, hasher=None)
    assert list(span.attributes) == kvs({"db.statement": "<select>", "x": {"db.statement": ["<a>", 1]}})
    assert tally.redactions == [2]


# --- canonical text for drop conditions -----------------------------------------------------


@pytest.mark.parametrize("value, text", [
    ("x", "x"), (204, "204"), (-1, "-1"), (True, "true"), (False, "false"),
    (1.5, "1.5"), (1.0, "1.0"), (b"x", None), ([1], None), ({"a": 1}, None), (None, None),
])
def test_text_of(value, text):
    assert text_of(av(value)) == text
