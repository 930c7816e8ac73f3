"""OTLP/gRPC receiver (receivers/grpc.py), end to end with the OpenTelemetry SDK's gRPC
exporters and the real grpc client, to a gRPC and to an OTLP/HTTP upstream."""

from __future__ import annotations

import grpc
import pytest

from integration_otlp import (
    GONE, MARK, SIGNAL_NAMES, SIGNALS, build_request, check_sdk_arrival, malformed_protobuf,
)
from integration_support import grpc_call, grpc_export, sdk_export
from helpers import wire


@pytest.mark.parametrize("signal", SIGNAL_NAMES)
def test_sdk_grpc_exporter_is_redacted_on_the_way_upstream(routed, signal):
    proxy, upstream = routed
    data, ok = sdk_export(signal, "grpc", proxy)
    assert ok, "the SDK exporter's export failed"
    check_sdk_arrival(signal, data, upstream.received)


@pytest.mark.parametrize("signal", SIGNAL_NAMES)
def test_sdk_grpc_exporter_with_gzip(routed, signal):
    proxy, upstream = routed
    data, ok = sdk_export(signal, "grpc", proxy, compression=grpc.Compression.Gzip)
    assert ok
    check_sdk_arrival(signal, data, upstream.received)
    for r in upstream.received:
        # An OTLP/HTTP upstream gets no Content-Encoding the body does not have (the
        # capture decodes by that header, so check_sdk_arrival would have failed too).
        assert r.headers.get("content-encoding", "identity") == "identity"


@pytest.mark.parametrize("signal", SIGNAL_NAMES)
def test_malformed_protobuf_is_invalid_argument_and_not_forwarded(proxy_to_grpc, grpc_upstream, signal):
    result = grpc_export(proxy_to_grpc, signal, malformed_protobuf(signal))
    assert result.code is grpc.StatusCode.INVALID_ARGUMENT
    assert MARK not in (result.details or "")
    assert grpc_upstream.received == []


@pytest.mark.parametrize("method", [
    "/opentelemetry.proto.collector.trace.v1.TraceService/Import",
    "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export",
    f"/{MARK}.Service/Export",
])
def test_unknown_method_is_unimplemented(proxy_to_grpc, grpc_upstream, method):
    result = grpc_call(proxy_to_grpc.grpc_target, method, SIGNALS["traces"].request().SerializeToString())
    assert result.code is grpc.StatusCode.UNIMPLEMENTED
    assert grpc_upstream.received == []


def test_empty_request_is_ok_and_nothing_is_forwarded(proxy_to_grpc, grpc_upstream):
    result = grpc_export(proxy_to_grpc, "traces", b"")
    assert result.code is grpc.StatusCode.OK
    response = SIGNALS["traces"].response.FromString(result.body)
    assert not response.HasField("partial_success")
    assert grpc_upstream.received == []


def test_batch_of_only_dropped_items_is_ok_and_nothing_is_forwarded(proxy_to_grpc, grpc_upstream):
    request = SIGNALS["traces"].request()
    spans = request.resource_spans.add().scope_spans.add().spans
    for i in range(3):
        span = spans.add(trace_id=b"\x07" * 16, span_id=bytes([i + 1]) * 8, name=f"GET /health {MARK}")
        span.attributes.add(key="url.path").value.string_value = "/health" if i % 2 else "/healthz"
    result = grpc_export(proxy_to_grpc, "traces", request)
    assert result.code is grpc.StatusCode.OK
    assert grpc_upstream.received == []


def with_unknown_fields(signal: str) -> bytes:
    """A request carrying fields this OTLP version does not define, at the top and inside
    an item, holding GONE: never scrubbed, so they must never be forwarded."""
    unknown = wire.field(977, f"{GONE}-unk".encode())
    request = build_request(signal)
    if signal == "traces":
        scope = request.resource_spans[0].scope_spans[0]
        span = scope.spans[0].SerializeToString() + unknown
        del scope.spans[:]
        scope.spans.add().MergeFromString(span)
    return request.SerializeToString() + unknown


@pytest.mark.parametrize("signal", SIGNAL_NAMES)
def test_unknown_protobuf_fields_are_not_forwarded(routed, signal):
    proxy, upstream = routed
    body = with_unknown_fields(signal)
    assert body.count(GONE.encode() + b"-unk") == (2 if signal == "traces" else 1)
    result = grpc_export(proxy, signal, body)
    assert result.code is grpc.StatusCode.OK
    [received] = upstream.received
    assert GONE.encode() not in received.raw
    assert received.parse_error is None
