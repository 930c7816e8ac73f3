"""policy/collector.py on a whole collector config in the style of the one redact-proxy
replaces (tests/testdata/collector-config-railgun.yaml): receivers, exporters, batch and
memory_limiter processors and service pipelines around two attributes processors. Loaded as
a policy it deletes what ``attributes/remove_sensitive`` deleted and hashes ``user.id`` with
the collector's own unkeyed SHA-256, so hashes already stored in a backend stay comparable;
a config using an action with no faithful translation (``upsert``) is refused, naming the
action and its line (SPEC section 6, issue 5 item 5)."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from redact_proxy import cli
from redact_proxy.errors import PolicyError
from redact_proxy.policy import Action
from redact_proxy.policy.compile import load
from redact_proxy.scrub import scrub

TESTDATA = Path(__file__).resolve().parents[1] / "testdata"
RAILGUN = TESTDATA / "collector-config-railgun.yaml"
UPSERT = TESTDATA / "collector-config-upsert.yaml"

SENT = {
    "message.content": "see you at 5, bob",
    "user.email": "ada@example.com",
    "user.id": "u-10442",
    "http.route": "/rooms/:id/messages",
}


def sha256_hex(text: str) -> str:
    """What the collector's attributes processor `hash` stores for a string value."""
    return hashlib.sha256(text.encode()).hexdigest()


EXPECTED = {"user.id": sha256_hex("u-10442"), "http.route": "/rooms/:id/messages"}


def kvs(d: dict) -> list[KeyValue]:
    return [KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in d.items()]


def as_dict(attrs) -> dict:
    return {kv.key: kv.value.string_value for kv in attrs}


def test_railgun_collector_config_loads_as_its_two_attributes_processors():
    policy = load(RAILGUN, {})  # no hash key in the environment: sha256 is unkeyed
    assert [(r.name, r.action, r.keys, r.patterns) for r in policy.rules] == [
        ("attributes.remove_sensitive.0", Action.DELETE, ("message.content",), ()),
        ("attributes.remove_sensitive.1", Action.DELETE, ("user.email",), ()),
        ("attributes.hash_identifiers.0", Action.HASH, ("user.id",), ()),
    ]
    assert policy.sha256 == hashlib.sha256(RAILGUN.read_bytes()).hexdigest()


def test_railgun_config_deletes_and_hashes_like_the_collector_in_every_signal():
    policy = load(RAILGUN, {})
    traces = ExportTraceServiceRequest()
    rs = traces.resource_spans.add()
    rs.resource.attributes.extend(kvs(SENT))
    span = rs.scope_spans.add().spans.add(name="POST /rooms/:id/messages", attributes=kvs(SENT))
    event = span.events.add(name="sent", attributes=kvs(SENT))
    metrics = ExportMetricsServiceRequest()
    point = metrics.resource_metrics.add().scope_metrics.add().metrics.add(name="m").sum.data_points.add(
        as_int=1, attributes=kvs(SENT))
    logs = ExportLogsServiceRequest()
    record = logs.resource_logs.add().scope_logs.add().log_records.add(attributes=kvs(SENT))

    for signal, request in (("traces", traces), ("metrics", metrics), ("logs", logs)):
        report = scrub(signal, request, policy)
        assert report.changed

    for attrs in (rs.resource.attributes, span.attributes, event.attributes, point.attributes, record.attributes):
        assert as_dict(attrs) == EXPECTED


@pytest.mark.parametrize("value", ["u-10442", "", "üser-ß-東京", "a" * 10_000])
def test_migrated_hash_is_the_collectors_unkeyed_sha256(value):
    policy = load(RAILGUN, {"REDACT_PROXY_HASH_KEY": "a-key-that-must-not-be-used-0123"})
    req = ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add(attributes=kvs({"user.id": value}))
    scrub("traces", req, policy)
    assert as_dict(span.attributes) == {"user.id": sha256_hex(value)}


@pytest.mark.parametrize("value, collector_bytes", [
    (AnyValue(int_value=10442), struct.pack("<q", 10442)),  # numeric user ids: 8 little-endian bytes
    (AnyValue(bool_value=True), b"\x01"),
    (AnyValue(double_value=2.5), struct.pack("<d", 2.5)),
])
def test_migrated_hash_of_other_scalars_is_the_collectors_too(value, collector_bytes):
    # contrib internal/coreinternal/attraction/hasher.go (sha2Hasher): not the decimal text
    # a native policy hashes (SPEC 6), or ids hashed before the migration would not match.
    policy = load(RAILGUN, {})
    req = ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add()
    span.attributes.append(KeyValue(key="user.id", value=value))
    scrub("traces", req, policy)
    assert as_dict(span.attributes) == {"user.id": hashlib.sha256(collector_bytes).hexdigest()}


def test_check_accepts_the_railgun_config(capsys, monkeypatch):
    monkeypatch.delenv("REDACT_PROXY_HASH_KEY", raising=False)
    assert cli.main(["check", "--policy", str(RAILGUN)]) == 0
    out = capsys.readouterr().out
    assert "OK, 3 rules (2 delete, 1 hash)" in out
    assert "message.content" in out and "user.id" in out


def test_upsert_is_refused_naming_the_action_and_its_line():
    line = next(n for n, text in enumerate(UPSERT.read_text().splitlines(), 1) if "action: upsert" in text)
    with pytest.raises(PolicyError) as info:
        load(UPSERT, {})
    [error] = info.value.errors  # the valid delete/hash actions around it are no errors
    assert error.startswith(f"{UPSERT}:{line}:17: processors.attributes/remove_sensitive.actions[2].action: ")
    assert "'upsert'" in error
    assert "only delete and hash migrate" in error


def test_check_on_the_upsert_config_exits_2_with_the_located_error(capsys):
    assert cli.main(["check", "--policy", str(UPSERT)]) == 2
    err = capsys.readouterr().err
    assert f"{UPSERT}:19:17:" in err and "upsert" in err
