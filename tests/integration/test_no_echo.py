"""No error answer on any port echoes the request (SPEC section 6: "Error answers on every
port carry fixed text only; nothing of a request is echoed").

Strategy: hostile requests go over raw sockets, so the malformed part reaches the server
exactly as written: a bad method, request line, header name or value, URL, chunk size
line, Content-Length, an HTTP/2 preface, non-UTF-8 bytes. aiohttp refuses these in its
parser, before any handler of ours runs, and its own answer quotes the offending bytes;
each request carries a marker of its own inside the malformed part, and the marker must
appear neither in the answer (compared case-insensitively: a server may fold case) nor in
anything the proxy printed. On the gRPC port the same holds for the status and its
details. Markers start with ``MARK``, so the session's teardown check of the proxy's logs
catches a late log line too. After each request the process still answers /healthz.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.rpc import status_pb2

from integration_otlp import MARK, SIGNAL_NAMES, SIGNALS
from integration_support import CALL_TIMEOUT, grpc_call

LONG = 16 * 1024  # past aiohttp's 8190-byte line and field limits


def _request(head: str, *headers: str, body: str = "") -> bytes:
    """A request with CRLF line ends, Host and Connection: close (so a server that does
    answer normally still ends the exchange), non-ASCII characters as single bytes."""
    lines = [head, "Host: 127.0.0.1", "Connection: close", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode("latin-1")


# name -> (request built around the marker m, the status(es) the answer may have). The marker
# sits at the start of what aiohttp's error message quotes (it keeps 100 bytes of a long line).
PARSER_CASES = {
    "bad-method": (lambda m: _request(f"G{m}( / HTTP/1.1"), 400),
    "garbage-after-version": (lambda m: _request(f"GET /v1/traces HTTP/1.1 {m}"), 400),
    "bad-version": (lambda m: _request(f"GET / HTTP/1.{m}"), 400),
    "bad-header-name": (lambda m: _request("POST /v1/traces HTTP/1.1", f"X-{m}(: 1"), 400),
    "control-char-in-header-value": (lambda m: _request("POST /v1/traces HTTP/1.1", f"X-A: {m}\x01"), 400),
    "nul-in-header-value": (lambda m: _request("POST /v1/traces HTTP/1.1", f"X-A: {m}\x00"), 400),
    "header-value-too-long": (lambda m: _request("POST /v1/traces HTTP/1.1", f"X-A: {m}{'a' * LONG}"), 431),
    "header-name-too-long": (lambda m: _request("POST /v1/traces HTTP/1.1", f"X{m}{'a' * LONG}: 1"), 431),
    "url-too-long": (lambda m: _request(f"GET /{m}{'a' * LONG} HTTP/1.1"), 431),
    "bad-chunk-size": (lambda m: _request("POST /v1/traces HTTP/1.1", "Content-Type: application/x-protobuf",
                                          "Transfer-Encoding: chunked", body=f"{m}\r\nabc\r\n0\r\n\r\n"), 400),
    "bad-content-length": (lambda m: _request("POST /v1/traces HTTP/1.1", f"Content-Length: 1{m}"), 400),
    "control-char-in-path": (lambda m: _request(f"GET /{m}\x01 HTTP/1.1"), 400),
    # aiohttp's C parser refuses it; its pure-Python one (AIOHTTP_NO_EXTENSIONS) routes it: 404.
    "non-utf8-path": (lambda m: _request(f"GET /\xff\xfe{m} HTTP/1.1"), (400, 404)),
    "bad-absolute-url": (lambda m: _request(f"GET http://[%zz{m} HTTP/1.1"), 400),
    "http2-preface": (lambda m: b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + m.encode(), 400),
    # Not a parser error: aiohttp's answer "Unknown Expect: <the header>", before routing.
    "unknown-expect": (lambda m: _request("POST /v1/traces HTTP/1.1", f"Expect: {m}", "Content-Length: 0"), 417),
}


async def _exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` and read to the end (the server closes after an error answer)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = b""
    try:
        writer.write(data)
        try:
            await writer.drain()
        except ConnectionError:  # the server may stop reading once it has refused the request
            pass
        while chunk := await reader.read(65536):
            answer += chunk
    except ConnectionResetError:
        pass  # what arrived before the reset is what the client saw
    finally:
        writer.close()
    return answer


@pytest.fixture(scope="module")
def proxy(proxies, grpc_upstream):
    # Debug level: every log line the proxy can write for these requests is written.
    return proxies(grpc_upstream.target, "--log-level", "debug", name="no-echo")


def _marker(*parts: str) -> str:
    return MARK + "".join(p.replace("-", "") for p in parts)


def _assert_not_in_logs(proxy, marker: str) -> None:
    for name, text in (("stderr", proxy.stderr()), ("stdout", proxy.stdout())):
        assert marker.lower() not in text.lower(), f"request bytes in the proxy's {name}:\n{text}"


def _assert_still_up(proxy) -> None:
    assert proxy.proc.poll() is None, f"proxy exited; stderr:\n{proxy.stderr()}"
    assert proxy.get("/healthz") == (200, "ok\n")


@pytest.mark.parametrize("port", ["http", "admin"])
@pytest.mark.parametrize("case", list(PARSER_CASES))
def test_malformed_http_request_is_answered_without_its_bytes(proxy, loop_thread, port, case):
    build, statuses = PARSER_CASES[case]
    statuses = statuses if isinstance(statuses, tuple) else (statuses,)
    marker = _marker(port, case)
    answer = loop_thread.run(_exchange(getattr(proxy, f"{port}_port"), build(marker)), CALL_TIMEOUT + 5)
    assert marker.lower().encode() not in answer.lower(), f"request bytes in the answer:\n{answer!r}"
    head = answer.split(b"\r\n", 1)[0]
    assert head.startswith(b"HTTP/1.") and int(head.split(b" ")[1]) in statuses, answer[:300]
    _assert_not_in_logs(proxy, marker)
    _assert_still_up(proxy)


def _assert_grpc_answer_clean(proxy, marker: str, result) -> None:
    texts = [result.details or ""]
    for key, value in result.trailing:
        texts.append(value.decode("latin-1") if isinstance(value, bytes) else value)
        if key == "grpc-status-details-bin":
            texts.append(status_pb2.Status.FromString(value).message)
    for text in texts:
        assert marker.lower() not in text.lower(), f"request bytes in the gRPC answer: {text!r}"
    _assert_not_in_logs(proxy, marker)
    _assert_still_up(proxy)


def _field1(payload: bytes) -> bytes:
    """Field 1, length-delimited (short payloads only: one-byte length)."""
    return b"\x0a" + bytes([len(payload)]) + payload


# Protobuf bodies that fail to decode, each with the marker inside: a length-delimited
# field cut short, an invalid wire type after a complete field, and an attribute key
# (resource_*[0].resource.attributes[0].key in all three signals) that is not UTF-8.
MALFORMED_PROTOBUF = {
    "truncated-field": lambda m: b"\x0a\x7f" + m.encode(),
    "bad-wire-type": lambda m: _field1(b"") + b"\x0f" + m.encode(),
    "non-utf8-key": lambda m: _field1(_field1(_field1(_field1(b"\xff\xfe" + m.encode())))),
}


@pytest.mark.parametrize("signal", SIGNAL_NAMES)
@pytest.mark.parametrize("body", list(MALFORMED_PROTOBUF))
def test_malformed_protobuf_is_refused_without_its_bytes(proxy, signal, body):
    marker = _marker("grpc", signal, body)
    result = grpc_call(proxy.grpc_target, SIGNALS[signal].grpc_method, MALFORMED_PROTOBUF[body](marker))
    assert result.code is grpc.StatusCode.INVALID_ARGUMENT, result.details
    _assert_grpc_answer_clean(proxy, marker, result)


UNKNOWN_METHODS = {
    "unknown-service": "/{m}.TraceService/Export",
    "unknown-method": "/opentelemetry.proto.collector.trace.v1.TraceService/{m}",
    "extra-segment": "/opentelemetry.proto.collector.logs.v1.LogsService/Export/{m}",
    "no-method": "/{m}",
}


@pytest.mark.parametrize("path", list(UNKNOWN_METHODS))
def test_unknown_grpc_method_is_refused_without_its_name(proxy, path):
    marker = _marker("grpc", path)
    result = grpc_call(proxy.grpc_target, UNKNOWN_METHODS[path].format(m=marker), marker.encode())
    assert result.code is grpc.StatusCode.UNIMPLEMENTED, result.details
    _assert_grpc_answer_clean(proxy, marker, result)

