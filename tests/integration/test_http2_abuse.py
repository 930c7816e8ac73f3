"""Hostile OTLP/gRPC clients on raw HTTP/2 frames (receivers/grpc.py, pipeline.py
admission): streams that stall mid-message hold budget, not memory, and end in
DEADLINE_EXCEEDED; streams that end without a message (or with a cut one) are answered
INVALID_ARGUMENT; 3000 streams on one connection get SETTINGS_MAX_CONCURRENT_STREAMS
(the rest REFUSED_STREAM) and every stream is answered and counted, overload as
UNAVAILABLE, never CANCELLED; a rapid-reset flood leaves other clients' calls working; a
client that cancels is counted CANCELLED. Memory is read from /proc (VmHWM, VmRSS).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import grpc

from hostile_support import MiB, RawH2, grpc_frame, peak, reset_peak, rss
from integration_otlp import SIGNALS, build_request
from integration_support import Answer, grpc_export

SMALL = build_request("traces").SerializeToString()
REFUSED_STREAM = "rst 7"
OK, INVALID_ARGUMENT, DEADLINE_EXCEEDED, UNAVAILABLE = "grpc 0", "grpc 3", "grpc 4", "grpc 14"


def run(coro):
    return asyncio.run(coro)


def assert_serving(proxy, upstream) -> None:
    assert proxy.get("/healthz")[0] == 200
    upstream.reset()
    assert grpc_export(proxy, "traces", build_request("traces")).code is grpc.StatusCode.OK
    assert len(upstream.received) == 1


def test_stalled_streams_hold_the_byte_budget_not_memory(own_proxies, grpc_upstream):
    # 2 connections x 50 streams, each declaring a 16 MiB message and sending what flow
    # control lets through: unadmitted, grpc would buffer ~1.5 GiB. Admitted for the
    # largest message before it is read, 4 fit the 64 MiB budget (and one over it).
    proxy = own_proxies(grpc_upstream.target, "--body-timeout", "3s", "--max-inflight-bytes", str(64 * MiB),
                        name="stalled-grpc")
    reset_peak(proxy.pid)
    before = peak(proxy.pid)
    body = bytes(15 * MiB)

    async def connection():
        async with RawH2("127.0.0.1", proxy.grpc_port) as h:
            await asyncio.sleep(0.1)
            ids = [h.start_call() for _ in range(50)]
            for sid in ids:
                h.send(sid, grpc_frame(b"", declared=16 * MiB)[:5])
            await h.drain()
            await asyncio.gather(*(h.send_flow(sid, body, 8) for sid in ids))
            await h.wait(ids, 15)
            return h.mix(ids)

    async def attack():
        return await asyncio.gather(connection(), connection())

    mix = sum(run(attack()), Counter())
    assert set(mix) <= {UNAVAILABLE, DEADLINE_EXCEEDED}, mix
    assert mix[DEADLINE_EXCEEDED] <= 5, mix
    growth = peak(proxy.pid) - before
    assert growth < 250 * MiB, f"peak RSS grew {growth / MiB:.0f} MiB"
    metrics = proxy.metrics()
    assert metrics.value("redact_proxy_requests_total", transport="grpc", code="UNAVAILABLE") == mix[UNAVAILABLE]
    assert metrics.value("redact_proxy_requests_total", transport="grpc",
                         code="DEADLINE_EXCEEDED") == mix[DEADLINE_EXCEEDED]
    assert metrics.value("redact_proxy_inflight_requests") == 0
    assert grpc_upstream.received == []
    assert_serving(proxy, grpc_upstream)


def test_streams_ending_without_a_whole_message_are_invalid_argument(proxy_to_grpc, grpc_upstream):
    proxy = proxy_to_grpc
    rss_before = rss(proxy.pid)

    async def attack():
        mix = Counter()
        async with RawH2("127.0.0.1", proxy.grpc_port) as h:
            await asyncio.sleep(0.1)
            for wave in range(50):  # 5000 streams, 100 at a time (the stream limit)
                ids = []
                for i in range(100):
                    sid = h.start_call(end_stream=(i % 2 == 0))
                    if i % 2:  # a cut message: 10 of a declared 100 bytes, then the end
                        h.send(sid, grpc_frame(b"x" * 10, declared=100), end_stream=True)
                    ids.append(sid)
                await h.drain()
                await h.wait(ids, 10)
                mix.update(h.mix(ids))
        return mix

    mix = run(attack())
    assert mix == {INVALID_ARGUMENT: 5000}, mix
    growth = rss(proxy.pid) - rss_before
    assert growth < 60 * MiB, f"RSS grew {growth / MiB:.0f} MiB over 5000 streams"
    assert grpc_upstream.received == []
    assert_serving(proxy, grpc_upstream)


def test_3000_streams_on_one_connection_are_each_answered_and_counted(own_proxies, grpc_upstream):
    proxy = own_proxies(grpc_upstream.target, name="streams")
    grpc_upstream.answer = Answer(delay=0.2)  # streams overlap: the limits are reached
    before = proxy.metrics()

    async def attack():
        async with RawH2("127.0.0.1", proxy.grpc_port, ignore_stream_limit=True) as h:
            await asyncio.sleep(0.2)
            assert h.conn.remote_settings.max_concurrent_streams == 100  # --max-concurrent-streams
            ids = []
            for _ in range(3000):
                sid = h.start_call()
                h.send(sid, grpc_frame(SMALL), end_stream=True)
                ids.append(sid)
            await h.drain()
            await h.wait(ids, 60)
            return h.mix(ids), h.goaway

    mix, _goaway = run(attack())
    assert set(mix) <= {OK, UNAVAILABLE, REFUSED_STREAM}, mix  # never CANCELLED, never unanswered
    assert mix[REFUSED_STREAM] > 0 and mix[OK] > 0, mix
    after = proxy.metrics()

    def delta(code):
        return (after.value("redact_proxy_requests_total", transport="grpc", code=code)
                - before.value("redact_proxy_requests_total", transport="grpc", code=code))

    assert delta("OK") == mix[OK] and delta("UNAVAILABLE") == mix[UNAVAILABLE]
    assert_serving(proxy, grpc_upstream)


def test_a_rapid_reset_flood_leaves_other_clients_served(own_proxies, grpc_upstream):
    proxy = own_proxies(grpc_upstream.target, name="rapid-reset")
    reset_peak(proxy.pid)
    before = peak(proxy.pid)
    message = grpc_frame(SMALL)

    async def attack():
        stop = time.monotonic() + 8
        resets = 0

        async def flood():
            nonlocal resets
            while time.monotonic() < stop:
                async with RawH2("127.0.0.1", proxy.grpc_port, ignore_stream_limit=True) as h:
                    await asyncio.sleep(0.05)
                    while time.monotonic() < stop and not h.closed.is_set():
                        for _ in range(100):
                            sid = h.start_call()
                            h.send(sid, message)
                            h.reset(sid)
                        resets += 100
                        await h.drain()
                        await asyncio.sleep(0)

        async def victim():
            # As an OTLP exporter does: UNAVAILABLE is retryable (the spec's throttling
            # answer; the proxy sheds load with it when --max-inflight is full, which the
            # flood's half-reset calls can fill for a moment on a loaded machine), so one
            # is retried after a pause, up to twice. Anything else counts as it came.
            codes, retries = Counter(), 0
            async with grpc.aio.insecure_channel(proxy.grpc_target) as channel:
                call = channel.unary_unary(SIGNALS["traces"].grpc_method, request_serializer=None,
                                           response_deserializer=None)
                for _ in range(20):
                    for attempt in range(3):
                        try:
                            await call(SMALL, timeout=10)
                            codes["OK"] += 1
                            break
                        except grpc.aio.AioRpcError as exc:
                            if exc.code() is grpc.StatusCode.UNAVAILABLE and attempt < 2:
                                retries += 1
                                await asyncio.sleep(0.5)
                                continue
                            codes[exc.code().name] += 1
                            break
                    await asyncio.sleep(0.2)
            return codes, retries

        _, (codes, retries) = await asyncio.gather(flood(), victim())
        return codes, retries, resets

    codes, retries, resets = run(attack())
    assert resets > 1000
    assert codes == {"OK": 20}, codes
    assert retries <= 4, f"{retries} of 20 calls shed: the flood crowds other clients out"
    growth = peak(proxy.pid) - before
    assert growth < 150 * MiB, f"peak RSS grew {growth / MiB:.0f} MiB"
    assert "ERROR" not in proxy.stderr()
    assert_serving(proxy, grpc_upstream)


def test_a_cancelled_call_is_counted_cancelled_and_not_logged_as_an_error(proxy_to_grpc, grpc_upstream):
    proxy = proxy_to_grpc
    before = proxy.metrics().value("redact_proxy_requests_total", transport="grpc", code="CANCELLED")
    grpc_upstream.answer = Answer(hold=True)
    result = grpc_export(proxy, "traces", build_request("traces"), timeout=1)
    assert result.code is grpc.StatusCode.DEADLINE_EXCEEDED  # the client's own deadline: it cancels
    grpc_upstream.release()
    deadline = time.monotonic() + 20
    while proxy.metrics().value("redact_proxy_requests_total", transport="grpc", code="CANCELLED") <= before:
        assert time.monotonic() < deadline, "the cancelled call was never counted"
        time.sleep(0.05)
    assert "ERROR" not in proxy.stderr()
    assert_serving(proxy, grpc_upstream)
