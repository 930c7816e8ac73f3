"""Limits (settings.py, codec.py, pipeline.py, both receivers): --max-request-bytes
refuses oversize bodies and decompression bombs with 413 / RESOURCE_EXHAUSTED before they
cost memory, and the proxy stays healthy; --max-inflight sheds load with 503 /
UNAVAILABLE. Memory is read from /proc/PID/status (VmRSS): a bound on bytes, not time."""

from __future__ import annotations

import concurrent.futures
import struct
import time
import zlib

import grpc
import pytest

from integration_otlp import MARK, assert_redacted, attrs, build_request, items_of
from integration_support import MAX_REQUEST_BYTES, Answer, grpc_export

MiB = 1024 * 1024
RSS_GROWTH_BOUND = 200 * MiB  # a bomb that got inflated would cost ~1 GiB


def gzip_bomb(total: int = 1024 * MiB) -> bytes:
    """``total`` zero bytes as a valid gzip stream of about total/1000 bytes, built without
    ever holding ``total`` bytes: one 1 MiB block compressed after a full flush is
    byte-identical each time, so it is compressed once and repeated."""
    chunk = bytes(MiB)
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    first = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    end = c.flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(total // MiB):
        crc = zlib.crc32(chunk, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return header + first + block * (total // MiB - 1) + end + struct.pack("<II", crc, total & 0xFFFFFFFF)


def test_gzip_bomb_helper_is_what_it_claims():
    bomb = gzip_bomb(16 * MiB)
    d = zlib.decompressobj(zlib.MAX_WBITS | 16)
    assert len(d.decompress(bomb)) == 16 * MiB and d.eof and not d.unused_data


def _still_serving(proxy, grpc_upstream, http_export) -> None:
    status, _ = proxy.get("/healthz")
    assert status == 200
    assert proxy.get("/readyz")[0] == 200
    grpc_upstream.reset()
    ok = http_export(proxy, "traces", build_request("traces"))
    assert ok.status == 200
    assert grpc_export(proxy, "logs", build_request("logs")).code is grpc.StatusCode.OK
    assert len(grpc_upstream.received) == 2
    for r in grpc_upstream.received:
        for item in items_of(r.signal, r.message):
            assert_redacted(attrs(item.attributes))


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_http_oversize_body_is_413(proxy_to_grpc, grpc_upstream, http, http_export, chunked):
    body = MARK.encode() * (MAX_REQUEST_BYTES // len(MARK) + 1)
    assert len(body) > MAX_REQUEST_BYTES

    async def stream():
        for i in range(0, len(body), 65536):
            yield body[i:i + 65536]

    result = http("POST", proxy_to_grpc.http_url + "/v1/traces", stream() if chunked else body,
                  {"Content-Type": "application/x-protobuf"})
    assert result.status == 413
    assert grpc_upstream.received == []
    _still_serving(proxy_to_grpc, grpc_upstream, http_export)


def test_http_gzip_bomb_is_413_without_inflating_it(proxy_to_grpc, grpc_upstream, http_export):
    bomb = gzip_bomb()
    # Smaller than the limit on the wire: only inflating it shows it is too large.
    assert len(bomb) < MAX_REQUEST_BYTES
    rss_before = proxy_to_grpc.rss_bytes()
    result = http_export(proxy_to_grpc, "traces", bomb, headers={"Content-Encoding": "gzip"})
    rss_after = proxy_to_grpc.rss_bytes()
    assert result.status == 413
    assert grpc_upstream.received == []
    assert rss_after - rss_before < RSS_GROWTH_BOUND, f"RSS grew by {(rss_after - rss_before) // MiB} MiB"
    _still_serving(proxy_to_grpc, grpc_upstream, http_export)


def test_grpc_oversize_message_is_resource_exhausted(proxy_to_grpc, grpc_upstream, http_export):
    body = MARK.encode() * (MAX_REQUEST_BYTES // len(MARK) + 1)
    result = grpc_export(proxy_to_grpc, "traces", body)
    assert result.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert grpc_upstream.received == []
    _still_serving(proxy_to_grpc, grpc_upstream, http_export)


def test_grpc_gzip_bomb_is_resource_exhausted(proxy_to_grpc, grpc_upstream, http_export):
    # The grpc client compresses the message itself, so this one is built in memory:
    # 64 MiB of zeros, ~64 KiB on the wire, 32 times the limit once inflated.
    body = bytes(64 * MiB)
    rss_before = proxy_to_grpc.rss_bytes()
    result = grpc_export(proxy_to_grpc, "metrics", body, compression=grpc.Compression.Gzip)
    rss_after = proxy_to_grpc.rss_bytes()
    del body
    assert result.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert grpc_upstream.received == []
    assert rss_after - rss_before < RSS_GROWTH_BOUND
    _still_serving(proxy_to_grpc, grpc_upstream, http_export)


def test_just_under_the_limit_is_accepted(proxy_to_grpc, grpc_upstream, http_export):
    request = build_request("traces", items=1)
    request.resource_spans[0].scope_spans[0].spans[0].attributes.add(key="payload").value.string_value = (
        "x" * (MAX_REQUEST_BYTES - 64 * 1024))
    assert request.ByteSize() < MAX_REQUEST_BYTES
    assert http_export(proxy_to_grpc, "traces", request).status == 200
    assert grpc_export(proxy_to_grpc, "traces", request).code is grpc.StatusCode.OK
    assert len(grpc_upstream.received) == 2


def test_over_max_inflight_is_refused_as_overload(own_proxies, grpc_upstream, http_export):
    proxy = own_proxies(grpc_upstream.target, "--max-inflight", "1", name="overload")
    grpc_upstream.answer = Answer(hold=True)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(grpc_export, proxy, "traces", build_request("traces"))
        deadline = time.monotonic() + 20
        while not grpc_upstream.received and time.monotonic() < deadline:
            time.sleep(0.02)
        assert grpc_upstream.received, "the first request never reached upstream"
        refused_grpc = grpc_export(proxy, "logs", build_request("logs"))
        refused_http = http_export(proxy, "logs", build_request("logs"))
        assert not first.done()
        grpc_upstream.release()
        assert first.result(30).code is grpc.StatusCode.OK
    assert refused_grpc.code is grpc.StatusCode.UNAVAILABLE
    assert refused_grpc.retry_delay() is not None
    assert refused_http.status == 503
    assert int(refused_http.headers["retry-after"]) >= 1
    assert [r.signal for r in grpc_upstream.received] == ["traces"]
    grpc_upstream.answer = Answer()
    assert grpc_export(proxy, "logs", build_request("logs")).code is grpc.StatusCode.OK
