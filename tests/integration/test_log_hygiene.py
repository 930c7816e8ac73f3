"""Logs never carry telemetry content (SPEC section 3, STYLE habit 10).

Every request of the suite carries ``MARK`` in keys and values, and every proxy the
suite starts is checked for it when it stops (see ``Proxy.close``). This test adds the
worst case: one proxy at --log-level debug, answering every kind of request and refusal,
including an upstream whose error message quotes the batch back."""

from __future__ import annotations

import gzip
import json
import re
import socket

import grpc
import pytest

from integration_otlp import (
    GONE, MARK, SIGNAL_NAMES, build_request, malformed_json, malformed_protobuf, to_otlp_json,
)
from integration_support import Answer, grpc_call, grpc_export, sdk_export


def drive_everything(proxy, upstream, http_export, http) -> None:
    for signal in SIGNAL_NAMES:
        for transport in ("grpc", "http"):
            assert sdk_export(signal, transport, proxy)[1]
        assert http_export(proxy, signal, json.dumps(to_otlp_json(build_request(signal))).encode(),
                           content_type="application/json").status == 200
        assert grpc_export(proxy, signal, malformed_protobuf(signal)).code is grpc.StatusCode.INVALID_ARGUMENT
        assert http_export(proxy, signal, malformed_protobuf(signal)).status == 400
    assert http_export(proxy, "traces", malformed_json(), content_type="application/json").status == 400
    assert http_export(proxy, "traces", b"\x1f\x8b\x08\x00" + GONE.encode(),
                       headers={"Content-Encoding": "gzip"}).status == 400
    assert http_export(proxy, "traces", GONE.encode() * 200_000).status == 413
    assert http_export(proxy, "traces", gzip.compress(GONE.encode() * 200_000),
                       headers={"Content-Encoding": "gzip"}).status == 413
    assert grpc_export(proxy, "logs", GONE.encode() * 200_000).code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert http_export(proxy, "logs", build_request("logs"), content_type=f"text/{MARK}").status == 415
    assert http_export(proxy, "logs", build_request("logs"), headers={"Content-Encoding": MARK}).status == 415
    assert http("POST", proxy.http_url + f"/v1/{MARK}", GONE.encode(), {}).status == 404
    assert http("GET", proxy.http_url + f"/v1/traces?{MARK}=1", b"", {}).status == 405
    assert grpc_call(proxy.grpc_target, f"/{MARK}.Svc/Export", GONE.encode()).code is grpc.StatusCode.UNIMPLEMENTED
    # Upstream refusals, one quoting content back in its message.
    for code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED,
                 grpc.StatusCode.INTERNAL):
        upstream.answer = Answer(grpc_code=code, message=f"rejected attribute {MARK}={GONE}", retry_after=1)
        assert grpc_export(proxy, "traces", build_request("traces")).code is not grpc.StatusCode.OK
        assert http_export(proxy, "traces", build_request("traces")).status >= 400
    upstream.answer = Answer(rejected=1, error_message=f"dropped {MARK}")
    assert grpc_export(proxy, "traces", build_request("traces")).code is grpc.StatusCode.OK


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_telemetry_content_in_logs_even_at_debug_level(own_proxies, grpc_upstream, http_export, http,
                                                          log_format):
    proxy = own_proxies(grpc_upstream.target, "--log-level", "debug", "--log-format", log_format,
                        "--max-request-bytes", "1048576", name=f"hygiene-{log_format}")
    drive_everything(proxy, grpc_upstream, http_export, http)
    assert proxy.stop() == 0
    err, out = proxy.stderr(), proxy.stdout()
    assert "serving" in err and "stopped" in err, "the proxy does log; the check below is not vacuous"
    assert MARK not in err, f"telemetry content in the log:\n{err}"
    assert MARK not in out
    assert "/healthz" not in err
    if log_format == "json":
        for line in filter(None, err.splitlines()):
            record = json.loads(line)  # every line is one JSON object
            assert {"time", "level", "msg"} <= set(record)
    else:
        for line in filter(None, err.splitlines()):
            assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ", line), line


def raw_exchange(port: int, data: bytes) -> bytes:
    """Send bytes on a fresh TCP connection and read the answer until the peer closes
    (bounded by the socket timeout): for requests no HTTP client library would send."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        answer = b""
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        return answer


# Requests the HTTP parser itself refuses, each carrying content where a parser error
# message would quote it.
BROKEN_HTTP = {
    "header-value": f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                    f"X-Attr: {GONE}\x01\r\nContent-Length: 0\r\n\r\n",
    "chunk-size": f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                  f"Transfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\nZZ{GONE}\r\n{GONE}\r\n0\r\n\r\n",
    "query": f"POST /v1/logs?{GONE}\x7f HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    "content-length": f"POST /v1/metrics HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                      f"Content-Length: 100\r\nContent-Length: {len(GONE)}\r\n\r\n{GONE}",
}


def test_requests_the_http_parser_refuses_leave_no_content_in_logs(own_proxies, grpc_upstream):
    proxy = own_proxies(grpc_upstream.target, "--log-format", "json", name="hygiene-parser")
    for name, request in BROKEN_HTTP.items():
        for port in (proxy.http_port, proxy.admin_port):
            answer = raw_exchange(port, request.encode())
            assert answer.startswith(b"HTTP/1.") and b" 400 " in answer.split(b"\r\n", 1)[0], (name, answer[:80])
    # Not HTTP/2 at all, on the gRPC port.
    raw_exchange(proxy.grpc_port, BROKEN_HTTP["header-value"].encode())
    assert grpc_upstream.received == []
    assert proxy.get("/healthz")[0] == 200
    assert proxy.stop() == 0
    err = proxy.stderr()
    assert MARK not in err, f"request content in the proxy's log:\n{err}"
    for line in filter(None, err.splitlines()):
        json.loads(line)  # --log-format json holds for every line, whoever logs it
