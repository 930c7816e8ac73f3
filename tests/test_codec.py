"""codec.py: Content-Encoding with a bounded output, protobuf and OTLP-JSON (hex ids)
both ways, Batch re-encoding only when needed; error messages never quote the body."""

from __future__ import annotations

import gzip as gzip_module
import json
import tracemalloc
import zlib

import pytest
import zstandard
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest, ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from redact_proxy import codec
from redact_proxy.codec import Batch, Format, decode, decode_response, decompress, encode, format_for
from redact_proxy.errors import MalformedRequest, RequestTooLarge, UnsupportedMediaType
from redact_proxy.signals import LOGS, METRICS, TRACES
from helpers import wire

MiB = 1024 * 1024
PAYLOAD = b"otlp payload " * 5000
SECRET = "SECRET-PII-0xdeadbeef"


# --- decompression ----------------------------------------------------------------------


@pytest.mark.parametrize("encoding", [None, "", "identity", " IDENTITY "])
def test_identity(encoding):
    assert decompress(PAYLOAD, encoding, len(PAYLOAD)) is PAYLOAD
    with pytest.raises(RequestTooLarge):
        decompress(PAYLOAD, encoding, len(PAYLOAD) - 1)


@pytest.mark.parametrize("encoding, body", [
    ("gzip", gzip_module.compress(PAYLOAD)),
    ("GZip", gzip_module.compress(PAYLOAD)),
    ("x-gzip", gzip_module.compress(PAYLOAD)),
    ("deflate", zlib.compress(PAYLOAD)),  # RFC 9110 deflate = zlib format
    ("deflate", gzip_module.compress(PAYLOAD)),  # sent as deflate by some clients
    ("zstd", zstandard.ZstdCompressor().compress(PAYLOAD)),
    ("gzip", codec.gzip(PAYLOAD)),
], ids=["gzip", "gzip-case", "x-gzip", "deflate-zlib", "deflate-gzip", "zstd", "own-gzip"])
def test_decompress(encoding, body):
    assert decompress(body, encoding, len(PAYLOAD)) == PAYLOAD
    with pytest.raises(RequestTooLarge):
        decompress(body, encoding, len(PAYLOAD) - 1)


def test_multi_member_gzip_is_read_whole():
    body = gzip_module.compress(b"first ") + gzip_module.compress(b"second ") + gzip_module.compress(b"third")
    assert decompress(body, "gzip", 100) == b"first second third"


def test_multi_frame_zstd_is_read_whole():
    c = zstandard.ZstdCompressor()
    assert decompress(c.compress(b"one ") + c.compress(b"two"), "zstd", 100) == b"one two"


@pytest.mark.parametrize("encoding, body, message", [
    ("gzip", gzip_module.compress(PAYLOAD)[:-6], "truncated gzip body"),
    ("gzip", gzip_module.compress(PAYLOAD)[:20], "truncated gzip body"),
    ("gzip", b"", "truncated gzip body"),
    ("gzip", b"not gzip at all " + SECRET.encode(), "corrupt gzip body"),
    ("gzip", gzip_module.compress(PAYLOAD) + b"trailing " + SECRET.encode(), "corrupt gzip body"),
    ("deflate", zlib.compress(PAYLOAD)[:-6], "truncated deflate body"),
    ("zstd", b"garbage " + SECRET.encode(), "corrupt zstd body"),
], ids=["gzip-truncated-tail", "gzip-truncated-head", "gzip-empty", "gzip-corrupt",
        "gzip-trailing-garbage", "deflate-truncated", "zstd-corrupt"])
def test_bad_compressed_bodies_are_malformed(encoding, body, message):
    with pytest.raises(MalformedRequest) as info:
        decompress(body, encoding, 10 * MiB)
    assert str(info.value) == message


@pytest.mark.parametrize("keep", [lambda n: n - 3, lambda n: n // 2], ids=["tail-cut", "half-cut"])
def test_truncated_zstd_is_malformed(keep):
    # A zstd frame cut short must be refused like a cut gzip member, not read as the
    # (possibly empty, possibly valid protobuf) prefix it decodes to.
    body = zstandard.ZstdCompressor().compress(bytes(range(256)) * 64 + PAYLOAD)
    assert len(body) > 200
    with pytest.raises(MalformedRequest):
        decompress(body[:keep(len(body))], "zstd", 10 * MiB)


def _gzip_bomb() -> bytes:
    member = gzip_module.compress(bytes(MiB), 9)  # ~1 KiB each
    return member * 64  # 64 MiB once inflated


def _zstd_bomb() -> bytes:
    return zstandard.ZstdCompressor().compress(bytes(MiB)) * 64


@pytest.mark.parametrize("encoding, make", [
    ("gzip", _gzip_bomb),
    ("deflate", lambda: zlib.compress(bytes(64 * MiB), 9)),
    ("zstd", _zstd_bomb),
])
def test_decompression_bomb_is_refused_with_bounded_memory(encoding, make):
    body = make()
    assert len(body) < 2 * MiB
    limit = MiB
    tracemalloc.start()
    try:
        with pytest.raises(RequestTooLarge) as info:
            decompress(body, encoding, limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(info.value) == f"decompressed body exceeds --max-request-bytes ({limit})"
    assert peak < 6 * limit


def test_limit_is_inclusive():
    body = gzip_module.compress(bytes(1000))
    assert decompress(body, "gzip", 1000) == bytes(1000)
    with pytest.raises(RequestTooLarge):
        decompress(body, "gzip", 999)


@pytest.mark.parametrize("encoding", ["br", "compress", "gzip, deflate"])
def test_unsupported_encoding(encoding):
    with pytest.raises(UnsupportedMediaType) as info:
        decompress(b"x", encoding, 100)
    assert str(info.value) == "unsupported Content-Encoding; supported: gzip, deflate, zstd, identity"


@pytest.mark.parametrize("content_type, fmt", [
    ("application/x-protobuf", Format.PROTOBUF),
    ("application/protobuf", Format.PROTOBUF),
    ("Application/JSON; charset=utf-8", Format.JSON),
    ("application/json", Format.JSON),
])
def test_format_for(content_type, fmt):
    assert format_for(content_type) is fmt


@pytest.mark.parametrize("content_type", [None, "", "text/plain", "application/grpc"])
def test_format_for_unsupported(content_type):
    with pytest.raises(UnsupportedMediaType):
        format_for(content_type)


# --- OTLP-JSON --------------------------------------------------------------------------

TRACE_ID = "5b8efff798038103d269b633813fc60c"
SPAN_ID = "eee19b7ec3c1b174"
PARENT_ID = "000102030405060f"
LINK_TRACE = "ff" * 16
LINK_SPAN = "00" * 7 + "01"

TRACES_JSON = {
    "resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
        "scopeSpans": [{
            "scope": {"name": "lib"},
            "spans": [{
                "traceId": TRACE_ID, "spanId": SPAN_ID, "parentSpanId": PARENT_ID,
                "name": "GET /x", "kind": 2,
                "startTimeUnixNano": "1700000000000000001", "endTimeUnixNano": "1700000000000000002",
                "attributes": [
                    {"key": "n", "value": {"intValue": "-5"}},
                    {"key": "traceId", "value": {"stringValue": "not-an-id"}},
                ],
                "events": [{"timeUnixNano": "3", "name": "ev"}],
                "links": [{"traceId": LINK_TRACE, "spanId": LINK_SPAN}],
            }],
        }],
    }],
}
LOGS_JSON = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{
    "timeUnixNano": "9", "traceId": TRACE_ID, "spanId": SPAN_ID,
    "body": {"kvlistValue": {"values": [{"key": "spanId", "value": {"stringValue": "zz"}}]}},
}]}]}]}
METRICS_JSON = {"resourceMetrics": [{"scopeMetrics": [{"metrics": [{
    "name": "m",
    "sum": {"aggregationTemporality": 2, "isMonotonic": True, "dataPoints": [{
        "asInt": "3", "timeUnixNano": "5",
        "exemplars": [{"asDouble": 1.5, "timeUnixNano": "4", "traceId": TRACE_ID, "spanId": SPAN_ID}],
    }]},
}]}]}]}


def test_json_hex_ids_decode_to_raw_bytes():
    msg = decode(TRACES, json.dumps(TRACES_JSON).encode(), Format.JSON)
    span = msg.resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id == bytes.fromhex(TRACE_ID)
    assert span.span_id == bytes.fromhex(SPAN_ID)
    assert span.parent_span_id == bytes.fromhex(PARENT_ID)
    assert span.links[0].trace_id == bytes.fromhex(LINK_TRACE)
    assert span.links[0].span_id == bytes.fromhex(LINK_SPAN)
    # attribute keys that happen to be named like ids are data, not ids
    assert span.attributes[1].value.string_value == "not-an-id"
    logs = decode(LOGS, json.dumps(LOGS_JSON).encode(), Format.JSON)
    rec = logs.resource_logs[0].scope_logs[0].log_records[0]
    assert (rec.trace_id, rec.span_id) == (bytes.fromhex(TRACE_ID), bytes.fromhex(SPAN_ID))
    assert rec.body.kvlist_value.values[0].value.string_value == "zz"
    metrics = decode(METRICS, json.dumps(METRICS_JSON).encode(), Format.JSON)
    ex = metrics.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points[0].exemplars[0]
    assert (ex.trace_id, ex.span_id) == (bytes.fromhex(TRACE_ID), bytes.fromhex(SPAN_ID))


@pytest.mark.parametrize("signal, tree", [(TRACES, TRACES_JSON), (LOGS, LOGS_JSON), (METRICS, METRICS_JSON)],
                         ids=["traces", "logs", "metrics"])
def test_json_round_trip_is_exact(signal, tree):
    msg = decode(signal, json.dumps(tree).encode(), Format.JSON)
    assert json.loads(encode(msg, Format.JSON)) == tree
    # and through protobuf (a JSON client, a gRPC upstream)
    again = decode(signal, encode(msg, Format.PROTOBUF), Format.PROTOBUF)
    assert again == msg
    assert json.loads(encode(again, Format.JSON)) == tree


def test_uppercase_hex_ids_are_accepted():
    tree = json.loads(json.dumps(TRACES_JSON))
    tree["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] = TRACE_ID.upper()
    msg = decode(TRACES, json.dumps(tree).encode(), Format.JSON)
    assert msg.resource_spans[0].scope_spans[0].spans[0].trace_id == bytes.fromhex(TRACE_ID)


def test_int64_as_string_or_number():
    as_number = {"resourceSpans": [{"scopeSpans": [{"spans": [{
        "startTimeUnixNano": 1700000000000000001, "endTimeUnixNano": "18446744073709551615",
        "attributes": [{"key": "a", "value": {"intValue": -9223372036854775808}},
                       {"key": "b", "value": {"intValue": "9223372036854775807"}}],
    }]}]}]}
    span = decode(TRACES, json.dumps(as_number).encode(), Format.JSON).resource_spans[0].scope_spans[0].spans[0]
    assert span.start_time_unix_nano == 1700000000000000001
    assert span.end_time_unix_nano == 2**64 - 1
    assert [kv.value.int_value for kv in span.attributes] == [-(2**63), 2**63 - 1]


def test_unknown_members_are_ignored():
    tree = json.loads(json.dumps(TRACES_JSON))
    tree["futureField"] = {"x": 1}
    tree["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["brandNew"] = [1, 2]
    msg = decode(TRACES, json.dumps(tree).encode(), Format.JSON)
    assert json.loads(encode(msg, Format.JSON)) == TRACES_JSON


def test_snake_case_members_are_accepted():
    tree = {"resource_spans": [{"scope_spans": [{"spans": [{"trace_id": TRACE_ID, "span_id": SPAN_ID}]}]}]}
    span = decode(TRACES, json.dumps(tree).encode(), Format.JSON).resource_spans[0].scope_spans[0].spans[0]
    assert (span.trace_id, span.span_id) == (bytes.fromhex(TRACE_ID), bytes.fromhex(SPAN_ID))


def _span_json(**fields) -> bytes:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [fields]}]}]}).encode()


def _deep_json(depth: int) -> bytes:
    value = '{"stringValue":"x"}'
    for _ in range(depth):
        value = '{"kvlistValue":{"values":[{"key":"k","value":%s}]}}' % value
    return ('{"resourceSpans":[{"resource":{"attributes":[{"key":"a","value":%s}]}}]}' % value).encode()


def _deep_protobuf(depth: int) -> bytes:
    """ExportTraceServiceRequest > ResourceSpans > Resource > KeyValue > AnyValue, then
    ``depth`` kvlists down, written by hand (no serializer limit in the way)."""
    value = wire.field(1, SECRET.encode())
    for _ in range(depth):
        value = wire.field(6, wire.field(1, wire.field(1, b"k") + wire.field(2, value)))
    return wire.field(1, wire.field(1, wire.field(1, wire.field(1, b"a") + wire.field(2, value))))


MALFORMED = [
    (Format.JSON, b"{not json " + SECRET.encode()),
    (Format.JSON, b'{"a": "' + SECRET.encode() + b'\x01"}'),
    (Format.JSON, b'{"a": "' + SECRET.encode() + b'\\q"}'),
    (Format.JSON, b"\xff\xfe\xfd" + SECRET.encode()),
    (Format.JSON, json.dumps([SECRET]).encode()),
    (Format.JSON, b""),
    (Format.JSON, _span_json(traceId=SECRET)),  # not hex
    (Format.JSON, _span_json(traceId="abc")),  # odd length
    (Format.JSON, _span_json(name=SECRET, startTimeUnixNano=SECRET)),
    (Format.JSON, _span_json(name=SECRET, attributes=SECRET)),
    (Format.JSON, _span_json(attributes=[{"key": "k", "value": {"bytesValue": SECRET + "!"}}])),
    (Format.JSON, _span_json(attributes=[{"key": "k", "value": {"intValue": SECRET}}])),
    (Format.JSON, json.dumps({"resourceSpans": SECRET}).encode()),
    (Format.JSON, b"[" * 100_000 + b"]" * 100_000),
    (Format.JSON, b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
    (Format.JSON, _deep_json(3000)),
    (Format.PROTOBUF, b"\x0a\x05" + SECRET.encode()),
    (Format.PROTOBUF, b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"),
    (Format.PROTOBUF, _deep_protobuf(200)),
]


@pytest.mark.parametrize("fmt, body", MALFORMED, ids=[
    "json-syntax", "json-control-char", "json-bad-escape", "json-not-utf8", "json-array",
    "json-empty", "json-id-not-hex", "json-id-odd-length", "json-int64-garbage",
    "json-attributes-not-list", "json-bad-base64", "json-int-value-garbage", "json-wrong-type",
    "json-deep-arrays", "json-deep-objects", "json-deep-kvlists", "protobuf-truncated",
    "protobuf-garbage", "protobuf-deep-kvlists",
])
def test_malformed_bodies_are_refused_without_quoting_them(fmt, body):
    with pytest.raises(MalformedRequest) as info:
        decode(TRACES, body, fmt)
    text = str(info.value) + repr(info.value.args)
    assert SECRET not in text
    assert "SECRET" not in text


def test_malformed_messages_name_the_problem():
    with pytest.raises(MalformedRequest) as info:
        decode(TRACES, _span_json(traceId="zz"), Format.JSON)
    assert str(info.value) == "trace/span id is not a hex string"
    with pytest.raises(MalformedRequest) as info:
        decode(TRACES, b'{"a": }', Format.JSON)
    assert str(info.value) == "body is not valid JSON (line 1, column 7: Expecting value)"
    with pytest.raises(MalformedRequest) as info:
        decode(LOGS, b"\x0a\x05ab", Format.PROTOBUF)
    assert str(info.value) == "body is not a valid protobuf ExportLogsServiceRequest"
    with pytest.raises(MalformedRequest) as info:
        decode(TRACES, b"[]", Format.JSON)
    assert str(info.value) == "OTLP-JSON body must be a JSON object"


def test_moderate_nesting_is_fine():
    msg = decode(TRACES, _deep_protobuf(20), Format.PROTOBUF)
    value = msg.resource_spans[0].resource.attributes[0].value
    for _ in range(20):
        value = value.kvlist_value.values[0].value
    assert value == AnyValue(string_value=SECRET)


def test_empty_protobuf_body_is_an_empty_request():
    assert decode(TRACES, b"", Format.PROTOBUF) == ExportTraceServiceRequest()


def test_decode_response_reads_partial_success():
    body = json.dumps({"partialSuccess": {"rejectedSpans": "3", "errorMessage": "too old"}}).encode()
    resp = decode_response(TRACES, body, Format.JSON)
    assert isinstance(resp, ExportTraceServiceResponse)
    assert (resp.partial_success.rejected_spans, resp.partial_success.error_message) == (3, "too old")


# --- Batch ------------------------------------------------------------------------------


def _logs_request() -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    rec = req.resource_logs.add().scope_logs.add().log_records.add(
        trace_id=bytes.fromhex(TRACE_ID), span_id=bytes.fromhex(SPAN_ID), time_unix_nano=7)
    rec.attributes.append(KeyValue(key="user.email", value=AnyValue(string_value="a@b.c")))
    return req


def test_unchanged_protobuf_is_forwarded_as_the_original_bytes():
    data = _logs_request().SerializeToString()
    batch = Batch.from_bytes(LOGS, data, Format.PROTOBUF)
    assert batch.to_bytes(Format.PROTOBUF) is data
    as_json = batch.to_bytes(Format.JSON)
    assert json.loads(as_json)["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["traceId"] == TRACE_ID
    assert batch.to_bytes(Format.JSON) is as_json  # encoded once


def test_changed_batch_is_re_encoded_once():
    data = _logs_request().SerializeToString()
    batch = Batch.from_bytes(LOGS, data, Format.PROTOBUF)
    del batch.message.resource_logs[0].scope_logs[0].log_records[0].attributes[:]
    batch.changed = True
    out = batch.to_bytes(Format.PROTOBUF)
    assert out != data
    assert b"a@b.c" not in out
    assert out == batch.message.SerializeToString()
    assert batch.to_bytes(Format.PROTOBUF) is out
    again = ExportLogsServiceRequest.FromString(out)
    assert again.resource_logs[0].scope_logs[0].log_records[0].trace_id == bytes.fromhex(TRACE_ID)


def test_json_is_always_re_encoded():
    tree = json.loads(json.dumps(LOGS_JSON))
    tree["resourceLogs"][0]["unknownMember"] = SECRET
    data = json.dumps(tree).encode()
    batch = Batch.from_bytes(LOGS, data, Format.JSON)
    out = batch.to_bytes(Format.JSON)
    assert out is not data
    assert SECRET.encode() not in out  # unknown members never reach upstream unscanned
    assert json.loads(out) == LOGS_JSON
    pb = batch.to_bytes(Format.PROTOBUF)
    assert ExportLogsServiceRequest.FromString(pb) == batch.message


# --- hostile compression: many members, linear work ---------------------------------------


_DECOMPRESSOBJ = zlib.decompressobj


class _CountingInflater:
    """zlib.decompressobj, counting the bytes it is fed and hands back: the work of
    one decompression, measured without a clock."""

    fed = 0

    def __init__(self, wbits):
        self._d = _DECOMPRESSOBJ(wbits)

    def decompress(self, data, max_length=0):
        _CountingInflater.fed += len(data)
        return self._d.decompress(data, max_length)

    def __getattr__(self, name):
        value = getattr(self._d, name)
        if name == "unused_data":
            _CountingInflater.fed += len(value)
        return value


@pytest.mark.parametrize("member", [gzip_module.compress(b""), gzip_module.compress(b"x" * 3000, 1)],
                         ids=["empty-members", "small-members"])
def test_many_gzip_members_cost_work_linear_in_the_body(monkeypatch, member):
    monkeypatch.setattr(codec.zlib, "decompressobj", _CountingInflater)
    _CountingInflater.fed = 0
    body = member * codec.MAX_MEMBERS  # the most members taken
    out = decompress(body, "gzip", 10 * MiB)
    assert len(out) == codec.MAX_MEMBERS * len(gzip_module.decompress(member))
    # Each member is fed at most twice its size plus the first slice (256 bytes); the
    # quadratic way (the rest of the body per member) feeds ~500 times the body here.
    assert _CountingInflater.fed <= 2 * len(body) + 2 * 256 * codec.MAX_MEMBERS


@pytest.mark.parametrize("encoding, member", [
    ("gzip", gzip_module.compress(b"")),
    ("deflate", zlib.compress(b"")),
    ("zstd", zstandard.ZstdCompressor().compress(b"")),
])
def test_more_members_than_the_cap_are_refused(encoding, member):
    assert decompress(member * codec.MAX_MEMBERS, encoding, MiB) == b""
    with pytest.raises(MalformedRequest) as info:
        decompress(member * 100_000, encoding, MiB)  # ~2 MB of nothing but set-up work
    unit = "frames" if encoding == "zstd" else "members"
    assert str(info.value) == f"{encoding} body has more than {codec.MAX_MEMBERS} {unit}"


def test_members_after_a_bomb_member_are_not_reached():
    body = _gzip_bomb() + gzip_module.compress(b"")
    with pytest.raises(RequestTooLarge):
        decompress(body, "gzip", MiB)


_DATA = bytes(range(256)) * 600 + bytes(300_000) + b"abc" * 50_000


@pytest.mark.parametrize("params", [
    {}, {"write_checksum": True}, {"write_content_size": False}, {"level": 19},
    {"write_checksum": True, "write_content_size": False},
], ids=["default", "checksum", "no-content-size", "level-19", "checksum-no-size"])
def test_zstd_frames_of_every_header_shape_are_read(params):
    c = zstandard.ZstdCompressor(**params)
    one_shot = c.compress(_DATA)
    streamed = c.compressobj()
    streamed = streamed.compress(_DATA) + streamed.flush()  # several blocks, no content size
    for body, copies in ((one_shot, 1), (streamed, 1), (one_shot + streamed, 2)):
        assert decompress(body, "zstd", 10 * MiB) == _DATA * copies
        for cut in {1, 4, 5, 7, len(body) // 3, len(body) - 1} - {len(one_shot)}:  # not a frame's end
            with pytest.raises(MalformedRequest):
                decompress(body[:cut], "zstd", 10 * MiB)


def test_zstd_skippable_frames_are_skipped():
    skippable = (0x184D2A53).to_bytes(4, "little") + (5).to_bytes(4, "little") + SECRET.encode()[:5]
    c = zstandard.ZstdCompressor()
    assert decompress(skippable + c.compress(b"x") + skippable, "zstd", 100) == b"x"
    with pytest.raises(MalformedRequest) as info:
        decompress(skippable[:-1], "zstd", 100)
    assert str(info.value) == "truncated zstd body"


@pytest.mark.parametrize("body, message", [
    (b"", "truncated zstd body"),
    (zstandard.ZstdCompressor().compress(b"x") + b"\x00", "truncated zstd body"),
    (zstandard.ZstdCompressor().compress(b"x") + SECRET.encode(), "corrupt zstd body"),
], ids=["empty", "one-trailing-byte", "trailing-garbage"])
def test_zstd_bodies_that_are_not_whole_frames(body, message):
    with pytest.raises(MalformedRequest) as info:
        decompress(body, "zstd", MiB)
    assert str(info.value) == message


# --- gRPC messages decompressed by the codec ----------------------------------------------


def test_grpc_messages_are_told_apart_by_their_first_bytes():
    raw = ExportTraceServiceRequest.FromString(
        encode(decode(TRACES, json.dumps(TRACES_JSON).encode(), Format.JSON), Format.PROTOBUF)).SerializeToString()
    assert codec.decompress_grpc(raw, MiB) is raw
    assert codec.decompress_grpc(gzip_module.compress(raw), MiB) == raw
    assert codec.decompress_grpc(zlib.compress(raw), MiB) == raw  # gRPC "deflate"
    assert codec.decompress_grpc(b"", MiB) == b""
    with pytest.raises(RequestTooLarge):
        codec.decompress_grpc(raw, len(raw) - 1)


@pytest.mark.parametrize("signal", [TRACES, METRICS, LOGS], ids=lambda s: s.name)
def test_no_export_request_starts_like_a_compressed_stream(signal):
    # Each root field of an export request is length-delimited, numbered below 15.
    for field in signal.request.DESCRIPTOR.fields:
        tag = field.number << 3 | 2
        assert tag < 0x78 and tag != 0x1F


@pytest.mark.parametrize("message, error, text", [
    (_gzip_bomb(), RequestTooLarge, f"decompressed body exceeds --max-request-bytes ({MiB})"),
    (b"\x1f\x8b" + SECRET.encode(), MalformedRequest, "corrupt gzip body"),
    (gzip_module.compress(PAYLOAD)[:-4], MalformedRequest, "truncated gzip body"),
    (zlib.compress(PAYLOAD)[:-4], MalformedRequest, "truncated deflate body"),
], ids=["64-member-bomb", "corrupt", "truncated-gzip", "truncated-deflate"])
def test_grpc_compression_errors_are_request_errors(message, error, text):
    with pytest.raises(error) as info:
        codec.decompress_grpc(message, MiB)
    assert type(info.value) is error
    assert str(info.value) == text


# --- OTLP-JSON of the wrong shape ---------------------------------------------------------


def _span(**fields) -> dict:
    return {"resourceSpans": [{"scopeSpans": [{"spans": [fields]}]}]}


def _attr(value) -> dict:
    return _span(attributes=[{"key": "k", "value": value}])


WRONG_JSON_TYPES = [
    ({"resourceSpans": [{"resource": SECRET}]}, "ResourceSpans.resource must be an object"),
    ({"resourceSpans": [{"resource": [{"attributes": []}]}]}, "ResourceSpans.resource must be an object"),
    ({"resourceSpans": [{"resource": 5}]}, "ResourceSpans.resource must be an object"),
    ({"resourceSpans": {"resource": {}}}, "ExportTraceServiceRequest.resource_spans must be an array of objects"),
    ({"resourceSpans": [SECRET]}, "ExportTraceServiceRequest.resource_spans must be an array of objects"),
    ({"resource_spans": [{"scope_spans": {}}]}, "ResourceSpans.scope_spans must be an array of objects"),
    ({"resourceSpans": [{"scopeSpans": [{"scope": SECRET}]}]}, "ScopeSpans.scope must be an object"),
    (_span(status=SECRET), "Span.status must be an object"),
    (_span(events=SECRET), "Span.events must be an array of objects"),
    (_span(links=[None]), "Span.links must be an array of objects"),
    (_span(kind=SECRET), "Span.kind must be an enum number"),
    (_span(kind=1.5), "Span.kind must be an enum number"),
    (_span(kind=True), "Span.kind must be an enum number"),
    (_span(status={"code": SECRET}), "Status.code must be an enum number"),
    (_attr(SECRET), "KeyValue.value must be an object"),
    (_attr({"kvlistValue": [SECRET]}), "AnyValue.kvlist_value must be an object"),
    (_attr({"arrayValue": {"values": {"stringValue": SECRET}}}), "ArrayValue.values must be an array of objects"),
]


@pytest.mark.parametrize("tree, problem", WRONG_JSON_TYPES, ids=[
    "resource-string", "resource-array", "resource-number", "resource-spans-object",
    "resource-spans-of-strings", "scope-spans-object", "scope-string", "status-string",
    "events-string", "link-null", "kind-unknown-name", "kind-fraction", "kind-bool",
    "status-code-unknown", "value-string", "kvlist-array", "array-values-object"])
def test_json_of_the_wrong_shape_is_refused_with_fixed_text(tree, problem):
    with pytest.raises(MalformedRequest) as info:
        decode(TRACES, json.dumps(tree).encode(), Format.JSON)
    assert str(info.value) == f"body is not valid OTLP-JSON: {problem}"


@pytest.mark.parametrize("tree", [
    _span(name=5), _span(name={"x": SECRET}), _span(startTimeUnixNano={}), _span(startTimeUnixNano=1.5),
    _span(droppedAttributesCount=-1), _span(flags=SECRET), _span(traceState=[SECRET]),
    _attr({"intValue": [SECRET]}), _attr({"boolValue": "true"}), _attr({"doubleValue": SECRET}),
    _attr({"stringValue": 5}), _span(attributes=[{"key": 5, "value": {"stringValue": SECRET}}]),
    _span(traceId=5),
], ids=["name-number", "name-object", "time-object", "time-fraction", "count-negative", "flags-string",
        "trace-state-array", "int-array", "bool-string", "double-string", "string-number", "key-number",
        "id-number"])
def test_json_scalars_of_the_wrong_type_are_refused(tree):
    with pytest.raises(MalformedRequest) as info:
        decode(TRACES, json.dumps(tree).encode(), Format.JSON)
    assert str(info.value) == "body is not valid OTLP-JSON for ExportTraceServiceRequest"


def test_json_null_enum_names_and_unknown_members_still_pass():
    tree = _span(kind="SPAN_KIND_SERVER", status={"code": 2}, traceId="", spanId=None)
    tree["resourceSpans"][0]["resource"] = None
    tree["resourceSpans"][0]["futureMember"] = SECRET  # unknown: ignored, never entered
    span = decode(TRACES, json.dumps(tree).encode(), Format.JSON).resource_spans[0].scope_spans[0].spans[0]
    assert (span.kind, span.status.code, span.trace_id) == (2, 2, b"")


@pytest.mark.parametrize("signal, tree, member", [
    (TRACES, _span(traceId="ab" * 15), "trace"), (TRACES, _span(traceId="ab" * 17), "trace"),
    (TRACES, _span(spanId="ab" * 16), "span"), (TRACES, _span(parentSpanId="ab"), "span"),
    (TRACES, _span(links=[{"traceId": "ab" * 8}]), "trace"), (TRACES, _span(links=[{"spanId": "ab" * 9}]), "span"),
    (LOGS, {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "ab"}]}]}]}, "trace"),
    (LOGS, {"resource_logs": [{"scope_logs": [{"log_records": [{"span_id": "ab" * 4}]}]}]}, "span"),
    (METRICS, {"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"gauge": {"dataPoints": [
        {"exemplars": [{"traceId": "ab" * 8}]}]}}]}]}]}, "trace"),
], ids=["span-trace-15", "span-trace-17", "span-id-16", "parent-1", "link-trace-8", "link-span-9",
        "log-trace-1", "log-span-4", "exemplar-trace-8"])
def test_json_ids_of_the_wrong_length_are_refused(signal, tree, member):
    with pytest.raises(MalformedRequest) as info:
        decode(signal, json.dumps(tree).encode(), Format.JSON)
    length = 16 if member == "trace" else 8
    assert str(info.value) == f"a {member} id is neither {length} bytes nor empty"


@pytest.mark.parametrize("signal, tree, other", [
    (TRACES, LOGS_JSON, "logs"), (TRACES, METRICS_JSON, "metrics"), (LOGS, TRACES_JSON, "traces"),
    (METRICS, LOGS_JSON, "logs"), (LOGS, {"resource_metrics": []}, "metrics"),
], ids=["logs-to-traces", "metrics-to-traces", "traces-to-logs", "logs-to-metrics", "snake-case"])
def test_json_for_another_signal_is_refused(signal, tree, other):
    # ParseDict alone would ignore the unknown root member and read an empty request.
    with pytest.raises(MalformedRequest) as info:
        decode(signal, json.dumps(tree).encode(), Format.JSON)
    assert str(info.value) == f"OTLP-JSON body is an export request for {other}, not for this endpoint"


def test_json_ids_are_converted_only_where_the_schema_has_them():
    # An unknown member named like an id is not entered (and not converted), and an
    # attribute's kvlist key named traceId is data.
    tree = json.loads(json.dumps(TRACES_JSON))
    tree["resourceSpans"][0]["future"] = {"traceId": SECRET}
    msg = decode(TRACES, json.dumps(tree).encode(), Format.JSON)
    assert json.loads(encode(msg, Format.JSON)) == TRACES_JSON


def test_zstd_bodies_of_countless_empty_blocks_are_refused():
    # One frame of empty raw blocks (3 bytes each), then the last one: valid zstd.
    frame = (0xFD2FB528).to_bytes(4, "little") + b"\x00\x50"  # no checksum, window 1 MiB
    blocks = (0).to_bytes(3, "little") * (codec._ZSTD_MAX_BLOCKS + 1) + (1).to_bytes(3, "little")
    assert zstandard.ZstdDecompressor().decompressobj().decompress(frame + blocks[-3000:]) == b""
    with pytest.raises(MalformedRequest) as info:
        decompress(frame + blocks, "zstd", MiB)
    assert str(info.value) == f"zstd body has more than {codec._ZSTD_MAX_BLOCKS} blocks"
    assert decompress(frame + blocks[-3000:], "zstd", MiB) == b""


# --- the envelope, upstream's answers, stored batches -----------------------------------


@pytest.mark.parametrize("encoding, normal", [
    (None, "identity"), ("", "identity"), (" Identity ", "identity"), ("X-GZIP", "gzip"), ("gzip", "gzip"),
    ("deflate", "deflate"), ("zstd", "zstd"),
])
def test_an_envelope_is_checked_and_normalised_before_the_body_is_read(encoding, normal):
    envelope = codec.Envelope.of("application/json; charset=utf-8", encoding)
    assert (envelope.fmt, envelope.encoding) == (Format.JSON, normal)


def test_an_envelope_refuses_what_the_proxy_does_not_speak():
    with pytest.raises(UnsupportedMediaType, match="Content-Encoding; supported: gzip, deflate, zstd, identity"):
        codec.Envelope.of("application/x-protobuf", "br")
    with pytest.raises(UnsupportedMediaType, match="Content-Type"):
        codec.Envelope.of("text/plain", "gzip")


def test_opening_is_inline_only_when_it_is_cheap():
    small, large = gzip_module.compress(b"x" * 10), bytes(codec.INLINE_BYTES)
    assert not codec.Envelope.of("application/x-protobuf", "gzip").costly(small)
    assert codec.Envelope.of("application/x-protobuf", "gzip").costly(large)
    assert not codec.Envelope.of("application/x-protobuf", None).costly(large)  # a length check
    assert codec.GRPC_MESSAGE.open(gzip_module.compress(PAYLOAD), MiB) == PAYLOAD  # read from the magic


def test_an_answer_format_follows_the_content_type_even_a_bad_one():
    assert codec.answer_format("application/json; charset=utf-8") is Format.JSON
    assert codec.answer_format("text/x-json-ish") is Format.JSON
    assert codec.answer_format(None) is Format.PROTOBUF


def test_upstream_answers_are_read_within_a_bound_and_an_unreadable_one_is_none():
    partial = ExportTraceServiceResponse()
    partial.partial_success.rejected_spans = 3
    data = partial.SerializeToString()
    read = lambda body, ct="application/x-protobuf", enc=None: codec.read_response(TRACES, body, ct, enc, 1024)  # noqa: E731
    assert read(data).partial_success.rejected_spans == 3
    assert read(gzip_module.compress(data), enc="gzip").partial_success.rejected_spans == 3
    for unreadable in (read(b""), read(data, ct="text/html"), read(b"\x1f\x8bnot gzip", enc="gzip"),
                       read(data, enc="br"), read(b"\xff\xff\xff")):
        assert not unreadable.HasField("partial_success")
    with pytest.raises(RequestTooLarge):
        read(gzip_module.compress(bytes(2048)), enc="gzip")


def test_a_stored_batch_is_sent_as_its_bytes_and_decoded_only_for_json():
    data = _logs_request().SerializeToString()
    stored = Batch.stored(LOGS, data, Format.JSON)
    assert stored.has(Format.PROTOBUF) and stored.encoded(Format.PROTOBUF) is data
    assert stored._message is None, "not decoded for a protobuf upstream"
    assert not stored.has(Format.JSON)
    as_json = stored.to_bytes(Format.JSON)
    assert json.loads(as_json)["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["traceId"] == TRACE_ID
    assert stored.fmt is Format.JSON and stored.encoded(Format.JSON) is as_json


def test_a_forwarder_reads_only_bytes_the_codec_made():
    batch = Batch.from_bytes(LOGS, _logs_request().SerializeToString(), Format.PROTOBUF)
    with pytest.raises(RuntimeError, match="not encoded as JSON"):
        batch.encoded(Format.JSON)
    made = batch.to_bytes(Format.PROTOBUF)
    assert batch.encoded(Format.PROTOBUF) is made
