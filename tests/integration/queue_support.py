"""Machinery of the persistent-queue tests (test_queue_crash.py), beside the suite's own.

Strategy: captures that listen on a port chosen in advance (so an upstream can be "down"
and come back at the same address), a load of clients in threads that counts which
requests were acknowledged, and what arrived upstream counted per span id. A request's
spans carry ids no other request has, so "every acknowledged item arrived" is a set
comparison and a duplicate is a span id seen twice.
"""

from __future__ import annotations

import collections
import threading
import time
from pathlib import Path

import grpc

from integration_otlp import build_request, items_of
from integration_support import Proxy, grpc_export

SPANS_PER_REQUEST = 2


def numbered_request(n: int):
    """Traces export request ``n``: the suite's sensitive batch, with span ids unique to it."""
    request = build_request("traces", items=SPANS_PER_REQUEST)
    for j, span in enumerate(items_of("traces", request)):
        span.span_id = span_ids_of(n)[j]
    return request


def span_ids_of(n: int) -> list[bytes]:
    return [(0x5100_0000_0000_0000 + n * SPANS_PER_REQUEST + j).to_bytes(8, "big") for j in range(SPANS_PER_REQUEST)]


def arrived(capture) -> collections.Counter:
    """How many times each span id reached ``capture``."""
    return collections.Counter(
        span.span_id for r in list(capture.received) if r.message is not None for span in items_of("traces", r.message))


def disk_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


class Load:
    """``total`` export requests from ``threads`` client threads, gRPC and OTLP/HTTP in
    turn, each retried (as an SDK would) until acknowledged or ``give_up`` seconds pass.
    ``proxy`` is read at every attempt, so a test can point the load at a restarted proxy."""

    def __init__(self, proxy: Proxy, http_export, total: int, threads: int = 4, give_up: float = 30.0):
        self.proxy = proxy
        self.http_export = http_export
        self.total = total
        self.give_up = give_up
        self.acknowledged: set[int] = set()  # request numbers
        self.attempts = 0
        self.failures = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(k, threads), daemon=True) for k in range(threads)]

    def start(self) -> "Load":
        for t in self._threads:
            t.start()
        return self

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self._threads), "the load did not finish in time"

    def acknowledged_ids(self) -> set[bytes]:
        with self._lock:
            return {sid for n in self.acknowledged for sid in span_ids_of(n)}

    def _run(self, k: int, threads: int) -> None:
        for n in range(k, self.total, threads):
            request = numbered_request(n)
            deadline = time.monotonic() + self.give_up
            while time.monotonic() < deadline:
                ok = self._send(n, request)
                with self._lock:
                    self.attempts += 1
                    if ok:
                        self.acknowledged.add(n)
                        break
                    self.failures += 1
                time.sleep(0.05)

    def _send(self, n: int, request) -> bool:
        proxy = self.proxy
        try:
            if n % 2:
                return grpc_export(proxy, "traces", request, timeout=5).code is grpc.StatusCode.OK
            return self.http_export(proxy, "traces", request).status == 200
        except Exception as exc:  # connection refused while the proxy is down: not acknowledged
            with self._lock:
                self.errors.append(exc.__class__.__name__)
            return False
