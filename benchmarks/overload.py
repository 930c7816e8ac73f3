#!/usr/bin/env python3
"""Overload: 10x the load the proxy can pass on, memory stays flat, and nothing is lost.

The proxy (a real ``redact-proxy serve`` subprocess) forwards to a deliberately slow gRPC
upstream (every answer waits ``--upstream-delay``), so what it can pass on is about
``in-flight limit / delay`` requests a second. Phases, all on 127.0.0.1, each bounded in
time and count:

  capacity  closed loop at the in-flight limit: the requests/s and spans/s the proxy
            passes on (what "1x" is), and its peak RSS at that load
  overload  open loop at ``--factor`` (10) x capacity, half OTLP/HTTP, half OTLP/gRPC;
            the proxy's peak RSS (VmHWM, reset first) and the refusals: 503 + Retry-After
            / UNAVAILABLE + RetryInfo, counted by which budget refused
            (--max-inflight or --max-inflight-bytes)
  recovery  during the last seconds of the overload, the real OTel Python SDK
            (TracerProvider + BatchSpanProcessor + OTLPSpanExporter, gRPC and HTTP)
            emits spans; its exports are refused, the SDK retries them as it does on
            UNAVAILABLE / 503, the overload stops, and every span must arrive upstream:
            spans sent == spans received, per exporter

The byte budget is set so that it, not the request count, is what binds: memory is what
the budget is for. RSS is read from /proc/PID/status of the proxy process. The proxy runs
the integration suite's policy (tests/testdata/integration-policy.yaml: drop, delete and
keyed-hash rules), and its machinery (proxy launcher, capturing upstream, OTLP builders)
comes from tests/integration.

    python benchmarks/overload.py [--overload-seconds 20] [--factor 10] [--json]
    python benchmarks/overload.py --smoke --json      # seconds-long run for the test suite
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
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
from google.rpc import status_pb2  # noqa: E402
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402

from integration_otlp import SIGNALS, build_request  # noqa: E402
from integration_support import Answer, GrpcCapture, LoopThread, Proxy  # noqa: E402

MiB = 1024 * 1024
TRACES = SIGNALS["traces"]
SDK_SERVICE = "overload-sdk-{}"  # service.name of the SDK's spans, per exporter transport


# --- the slow upstream, counting instead of keeping --------------------------------------


class Tally:
    """Stands in for a capture's ``received`` list: counts spans by service.name and keeps
    nothing, so the benchmark's own memory does not grow with the run."""

    def __init__(self):
        self.lock = threading.Lock()
        self.spans: Counter[str] = Counter()
        self.requests = 0

    def append(self, received) -> None:
        counts = Counter()
        for rs in received.message.resource_spans if received.message is not None else ():
            name = next((kv.value.string_value for kv in rs.resource.attributes if kv.key == "service.name"), "")
            counts[name] += sum(len(ss.spans) for ss in rs.scope_spans)
        with self.lock:
            self.requests += 1
            self.spans.update(counts)

    def snapshot(self) -> tuple[int, Counter]:
        with self.lock:
            return self.requests, Counter(self.spans)


# --- the proxy's memory -----------------------------------------------------------------


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


class RssProbe:
    """Peak resident memory of one process over a phase: VmHWM after resetting it (write
    5 to /proc/PID/clear_refs), plus a 50 ms VmRSS sample series as a cross-check."""

    def __init__(self, pid: int):
        self.pid = pid
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.hwm_reset = False

    def __enter__(self) -> "RssProbe":
        self.start = _status_kib(self.pid, "VmRSS") * 1024
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            self.hwm_reset = True
        except OSError:
            pass  # peak then comes from the samples alone
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.samples.append(_status_kib(self.pid, "VmRSS") * 1024)
            except (OSError, RuntimeError):
                return

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self.peak = max(self.samples or [0])
        if self.hwm_reset:
            self.peak = max(self.peak, _status_kib(self.pid, "VmHWM") * 1024)


# --- the load generator -----------------------------------------------------------------


class Outcomes:
    """What the load generator's requests were answered, per transport."""

    def __init__(self):
        # (transport, kind); kind: ok, refused:max-inflight, refused:max-inflight-bytes, other
        self.counts: Counter[tuple[str, str]] = Counter()
        self.ok_latency: list[float] = []
        self.refused_latency: list[float] = []
        self.retry_hints: Counter[str] = Counter()
        self.other: Counter[str] = Counter()  # what the "other" answers were, e.g. "grpc DEADLINE_EXCEEDED"

    def add(self, transport: str, kind: str, latency: float, hint: str | None = None, what: str = "") -> None:
        self.counts[transport, kind] += 1
        if kind == "other":
            self.other[f"{transport} {what}".strip()] += 1
        (self.ok_latency if kind == "ok" else self.refused_latency).append(latency)
        if kind.startswith("refused"):
            self.retry_hints["present" if hint else "missing"] += 1

    def total(self, kind: str, transport: str | None = None) -> int:
        return sum(n for (t, k), n in self.counts.items()
                   if (k == kind or (kind == "refused" and k.startswith("refused"))) and transport in (None, t))

    def refused_by(self) -> dict[str, int]:
        out = Counter()
        for (_, k), n in self.counts.items():
            if k.startswith("refused:"):
                out[k.split(":", 1)[1]] += n
        return dict(out)


def _refusal(message: str) -> str:
    if "--max-inflight-bytes" in message:
        return "refused:max-inflight-bytes"
    if "--max-inflight" in message:
        return "refused:max-inflight"
    return "other"


class Clients:
    """One aiohttp session and one gRPC channel to the proxy; ``send(i)`` alternates."""

    def __init__(self, proxy: Proxy, body: bytes):
        self.proxy = proxy
        self.body = body

    async def __aenter__(self) -> "Clients":
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512))
        self.channel = grpc.aio.insecure_channel(self.proxy.grpc_target)
        self.call = self.channel.unary_unary(TRACES.grpc_method, request_serializer=None, response_deserializer=None)
        self.url = self.proxy.http_url + TRACES.http_path
        return self

    async def __aexit__(self, *exc) -> None:
        await self.session.close()
        await self.channel.close()

    async def send(self, i: int, out: Outcomes) -> None:
        started = time.perf_counter()
        if i % 2:
            try:
                await self.call(self.body, timeout=30)
            except grpc.aio.AioRpcError as exc:
                kind = _refusal(exc.details() or "") if exc.code() is grpc.StatusCode.UNAVAILABLE else "other"
                hint = dict(exc.trailing_metadata() or ()).get("grpc-status-details-bin")
                out.add("grpc", kind, time.perf_counter() - started, hint and "retryinfo", exc.code().name)
                return
            out.add("grpc", "ok", time.perf_counter() - started)
            return
        try:
            async with self.session.post(self.url, data=self.body,
                                         headers={"Content-Type": "application/x-protobuf"},
                                         timeout=aiohttp.ClientTimeout(total=30)) as resp:
                payload = await resp.read()
                status, hint = resp.status, resp.headers.get("Retry-After")
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            out.add("http", "other", time.perf_counter() - started, what=exc.__class__.__name__)
            return
        if status == 200:
            out.add("http", "ok", time.perf_counter() - started)
        elif status == 503:
            try:
                message = status_pb2.Status.FromString(payload).message
            except Exception:  # noqa: BLE001 - counted as "other", never raised
                message = ""
            out.add("http", _refusal(message), time.perf_counter() - started, hint, "503")
        else:
            out.add("http", "other", time.perf_counter() - started, what=str(status))


async def closed_loop(clients: Clients, concurrency: int, seconds: float) -> Outcomes:
    out = Outcomes()
    deadline = time.monotonic() + seconds

    async def worker(w: int) -> None:
        i = w
        while time.monotonic() < deadline:
            await clients.send(i, out)
            i += concurrency

    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return out


async def open_loop(clients: Clients, rate: float, seconds: float, max_outstanding: int,
                    at_second: dict[float, threading.Event] | None = None) -> tuple[Outcomes, int, int]:
    """Start ``rate`` requests a second for ``seconds``, whatever the answers. Returns the
    outcomes, requests started, and requests not started because ``max_outstanding`` were
    still open (the generator's own bound). ``at_second`` events are set on schedule."""
    out = Outcomes()
    pending: set[asyncio.Task] = set()
    loop = asyncio.get_running_loop()
    start = loop.time()
    started = skipped = 0
    marks = sorted((at_second or {}).items())
    while (elapsed := loop.time() - start) < seconds:
        while marks and elapsed >= marks[0][0]:
            marks.pop(0)[1].set()
        for _ in range(int(elapsed * rate) - started - skipped):
            if len(pending) >= max_outstanding:
                skipped += 1
                continue
            task = asyncio.create_task(clients.send(started, out))
            pending.add(task)
            task.add_done_callback(pending.discard)
            started += 1
        await asyncio.sleep(0.005)
    for _, event in marks:
        event.set()
    await asyncio.gather(*pending)
    return out, started, skipped


# --- the SDK clients ----------------------------------------------------------------------


class SdkLog(logging.Handler):
    """Keeps the SDK exporters' retry warnings off the console; remembers its errors
    (an export it gave up on would show here)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.errors.append(f"{record.name}: {record.getMessage()}")


# How the proxy's /metrics names a refusal, per transport (redact_proxy_requests_total{code}).
REFUSED_CODE = {"grpc": "UNAVAILABLE", "http": "503"}
OK_CODE = {"grpc": "OK", "http": "200"}


def sdk_attempts(proxy: Proxy, generated: list[Outcomes]) -> dict[str, dict[str, int]]:
    """The SDK exporters' own attempts, refused and accepted, per transport: the proxy's
    count of trace requests answered, less the load generator's (which it knows exactly).
    Counted at the proxy because the SDK de-duplicates its own retry warnings."""
    metrics = proxy.metrics()
    out = {}
    for t in ("grpc", "http"):
        answered = {k: metrics.value("redact_proxy_requests_total", signal="traces", transport=t, code=code)
                    for k, code in (("refused", REFUSED_CODE[t]), ("ok", OK_CODE[t]))}
        out[t] = {k: int(answered[k] - sum(g.total(k, t) for g in generated)) for k in answered}
    return out


def sdk_producer(transport: str, proxy: Proxy, spans: int, seconds: float, start: threading.Event,
                 stop_load: threading.Event, result: dict) -> None:
    """Emit ``spans`` spans over ``seconds`` through the SDK's batch pipeline, then wait
    for the overload to end and flush: the exporter retries refused batches by itself."""
    if transport == "grpc":
        exporter = GrpcSpanExporter(endpoint=proxy.grpc_target, insecure=True, timeout=60)
    else:
        exporter = HttpSpanExporter(endpoint=proxy.http_url + TRACES.http_path, timeout=60)
    provider = TracerProvider(resource=Resource.create({"service.name": SDK_SERVICE.format(transport)}))
    processor = BatchSpanProcessor(exporter, max_queue_size=spans + 1, schedule_delay_millis=100,
                                   max_export_batch_size=max(1, spans // 10))
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("benchmarks.overload")
    start.wait(120)
    for i in range(spans):
        with tracer.start_as_current_span("checkout", attributes={"user.id": f"u{i}", "user.email": "a@b.c"}):
            pass
        time.sleep(seconds / spans)
    result["sent"] = spans
    stop_load.wait(120)
    result["flushed"] = provider.force_flush(120_000)
    provider.shutdown()


# --- the run ------------------------------------------------------------------------------


def run(args) -> dict:
    loop_thread = LoopThread()
    capture = GrpcCapture()
    loop_thread.run(capture.start())
    tally = Tally()
    capture.received = tally
    capture.answer = Answer(delay=args.upstream_delay)
    body = build_request("traces", items=args.spans_per_request).SerializeToString()
    workdir = Path(tempfile.mkdtemp(prefix="overload-"))
    proxy = Proxy(workdir, capture.target, "--max-inflight", str(args.max_inflight),
                  "--max-inflight-bytes", str(args.max_inflight_bytes),
                  "--max-request-bytes", str(args.max_inflight_bytes), "--upstream-timeout", "30s",
                  "--log-level", "warning", name="overload").start()
    sdk_log = SdkLog()
    sdk_logger = logging.getLogger("opentelemetry")
    sdk_logger.addHandler(sdk_log)
    sdk_logger.propagate = False
    report: dict = {
        "settings": {
            "upstream_delay_s": args.upstream_delay, "max_inflight": args.max_inflight,
            "max_inflight_bytes": args.max_inflight_bytes, "spans_per_request": args.spans_per_request,
            "request_bytes": len(body), "factor": args.factor, "capacity_seconds": args.capacity_seconds,
            "overload_seconds": args.overload_seconds, "sdk_spans_per_exporter": args.sdk_spans,
        },
    }
    try:
        report["rss_idle_bytes"] = proxy.rss_bytes()

        async def capacity() -> Outcomes:
            async with Clients(proxy, body) as clients:
                return await closed_loop(clients, args.max_inflight, args.capacity_seconds)

        with RssProbe(proxy.pid) as probe:
            t0 = time.monotonic()
            cap = asyncio.run(capacity())
            cap_elapsed = time.monotonic() - t0
        capacity_rps = max(cap.total("ok") / cap_elapsed, 1.0)
        report["capacity"] = {
            "requests_per_s": round(capacity_rps, 1),
            "spans_per_s": round(capacity_rps * args.spans_per_request, 1),
            "refused": cap.total("refused"), "rss_at_start_bytes": probe.start, "peak_rss_bytes": probe.peak,
        }

        # Overload; the SDK producers start `sdk_lead` seconds before it ends.
        rate = capacity_rps * args.factor
        sdk_start, load_stopped = threading.Event(), threading.Event()
        sdk_results = {t: {} for t in ("grpc", "http")}
        producers = [threading.Thread(target=sdk_producer, daemon=True, args=(
            t, proxy, args.sdk_spans, args.sdk_lead * 0.75, sdk_start, load_stopped, sdk_results[t]))
            for t in sdk_results]
        for thread in producers:
            thread.start()
        before_requests, _ = tally.snapshot()

        async def overload():
            async with Clients(proxy, body) as clients:
                return await open_loop(clients, rate, args.overload_seconds, args.max_outstanding,
                                       {max(0.0, args.overload_seconds - args.sdk_lead): sdk_start})

        with RssProbe(proxy.pid) as probe:
            t0 = time.monotonic()
            over, started, skipped = asyncio.run(overload())
            over_elapsed = time.monotonic() - t0
        load_stopped.set()
        after_requests, _ = tally.snapshot()
        ok_rps = over.total("ok") / over_elapsed
        report["overload"] = {
            "offered_requests_per_s": round(started / over_elapsed, 1),
            "target_requests_per_s": round(rate, 1),
            "not_started_generator_bound": skipped,
            "accepted_requests_per_s": round(ok_rps, 1),
            "accepted_spans_per_s": round(ok_rps * args.spans_per_request, 1),
            "upstream_requests_per_s": round((after_requests - before_requests) / over_elapsed, 1),
            "requests": started, "accepted": over.total("ok"), "refused": over.total("refused"),
            "refused_by": over.refused_by(),
            "refusals_with_retry_hint": over.retry_hints["present"],
            "refusals_without_retry_hint": over.retry_hints["missing"],
            "other_errors": over.total("other"),
            "other_errors_by": dict(over.other),
            "refusal_latency_p50_ms": _ms(over.refused_latency, 50),
            "refusal_latency_p99_ms": _ms(over.refused_latency, 99),
            "accepted_latency_p50_ms": _ms(over.ok_latency, 50),
            "rss_at_start_bytes": probe.start,
            "peak_rss_bytes": probe.peak,
            "peak_rss_method": "VmHWM" if probe.hwm_reset else "VmRSS samples",
        }

        for thread in producers:
            thread.join(180)
        deadline = time.monotonic() + 30
        while True:  # the last answers may still be on their way through the slow upstream
            _, spans = tally.snapshot()
            received = {t: spans[SDK_SERVICE.format(t)] for t in sdk_results}
            if all(received[t] >= sdk_results[t].get("sent", 0) for t in sdk_results) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        attempts = sdk_attempts(proxy, [cap, over])
        sdk = {t: {"sent": sdk_results[t].get("sent", 0), "received": received[t],
                   "exports_refused": attempts[t]["refused"], "exports_accepted": attempts[t]["ok"],
                   "flushed": sdk_results[t].get("flushed")}
               for t in sdk_results}
        report["recovery"] = {"sdk": sdk, "sdk_errors": sdk_log.errors[:5],
                              "delivered_equals_sent": all(v["received"] == v["sent"] > 0 for v in sdk.values())}
    finally:
        sdk_logger.removeHandler(sdk_log)
        code = proxy.stop()
        loop_thread.run(capture.stop())
        loop_thread.close()
    report["proxy_exit_code"] = code
    return report


def _ms(values: list[float], pct: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0] * 1000, 2)
    return round(statistics.quantiles(values, n=100, method="inclusive")[pct - 1] * 1000, 2)


def text_report(r: dict) -> str:
    s, c, o, rec = r["settings"], r["capacity"], r["overload"], r["recovery"]
    mib = lambda b: f"{b / MiB:.1f} MiB"  # noqa: E731
    lines = [
        "redact-proxy overload benchmark",
        f"  upstream answers after {s['upstream_delay_s']}s; --max-inflight {s['max_inflight']}, "
        f"--max-inflight-bytes {s['max_inflight_bytes']} ({mib(s['max_inflight_bytes'])}); "
        f"requests of {s['spans_per_request']} spans ({s['request_bytes']} bytes)",
        f"  proxy RSS when idle {r['rss_idle_bytes'] / MiB:.1f} MiB",
        "",
        f"  capacity (1x)     {c['requests_per_s']:8.1f} req/s  {c['spans_per_s']:9.1f} spans/s   "
        f"peak RSS {mib(c['peak_rss_bytes'])} (at start {mib(c['rss_at_start_bytes'])})",
        f"  offered ({s['factor']:g}x)     {o['offered_requests_per_s']:8.1f} req/s  (target {o['target_requests_per_s']}, "
        f"{o['requests']} requests in {s['overload_seconds']}s)",
        f"  held at refusal   {o['accepted_requests_per_s']:8.1f} req/s  {o['accepted_spans_per_s']:9.1f} spans/s   "
        f"peak RSS {mib(o['peak_rss_bytes'])} (at start {mib(o['rss_at_start_bytes'])}; {o['peak_rss_method']})",
        f"  refused           {o['refused']} (by {o['refused_by']}), with a retry hint: "
        f"{o['refusals_with_retry_hint']}, without: {o['refusals_without_retry_hint']}; other errors {o['other_errors']} {o['other_errors_by'] or ''}",
        f"  latency           refusal p50 {o['refusal_latency_p50_ms']} ms, p99 {o['refusal_latency_p99_ms']} ms; "
        f"accepted p50 {o['accepted_latency_p50_ms']} ms",
        "",
        "  recovery with the OTel Python SDK (BatchSpanProcessor + OTLPSpanExporter), load then dropped:",
    ]
    for transport, v in rec["sdk"].items():
        lines.append(f"    {transport:5} spans sent {v['sent']:6}, received upstream {v['received']:6}; "
                     f"exports refused {v['exports_refused']} then retried by the SDK, accepted {v['exports_accepted']}")
    lines.append(f"  delivered == sent: {rec['delivered_equals_sent']}; proxy exit code {r['proxy_exit_code']}")
    return "\n".join(lines)


SMOKE = dict(capacity_seconds=1.0, overload_seconds=4.0, sdk_lead=2.0, sdk_spans=40, max_inflight=4,
             max_inflight_bytes=MiB, spans_per_request=20, upstream_delay=0.3, max_outstanding=400)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream-delay", type=float, default=0.5, help="seconds the upstream waits per request")
    parser.add_argument("--max-inflight", type=int, default=64)
    parser.add_argument("--max-inflight-bytes", type=int, default=MiB)
    parser.add_argument("--spans-per-request", type=int, default=100)
    parser.add_argument("--factor", type=float, default=10.0, help="offered load, in multiples of capacity")
    parser.add_argument("--capacity-seconds", type=float, default=5.0)
    parser.add_argument("--overload-seconds", type=float, default=20.0)
    parser.add_argument("--sdk-lead", type=float, default=3.0,
                        help="the SDK clients start this many seconds before the overload ends")
    parser.add_argument("--sdk-spans", type=int, default=500, help="spans each SDK exporter sends")
    parser.add_argument("--max-outstanding", type=int, default=2000, help="the generator's own bound on open requests")
    parser.add_argument("--smoke", action="store_true", help="a few seconds on a tiny workload (the test suite's run)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
    report = run(args)
    print(json.dumps(report, indent=2) if args.json else text_report(report))
    return 0 if report["recovery"]["delivered_equals_sent"] and report["proxy_exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
