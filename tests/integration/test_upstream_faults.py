"""Upstream faults against real misbehaving servers on loopback (forward/grpc.py,
forward/http.py, errors.py; SPEC section 5): an upstream that accepts and never answers,
one that resets the connection in the middle of a request, raw HTTP/1.1 throttling and
gateway answers, a throttling upstream the OTel SDK's own retries get through, and an
upstream that restarts on the same port while the proxy keeps running.

What each maps to (SPEC 5, "overloaded, upstream unreachable or timing out" and "upstream
throttles"):

| fault                                  | gRPC client                 | HTTP client            |
| -------------------------------------- | --------------------------- | ---------------------- |
| connection refused (upstream down)     | UNAVAILABLE + RetryInfo     | 503 + Retry-After      |
| accepts, never answers (past timeout)  | UNAVAILABLE + RetryInfo     | 503 + Retry-After      |
| RST in the middle of the request       | UNAVAILABLE + RetryInfo     | 503 + Retry-After      |
| HTTP 429 (+ Retry-After, date or secs) | RESOURCE_EXHAUSTED + delay  | 429 + that Retry-After |
| HTTP 502 / 503 / 504                   | UNAVAILABLE + RetryInfo     | 503 + Retry-After      |
| gRPC UNAVAILABLE / RESOURCE_EXHAUSTED  | as upstream, with its delay | 503 / 429 + delay      |
| any hint past 300 s / unreadable       | 300 s / the default 1 s     | the same Retry-After   |

Connection refused on its own, the capture-based 503/429/UNAVAILABLE/RESOURCE_EXHAUSTED
answers and a slow (delayed) answer are in test_forwarders.py; here they are the TCP- and
HTTP/1.1-level variants, the SDK's view, and recovery. Hostile answers (bombs, oversized
bodies, every malformed hint) are in test_upstream_hostile.py.
"""

from __future__ import annotations

import concurrent.futures
import email.utils
import time

import grpc
import pytest

from integration_faults import GrpcCaptureAt, HttpCaptureAt, RawServer, ResettingRelay, http_response
from integration_otlp import (
    MARK, assert_nothing_deleted_leaked, assert_redacted, attrs, build_request, check_sdk_arrival, items_of,
)
from integration_support import Answer, free_port, grpc_export, http_status, sdk_export, wait_for

KINDS = ["grpc", "http"]
SCHEME = {"grpc": "grpc", "http": "http"}
WAIT = 20.0  # seconds; bounded waits



@pytest.fixture
def served(loop_thread):
    """Start fault servers / captures on the suite's loop; all stopped at the end."""
    started = []

    def start(server):
        loop_thread.run(server.start())
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        try:
            loop_thread.run(server.stop())
        except Exception:  # already stopped by the test (an upstream restart)
            pass


def capture_for(kind: str, port: int = 0, **kw):
    return GrpcCaptureAt(port, **kw) if kind == "grpc" else HttpCaptureAt(port, **kw)


def both_clients(proxy, http_export, request):
    """The same batch through the proxy's gRPC and HTTP receivers."""
    return grpc_export(proxy, "traces", request), http_export(proxy, "traces", request)


def assert_retryable(grpc_result, http_result, grpc_code=grpc.StatusCode.UNAVAILABLE, http=503,
                     delay: tuple[float, float] | None = None):
    """Both clients were told to come back later, with a delay hint (within ``delay``)."""
    assert grpc_result.code is grpc_code, grpc_result.details
    assert http_result.status == http, http_result.body
    assert http_status(http_result).code == grpc_code.value[0]
    hints = (grpc_result.retry_delay(), float(http_result.headers["retry-after"]))
    assert hints[0] is not None and hints[0] > 0, "no RetryInfo for a retryable failure"
    if delay is not None:
        low, high = delay
        assert all(low <= h <= high for h in hints), hints
    assert MARK not in (grpc_result.details or "")
    assert MARK.encode() not in http_result.body


def upstream_errors(proxy, code: str) -> float:
    return proxy.metrics().value("redact_proxy_upstream_errors_total", signal="traces", code=code)


# --- TCP-level faults ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_upstream_that_accepts_and_never_answers_is_unavailable_at_the_timeout(own_proxies, served, http_export,
                                                                             kind):
    hung = served(RawServer("blackhole"))
    proxy = own_proxies(f"{SCHEME[kind]}://{hung.address}", "--upstream-timeout", "500ms", name=f"hung-{kind}")
    grpc_result, http_result = both_clients(proxy, http_export, build_request("traces"))
    assert_retryable(grpc_result, http_result)
    assert hung.connections >= 1, "the proxy never reached the hung upstream"
    # Counted as a timeout (not a refusal), once per request.
    assert upstream_errors(proxy, "timeout") == 2
    assert proxy.get("/readyz")[0] == 200


@pytest.mark.parametrize("kind", KINDS)
def test_connection_reset_mid_request_is_unavailable_and_the_next_request_gets_through(
        own_proxies, served, http_export, kind):
    upstream = served(capture_for(kind))
    # 16 KiB in: past the HTTP/2 preface and headers, inside the ~230 KB body.
    relay = served(ResettingRelay(upstream.port, reset_after=16 * 1024))
    proxy = own_proxies(f"{SCHEME[kind]}://127.0.0.1:{relay.port}", "--upstream-timeout", "5s",
                        name=f"reset-{kind}")
    big = build_request("traces", items=400)
    assert big.ByteSize() > 200 * 1024
    grpc_result, http_result = both_clients(proxy, http_export, big)
    assert_retryable(grpc_result, http_result)
    assert relay.resets >= 2
    assert upstream.received == [], "a request cut in the middle must not reach upstream whole"
    assert upstream_errors(proxy, "timeout") == 0, "a reset is not a timeout"
    # The connection is gone; the proxy makes a new one for the next request (no dead
    # channel, no dead pooled connection).
    relay.reset_after = None
    grpc_result, http_result = both_clients(proxy, http_export, big)
    assert grpc_result.code is grpc.StatusCode.OK, grpc_result.details
    assert http_result.status == 200
    assert len(upstream.received) == 2
    assert_nothing_deleted_leaked(upstream.received)


# --- raw HTTP/1.1 answers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw_upstream(loop_thread):
    server = RawServer("answer")
    loop_thread.run(server.start())
    yield server
    loop_thread.run(server.stop())


@pytest.fixture(scope="module")
def proxy_to_raw(proxies, raw_upstream):
    return proxies(f"http://{raw_upstream.address}", "--upstream-timeout", "5s", name="to-raw-http")


def _http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


# (status line, headers) -> gRPC code, HTTP status, accepted delay range (seconds)
RAW_ANSWERS = {
    "429-retry-after-seconds": ((429, "Too Many Requests"), {"Retry-After": "7"},
                                grpc.StatusCode.RESOURCE_EXHAUSTED, 429, (7, 7)),
    "429-retry-after-http-date": ((429, "Too Many Requests"), {"Retry-After": lambda: _http_date(6)},
                                  grpc.StatusCode.RESOURCE_EXHAUSTED, 429, (3, 7)),
    # OTLP/HTTP: 429 is retryable with or without a hint; a gRPC client needs RetryInfo to
    # retry RESOURCE_EXHAUSTED, so the proxy supplies one.
    "429-no-retry-after": ((429, "Too Many Requests"), {}, grpc.StatusCode.RESOURCE_EXHAUSTED, 429, (1, 1)),
    "503-retry-after": ((503, "Service Unavailable"), {"Retry-After": "4"}, grpc.StatusCode.UNAVAILABLE, 503, (4, 4)),
    "502-bad-gateway": ((502, "Bad Gateway"), {}, grpc.StatusCode.UNAVAILABLE, 503, (1, 1)),
    "504-gateway-timeout": ((504, "Gateway Timeout"), {}, grpc.StatusCode.UNAVAILABLE, 503, (1, 1)),
    # errors.RETRY_AFTER_MAX: a hint is clamped, never an overflow (it was a 500 / UNKNOWN).
    "429-retry-after-int64-max": ((429, "Too Many Requests"), {"Retry-After": "9223372036854775807"},
                                  grpc.StatusCode.RESOURCE_EXHAUSTED, 429, (300, 300)),
    "503-retry-after-next-century": ((503, "Service Unavailable"), {"Retry-After": lambda: _http_date(3e9)},
                                     grpc.StatusCode.UNAVAILABLE, 503, (300, 300)),
    "503-retry-after-garbage": ((503, "Service Unavailable"), {"Retry-After": "later"}, grpc.StatusCode.UNAVAILABLE,
                                503, (1, 1)),
}


@pytest.mark.parametrize("case", RAW_ANSWERS)
def test_raw_http_upstream_throttling_and_gateway_answers(proxy_to_raw, raw_upstream, http_export, case):
    (status, reason), headers, grpc_code, http, delay = RAW_ANSWERS[case]
    before = len(raw_upstream.requests)
    results = []
    for send in (lambda r: grpc_export(proxy_to_raw, "traces", r), lambda r: http_export(proxy_to_raw, "traces", r)):
        raw_upstream.response = http_response(
            status, reason, {k: v() if callable(v) else v for k, v in headers.items()},
            body=b"upstream says no")
        results.append(send(build_request("traces")))
    assert_retryable(*results, grpc_code=grpc_code, http=http, delay=delay)
    assert len(raw_upstream.requests) == before + 2, "each request was forwarded once, not retried by the proxy"


# --- the SDK's own retries get a batch through a throttling upstream -------------------------


THROTTLE_THEN_OK = {
    "grpc": [Answer(grpc_code=grpc.StatusCode.UNAVAILABLE, retry_after=1, message="restarting"),
             Answer(grpc_code=grpc.StatusCode.RESOURCE_EXHAUSTED, retry_after=1, message="slow down")],
    "http": [Answer(http_status=503, retry_after=1), Answer(http_status=429, retry_after=1)],
}


@pytest.mark.parametrize("sdk, kind", [("http", "grpc"), ("grpc", "http")],
                         ids=["sdk-http-to-grpc-upstream", "sdk-grpc-to-http-upstream"])
def test_sdk_retries_get_through_a_throttling_upstream(own_proxies, served, sdk, kind):
    upstream = served(capture_for(kind, script=THROTTLE_THEN_OK[kind]))
    proxy = own_proxies(upstream.target, name=f"throttled-{kind}")
    data, ok = sdk_export("traces", sdk, proxy)
    assert ok, "the SDK gave up on a batch that a retry would have delivered"
    assert len(upstream.received) == 3, "refused twice (retryable, with a delay), accepted the third time"
    assert_nothing_deleted_leaked(upstream.received)
    check_sdk_arrival("traces", data, upstream.received[-1:])


# --- an upstream restarting on the same port ---------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_upstream_restart_is_survived_without_restarting_the_proxy(own_proxies, served, loop_thread, http_export,
                                                                   kind):
    port = free_port()
    first = served(capture_for(kind, port))
    proxy = own_proxies(first.target, "--upstream-timeout", "3s", name=f"restart-{kind}")
    assert grpc_export(proxy, "traces", build_request("traces")).code is grpc.StatusCode.OK
    assert len(first.received) == 1

    loop_thread.run(first.stop())
    grpc_result, http_result = both_clients(proxy, http_export, build_request("traces"))
    assert_retryable(grpc_result, http_result)
    refused_code = "UNAVAILABLE" if kind == "grpc" else "connect"
    assert upstream_errors(proxy, refused_code) == 2

    # An SDK export while upstream is down: refused, retried by the SDK, delivered once
    # upstream is back — and the proxy was never restarted.
    sdk = "http" if kind == "grpc" else "grpc"
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(sdk_export, "traces", sdk, proxy)
        wait_for(lambda: upstream_errors(proxy, refused_code) >= 3, WAIT, "the SDK's first attempt to be refused")
        second = served(capture_for(kind, port))
        data, ok = future.result(60)
    assert ok, "the SDK's retries did not get through once upstream was back"
    check_sdk_arrival("traces", data, second.received)

    second.reset()
    grpc_result, http_result = both_clients(proxy, http_export, build_request("traces"))
    assert grpc_result.code is grpc.StatusCode.OK, grpc_result.details
    assert http_result.status == 200
    assert len(second.received) == 2
    for r in second.received:
        for item in items_of("traces", r.message):
            assert_redacted(attrs(item.attributes))
    assert proxy.get("/readyz")[0] == 200
