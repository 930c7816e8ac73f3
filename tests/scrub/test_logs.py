"""scrub/logs.py: resource, scope and log record attributes, keys inside structured
(kvlist / array) bodies at any depth, string bodies untouched; drop rules on records."""

from __future__ import annotations

import copy

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from redact_proxy.policy.compile import load
from redact_proxy.scrub import scrub
from scrub_support import ENV, H, POLICIES, av, kvs


def record(n: int, attributes: dict, body=None) -> LogRecord:
    r = LogRecord(
        time_unix_nano=1_700_000_000_000_000_000 + n, observed_time_unix_nano=2 + n,
        severity_number=9, severity_text="INFO", trace_id=bytes([n]) * 16, span_id=bytes([n]) * 8,
        flags=1, attributes=kvs(attributes), event_name=f"event-{n}",
    )
    if body is not None:
        r.body.CopyFrom(av(body))
    return r


def request_of(records: list[LogRecord], attrs: dict) -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add(schema_url="s")
    rl.resource.attributes.extend(kvs(attrs))
    sl = rl.scope_logs.add()
    sl.scope.name = "logger"
    sl.scope.attributes.extend(kvs(attrs))
    sl.log_records.extend(records)
    return req


SENSITIVE = {"secret": "s3cr3t", "uid": "alice", "keep": "k"}
SCRUBBED = kvs({"uid": AnyValue(string_value=H(b"alice")), "keep": "k"})


def test_every_level_and_structured_bodies():
    policy = load(POLICIES / "everywhere.yaml", ENV)
    body = {
        "secret": "s",
        "message": "user secret uid alice",
        "ctx": {"uid": "alice", "list": [{"secret": 1, "n": 2}, "secret"]},
    }
    req = request_of([
        record(1, SENSITIVE, body),
        record(2, SENSITIVE, "secret=s3cr3t uid=alice"),  # a string body is not scrubbed by key rules
        record(3, SENSITIVE, [{"secret": "x"}, {"uid": True}]),
        record(4, SENSITIVE),  # no body at all
    ], SENSITIVE)
    before = copy.deepcopy(req)
    report = scrub("logs", req, policy)

    rl = req.resource_logs[0]
    assert list(rl.resource.attributes) == SCRUBBED
    assert list(rl.scope_logs[0].scope.attributes) == SCRUBBED
    r1, r2, r3, r4 = rl.scope_logs[0].log_records
    for r in (r1, r2, r3, r4):
        assert list(r.attributes) == SCRUBBED
    assert r1.body == av({
        "message": "user secret uid alice",
        "ctx": {"uid": AnyValue(string_value=H(b"alice")), "list": [{"n": 2}, "secret"]},
    })
    assert r2.body == av("secret=s3cr3t uid=alice")
    assert r3.body == av([{}, {"uid": AnyValue(string_value=H(b"true"))}])
    assert not r4.HasField("body")
    # ids, times, severities, event names survive
    for r, r0 in zip(rl.scope_logs[0].log_records, before.resource_logs[0].scope_logs[0].log_records, strict=True):
        assert (r.trace_id, r.span_id, r.time_unix_nano, r.observed_time_unix_nano) == (
            r0.trace_id, r0.span_id, r0.time_unix_nano, r0.observed_time_unix_nano)
        assert (r.severity_number, r.severity_text, r.flags, r.event_name) == (
            r0.severity_number, r0.severity_text, r0.flags, r0.event_name)
    assert (rl.schema_url, rl.scope_logs[0].scope.name) == ("s", "logger")
    # 2 (resource, scope) + 4 records + body: r1 two, r3 one
    assert report.redactions == [2 + 4 + 2 + 1, 2 + 4 + 1 + 1]
    assert (report.items_in, report.items_out, report.changed) == (4, 4, True)


def test_levels_restrictions_in_logs():
    policy = load(POLICIES / "scoped.yaml", {})
    attrs = {"a": "1", "b": "2", "c": "3", "d": "4"}
    req = request_of([record(1, attrs, dict(attrs))], attrs)
    report = scrub("logs", req, policy)
    rl = req.resource_logs[0]
    (r,) = rl.scope_logs[0].log_records
    keys = lambda attrs: {kv.key for kv in attrs}  # noqa: E731
    assert keys(rl.resource.attributes) == {"a", "d"}  # b: resource; c: logs
    assert keys(rl.scope_logs[0].scope.attributes) == {"a", "b", "d"}
    assert keys(r.attributes) == {"a", "b", "d"}
    assert keys(r.body.kvlist_value.values) == {"a", "b", "d"}  # body keys are at level log
    assert report.redactions == [0, 1, 4, 0]


def test_keep_only_for_traces_does_not_touch_logs():
    policy = load(POLICIES / "keep_only_spans.yaml", ENV)
    req = request_of([record(1, {"random": "x", "user.email": "e"}, {"random": 1})], {"random": "r"})
    scrub("logs", req, policy)
    (r,) = req.resource_logs[0].scope_logs[0].log_records
    assert list(r.attributes) == kvs({"random": "x"})
    assert r.body == av({"random": 1})
    assert list(req.resource_logs[0].resource.attributes) == kvs({"random": "r"})


def test_drop_records_and_prune_empty_containers():
    policy = load(POLICIES / "drop.yaml", {})
    req = ExportLogsServiceRequest()
    a = req.resource_logs.add()
    a.resource.attributes.extend(kvs({"service.name": "a"}))
    sl = a.scope_logs.add()
    sl.scope.name = "kept"
    sl.log_records.extend([
        record(1, {"peer": "internal-3"}),  # drop-internal (matches, full)
        record(2, {"peer": "internal-3b", "url.path": "/x"}),  # kept; url.path deleted
        record(3, {"synthetic": "true"}),  # text "true" equals YAML true
    ])
    emptied = a.scope_logs.add()
    emptied.scope.name = "emptied"
    emptied.log_records.extend([record(4, {"url.path": "/health"})])
    b = req.resource_logs.add()
    b.resource.attributes.extend(kvs({"service.name": "b"}))
    b.scope_logs.add().log_records.extend([record(5, {"http.status": 204})])

    report = scrub("logs", req, policy)
    assert len(req.resource_logs) == 1
    assert [s.scope.name for s in req.resource_logs[0].scope_logs] == ["kept"]
    (kept,) = req.resource_logs[0].scope_logs[0].log_records
    assert list(kept.attributes) == kvs({"peer": "internal-3b"})
    assert kept.trace_id == b"\x02" * 16
    assert (report.items_in, report.items_out) == (5, 1)
    assert report.dropped == [1, 1, 1, 1, 0]
    assert report.redactions == [0, 0, 0, 0, 1]


def test_nothing_matched_reports_unchanged():
    policy = load(POLICIES / "drop.yaml", {})
    req = request_of([record(1, {"url.full": "/x"}, "body")], {"service.name": "s"})
    before = copy.deepcopy(req)
    report = scrub("logs", req, policy)
    assert req == before
    assert (report.items_in, report.items_out, report.changed) == (1, 1, False)
    assert report.dropped == [0] * 5 and report.redactions == [0] * 5
