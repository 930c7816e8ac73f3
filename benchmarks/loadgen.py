#!/usr/bin/env python3
"""OTLP load generator: a fixed request rate (open loop) or as fast as answers come back
(closed loop), over OTLP/gRPC or OTLP/HTTP protobuf, for traces, metrics or logs.

Strategy: a small pool of request bodies is generated up front from ``--seed`` by
workloads.py, the generator engine.py measures too (every run with the same options sends
the same bytes), so sending costs the generator almost
nothing: gRPC goes out through ``grpc.aio`` as raw bytes (no serializer) and HTTP through
one ``aiohttp`` session, each over ``--connections`` separate connections (so that
``SO_REUSEPORT`` workers behind one port all get some). Every item has ``--attrs``
attributes, ``round(attrs * --sensitive)`` of them with keys that the doctrine policy
deletes or hashes (``workloads.SENSITIVE_KEYS``), the rest with keys it keeps
(``workloads.BENIGN_KEYS``).

Two modes:
  --concurrency N   closed loop: N requests in flight, each sent as soon as the last one on
                    its slot was answered; latency = answer - send
  --rate R          open loop: request i is due at start + i/R whatever the answers; latency
                    = answer - due time, so a stalled target shows up in the percentiles
                    instead of silently lowering the rate (no coordinated omission); at most
                    --max-outstanding in flight, due requests beyond that are counted as
                    ``skipped`` and not sent

Bounded by ``--duration`` (seconds) and/or ``--requests`` (requests sent), whichever
comes first, after ``--warmup`` seconds of the same load. Each phase ends with a drain:
no new request, and every one sent is answered (or times out). The *window* is the
measured phase, drain included, so the requests sent in it, their items, their latencies
and the CPU the target spent are exactly the same set of work, even when one request
takes seconds. The *totals* count everything, warm-up included: what a sink behind the
target must have received.

Items are spans, data points or log records. An item is ``accepted`` when its request was
answered OK and not listed in ``partial_success`` as rejected, ``refused`` otherwise.
With ``--cpu-pid PID`` (repeatable) the CPU seconds (utime+stime from /proc, the process
and all its descendants) of those processes over the window are reported as well; the
generator always reports its own.

    python benchmarks/loadgen.py --target 127.0.0.1:4317 --concurrency 8 --duration 10
    python benchmarks/loadgen.py --protocol http --target 127.0.0.1:4318 --rate 50 --batch 512 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest, ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest, ExportTraceServiceResponse,
)

from workloads import build_pool

SIGNALS = {
    # name: (gRPC method, HTTP path, request class, response class, rejected field)
    "traces": ("/opentelemetry.proto.collector.trace.v1.TraceService/Export", "/v1/traces",
               ExportTraceServiceRequest, ExportTraceServiceResponse, "rejected_spans"),
    "metrics": ("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export", "/v1/metrics",
                ExportMetricsServiceRequest, ExportMetricsServiceResponse, "rejected_data_points"),
    "logs": ("/opentelemetry.proto.collector.logs.v1.LogsService/Export", "/v1/logs",
             ExportLogsServiceRequest, ExportLogsServiceResponse, "rejected_log_records"),
}


# --- CPU accounting from /proc -------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def process_tree(pids: list[int]) -> list[int]:
    """The processes and all their descendants (alive now)."""
    kids = _children()
    out, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        if pid not in out:
            out.append(pid)
            todo.extend(kids.get(pid, ()))
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads), seconds; 0 if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # fields 14 and 15 of stat(5)


def tree_cpu(pids: list[int]) -> dict[int, float]:
    return {pid: cpu_seconds(pid) for pid in process_tree(pids)}


def self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


# --- the run -----------------------------------------------------------------------------


@dataclass
class Stats:
    requests: int = 0
    ok: int = 0
    failed: int = 0
    accepted: int = 0
    refused: int = 0
    codes: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds, OK answers only

    def add(self, items: int, code: str, rejected: int, latency: float) -> None:
        self.requests += 1
        self.codes[code] += 1
        if code == "OK":
            self.ok += 1
            self.accepted += items - rejected
            self.refused += rejected
            self.latencies.append(latency)
        else:
            self.failed += 1
            self.refused += items


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


class Sender:
    """Sends one body and classifies the answer: (code, rejected items)."""

    def __init__(self, args, signal: str):
        self.args = args
        method, path, _req, self.response_cls, self.rejected_field = SIGNALS[signal]
        self.method, self.path = method, path
        self.timeout = args.timeout
        self.next = 0

    async def start(self) -> None:
        a = self.args
        if a.protocol == "grpc":
            options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1),
                       ("grpc.use_local_subchannel_pool", 1)]  # one TCP connection per channel
            self.channels = [grpc.aio.insecure_channel(a.target, options=options) for _ in range(a.connections)]
            self.calls = [ch.unary_unary(self.method) for ch in self.channels]  # bytes in, bytes out
        else:
            base = a.target if "://" in a.target else f"http://{a.target}"
            self.url = base.rstrip("/") + self.path
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=a.connections, force_close=False),
                timeout=aiohttp.ClientTimeout(total=self.timeout))
            self.headers = {"Content-Type": "application/x-protobuf"}

    async def close(self) -> None:
        if self.args.protocol == "grpc":
            for ch in self.channels:
                await ch.close()
        else:
            await self.session.close()

    def _rejected(self, body: bytes) -> int:
        if not body:
            return 0
        msg = self.response_cls()
        msg.ParseFromString(body)
        return getattr(msg.partial_success, self.rejected_field) if msg.HasField("partial_success") else 0

    async def send(self, body: bytes, slot: int | None = None) -> tuple[str, int]:
        try:
            if self.args.protocol == "grpc":
                if slot is None:  # open loop: round robin
                    slot = self.next
                    self.next += 1
                call = self.calls[slot % len(self.calls)]
                answer = await call(body, timeout=self.timeout)
                return "OK", self._rejected(answer)
            async with self.session.post(self.url, data=body, headers=self.headers) as resp:
                data = await resp.read()
                if resp.status == 200:
                    return "OK", self._rejected(data)
                return f"HTTP {resp.status}", 0
        except grpc.aio.AioRpcError as exc:
            return exc.code().name, 0
        except asyncio.TimeoutError:
            return "timeout", 0
        except (aiohttp.ClientError, OSError) as exc:
            return type(exc).__name__, 0


class Run:
    """Two phases, each ended by a drain (every request sent was answered or timed out):
    warm-up, then the measured window. Draining between them means nothing sent during the
    warm-up is still being worked on in the window, so the window's CPU and its items
    belong together exactly, even when a request takes seconds."""

    def __init__(self, args, pool: list[bytes], items_per_request: int):
        self.args = args
        self.pool = pool
        self.items = items_per_request
        self.sender = Sender(args, args.signal)
        self.window = Stats()
        self.total = Stats()
        self.skipped = 0
        self.inflight = 0
        self.tasks: set[asyncio.Task] = set()
        self.body_index = 0
        self.phase = "warm-up"
        self.stats = Stats()
        self.stop = False
        self.sent = 0
        self.max_requests: int | None = None

    def _body(self) -> bytes:
        body = self.pool[self.body_index % len(self.pool)]
        self.body_index += 1
        return body

    def _may_send(self) -> bool:
        if self.stop:
            return False
        if self.max_requests is not None and self.sent >= self.max_requests:
            self.stop = True
            return False
        self.sent += 1
        return True

    async def _one(self, due: float, slot: int | None) -> None:
        stats = self.stats
        self.inflight += 1
        code, rejected = await self.sender.send(self._body(), slot)
        self.inflight -= 1
        latency = time.perf_counter() - due
        stats.add(self.items, code, rejected, latency)
        self.total.add(self.items, code, rejected, latency)

    async def _closed_slot(self, slot: int) -> None:
        # Each slot keeps to its own connection: with SO_REUSEPORT workers behind the port,
        # every worker then has its own share of the requests in flight, and a busy one
        # does not hold up the others.
        while self._may_send():
            await self._one(time.perf_counter(), slot)

    async def _open_loop(self, t_start: float) -> None:
        i = 0
        interval = 1.0 / self.args.rate
        while True:
            due = t_start + i * interval
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if not self._may_send():
                return
            i += 1
            if self.inflight >= self.args.max_outstanding:
                self.skipped += 1
                continue
            task = asyncio.create_task(self._one(due, None))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _run_phase(self, stats: Stats, duration: float | None, max_requests: int | None) -> float:
        """Sends until ``duration`` or ``max_requests``, then drains; returns its seconds."""
        a = self.args
        self.stats, self.stop, self.sent, self.max_requests = stats, False, 0, max_requests
        t0 = time.perf_counter()
        if a.rate:
            sender = asyncio.ensure_future(self._open_loop(t0))
        else:
            sender = asyncio.gather(*(self._closed_slot(i) for i in range(a.concurrency)))
        deadline = t0 + duration if duration is not None else math.inf
        while not sender.done() and time.perf_counter() < deadline:
            await asyncio.sleep(max(0.0, min(0.05, deadline - time.perf_counter())))
            self._progress(t0)
        self.stop = True
        try:
            await asyncio.wait_for(sender, a.timeout + 5)
        except asyncio.TimeoutError:
            pass
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=a.timeout + 5)
        self._progress(t0, final=self.phase == "measure")
        return time.perf_counter() - t0

    def _progress(self, t0: float, final: bool = False) -> None:
        if self.args.quiet:
            return
        now = time.perf_counter()
        w = self.stats
        lat = sorted(w.latencies[-2000:])
        p99 = percentile(lat, 99)
        line = (f"[loadgen {self.args.signal}/{self.args.protocol}] {self.phase} {now - t0:5.1f}s  "
                f"req {w.requests}  ok {w.ok}  failed {w.failed}  inflight {self.inflight}  "
                f"items/s {w.accepted / max(now - t0, 1e-9):,.0f}  "
                f"p99 {p99 * 1000 if p99 is not None else 0:.1f}ms")
        if sys.stderr.isatty():
            print("\r" + line + ("\n" if final else ""), end="", file=sys.stderr, flush=True)
        elif final or now - self.last_line >= self.args.progress_every:
            print(line, file=sys.stderr, flush=True)
            self.last_line = now

    async def run(self) -> dict:
        a = self.args
        await self.sender.start()
        self.t0 = self.last_line = time.perf_counter()
        cpu_pids = list(a.cpu_pid or ())
        if a.protocol == "grpc":  # connect every channel before the clock starts
            try:
                await asyncio.gather(*(asyncio.wait_for(ch.channel_ready(), a.timeout) for ch in self.sender.channels))
            except asyncio.TimeoutError:
                await self.sender.close()
                raise SystemExit(f"loadgen: no gRPC connection to {a.target} within {a.timeout:g}s") from None
        if a.warmup > 0:
            await self._run_phase(Stats(), a.warmup, None)
        self.phase = "measure"
        cpu0_self, cpu0 = self_cpu(), tree_cpu(cpu_pids)
        window_s = await self._run_phase(self.window, a.duration, a.requests)
        cpu1_self, cpu1 = self_cpu(), tree_cpu(cpu_pids)
        await self.sender.close()
        return self._report(window_s, cpu1_self - cpu0_self, cpu0, cpu1, time.perf_counter() - self.t0)

    def _report(self, window_s: float, own_cpu: float, cpu0: dict, cpu1: dict, elapsed: float) -> dict:
        a, w, t = self.args, self.window, self.total
        lat = sorted(w.latencies)
        pct = {f"p{q}": (percentile(lat, q) * 1000 if lat else None) for q in (50, 90, 99)}
        pct["max"] = lat[-1] * 1000 if lat else None
        window_cpu = {str(pid): cpu1[pid] - cpu0.get(pid, 0.0) for pid in cpu1}
        report = {
            "signal": a.signal, "protocol": a.protocol, "target": a.target,
            "mode": f"open loop {a.rate:g} req/s" if a.rate else f"closed loop, {a.concurrency} in flight",
            "offered_requests_per_s": a.rate,
            "batch": a.batch, "attrs": a.attrs, "sensitive": a.sensitive, "value_size": a.value_size,
            "seed": a.seed, "request_bytes": [len(b) for b in self.pool],
            "window_seconds": window_s,
            "window": {
                "requests": w.requests, "ok": w.ok, "failed": w.failed, "codes": dict(w.codes),
                "items_accepted": w.accepted, "items_refused": w.refused,
                "requests_per_s": w.requests / window_s if window_s else 0.0,
                "items_per_s": w.accepted / window_s if window_s else 0.0,
                "latency_ms": pct,
            },
            "totals": {
                "requests": t.requests, "ok": t.ok, "failed": t.failed, "codes": dict(t.codes),
                "items_sent": t.requests * self.items, "items_accepted": t.accepted,
                "items_refused": t.refused, "skipped_requests": self.skipped, "elapsed_seconds": elapsed,
            },
            "generator_cpu_seconds": own_cpu,
            "generator_cpu_share": own_cpu / window_s if window_s else 0.0,
            "watched_cpu_seconds": sum(window_cpu.values()),
            "watched_cpu_by_pid": window_cpu,
            "watched_pids_changed": sorted(set(cpu1) ^ set(cpu0)),
        }
        if a.raw_latencies:
            report["window"]["latencies_ms"] = [round(x * 1000, 4) for x in w.latencies]
        return report


def format_text(r: dict) -> str:
    w, t, lat = r["window"], r["totals"], r["window"]["latency_ms"]
    fmt = lambda v: f"{v:.2f}" if v is not None else "-"  # noqa: E731
    lines = [
        f"{r['signal']} over {r['protocol']} to {r['target']}: {r['mode']}, {r['batch']} items x {r['attrs']} attributes "
        f"({r['sensitive']:.0%} sensitive), {min(r['request_bytes'])}-{max(r['request_bytes'])} bytes a request",
        f"window {r['window_seconds']:.2f}s: requests {w['requests']} (ok {w['ok']}, failed {w['failed']}), "
        f"{w['requests_per_s']:,.1f} req/s, {w['items_per_s']:,.0f} items/s accepted",
        f"latency ms: p50 {fmt(lat['p50'])}  p90 {fmt(lat['p90'])}  p99 {fmt(lat['p99'])}  max {fmt(lat['max'])}",
        f"totals: items sent {t['items_sent']}, accepted {t['items_accepted']}, refused {t['items_refused']}; "
        f"requests skipped (over --max-outstanding) {t['skipped_requests']}; answers {t['codes']}",
        f"generator CPU {r['generator_cpu_seconds']:.2f}s ({r['generator_cpu_share']:.0%} of a core)",
    ]
    if r["watched_cpu_by_pid"]:
        lines.append(f"watched processes' CPU {r['watched_cpu_seconds']:.2f}s "
                     f"({len(r['watched_cpu_by_pid'])} processes)")
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", default="127.0.0.1:4317", help="HOST:PORT (http: also http://HOST:PORT)")
    p.add_argument("--protocol", choices=("grpc", "http"), default="grpc")
    p.add_argument("--signal", choices=tuple(SIGNALS), default="traces")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--rate", type=float, help="open loop: requests per second")
    mode.add_argument("--concurrency", type=int, help="closed loop: requests in flight (default 4)")
    p.add_argument("--connections", type=int, help="TCP connections (default: concurrency, at most 16; open loop 4)")
    p.add_argument("--batch", type=int, default=1000, help="items (spans, data points, log records) per request")
    p.add_argument("--attrs", type=int, default=12, help="attributes per item")
    p.add_argument("--sensitive", type=float, default=0.4, help="share of each item's attributes with sensitive keys")
    p.add_argument("--value-size", type=int, default=24, help="characters of a string attribute value")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--pool", type=int, default=8, help="distinct request bodies generated up front")
    p.add_argument("--pool-cache", metavar="DIR", help="keep the generated bodies in DIR for the next run")
    p.add_argument("--duration", type=float, help="seconds to measure (default 10 unless --requests)")
    p.add_argument("--requests", type=int, help="measured requests to send")
    p.add_argument("--warmup", type=float, default=0.0, help="seconds of load before the window opens")
    p.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
    p.add_argument("--max-outstanding", type=int, default=256, help="open loop: cap on requests in flight")
    p.add_argument("--cpu-pid", type=int, action="append", help="also report CPU of this process tree (repeatable)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--raw-latencies", action="store_true", help="include every window latency in the JSON")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.add_argument("--progress-every", type=float, default=2.0, help="seconds between progress lines when stderr is not a terminal")
    args = p.parse_args(argv)
    if args.rate is None and args.concurrency is None:
        args.concurrency = 4
    if args.duration is None and args.requests is None:
        args.duration = 10.0
    if args.connections is None:
        args.connections = min(args.concurrency, 16) if args.concurrency else 4
    for name in ("batch", "attrs", "connections", "pool"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    if (args.rate is not None and args.rate <= 0) or (args.concurrency is not None and args.concurrency < 1):
        p.error("--rate must be > 0 and --concurrency >= 1")
    if not 0.0 <= args.sensitive <= 1.0:
        p.error("--sensitive is a share between 0 and 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    pool = build_pool(args.signal, args.pool, args.batch, args.attrs, args.sensitive, args.value_size, args.seed,
                      args.pool_cache)
    report = asyncio.run(Run(args, pool, args.batch).run())
    print(json.dumps(report, indent=1) if args.json else format_text(report))
    return 0 if report["totals"]["ok"] > 0 else 1  # nothing accepted at all: say so


if __name__ == "__main__":
    sys.exit(main())
