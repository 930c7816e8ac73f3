#!/usr/bin/env python3
"""Scrub throughput in-process, beside the cost of a bare protobuf parse + serialize.

What it measures, per workload (fixed seed, so every run scrubs the same bytes):
  floor   = parse + serialize of the batch            (what any OTLP hop pays)
  proxy   = what the pipeline does: parse, drop unknown fields, triage (a batch it proves
            untouched skips the scrub), scrub, serialize once
            (an unchanged batch whose bytes equal that serialization goes out as it came)
  ratio   = proxy / floor                             (the figure that matters: it cancels
                                                       out how fast this machine is today)
Both are timed alternately in the same loop, so machine noise hits them alike.

Workloads: traces (1000-span batches, 12 attributes per span of which 5 sensitive),
traces-clean (same shape, no sensitive key), traces-values (10 benign attributes, a
200-byte free-text attribute and a SQL statement per span: the mask/sanitize cost), metrics (1000 data points over 50 metrics,
8 attributes each, 3 sensitive), logs (1000 records, 10 attributes of which 4 sensitive,
structured bodies with a sensitive key inside).

    python benchmarks/engine.py [--policy policies/doctrine.yaml] [--seconds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "proxy"))

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest  # noqa: E402
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402

from redact_proxy.codec import Format  # noqa: E402
from redact_proxy.engine import Engine  # noqa: E402
from redact_proxy.pipeline import _redact  # noqa: E402
from redact_proxy.policy import load  # noqa: E402
from redact_proxy.signals import BY_NAME  # noqa: E402

# Keys the doctrine policy deletes or hashes, and keys it lets through.
SENSITIVE = ["user.id", "user.email", "client.address", "http.request.header.authorization",
             "message.content", "net.peer.ip", "enduser.id", "db.statement"]
BENIGN = ["http.route", "http.request.method", "http.response.status_code", "server.address",
          "server.port", "rpc.system", "room.count", "message.size", "peer.count", "url.scheme",
          "network.protocol.version", "otel.scope.name", "component", "thread.id"]


def _set(kv, rng: random.Random, size: int = 24) -> None:
    kind = rng.random()
    if kind < 0.7:
        kv.value.string_value = "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=size))
    elif kind < 0.9:
        kv.value.int_value = rng.randrange(1 << 40)
    else:
        kv.value.bool_value = rng.random() < 0.5


def _attrs(target, rng: random.Random, n: int, n_sensitive: int, sensitive=SENSITIVE) -> None:
    keys = rng.sample(sensitive, n_sensitive) + rng.sample(BENIGN, n - n_sensitive)
    rng.shuffle(keys)
    for key in keys:
        _set(target.add(key=key), rng)


def _resource(resource, rng):
    for key, value in (("service.name", "railgun-api"), ("host.name", "api-1"), ("telemetry.sdk.language", "python")):
        resource.attributes.add(key=key).value.string_value = value


def traces(rng: random.Random, sensitive: int = 5) -> bytes:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    _resource(rs.resource, rng)
    ss = rs.scope_spans.add()
    ss.scope.name = "railgun.api"
    for _ in range(1000):
        span = ss.spans.add(name="POST /rooms/{id}/messages", trace_id=rng.randbytes(16), span_id=rng.randbytes(8),
                            parent_span_id=rng.randbytes(8), kind=2,
                            start_time_unix_nano=1_700_000_000_000_000_000, end_time_unix_nano=1_700_000_000_050_000_000)
        _attrs(span.attributes, rng, 12, sensitive)
    return req.SerializeToString()


_WORDS = ("the", "room", "message", "sent", "at", "retry", "after", "user", "joined", "left", "call",
          "connection", "dropped", "peer", "fallback", "activated", "for", "session", "timeout")
_SQL = ("SELECT m.id, m.body FROM messages m WHERE m.room_id = {n} AND m.created_at > '2026-11-{d:02d}' "
        "AND m.sender IN ({n}, {m}, {k}) ORDER BY m.created_at DESC LIMIT 50")


def free_text(rng: random.Random, size: int = 200) -> str:
    words = []
    while sum(len(w) + 1 for w in words) < size:
        r = rng.random()
        words.append("ada@example.com" if r < 0.03 else "203.0.113.7" if r < 0.05 else rng.choice(_WORDS))
    return " ".join(words)[:size]


def traces_values(rng: random.Random) -> bytes:
    """Every span: 10 benign attributes, a 200-byte free-text one and a SQL statement."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    _resource(rs.resource, rng)
    ss = rs.scope_spans.add()
    for _ in range(1000):
        span = ss.spans.add(name="SELECT messages", trace_id=rng.randbytes(16), span_id=rng.randbytes(8), kind=3)
        _attrs(span.attributes, rng, 10, 0)
        span.attributes.add(key="event.detail").value.string_value = free_text(rng)
        span.attributes.add(key="db.statement").value.string_value = _SQL.format(
            n=rng.randrange(10**6), m=rng.randrange(10**6), k=rng.randrange(10**6), d=rng.randrange(1, 28))
    return req.SerializeToString()


def metrics(rng: random.Random) -> bytes:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    _resource(rm.resource, rng)
    sm = rm.scope_metrics.add()
    for m in range(50):
        metric = sm.metrics.add(name=f"railgun.metric.{m}")
        points = (metric.sum if m % 2 else metric.histogram).data_points
        for _ in range(20):
            p = points.add(time_unix_nano=1_700_000_000_000_000_000)
            _attrs(p.attributes, rng, 8, 3)
            if m % 2 == 0:
                p.count = 3
                p.bucket_counts.extend([1, 1, 1])
                p.explicit_bounds.extend([0.1, 1.0])
                ex = p.exemplars.add(as_double=0.5, trace_id=rng.randbytes(16), span_id=rng.randbytes(8))
                _attrs(ex.filtered_attributes, rng, 2, 1)
            else:
                p.as_int = rng.randrange(1000)
    return req.SerializeToString()


def logs(rng: random.Random) -> bytes:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    _resource(rl.resource, rng)
    sl = rl.scope_logs.add()
    for _ in range(1000):
        rec = sl.log_records.add(time_unix_nano=1_700_000_000_000_000_000, severity_number=9, severity_text="INFO",
                                 trace_id=rng.randbytes(16), span_id=rng.randbytes(8))
        _attrs(rec.attributes, rng, 10, 4)
        body = rec.body.kvlist_value.values
        body.add(key="event").value.string_value = "message.sent"
        body.add(key="user.email").value.string_value = "someone@example.com"
    return req.SerializeToString()


BATCH_POOL = 8  # distinct batches per workload

WORKLOADS = {
    "traces": ("traces", ExportTraceServiceRequest, lambda rng: traces(rng), 1000),
    "traces-clean": ("traces", ExportTraceServiceRequest, lambda rng: traces(rng, sensitive=0), 1000),
    "traces-values": ("traces", ExportTraceServiceRequest, traces_values, 1000),
    "metrics": ("metrics", ExportMetricsServiceRequest, metrics, 1000),
    "logs": ("logs", ExportLogsServiceRequest, logs, 1000),
}


def measure(name: str, policy, seconds: float) -> dict:
    signal, cls, make, items = WORKLOADS[name]
    # Several distinct batches, cycled: values differ from batch to batch as in real
    # traffic, so per-value memos (mask results) cannot make a repeated batch free.
    pool = [make(random.Random(42 + i)) for i in range(BATCH_POOL)]
    data = pool[0]
    turn = iter(range(1 << 62))

    def floor() -> None:
        msg = cls()
        msg.ParseFromString(pool[next(turn) % BATCH_POOL])
        msg.SerializeToString()

    engine = Engine(policy)

    def proxy() -> None:  # exactly the pipeline's path (pipeline._redact), minus the network
        batch, _report = _redact(BY_NAME[signal], pool[next(turn) % BATCH_POOL], Format.PROTOBUF, engine)
        batch.to_bytes(Format.PROTOBUF)

    for fn in (floor, proxy):  # warm-up: memoised key decisions, allocator
        fn()
    t_floor = t_proxy = 0.0
    rounds = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or rounds < 3:
        t0 = time.perf_counter()
        floor()
        t1 = time.perf_counter()
        proxy()
        t2 = time.perf_counter()
        t_floor += t1 - t0
        t_proxy += t2 - t1
        rounds += 1
    return {
        "workload": name,
        "batch_bytes": len(data),
        "items_per_batch": items,
        "rounds": rounds,
        "floor_items_per_s": items * rounds / t_floor,
        "proxy_items_per_s": items * rounds / t_proxy,
        "proxy_ms_per_batch": 1000 * t_proxy / rounds,
        "ratio_vs_floor": t_proxy / t_floor,
    }


def value_actions(policy, seconds: float) -> dict:
    """Cost of the value actions alone, per call, on the traces-values inputs: one mask
    pass (all of the policy's detectors) over a 200-byte text, one SQL sanitize."""
    from redact_proxy.policy.schema import Action
    from redact_proxy.policy.sql import sanitize_sql

    mask_rules = [r for r in policy.rules if r.action is Action.MASK]
    rng = random.Random(7)
    texts = [free_text(rng) for _ in range(200)]
    sqls = [_SQL.format(n=i, m=i + 1, k=i + 2, d=1 + i % 27) for i in range(200)]
    out = {}
    if mask_rules:
        from redact_proxy.policy.detectors import Masker

        masker = Masker(mask_rules[0].detectors, mask_rules[0].regexes, "[REDACTED]")
        out["mask_us_per_200B_value"] = _per_call(lambda: [masker.mask(t) for t in texts], len(texts), seconds)
    out["sanitize_sql_us_per_statement"] = _per_call(lambda: [sanitize_sql(q) for q in sqls], len(sqls), seconds)
    return out


def _per_call(fn, calls: int, seconds: float) -> float:
    fn()
    rounds, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or rounds < 3:
        fn()
        rounds += 1
    return 1e6 * (time.perf_counter() - t0) / (rounds * calls)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", default=str(ROOT / "policies" / "doctrine.yaml"))
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per workload")
    parser.add_argument("--workload", action="append", choices=sorted(WORKLOADS), help="repeatable; default all")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    os.environ.setdefault("REDACT_PROXY_HASH_KEY", "benchmark-key-0123456789abcdef")
    policy = load(args.policy)
    results = []
    for name in args.workload or list(WORKLOADS):
        print(f"measuring {name} for {args.seconds:.0f}s ...", file=sys.stderr)
        results.append(measure(name, policy, args.seconds))
    values = value_actions(policy, min(args.seconds, 2.0))
    if args.json:
        print(json.dumps({"policy": args.policy, "results": results, "value_actions": values}, indent=2))
        return 0
    print(f"policy: {args.policy}   (one core; items = spans, data points or log records)")
    print(f"{'workload':<14}{'floor items/s':>15}{'proxy items/s':>15}{'ms/batch':>10}{'proxy/floor':>13}")
    for r in results:
        print(f"{r['workload']:<14}{r['floor_items_per_s']:>15,.0f}{r['proxy_items_per_s']:>15,.0f}"
              f"{r['proxy_ms_per_batch']:>10.2f}{r['ratio_vs_floor']:>12.2f}x")
    by_name = {r["workload"]: r for r in results}
    if "traces-values" in by_name and "traces-clean" in by_name:
        extra = by_name["traces-values"]["proxy_ms_per_batch"] - by_name["traces-clean"]["proxy_ms_per_batch"]
        print(f"traces-values minus traces-clean: {1000 * extra / 1000:.1f} us per span "
              "(mask of a 200-byte text + sanitize of a SQL statement, in the pipeline)")
    for name, value in values.items():
        print(f"{name}: {value:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
