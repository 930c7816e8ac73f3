"""policy/collector.py: a collector config's attributes processors migrate unchanged:
delete and hash (unkeyed SHA-256, the collector's own hash) with key or pattern; anything
else is a located error rather than a half migration."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from redact_proxy.errors import PolicyError
from redact_proxy.policy import Action, Level
from redact_proxy.policy.compile import compile_policy, load
from redact_proxy.policy.schema import load_file, parse
from redact_proxy.scrub import scrub

POLICIES = Path(__file__).resolve().parents[1] / "testdata" / "policies"


def errors_of(text: str) -> list[str]:
    with pytest.raises(PolicyError) as info:
        compile_policy(parse(textwrap.dedent(text).lstrip("\n").encode(), "c.yaml"), {})
    return info.value.errors


def test_attributes_processors_become_rules_in_file_order():
    doc = load_file(POLICIES / "collector_attributes.yaml")
    assert doc.from_collector
    assert doc.hash.algorithm == "sha256"
    got = [(r.index, r.name, r.action, r.keys, r.patterns, r.where.line, r.where.col) for r in doc.rules]
    assert got == [
        (0, "attributes.pii.0", Action.DELETE, ("user.email",), (), 9, 9),
        (1, "attributes.pii.1", Action.DELETE, (), (r".*(?:^http\.request\.header\.).*",), 11, 9),
        (2, "attributes.pii.2", Action.HASH, ("user.id",), (), 13, 9),
        (3, "attributes.0", Action.HASH, (), (".*(?:secret).*",), 17, 9),
    ]


@pytest.mark.parametrize("key, action", [
    ("user.email", Action.DELETE),
    ("http.request.header.cookie", Action.DELETE),
    ("x.http.request.header.cookie", None),  # the pattern is anchored with ^
    ("user.id", Action.HASH),
    ("secret", Action.HASH),
    ("db_secret_token", Action.HASH),  # Go MatchString: a match anywhere in the key
    ("user.name", None),
])
def test_collector_patterns_keep_their_match_anywhere_meaning(key, action):
    policy = load(POLICIES / "collector_attributes.yaml", {})
    assert policy.decider("metrics", Level.DATAPOINT).decide(key).action is action


def test_migrated_hash_equals_the_collector_hash_for_strings():
    policy = load(POLICIES / "collector_attributes.yaml", {})  # no key: sha256 is unkeyed
    req = ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add()
    for key, value in [("user.id", "u-123"), ("user.email", "a@b.c"), ("http.route", "/x")]:
        span.attributes.append(KeyValue(key=key, value=AnyValue(string_value=value)))
    scrub("traces", req, policy)
    assert [(kv.key, kv.value.string_value) for kv in span.attributes] == [
        ("user.id", hashlib.sha256(b"u-123").hexdigest()),
        ("http.route", "/x"),
    ]


def test_unsupported_collector_settings_are_located_errors():
    path = POLICIES / "collector_unsupported.yaml"
    with pytest.raises(PolicyError) as info:
        load_file(path)
    assert info.value.errors == [
        f"{path}:5:17: processors.attributes/pii.actions[0].action: collector action 'upsert' has no redact-proxy equivalent; only delete and hash migrate",
        f"{path}:7:9: processors.attributes/pii.actions[1]: needs `key:` or `pattern:`",
        f"{path}:9:5: processors.attributes/scoped.include: unknown field for an attributes processor migrated to redact-proxy; expected one of: actions",
    ]


@pytest.mark.parametrize("text, expected", [
    ("""
     processors:
       batch: {}
     """, ["c.yaml:2:3: processors: no attributes/* processor with delete or hash actions found"]),
    ("""
     processors: []
     """, ["c.yaml:1:13: processors: expected a mapping, got a list"]),
    ("""
     processors:
       attributes/x: 3
     """, ["c.yaml:2:17: processors.attributes/x: expected a mapping, got int 3"]),
    ("""
     processors:
       attributes/x: {}
     """, ["c.yaml:2:17: processors.attributes/x.actions: missing"]),
    ("""
     processors:
       attributes/x:
         actions: {}
     """, ["c.yaml:3:14: processors.attributes/x.actions: expected a list, got a mapping"]),
    ("""
     processors:
       attributes/x:
         actions:
           - key: a
             action: delete
             from_attribute: b
     """, ["c.yaml:6:9: processors.attributes/x.actions[0].from_attribute: unknown field for collector action delete; expected one of: action, key, pattern"]),
    ("""
     processors:
       attributes/x:
         actions:
           - key: a
     """, ["c.yaml:4:9: processors.attributes/x.actions[0].action: missing"]),
    # An invalid pattern is still a located error (reported when compiled).
    ("""
     processors:
       attributes/x:
         actions:
           - pattern: '(a'
             action: delete
     """, ["c.yaml:4:9: processors.attributes/x.actions[0]: invalid RE2 regex in patterns"]),
], ids=["no-attributes-processor", "processors-list", "processor-scalar", "no-actions",
        "actions-mapping", "unknown-action-field", "missing-action", "bad-pattern"])
def test_collector_config_errors(text, expected):
    assert errors_of(text) == expected


def test_a_policy_with_version_is_never_read_as_collector_config():
    with pytest.raises(PolicyError) as info:
        parse(b"version: 1\nprocessors: {}\nrules: []\n", "p.yaml")
    assert info.value.errors == [
        "p.yaml:2:1: processors: unknown field for a policy; expected one of: hash, rules, tests, version"
    ]


@pytest.mark.parametrize("value, collector_bytes", [
    (AnyValue(string_value="u-42"), b"u-42"),
    (AnyValue(int_value=42), (42).to_bytes(8, "little", signed=True)),
    (AnyValue(int_value=-1), (-1).to_bytes(8, "little", signed=True)),
    (AnyValue(bool_value=True), b"\x01"),
    (AnyValue(bool_value=False), b"\x00"),
    (AnyValue(double_value=1.5), __import__("struct").pack("<d", 1.5)),
], ids=["string", "int", "negative-int", "true", "false", "double"])
def test_imported_hash_reproduces_the_collectors_bytes_for_every_scalar(value, collector_bytes):
    # contrib internal/coreinternal/attraction/hasher.go: sha256 over these exact bytes.
    policy = compile_policy(parse(b"processors:\n  attributes/h:\n    actions:\n      - {key: k, action: hash}\n", "c.yaml"), {})
    req = ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add(name="s")
    span.attributes.add(key="k").value.CopyFrom(value)
    scrub("traces", req, policy)
    assert span.attributes[0].value.string_value == hashlib.sha256(collector_bytes).hexdigest()


def test_imported_hash_turns_containers_into_the_empty_string_as_the_collector_does():
    policy = compile_policy(parse(b"processors:\n  attributes/h:\n    actions:\n      - {key: k, action: hash}\n", "c.yaml"), {})
    req = ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add(name="s")
    span.attributes.add(key="k").value.kvlist_value.values.add(key="a").value.string_value = "secret"
    scrub("traces", req, policy)
    assert span.attributes[0].value.WhichOneof("value") == "string_value"
    assert span.attributes[0].value.string_value == ""
