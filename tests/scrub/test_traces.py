"""scrub/traces.py: resource, scope, span, event and link attributes; drop rules on spans
(on original attributes) with empty scopes and resources pruned; the Report."""

from __future__ import annotations

import copy

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from redact_proxy.policy.compile import load
from redact_proxy.scrub import scrub
from scrub_support import ENV, H, POLICIES, kvs, pairs


def span(name: str, attributes: dict, n: int = 1) -> Span:
    return Span(
        trace_id=bytes([n]) * 16, span_id=bytes([n]) * 8, parent_span_id=bytes([n + 1]) * 8,
        name=name, start_time_unix_nano=1_700_000_000_000_000_000 + n,
        end_time_unix_nano=1_700_000_001_000_000_000 + n, attributes=kvs(attributes),
    )


SENSITIVE = {"secret": "s3cr3t", "uid": "alice", "keep": "k"}
SCRUBBED = {"uid": H(b"alice"), "keep": "k"}


def full_request() -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    for r in range(2):
        rs = req.resource_spans.add(schema_url="https://opentelemetry.io/schemas/1.26.0")
        rs.resource.attributes.extend(kvs(SENSITIVE))
        ss = rs.scope_spans.add()
        ss.scope.name, ss.scope.version = "lib", "1.0"
        ss.scope.attributes.extend(kvs(SENSITIVE))
        for n in range(2):
            s = ss.spans.add()
            s.CopyFrom(span(f"span-{r}-{n}", SENSITIVE, n=10 * r + n))
            ev = s.events.add(name="ev", time_unix_nano=5)
            ev.attributes.extend(kvs(SENSITIVE))
            link = s.links.add(trace_id=b"\x07" * 16, span_id=b"\x08" * 8, trace_state="k=v")
            link.attributes.extend(kvs(SENSITIVE))
    return req


def test_every_level_is_scrubbed_and_nothing_else_changes():
    policy = load(POLICIES / "everywhere.yaml", ENV)
    req = full_request()
    before = copy.deepcopy(req)
    report = scrub("traces", req, policy)
    assert (report.items_in, report.items_out) == (4, 4)
    assert report.changed
    assert report.redactions == [2 + 2 + 4 * 3, 2 + 2 + 4 * 3]  # resource, scope, span+event+link
    assert report.dropped == [0, 0]
    for rs in req.resource_spans:
        assert pairs(rs.resource.attributes) == SCRUBBED
        for ss in rs.scope_spans:
            assert pairs(ss.scope.attributes) == SCRUBBED
            for s in ss.spans:
                assert pairs(s.attributes) == SCRUBBED
                assert pairs(s.events[0].attributes) == SCRUBBED
                assert pairs(s.links[0].attributes) == SCRUBBED
    # everything but attributes (ids, names, times, schema urls) is untouched
    assert without_attributes(req) == without_attributes(before)


def without_attributes(req: ExportTraceServiceRequest) -> ExportTraceServiceRequest:
    req = copy.deepcopy(req)
    for rs in req.resource_spans:
        del rs.resource.attributes[:]
        for ss in rs.scope_spans:
            del ss.scope.attributes[:]
            for s in ss.spans:
                del s.attributes[:]
                for item in list(s.events) + list(s.links):
                    del item.attributes[:]
    return req


def test_nothing_matched_reports_unchanged():
    policy = load(POLICIES / "everywhere.yaml", ENV)
    req = ExportTraceServiceRequest()
    req.resource_spans.add().scope_spans.add().spans.append(span("s", {"http.route": "/x"}))
    before = copy.deepcopy(req)
    report = scrub("traces", req, policy)
    assert req == before
    assert (report.items_in, report.items_out, report.changed) == (1, 1, False)
    assert report.redactions == [0, 0] and report.dropped == [0, 0]


def test_signals_and_levels_restrictions():
    policy = load(POLICIES / "scoped.yaml", {})
    req = full_request_with({"a": "1", "b": "2", "c": "3", "d": "4"})
    report = scrub("traces", req, policy)
    rs = req.resource_spans[0]
    s = rs.scope_spans[0].spans[0]
    assert set(pairs(rs.resource.attributes)) == {"a", "c", "d"}  # b: resource only
    assert set(pairs(rs.scope_spans[0].scope.attributes)) == {"a", "b", "c", "d"}
    assert set(pairs(s.attributes)) == {"b", "c", "d"}  # a: traces span only
    assert set(pairs(s.events[0].attributes)) == {"a", "b", "c"}  # d: events and exemplars
    assert set(pairs(s.links[0].attributes)) == {"a", "b", "c", "d"}  # c: logs only
    assert report.redactions == [1, 1, 0, 1]


def full_request_with(attributes: dict) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(kvs(attributes))
    ss = rs.scope_spans.add()
    ss.scope.attributes.extend(kvs(attributes))
    s = ss.spans.add()
    s.CopyFrom(span("s", attributes))
    s.events.add(name="e").attributes.extend(kvs(attributes))
    s.links.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8).attributes.extend(kvs(attributes))
    return req


# --- drop -------------------------------------------------------------------------------


def test_drop_on_original_attributes_prunes_emptied_containers():
    policy = load(POLICIES / "drop.yaml", {})
    req = ExportTraceServiceRequest()
    # resource A: one scope keeps a span, the other loses its only span
    a = req.resource_spans.add()
    a.resource.attributes.extend(kvs({"service.name": "a"}))
    a1 = a.scope_spans.add()
    a1.scope.name = "a1"
    a1.spans.extend([
        span("health", {"url.path": "/health"}, 1),  # drop-health, though url.path is deleted too
        span("users", {"url.path": "/users", "http.status": 200}, 2),
        span("both", {"url.path": "/healthz", "http.status": 204}, 3),  # credited to the first rule
    ])
    a2 = a.scope_spans.add()
    a2.scope.name = "a2"
    a2.spans.extend([span("nocontent", {"http.status": 204}, 4)])  # int 204 == `equals: 204`
    # resource B: every span dropped -> the resource goes
    b = req.resource_spans.add()
    b.resource.attributes.extend(kvs({"service.name": "b"}))
    b.scope_spans.add().spans.extend([span("synthetic", {"synthetic": True}, 5)])
    # resource C: nothing dropped (drop-internal is for logs and metrics only)
    c = req.resource_spans.add()
    c.resource.attributes.extend(kvs({"service.name": "c"}))
    c.scope_spans.add().spans.extend([
        span("internal", {"peer": "internal-1"}, 6),
        span("status-as-text", {"http.status": "204"}, 7),  # text comparison: dropped too
        span("not-synthetic", {"synthetic": False}, 8),
    ])

    report = scrub("traces", req, policy)
    assert [pairs(rs.resource.attributes)["service.name"] for rs in req.resource_spans] == ["a", "c"]
    assert [ss.scope.name for ss in req.resource_spans[0].scope_spans] == ["a1"]
    assert [s.name for s in req.resource_spans[0].scope_spans[0].spans] == ["users"]
    assert [s.name for s in req.resource_spans[1].scope_spans[0].spans] == ["internal", "not-synthetic"]
    kept = req.resource_spans[0].scope_spans[0].spans[0]
    assert pairs(kept.attributes) == {"http.status": 200}  # url.path deleted after the drop
    assert kept.trace_id == b"\x02" * 16 and kept.span_id == b"\x02" * 8
    assert (report.items_in, report.items_out) == (8, 3)
    assert report.dropped == [2, 2, 1, 0, 0]
    assert report.redactions == [0, 0, 0, 0, 1]
    assert report.changed


def test_drop_keeps_containers_that_still_hold_spans():
    policy = load(POLICIES / "drop.yaml", {})
    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    ss.spans.extend([span("x", {"url.path": "/health"}, 1), span("y", {"url.path": "/y"}, 2)])
    report = scrub("traces", req, policy)
    assert len(req.resource_spans) == 1 and len(req.resource_spans[0].scope_spans) == 1
    assert [s.name for s in req.resource_spans[0].scope_spans[0].spans] == ["y"]
    assert (report.items_in, report.items_out, report.dropped) == (2, 1, [1, 0, 0, 0, 0])


def test_drop_everything_leaves_an_empty_request():
    policy = load(POLICIES / "drop.yaml", {})
    req = ExportTraceServiceRequest()
    req.resource_spans.add().scope_spans.add().spans.extend([span("x", {"url.path": "/health"})])
    report = scrub("traces", req, policy)
    assert req == ExportTraceServiceRequest()
    assert (report.items_in, report.items_out) == (1, 0)
