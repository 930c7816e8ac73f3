"""Pathological values through a running proxy, over OTLP/gRPC and OTLP/HTTP (issue 5, "Bad
input"; SPEC section 5: nothing is forwarded unless it was redacted first).

- megabyte strings (attribute, span and event names, log bodies) under a policy with mask
  and sanitize rules are scrubbed, or the batch is refused - never forwarded with the
  planted personal data;
- kvlists nested beyond protobuf's recursion limit (100 messages deep) are refused as
  malformed; just under it they are scrubbed at every depth;
- invalid UTF-8 in a protobuf string field (a buggy client) is refused, nothing is
  forwarded, and the proxy keeps serving;
- the mask detectors finish on a 1 MB value built to make regex engines struggle (no
  duration is asserted: the suite's timeout is the only clock).

Every piece of planted personal data carries ``MARK``, and nothing else sent here does, so
"not forwarded" is one check on the bytes upstream received.
"""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from integration_otlp import MARK, TRACE_ID, SPAN_ID, attrs, build_request, hmac_hex, kvs, py_value
from integration_support import grpc_export
from helpers import wire

POLICY = Path(__file__).resolve().parent.parent / "testdata" / "hostile-policy.yaml"
MB = 1 << 20
TRANSPORTS = ["grpc", "http"]

EMAIL = f"ada.{MARK}@example.com"
CARD = "4111 1111 1111 1111"
FILLER = "lorem ipsum dolor sit amet, 2024-05-01 12:00 v1.2.3 id=42; "


@pytest.fixture(scope="module")
def hostile_proxy(proxies, grpc_upstream):
    """One proxy with the hostile-values policy and the default --max-request-bytes (16 MiB)."""
    proxy = proxies(grpc_upstream.target, "--upstream-timeout", "30s", policy=POLICY, name="hostile")
    yield proxy
    proxy.close()  # now rather than at the session's end: it holds megabytes


def send(proxy, http_export, transport: str, signal: str, body: bytes, content_type="application/x-protobuf"):
    """Returns (accepted, refusal code). Refusals a client can get for bad input only."""
    if transport == "grpc":
        result = grpc_export(proxy, signal, body)
        return result.code is grpc.StatusCode.OK, result.code.name
    result = http_export(proxy, signal, body, content_type=content_type)
    return result.status == 200, str(result.status)


def assert_no_mark_forwarded(upstream) -> None:
    for r in upstream.received:
        assert MARK.encode() not in r.raw, "planted personal data reached upstream"


def assert_healthy(proxy, http_export) -> None:
    assert proxy.proc.poll() is None, f"the proxy died:\n{proxy.stderr()}"
    assert proxy.get("/healthz")[0] == 200
    assert proxy.get("/readyz")[0] == 200
    assert http_export(proxy, "logs", build_request("logs")).status == 200


# --- megabyte values ------------------------------------------------------------------------------


def megabyte(planted: str) -> str:
    """~1 MB of ordinary text with ``planted`` in the middle and at the end."""
    text = (FILLER * (MB // len(FILLER) + 1))[:MB]
    return text[: MB // 2] + planted + text[MB // 2:] + planted


def megabyte_traces() -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add(
        trace_id=TRACE_ID, span_id=SPAN_ID, name=megabyte(f" by {EMAIL} "))
    span.attributes.extend(kvs({
        "note": megabyte(f" card {CARD} mail {EMAIL} "),
        "notes": [megabyte(f" {EMAIL} "), "short"],
        "db.statement": "SELECT * FROM t WHERE note = '" + "a" * MB + f"' AND api_key = '{MARK}-sql'",
        "url.full": "https://shop.example/?q=" + "a" * MB + f"&token={MARK}-url",
    }))
    span.events.add(name=megabyte(f" mail to {EMAIL} "))
    return req


def megabyte_logs() -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    records = req.resource_logs.add().scope_logs.add().log_records
    records.add(body=AnyValue(string_value=megabyte(f" login {EMAIL} ")))
    body = AnyValue()
    body.kvlist_value.values.extend(kvs({"msg": megabyte(f" {EMAIL} "), "items": [megabyte(f" {CARD} ")]}))
    records.add(body=body, event_name=f"signup {EMAIL}")
    return req


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_megabyte_values_are_scrubbed_or_refused(hostile_proxy, grpc_upstream, http_export, transport):
    for signal, request in (("traces", megabyte_traces()), ("logs", megabyte_logs())):
        grpc_upstream.reset()
        accepted, code = send(hostile_proxy, http_export, transport, signal, request.SerializeToString())
        assert_no_mark_forwarded(grpc_upstream)
        if not accepted:  # refusing is allowed; forwarding anything of it is not
            assert code in ("INVALID_ARGUMENT", "RESOURCE_EXHAUSTED", "INTERNAL", "400", "413", "500"), code
            assert grpc_upstream.received == []
            continue
        [received] = grpc_upstream.received
        assert received.parse_error is None
        if signal == "traces":
            [span] = received.message.resource_spans[0].scope_spans[0].spans
            assert span.name.endswith(" by [REDACTED] ") and len(span.name) > MB
            assert span.events[0].name.endswith(" mail to [REDACTED] ")
            got = attrs(span.attributes)
            assert got["note"].endswith(" card [REDACTED] mail [REDACTED] ")
            assert got["notes"][0].endswith(" [REDACTED] ") and got["notes"][1] == "short"
            assert got["db.statement"] == "SELECT * FROM t WHERE note = ? AND api_key = ?"
            assert got["url.full"] == "https://shop.example/?q=REDACTED&token=REDACTED"
        else:
            text, structured = received.message.resource_logs[0].scope_logs[0].log_records
            assert text.body.string_value.endswith(" login [REDACTED] ")
            body = py_value(structured.body)
            assert body["msg"].endswith(" [REDACTED] ") and body["items"][0].endswith(" [REDACTED] ")
            assert structured.event_name == "signup [REDACTED]"
    assert_healthy(hostile_proxy, http_export)


def test_a_hostile_megabyte_finishes_scrubbed(hostile_proxy, grpc_upstream, http_export):
    # Inputs that make backtracking engines explode, and runs of near-miss candidates
    # each detector must reject (dotted quads inside longer dotted numbers, Luhn
    # failures, "::"-less hex groups, unterminated JWTs and e-mail local parts), with the
    # personal data at the very end: the whole megabyte has to be scanned.
    pieces = [
        "1." * 16_384,  # ipv4 near-misses at every position
        "4111 1111 1111 1112 " * 2_048,  # Luhn failures
        "ab:" * 8_192,  # ipv6 near-misses
        "a" * 200_000 + "@",  # e-mail local part that never gets a domain
        "eyJ" + "A" * 9 + " ",  # JWT prefix one character short
        "x@" * 50_000,
        "Bearer " + "=" * 50_000,
        "+1 " * 20_000,  # phone fragments
    ]
    value = "".join(pieces)
    value += "z" * (MB - len(value)) + f" {EMAIL} {CARD} acct-1234567"
    req = ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add(trace_id=TRACE_ID, span_id=SPAN_ID, name="hostile")
    span.attributes.extend(kvs({"note": value}))
    accepted, code = send(hostile_proxy, http_export, "grpc", "traces", req.SerializeToString())
    assert_no_mark_forwarded(grpc_upstream)
    assert accepted, code
    [received] = grpc_upstream.received
    note = attrs(received.message.resource_spans[0].scope_spans[0].spans[0].attributes)["note"]
    assert note.endswith(" [REDACTED] [REDACTED] [REDACTED]")
    assert_healthy(hostile_proxy, http_export)


# --- deep nesting -------------------------------------------------------------------------------
#
# Built on the wire by hand: the protobuf runtime refuses to build (copy) messages this deep.
# Message depth of a kvlist level L's KeyValue in a log record's attributes:
# request 1 > ResourceLogs 2 > ScopeLogs 3 > LogRecord 4 > KeyValue 5 > AnyValue 6 >
# KeyValueList 7 > KeyValue 8 (level 1) ... level L at 5 + 3L. Level 31's leaf AnyValue is
# message 99; one level more passes protobuf's limit of 100.

UNDER_LIMIT = 31
OVER_LIMIT = 32
DEEP_DELETED = 28  # its KeyValue is message 89, its value 90


def _kv(key: str, any_value: bytes) -> bytes:  # KeyValue{key=1, value=2}
    return wire.field(1, key.encode()) + wire.field(2, any_value)


def _string(text: str) -> bytes:  # AnyValue{string_value=1}
    return wire.field(1, text.encode())


def _kvlist(*kvs_: bytes) -> bytes:  # AnyValue{kvlist_value=6: KeyValueList{values=1}}
    return wire.field(6, b"".join(wire.field(1, kv) for kv in kvs_))


def deep_value(levels: int) -> bytes:
    """A kvlist nested ``levels`` deep. Every level holds a deleted key; level 28 and the
    innermost one also hold a hashed id and a string to mask."""
    value = b""
    for level in range(levels, 0, -1):
        members = [_kv("user.email", _string(f"{MARK}-gone-{level}"))]
        if level in (DEEP_DELETED, levels):
            members += [_kv("user.id", _string(f"u-{level}")), _kv("note", _string(f"mail {EMAIL}"))]
        if value:
            members.append(_kv("k", value))
        value = _kvlist(*members)
    return value


def deep_logs(levels: int) -> bytes:
    record = wire.field(6, _kv("deep", deep_value(levels)))  # LogRecord.attributes = 6
    return wire.field(1, wire.field(2, wire.field(2, record)))  # resource_logs=1 > scope_logs=2 > log_records=2


def deep_logs_json(levels: int) -> bytes:
    value = None
    for level in range(levels, 0, -1):
        members = [{"key": "user.email", "value": {"stringValue": f"{MARK}-gone-{level}"}}]
        if level in (DEEP_DELETED, levels):
            members += [{"key": "user.id", "value": {"stringValue": f"u-{level}"}},
                        {"key": "note", "value": {"stringValue": f"mail {EMAIL}"}}]
        text = json.dumps({"kvlistValue": {"values": members}})
        if value is not None:  # spliced as text: json.dumps of the whole would recurse as deep
            text = text[:-3] + ', {"key": "k", "value": ' + value + "}]}}"
        value = text
    return ('{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": [{"key": "deep", "value": '
            + value + "}]}]}]}]}").encode()


def test_the_hand_built_nesting_is_what_it_claims():
    under = ExportLogsServiceRequest.FromString(deep_logs(UNDER_LIMIT))
    value = under.resource_logs[0].scope_logs[0].log_records[0].attributes[0].value
    for _ in range(UNDER_LIMIT - 1):
        value = value.kvlist_value.values[-1].value
    assert [kv.key for kv in value.kvlist_value.values] == ["user.email", "user.id", "note"]
    with pytest.raises(Exception):
        ExportLogsServiceRequest.FromString(deep_logs(OVER_LIMIT))
    tree = json.loads(deep_logs_json(UNDER_LIMIT))
    node = tree["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["attributes"][0]["value"]
    for _ in range(UNDER_LIMIT - 1):
        node = node["kvlistValue"]["values"][-1]["value"]
    assert [kv["key"] for kv in node["kvlistValue"]["values"]] == ["user.email", "user.id", "note"]


ENCODINGS = [("grpc", "protobuf"), ("http", "protobuf"), ("http", "json")]


def _deep_body(encoding: str, levels: int) -> tuple[bytes, str]:
    if encoding == "json":
        return deep_logs_json(levels), "application/json"
    return deep_logs(levels), "application/x-protobuf"


@pytest.mark.parametrize("transport, encoding", ENCODINGS)
def test_nesting_beyond_the_limit_is_refused(hostile_proxy, grpc_upstream, http_export, transport, encoding):
    body, ctype = _deep_body(encoding, OVER_LIMIT)
    accepted, code = send(hostile_proxy, http_export, transport, "logs", body, ctype)
    assert not accepted
    assert code == ("INVALID_ARGUMENT" if transport == "grpc" else "400")
    assert grpc_upstream.received == []
    assert_healthy(hostile_proxy, http_export)


@pytest.mark.parametrize("transport, encoding", ENCODINGS)
def test_nesting_just_under_the_limit_is_scrubbed_at_every_depth(hostile_proxy, grpc_upstream, http_export,
                                                                   transport, encoding):
    body, ctype = _deep_body(encoding, UNDER_LIMIT)
    accepted, code = send(hostile_proxy, http_export, transport, "logs", body, ctype)
    assert accepted, code
    assert_no_mark_forwarded(grpc_upstream)
    [received] = grpc_upstream.received
    assert received.parse_error is None
    value = received.message.resource_logs[0].scope_logs[0].log_records[0].attributes[0].value
    for level in range(1, UNDER_LIMIT + 1):
        got = {kv.key: kv.value for kv in value.kvlist_value.values}
        assert "user.email" not in got, f"deleted key survived at level {level}"
        if level in (DEEP_DELETED, UNDER_LIMIT):
            assert got["user.id"].string_value == hmac_hex(f"u-{level}")
            assert got["note"].string_value == "mail [REDACTED]"
        if level < UNDER_LIMIT:
            value = got["k"]
        else:
            assert "k" not in got


# --- invalid UTF-8 ---------------------------------------------------------------------------------

PLACEHOLDER = "PLACEHOLDER-" + MARK


def _with_invalid_utf8(where: str) -> bytes:
    """A valid traces request whose ``where`` string field holds invalid UTF-8 (same length,
    so every length prefix stays right)."""
    req = build_request("traces")
    span = req.resource_spans[0].scope_spans[0].spans[0]
    if where == "attribute value":
        span.attributes.extend(kvs({"note": PLACEHOLDER}))
    elif where == "attribute key":
        span.attributes.extend(kvs({PLACEHOLDER: "x"}))
    elif where == "span name":
        span.name = PLACEHOLDER
    else:  # a string inside a kvlist inside an array
        span.attributes.extend(kvs({"deep": [{"inner": PLACEHOLDER}]}))
    data = req.SerializeToString()
    bad = PLACEHOLDER.encode().replace(b"PLACE", b"PL\xff\xfeE")
    assert data.count(PLACEHOLDER.encode()) == 1 and len(bad) == len(PLACEHOLDER)
    return data.replace(PLACEHOLDER.encode(), bad)


@pytest.mark.parametrize("where", ["attribute value", "attribute key", "span name", "nested value"])
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_invalid_utf8_in_a_string_field_is_refused(hostile_proxy, grpc_upstream, http_export, transport, where):
    accepted, code = send(hostile_proxy, http_export, transport, "traces", _with_invalid_utf8(where))
    assert not accepted
    assert code == ("INVALID_ARGUMENT" if transport == "grpc" else "400")
    assert grpc_upstream.received == []
    assert_healthy(hostile_proxy, http_export)


def test_invalid_utf8_in_otlp_json_is_refused(hostile_proxy, grpc_upstream, http_export):
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": TRACE_ID.hex(), "spanId": SPAN_ID.hex(), "name": PLACEHOLDER}]}]}]}).encode()
    body = body.replace(PLACEHOLDER.encode(), PLACEHOLDER.encode().replace(b"PLACE", b"PL\xff\xfeE"))
    result = http_export(hostile_proxy, "traces", body, content_type="application/json")
    assert result.status == 400
    assert grpc_upstream.received == []
    assert_healthy(hostile_proxy, http_export)
