"""OTLP/HTTP receiver (receivers/http.py), end to end: the OpenTelemetry SDK's
HTTP/protobuf exporters, hand-built OTLP-JSON and compressed bodies posted with aiohttp,
and every refusal the receiver answers itself."""

from __future__ import annotations

import copy
import gzip
import json
import zlib

import pytest
import zstandard
from opentelemetry.exporter.otlp.proto.http import Compression

from integration_otlp import (
    GONE, MARK, SIGNAL_NAMES, SIGNALS, assert_nothing_deleted_leaked, assert_redacted, attrs, build_request,
    check_sdk_arrival, items_of, malformed_json, malformed_protobuf, sensitive_attributes,
    to_otlp_json,
)
from integration_support import http_status, sdk_export

JSON = "application/json"
PROTOBUF = "application/x-protobuf"


@pytest.mark.parametrize("signal", SIGNAL_NAMES)
def test_sdk_http_exporter_is_redacted_on_the_way_upstream(routed, signal):
    proxy, upstream = routed
    data, ok = sdk_export(signal, "http", proxy)
    assert ok, "the SDK exporter's export failed"
    check_sdk_arrival(signal, data, upstream.received)


@pytest.mark.parametrize("signal", SIGNAL_NAMES)
def test_sdk_http_exporter_with_gzip(routed, signal):
    proxy, upstream = routed
    data, ok = sdk_export(signal, "http", proxy, compression=Compression.Gzip)
    assert ok
    check_sdk_arrival(signal, data, upstream.received)
    for r in upstream.received:
        assert r.headers.get("content-encoding", "identity") == "identity", "stale Content-Encoding upstream"


# --- OTLP-JSON ----------------------------------------------------------------------------

TRACE_HEX = "0af7651916cd43dd8448eb211c80319c"
SPAN_HEX = "b7ad6b7169203331"
PARENT_HEX = "00f067aa0ba902b7"
HEALTH_SPAN_HEX = "b7ad6b7169203332"
LINK_TRACE_HEX = "4bf92f3577b34da6a3ce929d0e0e4736"
LINK_SPAN_HEX = "53995c3f42cd8ad8"


def kv(key, value: dict) -> dict:
    return {"key": key, "value": value}


def sensitive_json_attributes() -> list:
    a = sensitive_attributes()
    return [
        kv("user.email", {"stringValue": a["user.email"]}),
        kv(f"secret.{MARK}", {"stringValue": a[f"secret.{MARK}"]}),
        kv("user.id", {"stringValue": a["user.id"]}),
        kv("session.id", {"intValue": "4242"}),  # int64 as a string ...
        kv("retry.count", {"intValue": 7}),  # ... and as a number: both are OTLP-JSON
        kv(f"keep.{MARK}", {"stringValue": a[f"keep.{MARK}"]}),
        kv("http.route", {"stringValue": "/checkout"}),
    ]


def hand_built_traces_json() -> dict:
    """OTLP-JSON as an application would write it: lowerCamelCase, hex ids, int64 both
    ways, enums as integers."""
    return {"resourceSpans": [{
        "resource": {"attributes": [kv("service.name", {"stringValue": "itest-json"}), *sensitive_json_attributes()]},
        "scopeSpans": [{
            "scope": {"name": f"itest.json.{MARK}", "version": "1.0"},
            "spans": [
                {
                    "traceId": TRACE_HEX, "spanId": SPAN_HEX, "parentSpanId": PARENT_HEX,
                    "name": f"POST /checkout {MARK}", "kind": 2,
                    "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": 1700000000500000000,
                    "attributes": sensitive_json_attributes(),
                    "events": [{"timeUnixNano": "1700000000100000000", "name": f"charged {MARK}",
                                "attributes": sensitive_json_attributes()}],
                    "links": [{"traceId": LINK_TRACE_HEX, "spanId": LINK_SPAN_HEX,
                               "attributes": [kv(f"keep.{MARK}", {"stringValue": MARK})]}],
                    "status": {"code": 1},
                },
                {
                    "traceId": TRACE_HEX, "spanId": HEALTH_SPAN_HEX, "name": "GET /healthz", "kind": 2,
                    "startTimeUnixNano": 1700000000000000000, "endTimeUnixNano": "1700000000000100000",
                    "attributes": [kv("url.path", {"stringValue": "/healthz"})],
                },
            ],
        }],
    }]}


EXPECTED_JSON_ATTRIBUTES = {"retry.count": 7}


def check_hand_built_span(span) -> None:
    assert span.trace_id == bytes.fromhex(TRACE_HEX)
    assert span.span_id == bytes.fromhex(SPAN_HEX)
    assert span.parent_span_id == bytes.fromhex(PARENT_HEX)
    assert span.name == f"POST /checkout {MARK}"
    assert span.kind == 2 and span.status.code == 1
    assert (span.start_time_unix_nano, span.end_time_unix_nano) == (1700000000000000000, 1700000000500000000)
    assert_redacted(attrs(span.attributes), extra=EXPECTED_JSON_ATTRIBUTES)
    assert_redacted(attrs(span.events[0].attributes), extra=EXPECTED_JSON_ATTRIBUTES)
    assert span.events[0].time_unix_nano == 1700000000100000000
    assert span.links[0].trace_id == bytes.fromhex(LINK_TRACE_HEX)
    assert span.links[0].span_id == bytes.fromhex(LINK_SPAN_HEX)
    assert attrs(span.links[0].attributes) == {f"keep.{MARK}": MARK}


def test_json_to_http_upstream_stays_json_with_hex_ids(proxy_to_http, http_upstream, http_export):
    result = http_export(proxy_to_http, "traces", json.dumps(hand_built_traces_json()).encode(), content_type=JSON)
    assert result.status == 200, result.body
    assert result.content_type == JSON
    assert isinstance(json.loads(result.body), dict)
    [received] = http_upstream.received
    assert received.content_type == JSON
    assert_nothing_deleted_leaked([received])
    tree = json.loads(received.raw)
    [span_json] = tree["resourceSpans"][0]["scopeSpans"][0]["spans"]
    # The same hex strings, not base64 (OTLP spec, "JSON Protobuf Encoding").
    assert (span_json["traceId"], span_json["spanId"], span_json["parentSpanId"]) == (TRACE_HEX, SPAN_HEX, PARENT_HEX)
    assert (span_json["links"][0]["traceId"], span_json["links"][0]["spanId"]) == (LINK_TRACE_HEX, LINK_SPAN_HEX)
    [span] = items_of("traces", received.message)
    check_hand_built_span(span)
    assert_redacted(attrs(received.message.resource_spans[0].resource.attributes),
                    extra={"service.name": "itest-json", **EXPECTED_JSON_ATTRIBUTES})


def test_json_to_grpc_upstream_becomes_protobuf_with_ids_byte_for_byte(proxy_to_grpc, grpc_upstream, http_export):
    result = http_export(proxy_to_grpc, "traces", json.dumps(hand_built_traces_json()).encode(), content_type=JSON)
    assert result.status == 200, result.body
    assert result.content_type == JSON
    assert isinstance(json.loads(result.body), dict)
    [received] = grpc_upstream.received
    assert received.parse_error is None
    assert_nothing_deleted_leaked([received])
    [span] = items_of("traces", received.message)
    check_hand_built_span(span)


@pytest.mark.parametrize("signal", ["metrics", "logs"])
def test_json_metrics_and_logs_with_int64_as_numbers(routed, http_export, signal):
    proxy, upstream = routed
    tree = to_otlp_json(build_request(signal, items=2))  # int64 as strings, hex ids
    numbers = copy.deepcopy(tree)
    first = numbers["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["sum"]["dataPoints"][0] \
        if signal == "metrics" else numbers["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    first["timeUnixNano"] = int(first["timeUnixNano"])  # the same int64 as a JSON number
    if signal == "metrics":
        first["asInt"] = int(first["asInt"])
    result = http_export(proxy, signal, json.dumps(numbers).encode(), content_type=JSON)
    assert result.status == 200, result.body
    assert result.content_type == JSON
    [received] = upstream.received
    assert_nothing_deleted_leaked([received])
    sent = items_of(signal, build_request(signal, items=2))
    arrived = items_of(signal, received.message)
    assert len(arrived) == 2
    for before, after in zip(sent, arrived):
        assert after.time_unix_nano == before.time_unix_nano == 1_700_000_000_000_000_000
        extra = {"n": attrs(before.attributes)["n"]} if signal == "metrics" else None
        assert_redacted(attrs(after.attributes), extra=extra)
        if signal == "metrics":
            assert after.as_int == before.as_int
        else:
            assert (after.trace_id, after.span_id) == (before.trace_id, before.span_id)
    if upstream.received[0].content_type == JSON:
        records = json.loads(received.raw)
        if signal == "logs":
            record = records["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
            assert (record["traceId"], record["spanId"]) == (before.trace_id.hex(), before.span_id.hex())


# --- compression ----------------------------------------------------------------------------


def _compress(encoding: str, data: bytes) -> bytes:
    if encoding == "gzip":
        return gzip.compress(data)
    if encoding == "deflate":
        return zlib.compress(data)
    return zstandard.ZstdCompressor().compress(data)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd"])
@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
def test_compressed_bodies_are_accepted_and_forwarded_without_stale_encoding(routed, http_export, encoding,
                                                                               content_type):
    proxy, upstream = routed
    request = build_request("traces", items=3)
    body = request.SerializeToString() if content_type == PROTOBUF else json.dumps(to_otlp_json(request)).encode()
    result = http_export(proxy, "traces", _compress(encoding, body), content_type=content_type,
                         headers={"Content-Encoding": encoding})
    assert result.status == 200, result.body
    assert result.content_type == content_type
    [received] = upstream.received
    # The capture decodes by the headers it got: a stale Content-Encoding would make it
    # gunzip plain bytes (or the reverse) and fail.
    assert received.parse_error is None
    assert received.headers.get("content-encoding", "identity") == "identity"
    assert_nothing_deleted_leaked([received])
    arrived = items_of("traces", received.message)
    assert [s.span_id for s in arrived] == [s.span_id for s in items_of("traces", request)]
    for span in arrived:
        assert_redacted(attrs(span.attributes))


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["protobuf", "json-syntax", "json-not-otlp", "json-bad-id", "gzip-garbage",
                                  "gzip-truncated"])
def test_malformed_bodies_are_400_and_not_forwarded(proxy_to_grpc, grpc_upstream, http_export, case):
    good = build_request("traces").SerializeToString()
    headers, content_type = {}, PROTOBUF
    if case == "protobuf":
        body = malformed_protobuf("traces")
    elif case == "json-syntax":
        body, content_type = malformed_json(), JSON
    elif case == "json-not-otlp":
        body, content_type = json.dumps({"resourceSpans": f"{MARK} {GONE}"}).encode(), JSON
    elif case == "json-bad-id":
        tree = to_otlp_json(build_request("traces"))
        tree["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] = f"zz{MARK}"
        body, content_type = json.dumps(tree).encode(), JSON
    elif case == "gzip-garbage":
        body, headers = b"\x1f\x8b\x08\x00" + MARK.encode() + b"\xff" * 32 + GONE.encode(), {"Content-Encoding": "gzip"}
    else:
        body, headers = gzip.compress(good)[:-12], {"Content-Encoding": "gzip"}
    result = http_export(proxy_to_grpc, "traces", body, content_type=content_type, headers=headers)
    assert result.status == 400
    assert result.content_type == content_type, "errors answer in the request's content type"
    status = http_status(result)
    assert status.code == 3  # INVALID_ARGUMENT
    assert MARK not in status.message
    assert grpc_upstream.received == []


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "", "application/grpc"])
def test_unsupported_content_type_is_415(proxy_to_grpc, grpc_upstream, http_export, content_type):
    result = http_export(proxy_to_grpc, "traces", build_request("traces"), content_type=content_type)
    assert result.status == 415
    assert grpc_upstream.received == []


@pytest.mark.parametrize("encoding", ["br", "compress", "snappy"])
def test_unsupported_content_encoding_is_415(proxy_to_grpc, grpc_upstream, http_export, encoding):
    result = http_export(proxy_to_grpc, "traces", build_request("traces"), headers={"Content-Encoding": encoding})
    assert result.status == 415
    assert grpc_upstream.received == []


@pytest.mark.parametrize("path", ["/v1/profiles", "/v2/traces", "/", "/v1/traces/extra", f"/v1/{MARK}"])
def test_wrong_path_is_404(proxy_to_grpc, grpc_upstream, http, path):
    result = http("POST", proxy_to_grpc.http_url + path, build_request("traces").SerializeToString(),
                  {"Content-Type": PROTOBUF})
    assert result.status == 404
    assert grpc_upstream.received == []


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("signal", SIGNAL_NAMES)
def test_wrong_method_is_405(proxy_to_grpc, grpc_upstream, http, method, signal):
    result = http(method, proxy_to_grpc.http_url + SIGNALS[signal].http_path,
                  build_request(signal).SerializeToString(), {"Content-Type": PROTOBUF})
    assert result.status == 405
    assert "POST" in result.headers.get("allow", "")
    assert grpc_upstream.received == []


@pytest.mark.parametrize("content_type", ["application/x-protobuf; charset=binary", "application/protobuf",
                                          "application/json; charset=utf-8", "Application/JSON"])
def test_content_type_parameters_and_aliases_are_accepted(proxy_to_http, http_upstream, http_export, content_type):
    request = build_request("metrics")
    is_json = "json" in content_type.lower()
    body = json.dumps(to_otlp_json(request)).encode() if is_json else request.SerializeToString()
    result = http_export(proxy_to_http, "metrics", body, content_type=content_type)
    assert result.status == 200, result.body
    assert result.content_type == (JSON if is_json else PROTOBUF)
    [received] = http_upstream.received
    assert received.content_type == (JSON if is_json else PROTOBUF)
    [point] = items_of("metrics", received.message)
    assert_redacted(attrs(point.attributes), extra={"n": 0})


def test_protobuf_in_protobuf_out(proxy_to_http, http_upstream, http_export):
    result = http_export(proxy_to_http, "logs", build_request("logs"))
    assert result.status == 200
    assert result.content_type == PROTOBUF
    SIGNALS["logs"].response.FromString(result.body)
    [received] = http_upstream.received
    assert received.content_type == PROTOBUF
    [record] = items_of("logs", received.message)
    assert_redacted(attrs(record.attributes))
    assert GONE not in str(record.body)


def _leaf() -> dict:
    """A kvlist with a deleted key and a kept key: the bottom of a deep nesting."""
    return {"kvlistValue": {"values": [kv(f"secret.{MARK}", {"stringValue": GONE}),
                                       kv("leaf", {"stringValue": MARK})]}}


def _nested_traces(depth: int) -> bytes:
    """Written as text: deeper than json.dumps (or the protobuf decoder) recurses."""
    tree = to_otlp_json(build_request("traces"))
    tree["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"].append(kv("deep", {"stringValue": "@@"}))
    inner = json.dumps(_leaf())
    for i in reversed(range(depth - 1)):
        inner = '{"kvlistValue": {"values": [{"key": "level%d", "value": %s}]}}' % (i, inner)
    return json.dumps(tree).replace('{"stringValue": "@@"}', inner).encode()


def test_keys_deep_inside_kvlists_are_scrubbed(routed, http_export):
    proxy, upstream = routed
    result = http_export(proxy, "traces", _nested_traces(20), content_type=JSON)
    assert result.status == 200, result.body
    [received] = upstream.received
    assert_nothing_deleted_leaked([received])
    value = attrs(items_of("traces", received.message)[0].attributes)["deep"]
    for i in range(19):
        value = value[f"level{i}"]
    assert value == {"leaf": MARK}


def test_nesting_deeper_than_the_decoder_allows_is_400_not_a_crash(proxy_to_grpc, grpc_upstream, http_export):
    result = http_export(proxy_to_grpc, "traces", _nested_traces(400), content_type=JSON)
    assert result.status == 400
    assert grpc_upstream.received == []
    assert http_export(proxy_to_grpc, "traces", build_request("traces")).status == 200
