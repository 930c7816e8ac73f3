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
from redact_proxy.codec import Format, encode
from redact_proxy.engine import Engine
from redact_proxy.errors import Overloaded, RedactionFailed, UpstreamUnavailable
from redact_proxy.signals import TRACES, Transport


def _body(*attrs: tuple[str, str], spans: int = 1) -> bytes:
    req = ExportTraceServiceRequest()
    scope = req.resource_spans.add().scope_spans.add()
    for i in range(spans):
        span = scope.spans.add(name="op", trace_id=b"\x01" * 16, span_id=bytes([i + 1]) * 8)
        for key, value in attrs:
            kv = span.attributes.add(key=key)
            kv.value.string_value = value
    return req.SerializeToString()


def _keys(sent: bytes) -> list[str]:
    """The attribute keys of the request as it left the proxy (the recorder's bytes)."""
    req = ExportTraceServiceRequest.FromString(sent)
    return [kv.key for rs in req.resource_spans for ss in rs.scope_spans for sp in ss.spans for kv in sp.attributes]


async def test_a_body_is_scrubbed_forwarded_and_counted():
    rec = inproc.Recorder()
    p = inproc.pipeline(rec)
    await p.export(TRACES, Transport.HTTP, _body(("secret", "s3cr3t"), ("plain", "x"), spans=2), Format.PROTOBUF)
    [sent] = rec.sent
    assert _keys(sent) == ["plain", "plain"]
    assert b"s3cr3t" not in sent
    t = p.telemetry
    assert inproc.sample(t, "redact_proxy_received_items_total", signal="traces", transport="http") == 2
    assert inproc.sample(t, "redact_proxy_forwarded_items_total", signal="traces") == 2
    assert inproc.sample(t, "redact_proxy_redactions_total", signal="traces", rule="secret", action="delete") == 2
    assert p.inflight == 0 and p.inflight_bytes == 0


async def test_a_body_the_policy_leaves_alone_is_forwarded_as_it_came():
    rec = inproc.Recorder()
    body = _body(("plain", "x"))
    await inproc.pipeline(rec).export(TRACES, Transport.GRPC, body, Format.PROTOBUF)
    assert rec.sent == [body]


def test_admission_refuses_past_either_budget_and_releases_on_exit():
    p = inproc.pipeline(inproc.Recorder(), max_inflight=2, max_inflight_bytes=100)
    with p.admission(60):
        with pytest.raises(Overloaded):
            p.admission(41)  # bytes
        with p.admission(40), pytest.raises(Overloaded):
            p.admission(0)  # requests
    assert (p.inflight, p.inflight_bytes) == (0, 0)
    assert Overloaded("m").outcome().http_status == 503


def _broken(*_args):
    raise KeyError("a bug")


# Each scrubber the pipeline runs, broken in turn, on a body of the path it takes:
# protobuf of known fields and OTLP-JSON go to the native engine, a body with a field this
# OTLP version does not know to the reference scrubber (it drops the field).
@pytest.mark.parametrize("fmt, unknown, broken", [
    (Format.PROTOBUF, False, (Engine, "scrub")),
    (Format.JSON, False, (Engine, "scrub")),
    (Format.PROTOBUF, True, (pipeline_module, "scrub")),
], ids=["engine", "engine-json", "reference"])
async def test_a_failing_scrub_refuses_the_batch(monkeypatch, fmt, unknown, broken):
    monkeypatch.setattr(*broken, _broken)
    rec = inproc.Recorder()
    # Not provably untouched (a key the policy acts on), so a scrub runs.
    body = encode(ExportTraceServiceRequest.FromString(_body(("secret", "x"))), fmt)
    if unknown:
        body += b"\xa0\x06\x01"  # field 100, a varint: unknown to this OTLP version
    with pytest.raises(RedactionFailed):
        await inproc.pipeline(rec).export(TRACES, Transport.HTTP, body, fmt)
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
    response = await inproc.pipeline(rec, compiled).export(TRACES, Transport.HTTP, _body(("route", "/healthz"), spans=3),
                                                           Format.PROTOBUF)
    assert response == TRACES.response()


async def test_an_upstream_error_is_counted_and_passed_on():
    rec = inproc.Recorder()
    rec.fail = UpstreamUnavailable("upstream unreachable (ConnectionRefusedError)", code="connect")
    p = inproc.pipeline(rec)
    with pytest.raises(UpstreamUnavailable):
        await p.export(TRACES, Transport.GRPC, _body(("plain", "x")), Format.PROTOBUF)
    assert inproc.sample(p.telemetry, "redact_proxy_upstream_errors_total", signal="traces", code="connect") == 1
    assert inproc.sample(p.telemetry, "redact_proxy_forwarded_items_total", signal="traces") == 0
