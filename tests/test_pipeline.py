"""pipeline.py in process: one body in, the scrubbed batch out to the forwarder, counted;
admission refuses past either budget; a failing scrub refuses the batch (fail closed);
nothing is forwarded for a batch whose items were all dropped; an upstream error is
counted and passed on. The real Pipeline, policy and Telemetry; only upstream is a
recorder (helpers/inproc.py)."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from helpers import inproc
from redact_proxy import pipeline as pipeline_module
from redact_proxy.codec import Format
from redact_proxy.errors import Overloaded, RedactionFailed, UpstreamUnavailable
from redact_proxy.signals import BY_NAME

TRACES = BY_NAME["traces"]


def _body(*attrs: tuple[str, str], spans: int = 1) -> bytes:
    req = ExportTraceServiceRequest()
    scope = req.resource_spans.add().scope_spans.add()
    for i in range(spans):
        span = scope.spans.add(name="op", trace_id=b"\x01" * 16, span_id=bytes([i + 1]) * 8)
        for key, value in attrs:
            kv = span.attributes.add(key=key)
            kv.value.string_value = value
    return req.SerializeToString()


def _keys(batch) -> list[str]:
    return [kv.key for rs in batch.message.resource_spans for ss in rs.scope_spans for sp in ss.spans
            for kv in sp.attributes]


async def test_a_body_is_scrubbed_forwarded_and_counted():
    rec = inproc.Recorder()
    p = inproc.pipeline(rec)
    await p.export(TRACES, "http", _body(("secret", "s3cr3t"), ("plain", "x"), spans=2), Format.PROTOBUF)
    [batch] = rec.batches
    assert _keys(batch) == ["plain", "plain"]
    assert b"s3cr3t" not in batch.to_bytes(Format.PROTOBUF)
    t = p.telemetry
    assert inproc.sample(t, "redact_proxy_received_items_total", signal="traces", transport="http") == 2
    assert inproc.sample(t, "redact_proxy_forwarded_items_total", signal="traces") == 2
    assert inproc.sample(t, "redact_proxy_redactions_total", signal="traces", rule="secret", action="delete") == 2
    assert p.inflight == 0 and p.inflight_bytes == 0


async def test_a_body_the_policy_leaves_alone_is_forwarded_as_it_came():
    rec = inproc.Recorder()
    body = _body(("plain", "x"))
    await inproc.pipeline(rec).export(TRACES, "grpc", body, Format.PROTOBUF)
    assert rec.batches[0].to_bytes(Format.PROTOBUF) == body


def test_admission_refuses_past_either_budget_and_releases_on_exit():
    p = inproc.pipeline(inproc.Recorder(), max_inflight=2, max_inflight_bytes=100)
    with p.admit(60):
        with pytest.raises(Overloaded):
            p.admit(41)  # bytes
        with p.admit(40), pytest.raises(Overloaded):
            p.admit(0)  # requests
    assert (p.inflight, p.inflight_bytes) == (0, 0)
    assert Overloaded("m").outcome().http_status == 503


async def test_a_failing_scrub_refuses_the_batch(monkeypatch):
    def broken(*_args):
        raise KeyError("a bug")

    monkeypatch.setattr(pipeline_module, "scrub", broken)
    rec = inproc.Recorder()
    with pytest.raises(RedactionFailed):
        # Not provably untouched (a key the policy acts on), so the scrub walk runs.
        await inproc.pipeline(rec).export(TRACES, "http", _body(("secret", "x")), Format.PROTOBUF)
    assert rec.batches == []


async def test_a_batch_with_every_item_dropped_is_answered_without_upstream():
    rec = inproc.Recorder()
    rec.fail = AssertionError("nothing may be forwarded")
    compiled = inproc.policy(b"""
version: 1
hash: {algorithm: sha256}
rules:
  - {name: drop-health, action: drop, when: {key: route, equals: /healthz}}
""")
    response = await inproc.pipeline(rec, compiled).export(TRACES, "http", _body(("route", "/healthz"), spans=3),
                                                           Format.PROTOBUF)
    assert response == TRACES.response()


async def test_an_upstream_error_is_counted_and_passed_on():
    rec = inproc.Recorder()
    rec.fail = UpstreamUnavailable("upstream unreachable (ConnectionRefusedError)", code="connect")
    p = inproc.pipeline(rec)
    with pytest.raises(UpstreamUnavailable):
        await p.export(TRACES, "grpc", _body(("plain", "x")), Format.PROTOBUF)
    assert inproc.sample(p.telemetry, "redact_proxy_upstream_errors_total", signal="traces", code="connect") == 1
    assert inproc.sample(p.telemetry, "redact_proxy_forwarded_items_total", signal="traces") == 0
