#!/usr/bin/env python3
"""Scrub throughput in-process, beside the cost of a bare protobuf parse + serialize.

What it measures, per workload (fixed seed, so every run scrubs the same bytes):
  floor   = parse + serialize of the batch            (what any OTLP hop pays)
  proxy   = what the pipeline does (pipeline._redact): the wire check, triage (a batch it
            proves untouched goes out as it came), else the native engine on the bytes
  reference = the Python reference scrubber: parse, scrub, serialize
  ratio   = proxy / floor, reference / floor          (the figures that matter: they cancel
                                                       out how fast this machine is today)
All three are timed alternately in the same loop, so machine noise hits them alike.

Workloads (workloads.py, the generator loadgen.py sends from too): traces (1000-span
batches, 12 attributes per span of which 5 sensitive), traces-clean (same shape, no
sensitive key), traces-json (the traces batches as OTLP-JSON in and out), traces-values (10 benign attributes, a 200-byte free-text attribute and a
SQL statement per span: the mask/sanitize cost), metrics (1000 data points, 20 per
metric, gauges, sums and histograms with exemplars, 8 attributes each, 3 sensitive), logs
(1000 records, 10 attributes of which 4 sensitive, structured bodies with a sensitive key
inside).

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

from redact_proxy import codec  # noqa: E402
from redact_proxy.codec import Format  # noqa: E402
from redact_proxy.engine import Engine  # noqa: E402
from redact_proxy.pipeline import _redact  # noqa: E402
from redact_proxy.scrub import scrub  # noqa: E402
from redact_proxy.policy import load  # noqa: E402
from redact_proxy.signals import BY_NAME  # noqa: E402
from workloads import build_body, free_text, sql_statement, values_body  # noqa: E402

# 1000 items a batch; attributes per item and how many of them sensitive, per workload.
# The generator is workloads.py, the one loadgen.py sends too.
BATCH, VALUE_SIZE = 1000, 24


# Distinct batches per workload, cycled. Enough that their values overflow every per-value
# memo (the engine's answer memo holds 65,536 answers, the mask memos 8,192 values): a
# pool that fits would measure memo hits, not scrubbing.
BATCH_POOL = 48

WORKLOADS = {
    "traces": ("traces", ExportTraceServiceRequest,
               lambda rng: build_body("traces", rng, BATCH, 12, 5, VALUE_SIZE), BATCH),
    "traces-clean": ("traces", ExportTraceServiceRequest,
                     lambda rng: build_body("traces", rng, BATCH, 12, 0, VALUE_SIZE), BATCH),
    "traces-values": ("traces", ExportTraceServiceRequest, lambda rng: values_body(rng, BATCH, 10, VALUE_SIZE), BATCH),
    # The traces batches as OTLP-JSON, in and out (the OTel JavaScript SDKs' default);
    # the floor stays the protobuf parse + serialize of the same batch.
    "traces-json": ("traces", ExportTraceServiceRequest,
                    lambda rng: build_body("traces", rng, BATCH, 12, 5, VALUE_SIZE), BATCH),
    "metrics": ("metrics", ExportMetricsServiceRequest,
                lambda rng: build_body("metrics", rng, BATCH, 8, 3, VALUE_SIZE, exemplars=True), BATCH),
    "logs": ("logs", ExportLogsServiceRequest,
             lambda rng: build_body("logs", rng, BATCH, 10, 4, VALUE_SIZE, structured_body=True), BATCH),
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

    fmt = Format.JSON if name.endswith("-json") else Format.PROTOBUF
    bodies = [codec.encode(cls.FromString(b), fmt) for b in pool] if fmt is Format.JSON else pool

    def proxy() -> None:  # exactly the pipeline's path (pipeline._redact), minus the network
        batch, _report = _redact(BY_NAME[signal], bodies[next(turn) % BATCH_POOL], fmt, engine)
        batch.to_bytes(fmt)

    def reference() -> None:  # the Python reference: the codec's decode, the scrub, its encode
        msg = codec.decode(BY_NAME[signal], bodies[next(turn) % BATCH_POOL], fmt)
        scrub(signal, msg, policy)
        codec.encode(msg, fmt)

    for fn in (floor, proxy, reference):  # warm-up: memoised key decisions, allocator
        fn()
    t_floor = t_proxy = t_reference = 0.0
    rounds = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or rounds < 3:
        t0 = time.perf_counter()
        floor()
        t1 = time.perf_counter()
        proxy()
        t2 = time.perf_counter()
        reference()
        t3 = time.perf_counter()
        t_floor += t1 - t0
        t_proxy += t2 - t1
        t_reference += t3 - t2
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
        "reference_ratio_vs_floor": t_reference / t_floor,
    }


def value_actions(policy, seconds: float) -> dict:
    """Cost of the value actions alone, per call, on the traces-values inputs: one mask
    pass (all of the policy's detectors) over a 200-byte text, one SQL sanitize."""
    from redact_proxy.policy.schema import Action
    from redact_proxy.policy.sql import sanitize_sql

    mask_rules = [r for r in policy.rules if r.action is Action.MASK]
    rng = random.Random(7)
    texts = [free_text(rng) for _ in range(200)]
    sqls = [sql_statement(rng) for _ in range(200)]
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
    print(f"{'workload':<14}{'floor items/s':>15}{'proxy items/s':>15}{'ms/batch':>10}{'proxy/floor':>13}"
          f"{'reference/floor':>17}")
    for r in results:
        print(f"{r['workload']:<14}{r['floor_items_per_s']:>15,.0f}{r['proxy_items_per_s']:>15,.0f}"
              f"{r['proxy_ms_per_batch']:>10.2f}{r['ratio_vs_floor']:>12.2f}x{r['reference_ratio_vs_floor']:>16.2f}x")
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
