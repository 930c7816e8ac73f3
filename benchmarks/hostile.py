#!/usr/bin/env python3
"""Hostile clients against a real proxy: does one client stall, bloat or fool it?

Each attack of issue 11 runs against a fresh ``redact-proxy serve`` subprocess on
127.0.0.1 (the doctrine policy, a gRPC upstream that answers OK at once and keeps
nothing) and prints, per attack: the status mix the attacking connections or streams saw,
the proxy's peak RSS (VmHWM, reset before the attack) and its RSS afterwards, and the
latency of ``GET /healthz`` polled every 250 ms during the attack. Every attack is bounded
in time and count (``--seconds`` scales the holds).

  slowloris         1100 connections trickling header bytes at 1 byte/s, the proxy started
                    with a soft fd limit of 1024 (as a container often gets)
  stalled-http      60 uploads declaring 16 MiB, sending 15 MiB, then silent for 35 s
  stalled-grpc      300 gRPC streams on 2 connections declaring a 16 MiB message, sending
                    what flow control lets through, then silent (35 s in all)
  empty-grpc        20,000 gRPC streams that end without a message
  streams-3000      3000 concurrent streams on one connection, past MAX_CONCURRENT_STREAMS
  rst-flood         a connection opening and resetting streams as fast as it can, while
                    a well-behaved gRPC client exports; its failures are the damage
  overload          10x the measured capacity for --overload-seconds with 1000-span batches,
                    half OTLP/HTTP, half OTLP/gRPC; "none" = no answer within 30 s

The tree under test is ``--tree`` (default: this checkout), put first on PYTHONPATH, so
a copy of an older commit (``git worktree add /tmp/before HEAD``) runs the same attacks:

    python benchmarks/hostile.py [--tree DIR] [--native DIR] [--only a,b] [--seconds 1.0] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import aiohttp  # noqa: E402
import grpc  # noqa: E402

from hostile_support import (  # noqa: E402
    MiB, HealthProbe, RawH2, grpc_frame, peak, reset_peak, rss, slow_headers, stalled_upload,
)
from integration_otlp import SIGNALS, build_request  # noqa: E402
from integration_support import GrpcCapture, LoopThread, Proxy  # noqa: E402

TRACES = SIGNALS["traces"]
SMALL = build_request("traces").SerializeToString()


class Tally(list):
    """A capture's ``received`` that counts and keeps nothing."""

    def append(self, _received) -> None:
        self.items = getattr(self, "items", 0) + 1


def start_proxy(args, workdir: Path, upstream: str, *extra: str, nofile: int | None = None) -> Proxy:
    path = [str(Path(args.tree) / "proxy")] + ([args.native] if args.native else [])
    env = {"PYTHONPATH": os.pathsep.join(path)}
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if nofile is not None:  # inherited by the proxy; ours is restored at once
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))
    try:
        return Proxy(workdir, upstream, *extra, policy=Path(args.tree) / "policies" / "doctrine.yaml",
                     env=env, name="hostile").start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _mix(counter: Counter) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counter.items(), key=lambda kv: -kv[1]))


# --- the attacks: each returns a status mix (Counter) and notes --------------------------


async def slowloris(proxy: Proxy, s: float) -> tuple[Counter, str]:
    n = 1100
    outcomes = await asyncio.gather(*(slow_headers("127.0.0.1", proxy.http_port, 30 * s) for _ in range(n)))
    return Counter(outcomes), f"{n} connections, held up to {30 * s:.0f}s"


async def stalled_http(proxy: Proxy, s: float) -> tuple[Counter, str]:
    n = 60
    # Held past the default --body-timeout (30 s): what the proxy does about the stall.
    outcomes = await asyncio.gather(*(
        stalled_upload("127.0.0.1", proxy.http_port, 16 * MiB, 15 * MiB, 35 * s) for _ in range(n)))
    return Counter(outcomes), f"{n} uploads of 15 of 16 MiB, held {35 * s:.0f}s"


async def _stall_streams(proxy: Proxy, per_connection: int, hold: float) -> tuple[Counter, bool]:
    mix: Counter = Counter()
    goaway = False
    body = bytes(15 * MiB)

    async def one_connection():
        nonlocal goaway
        async with RawH2("127.0.0.1", proxy.grpc_port) as h:
            ids = []
            for _ in range(per_connection):
                try:
                    sid = h.start_call()
                except Exception:  # noqa: BLE001 - the stream limit: h2 refuses more
                    break
                h.send(sid, grpc_frame(b"", declared=16 * MiB)[:5])
                ids.append(sid)
            await h.drain()
            await asyncio.gather(*(h.send_flow(sid, body, hold / 2) for sid in ids))
            await h.wait(ids, hold / 2)
            mix.update(h.mix(ids))
            mix["not opened (stream limit)"] += per_connection - len(ids)
            goaway |= h.goaway is not None
    await asyncio.gather(one_connection(), one_connection())
    return mix, goaway


async def stalled_grpc(proxy: Proxy, s: float) -> tuple[Counter, str]:
    mix, goaway = await _stall_streams(proxy, 150, 35 * s)
    return +mix, f"300 streams on 2 connections, held {35 * s:.0f}s; GOAWAY: {goaway}"


async def empty_grpc(proxy: Proxy, s: float) -> tuple[Counter, str]:
    total, connections, wave = 20_000, 5, 100
    mix: Counter = Counter()

    async def one_connection(count: int):
        async with RawH2("127.0.0.1", proxy.grpc_port) as h:
            for _ in range(count // wave):
                if h.closed.is_set():
                    mix["connection closed"] += wave
                    continue
                ids = []
                for _ in range(wave):
                    try:
                        ids.append(h.start_call(end_stream=True))
                    except Exception:  # noqa: BLE001 - stream limit reached: streams never answered
                        mix["not opened (stream limit)"] += 1
                await h.drain()
                await h.wait(ids, 1.0)
                mix.update(h.mix(ids))
    await asyncio.gather(*(one_connection(total // connections) for _ in range(connections)))
    return mix, f"{total} streams on {connections} connections, waves of {wave}, 1 s per wave"


async def streams_3000(proxy: Proxy, s: float) -> tuple[Counter, str]:
    n = 3000
    message = grpc_frame(SMALL)
    async with RawH2("127.0.0.1", proxy.grpc_port, ignore_stream_limit=True) as h:
        await asyncio.sleep(0.2)  # the server's SETTINGS first
        ids = []
        for _ in range(n):
            if h.closed.is_set():
                break
            sid = h.start_call()
            h.send(sid, message, end_stream=True)
            ids.append(sid)
            if len(ids) % 100 == 0:
                await h.drain()
        await h.drain()
        await h.wait(ids, 30 * s)
        mix = h.mix(ids)
        mix["not sent (connection closed)"] += n - len(ids)
        return +mix, f"{n} streams at once on one connection; GOAWAY: {h.goaway}"


async def rst_flood(proxy: Proxy, s: float) -> tuple[Counter, str]:
    seconds = 15 * s
    attacker_streams = 0
    goaway = None
    stop = time.monotonic() + seconds

    async def attacker():
        nonlocal attacker_streams, goaway
        message = grpc_frame(SMALL)
        while time.monotonic() < stop:
            async with RawH2("127.0.0.1", proxy.grpc_port, ignore_stream_limit=True) as h:
                await asyncio.sleep(0.05)
                while time.monotonic() < stop and not h.closed.is_set():
                    for _ in range(100):
                        sid = h.start_call()
                        h.send(sid, message)
                        h.reset(sid)
                        attacker_streams += 1
                    await h.drain()
                    await asyncio.sleep(0)
                goaway = h.goaway if h.goaway is not None else goaway

    async def victim() -> Counter:
        out: Counter = Counter()
        async with grpc.aio.insecure_channel(proxy.grpc_target) as channel:
            call = channel.unary_unary(TRACES.grpc_method, request_serializer=None, response_deserializer=None)
            while time.monotonic() < stop:
                try:
                    await call(SMALL, timeout=5)
                    out["victim OK"] += 1
                except grpc.aio.AioRpcError as exc:
                    out[f"victim {exc.code().name}"] += 1
                await asyncio.sleep(0.25)
        return out

    _, mix = await asyncio.gather(attacker(), victim())
    return mix, f"{attacker_streams} streams opened and reset in {seconds:.0f}s; GOAWAY code: {goaway}"


async def overload(proxy: Proxy, s: float, seconds: float) -> tuple[Counter, str]:
    body = build_request("traces", 1000).SerializeToString()
    url = proxy.http_url + TRACES.http_path
    mix: Counter = Counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session, \
            grpc.aio.insecure_channel(proxy.grpc_target) as channel:
        call = channel.unary_unary(TRACES.grpc_method, request_serializer=None, response_deserializer=None)

        async def send(i: int, out: Counter) -> None:
            if i % 2:
                try:
                    await call(body, timeout=30)
                    out["grpc OK"] += 1
                except grpc.aio.AioRpcError as exc:
                    out["none (grpc, 30 s)" if exc.code() is grpc.StatusCode.DEADLINE_EXCEEDED
                        else f"grpc {exc.code().name}"] += 1
                return
            try:
                async with session.post(url, data=body, headers={"Content-Type": "application/x-protobuf"},
                                        timeout=aiohttp.ClientTimeout(total=30)) as resp:
                    await resp.read()
                    hint = "" if resp.status == 200 or "Retry-After" in resp.headers else " no Retry-After"
                    out[f"http {resp.status}{hint}"] += 1
            except asyncio.TimeoutError:
                out["none (http, 30 s)"] += 1
            except aiohttp.ClientError as exc:
                out[f"http {exc.__class__.__name__}"] += 1

        # Capacity: closed loop, 8 clients, 5 s.
        capacity: Counter = Counter()
        deadline = time.monotonic() + 5

        async def worker(w):
            i = w
            while time.monotonic() < deadline:
                await send(i, capacity)
                i += 8
        await asyncio.gather(*(worker(w) for w in range(8)))
        ok = capacity["grpc OK"] + capacity["http 200"]
        rate = max(1.0, ok / 5)
        tasks = set()
        start = time.monotonic()
        sent = 0
        while (elapsed := time.monotonic() - start) < seconds:
            for _ in range(int(elapsed * rate * 10) - sent):
                task = asyncio.create_task(send(sent, mix))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += 1
            await asyncio.sleep(0.01)
        await asyncio.gather(*tasks)
    return mix, f"capacity {rate:.1f} req/s (1000 spans each), offered {rate * 10:.0f} req/s for {seconds:.0f}s"


ATTACKS = {
    "slowloris": slowloris,
    "stalled-http": stalled_http,
    "stalled-grpc": stalled_grpc,
    "empty-grpc": empty_grpc,
    "streams-3000": streams_3000,
    "rst-flood": rst_flood,
    "overload": overload,
}


def run(args) -> list[dict]:
    lt = LoopThread()
    upstream = GrpcCapture()
    upstream.received = Tally()
    lt.run(upstream.start())
    upstream.reset = lambda: None
    results = []
    names = args.only.split(",") if args.only else list(ATTACKS)
    try:
        with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
            for name in names:
                workdir = Path(tmp) / name
                workdir.mkdir()
                proxy = start_proxy(args, workdir, upstream.target, nofile=1024 if name == "slowloris" else None)
                try:
                    time.sleep(0.5)
                    idle = rss(proxy.pid)
                    reset_peak(proxy.pid)

                    async def attack():
                        async with HealthProbe("127.0.0.1", proxy.admin_port) as probe:
                            if name == "overload":
                                mix, notes = await overload(proxy, args.seconds, args.overload_seconds)
                            else:
                                mix, notes = await ATTACKS[name](proxy, args.seconds)
                        return mix, notes, probe

                    mix, notes, probe = asyncio.run(attack())
                    top = peak(proxy.pid)
                    time.sleep(2)
                    alive = proxy.proc.poll() is None
                    after = rss(proxy.pid) if alive else 0
                    errors = Counter(line.split(" ", 3)[-1][:120] for line in proxy.stderr().splitlines()
                                     if " ERROR " in line)
                    results.append(dict(attack=name, notes=notes, mix=dict(mix), idle_mib=idle / MiB,
                                        peak_mib=top / MiB, after_mib=after / MiB,
                                        healthz=probe.summary(), alive=alive, log_errors=dict(errors)))
                    print(text_row(results[-1]), flush=True)
                finally:
                    try:
                        proxy.stop()
                    except AssertionError as exc:
                        print(f"  ({name}: {str(exc).splitlines()[0]})")
    finally:
        lt.run(upstream.stop())
        lt.close()
    return results


def text_row(r: dict) -> str:
    return (f"{r['attack']}: {r['notes']}\n"
            f"  status mix: {_mix(Counter(r['mix']))}\n"
            f"  RSS: idle {r['idle_mib']:.0f} MiB, peak {r['peak_mib']:.0f} MiB, 2 s after {r['after_mib']:.0f} MiB"
            f"{'' if r['alive'] else ' (proxy DIED)'}\n"
            f"  /healthz: {r['healthz']}"
            + "".join(f"\n  log ERROR x{n}: {text}" for text, n in r["log_errors"].items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", default=str(ROOT), help="source tree to run (its proxy/ and policies/)")
    parser.add_argument("--native", default=None, help="directory holding a matching build of the native module (for a before/after run)")
    parser.add_argument("--only", default="", help="comma-separated attacks: " + ",".join(ATTACKS))
    parser.add_argument("--seconds", type=float, default=1.0, help="scale of every hold (1.0: as documented)")
    parser.add_argument("--overload-seconds", type=float, default=30.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the attackers' own sockets
    print(f"tree: {args.tree}", flush=True)
    results = run(args)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
