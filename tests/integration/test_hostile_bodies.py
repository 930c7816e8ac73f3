"""Hostile request bodies (issue 11), against a running proxy on loopback: a request for
another signal's endpoint, ids of the wrong length, OTLP-JSON of the wrong types, and
bodies of many tiny compression members are refused with the SPEC status (400 /
INVALID_ARGUMENT), nothing reaches upstream, and the proxy stays healthy with bounded
memory (VmHWM from /proc: measured, never timed). gRPC compression errors are sent as
raw HTTP/2 frames with the ``h2`` package: a gzip bomb of several members and a corrupt
stream get RESOURCE_EXHAUSTED / INVALID_ARGUMENT (the codec inflates gRPC messages); the
compressed flag without an encoding and an unknown encoding are refused by grpc's C core
itself, as INTERNAL, before any of the proxy's code runs (xfail, strict)."""

from __future__ import annotations

import gzip
import json
import socket
import struct
from pathlib import Path

import grpc
import h2.config
import h2.connection
import h2.events
import pytest
import zstandard

from integration_otlp import MARK, SIGNALS, TRACE_ID, build_request, to_otlp_json
from integration_support import CALL_TIMEOUT, MAX_REQUEST_BYTES, grpc_export, http_status

MiB = 1024 * 1024
# A proxy at rest is ~60 MiB; inflating what these bodies hold, or copying them per
# member, would cost far more than this. The member bodies are ~2 MB on the wire.
HWM_GROWTH_BOUND = 64 * MiB


def _vm(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _healthy(proxy) -> None:
    assert proxy.get("/healthz")[0] == 200
    assert proxy.get("/readyz")[0] == 200


# --- a request for another signal's endpoint ----------------------------------------------

MISROUTED = [("logs", "traces"), ("traces", "logs"), ("metrics", "traces"), ("logs", "metrics"),
             ("metrics", "logs"), ("traces", "metrics")]


@pytest.mark.parametrize("sent, endpoint", MISROUTED, ids=[f"{a}-to-{b}" for a, b in MISROUTED])
def test_http_request_for_another_signal_is_400(routed, http_export, sent, endpoint):
    proxy, upstream = routed
    request = build_request(sent)
    for body, content_type in ((request.SerializeToString(), "application/x-protobuf"),
                               (json.dumps(to_otlp_json(request)).encode(), "application/json")):
        result = http_export(proxy, endpoint, body, content_type=content_type)
        assert result.status == 400, content_type
        assert MARK not in http_status(result).message
    assert upstream.received == []
    _healthy(proxy)


@pytest.mark.parametrize("sent, endpoint", MISROUTED, ids=[f"{a}-to-{b}" for a, b in MISROUTED])
def test_grpc_request_for_another_signal_is_invalid_argument(proxy_to_grpc, grpc_upstream, sent, endpoint):
    result = grpc_export(proxy_to_grpc, endpoint, build_request(sent))
    assert result.code is grpc.StatusCode.INVALID_ARGUMENT
    assert MARK not in (result.details or "")
    assert grpc_upstream.received == []
    _healthy(proxy_to_grpc)


# --- ids the collector refuses ------------------------------------------------------------


def _with_ids(signal: str, trace_id: bytes, span_id: bytes):
    request = build_request(signal)
    if signal == "traces":
        span = request.resource_spans[0].scope_spans[0].spans[0]
        span.trace_id, span.span_id = trace_id, span_id
    elif signal == "logs":
        record = request.resource_logs[0].scope_logs[0].log_records[0]
        record.trace_id, record.span_id = trace_id, span_id
    else:
        point = request.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points[0]
        point.exemplars.add(as_int=1, trace_id=trace_id, span_id=span_id)
    return request


BAD_IDS = [("traces", TRACE_ID[:15], b"\x01" * 8), ("traces", TRACE_ID, b"\x01" * 9),
           ("logs", TRACE_ID + b"\x00", b"\x01" * 8), ("logs", TRACE_ID, b"\x01" * 4),
           ("metrics", b"\x01" * 8, b"\x01" * 8), ("metrics", TRACE_ID, b"\x01" * 16)]
BAD_ID_NAMES = ["span-trace-15", "span-id-9", "log-trace-17", "log-span-4", "exemplar-trace-8", "exemplar-span-16"]


@pytest.mark.parametrize("signal, trace_id, span_id", BAD_IDS, ids=BAD_ID_NAMES)
def test_ids_of_the_wrong_length_are_refused(routed, http_export, signal, trace_id, span_id):
    proxy, upstream = routed
    request = _with_ids(signal, trace_id, span_id)
    assert http_export(proxy, signal, request).status == 400
    tree = to_otlp_json(request)
    assert http_export(proxy, signal, json.dumps(tree).encode(), content_type="application/json").status == 400
    assert grpc_export(proxy, signal, request).code is grpc.StatusCode.INVALID_ARGUMENT
    assert upstream.received == []
    # the same request with ids of the right length goes through
    good = _with_ids(signal, TRACE_ID, b"\x01" * 8)
    assert http_export(proxy, signal, good).status == 200
    assert len(upstream.received) == 1
    _healthy(proxy)


# --- OTLP-JSON of the wrong types ---------------------------------------------------------


def _json_cases() -> list[tuple[str, dict]]:
    def traces():
        return to_otlp_json(build_request("traces"))

    cases = []
    tree = traces()
    tree["resourceSpans"][0]["resource"] = "abc"
    cases.append(("resource-string", tree))
    tree = traces()
    tree["resourceSpans"][0]["resource"] = [tree["resourceSpans"][0]["resource"]]
    cases.append(("resource-array", tree))
    tree = traces()
    tree["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["startTimeUnixNano"] = "soon"
    cases.append(("time-string", tree))
    tree = traces()
    tree["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["kind"] = MARK
    cases.append(("kind-unknown", tree))
    tree = traces()
    tree["resourceSpans"][0]["scopeSpans"][0]["spans"] = tree["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    cases.append(("spans-object", tree))
    tree = traces()
    tree["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"][0]["value"] = MARK
    cases.append(("value-string", tree))
    return cases


JSON_CASES = _json_cases()


@pytest.mark.parametrize("tree", [t for _, t in JSON_CASES], ids=[n for n, _ in JSON_CASES])
def test_json_of_the_wrong_types_is_400(routed, http_export, tree):
    proxy, upstream = routed
    result = http_export(proxy, "traces", json.dumps(tree).encode(), content_type="application/json")
    assert result.status == 400
    assert result.content_type == "application/json"
    assert MARK not in http_status(result).message
    assert upstream.received == []
    _healthy(proxy)


# --- many tiny compression members --------------------------------------------------------


@pytest.fixture
def fresh_proxy(own_proxies, grpc_upstream):
    """A proxy of its own: its VmHWM is this test's peak, not the session's."""
    return own_proxies(grpc_upstream.target, "--max-request-bytes", str(MAX_REQUEST_BYTES), name="hostile-bodies")


MEMBERS = [
    ("gzip", gzip.compress(b"") * 100_000),  # 2.0 MB: ~5 s of copying per request before
    ("deflate", gzip.compress(b"") * 100_000),
    ("zstd", zstandard.ZstdCompressor().compress(b"") * 200_000),  # 1.8 MB
]


@pytest.mark.parametrize("encoding, body", MEMBERS, ids=[e for e, _ in MEMBERS])
def test_many_empty_members_are_refused_with_bounded_memory(fresh_proxy, grpc_upstream, http_export,
                                                            encoding, body):
    proxy = fresh_proxy
    assert len(body) < 2 * MiB  # within --max-request-bytes on the wire
    before = _vm(proxy.pid, "VmRSS")
    for _ in range(5):
        result = http_export(proxy, "traces", body, headers={"Content-Encoding": encoding})
        assert result.status == 400
        assert "members" in http_status(result).message or "frames" in http_status(result).message
        _healthy(proxy)
    growth = _vm(proxy.pid, "VmHWM") - before
    assert growth < HWM_GROWTH_BOUND, f"peak RSS grew by {growth // MiB} MiB"
    assert grpc_upstream.received == []
    # a well-formed body of a few members is still read whole
    request = build_request("traces").SerializeToString()
    few = gzip.compress(request[:10]) + gzip.compress(request[10:])
    assert http_export(proxy, "traces", few, headers={"Content-Encoding": "gzip"}).status == 200
    assert len(grpc_upstream.received) == 1


# --- gRPC compression errors, as raw HTTP/2 frames ----------------------------------------


def _raw_grpc(proxy, signal: str, message: bytes, *, compressed: bool, encoding: str | None):
    """One gRPC call written by hand: (grpc-status, grpc-message). The grpc client
    compresses what it sends itself, so a hostile message needs its own frames."""
    sock = socket.create_connection(("127.0.0.1", proxy.grpc_port), timeout=CALL_TIMEOUT)
    try:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        sid = conn.get_next_available_stream_id()
        headers = [(":method", "POST"), (":scheme", "http"), (":path", SIGNALS[signal].grpc_method),
                   (":authority", proxy.grpc_target), ("content-type", "application/grpc"), ("te", "trailers")]
        if encoding is not None:
            headers.append(("grpc-encoding", encoding))
        conn.send_headers(sid, headers)
        pending = struct.pack(">BI", 1 if compressed else 0, len(message)) + message
        answer: dict[str, str] = {}
        ended = False
        while not ended:
            while pending:
                n = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size, len(pending))
                if n <= 0:
                    break
                conn.send_data(sid, pending[:n], end_stream=n == len(pending))
                pending = pending[n:]
            sock.sendall(conn.data_to_send())
            data = sock.recv(65536)
            if not data:
                break
            for event in conn.receive_data(data):
                if isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                    answer.update((k, v) for k, v in event.headers if k.startswith("grpc-"))
                elif isinstance(event, h2.events.DataReceived):
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                    ended = True
            sock.sendall(conn.data_to_send())
        return answer.get("grpc-status"), answer.get("grpc-message", "")
    finally:
        sock.close()


def _gzip_members_bomb() -> bytes:
    return gzip.compress(bytes(MiB), 9) * 64  # 64 MiB once inflated, ~64 KiB on the wire


# grpc's C core refuses these two before any handler runs (INTERNAL, "Compression bit set
# but no encoding configured" / "Error parsing 'grpc-encoding' metadata"), whatever the
# server's options: strict, so a grpc release that changes this shows here.
GRPC_CORE = pytest.mark.xfail(
    strict=True, reason="answered INTERNAL by grpc's C core before any Python runs")

GRPC_COMPRESSION = [
    pytest.param(_gzip_members_bomb(), True, "gzip", grpc.StatusCode.RESOURCE_EXHAUSTED,
                 id="64-member-gzip-bomb"),
    pytest.param(b"\x1f\x8b\x08\x00" + MARK.encode() * 10, True, "gzip", grpc.StatusCode.INVALID_ARGUMENT,
                 id="corrupt-gzip"),
    pytest.param(gzip.compress(b""), True, None, grpc.StatusCode.INVALID_ARGUMENT,
                 id="flag-without-encoding", marks=GRPC_CORE),
    pytest.param(b"\x00" * 16, True, "br", grpc.StatusCode.INVALID_ARGUMENT,
                 id="unknown-encoding", marks=GRPC_CORE),
]


@pytest.mark.parametrize("message, compressed, encoding, code", GRPC_COMPRESSION)
def test_grpc_compression_errors_have_the_spec_status(fresh_proxy, grpc_upstream, message, compressed,
                                                      encoding, code):
    proxy = fresh_proxy
    before = _vm(proxy.pid, "VmRSS")
    status, _message = _raw_grpc(proxy, "traces", message, compressed=compressed, encoding=encoding)
    growth = _vm(proxy.pid, "VmHWM") - before
    assert growth < HWM_GROWTH_BOUND, f"peak RSS grew by {growth // MiB} MiB"
    assert grpc_upstream.received == []
    _healthy(proxy)
    assert status == str(code.value[0])


def test_raw_grpc_client_is_what_it_claims(proxy_to_grpc, grpc_upstream):
    # The hand-written client gets OK for a good message, compressed or not.
    body = build_request("traces").SerializeToString()
    assert _raw_grpc(proxy_to_grpc, "traces", body, compressed=False, encoding=None)[0] == "0"
    assert _raw_grpc(proxy_to_grpc, "traces", gzip.compress(body), compressed=True, encoding="gzip")[0] == "0"
    assert len(grpc_upstream.received) == 2
