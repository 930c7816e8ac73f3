"""Hostile OTLP/HTTP clients (receivers/http.py, pipeline.py admission, service.py fd
limit): stalled uploads hold budget, not memory; slow headers, idle connections and
endless bodies are closed by --header-timeout, --idle-timeout and --body-timeout; the
connection cap makes room for new clients; a client that goes away is a 499, not a 500;
undecodable Authorization bytes are a 401. Each test reproduces the client on a raw
loopback socket (tests/integration/hostile_support.py) and asserts the SPEC status, that
the proxy still serves, and a bound on its memory growth read from /proc (VmHWM).
"""

from __future__ import annotations

import asyncio
import resource
import socket

import pytest

from hostile_support import (
    MiB, endless_chunked, healthz_once, idle_connection, late_bad_chunk, peak, reset_peak, slow_headers,
    stalled_upload,
)
from integration_otlp import build_request

TIMEOUTS = ("--header-timeout", "1s", "--body-timeout", "2s", "--idle-timeout", "2s")
HOLD = 15.0  # seconds an attacker waits for the proxy at most


def run(coro):
    return asyncio.run(coro)


def assert_serving(proxy, http_export, upstream) -> None:
    assert proxy.get("/healthz")[0] == 200
    upstream.reset()
    assert http_export(proxy, "traces", build_request("traces")).status == 200
    assert len(upstream.received) == 1


def test_stalled_uploads_hold_the_byte_budget_not_memory(own_proxies, grpc_upstream, http_export):
    # 40 uploads of 15 of a declared 16 MiB would hold 600 MiB unadmitted; the budget of
    # 64 MiB lets 4 in (refused before reading: 503), and the body timeout ends those.
    proxy = own_proxies(grpc_upstream.target, *TIMEOUTS, "--max-inflight-bytes", str(64 * MiB), name="stalled")
    reset_peak(proxy.pid)
    before = peak(proxy.pid)

    async def attack():
        return await asyncio.gather(*(stalled_upload("127.0.0.1", proxy.http_port, 16 * MiB, 15 * MiB, HOLD)
                                      for _ in range(40)))

    outcomes = run(attack())
    assert set(outcomes) <= {"503", "408"}, outcomes
    assert outcomes.count("408") <= 4  # what the budget holds: 4 declared 16 MiB bodies
    growth = peak(proxy.pid) - before
    assert growth < 160 * MiB, f"peak RSS grew {growth / MiB:.0f} MiB"
    metrics = proxy.metrics()
    assert metrics.value("redact_proxy_requests_total", transport="http", code="503") == outcomes.count("503")
    assert metrics.value("redact_proxy_requests_total", transport="http", code="408") == outcomes.count("408")
    assert metrics.value("redact_proxy_inflight_requests") == 0  # every ticket released
    assert grpc_upstream.received == []
    assert_serving(proxy, http_export, grpc_upstream)


def test_slow_headers_idle_connections_and_endless_bodies_are_closed(own_proxies, grpc_upstream, http_export):
    proxy = own_proxies(grpc_upstream.target, *TIMEOUTS, name="timeouts")
    port = proxy.http_port

    async def attack():
        return await asyncio.gather(
            *(slow_headers("127.0.0.1", port, HOLD) for _ in range(50)),
            *(idle_connection("127.0.0.1", port, HOLD) for _ in range(50)),
            *(endless_chunked("127.0.0.1", port, HOLD, every=0.2) for _ in range(20)),
        )

    outcomes = run(attack())
    assert outcomes[:100] == ["closed"] * 100, "slow headers / idle connections left open"
    # A chunked body is charged the largest size until read: 17 fit the default budget
    # (one over it, being of unknown size); the others are refused before reading.
    chunked = outcomes[100:]
    assert set(chunked) <= {"408", "503"} and chunked.count("408") >= 1, chunked
    assert_serving(proxy, http_export, grpc_upstream)


def test_a_bad_chunk_size_line_after_the_headers_is_400_at_once(proxy_to_grpc, grpc_upstream, http_export):
    # The shared proxy's body timeout is the default 30 s: the answer comes from the
    # parser's refusal, not from a timeout, or the attacker's bounded wait sees "open".
    assert run(late_bad_chunk("127.0.0.1", proxy_to_grpc.http_port, 10)) == "400"
    assert grpc_upstream.received == []
    assert_serving(proxy_to_grpc, http_export, grpc_upstream)


def test_at_the_connection_cap_idle_connections_make_room_for_new_clients(own_proxies, grpc_upstream, http_export):
    proxy = own_proxies(grpc_upstream.target, "--max-connections", "50", "--header-timeout", "60s",
                        "--idle-timeout", "60s", name="cap")

    async def attack():
        attackers = [asyncio.create_task(slow_headers("127.0.0.1", proxy.http_port, HOLD)) for _ in range(200)]
        await asyncio.sleep(1)
        done = [t for t in attackers if t.done()]
        for t in attackers:
            t.cancel()
        return [t.result() for t in done]

    closed = run(attack())
    assert len(closed) >= 150 and set(closed) == {"closed"}, "over the cap, the oldest idle ones are closed"
    assert_serving(proxy, http_export, grpc_upstream)


def test_the_fd_limit_is_raised_at_start_up_and_a_connection_flood_leaves_healthz_up(own_proxies, grpc_upstream,
                                                                                     http_export):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 4096:
        pytest.fail(f"this host's hard nofile limit ({hard}) is too low to run the flood")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))  # what the proxy inherits
    try:
        proxy = own_proxies(grpc_upstream.target, name="fds")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    limits = open(f"/proc/{proxy.pid}/limits").read()
    row = next(line for line in limits.splitlines() if line.startswith("Max open files")).split()
    assert int(row[3]) == hard, row

    async def attack():
        # 1100 slowloris connections: more than the 1024 the proxy started with.
        attackers = [asyncio.create_task(slow_headers("127.0.0.1", proxy.http_port, 8)) for _ in range(1100)]
        await asyncio.sleep(2)
        latency = await healthz_once("127.0.0.1", proxy.admin_port)
        for t in attackers:
            t.cancel()
        await asyncio.gather(*attackers, return_exceptions=True)
        return latency

    assert run(attack()) is not None, "/healthz unreachable during the flood"
    assert_serving(proxy, http_export, grpc_upstream)


def test_a_client_going_away_is_counted_as_a_client_cancel_not_a_500(proxy_to_grpc, grpc_upstream, http_export):
    proxy = proxy_to_grpc
    before = proxy.metrics()

    async def go_away():
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.http_port)
        writer.write(b"POST /v1/traces HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/x-protobuf\r\n"
                     b"Content-Length: 100000\r\n\r\n" + b"\x00" * 50000)
        await writer.drain()
        await asyncio.sleep(0.3)
        writer.transport.abort()

    run(go_away())
    deadline_passes = 0
    while proxy.metrics().value("redact_proxy_requests_total", transport="http", code="499") <= \
            before.value("redact_proxy_requests_total", transport="http", code="499"):
        deadline_passes += 1
        assert deadline_passes < 200, "the cut request was never counted"
        run(asyncio.sleep(0.05))
    after = proxy.metrics()
    assert after.value("redact_proxy_requests_total", transport="http", code="500") == \
        before.value("redact_proxy_requests_total", transport="http", code="500")
    assert "ERROR" not in proxy.stderr()
    assert_serving(proxy, http_export, grpc_upstream)


def test_undecodable_authorization_bytes_are_401_not_500(own_proxies, grpc_upstream, http_export, tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret-token-for-the-test\n")
    proxy = own_proxies(grpc_upstream.target, "--auth-token-file", str(token), name="auth-bytes")
    body = build_request("traces").SerializeToString()
    with socket.create_connection(("127.0.0.1", proxy.http_port), timeout=10) as s:
        s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/x-protobuf\r\n"
                  b"Authorization: Bearer \xff\xfe\x80s3cret\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                  % len(body) + body)
        status = s.makefile("rb").readline()
    assert status.split()[1] == b"401", status
    assert grpc_upstream.received == []
    assert proxy.get("/healthz")[0] == 200
