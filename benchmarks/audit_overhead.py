#!/usr/bin/env python3
"""What ``serve --audit`` costs per span, in process: the scrub path with and without the
shadow audit, on the bodies of compare.py's `traces` workload.

Why in process: compare.py runs every system as real processes behind a real collector
for minutes; the audit adds work to one step only, the scrub thread's, so that step is
measured alone here. The denominator is the proxy's own CPU per batch on that thread
(the wire checks and the native engine, or decode and the reference scrub, and the
encoding for upstream: ``_redact`` + ``to_bytes``), without
the receiver, gRPC or the forward: the figure is an upper bound on the share of serve's
whole CPU per span.

Bodies: ``loadgen.build_pool("traces", ...)`` with compare.py's arguments (1000-span
batches x 12 attributes, 40% sensitive keys, 24-character values, seed 1, pool 8); policy
policies/doctrine.yaml. The two variants alternate batch by batch, CPU time by
``time.process_time`` (this process, one thread), so machine noise hits them alike, each
one first on every other body (the second to read a body finds it in the cache).

    python benchmarks/audit_overhead.py [--rounds 5] [--policy policies/doctrine.yaml] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "proxy"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from loadgen import build_pool  # noqa: E402

from redact_proxy.audit import Auditor  # noqa: E402
from redact_proxy.codec import Format  # noqa: E402
from redact_proxy.engine import Engine  # noqa: E402
from redact_proxy.pipeline import _redact, _redact_audited  # noqa: E402
from redact_proxy.policy import load  # noqa: E402
from redact_proxy.signals import BY_NAME  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--policy", default=str(ROOT / "policies" / "doctrine.yaml"))
    p.add_argument("--rounds", type=int, default=5, help="passes over the pool, each variant")
    p.add_argument("--workload", choices=("traces", "traces-clean"), default="traces")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    os.environ.setdefault("REDACT_PROXY_HASH_KEY", "benchmark-only-key-0123456789abcdef")
    policy = load(args.policy)
    engine = Engine(policy)
    auditor = Auditor(policy, lambda signal, found: None)
    sensitive = 0.4 if args.workload == "traces" else 0.0
    bodies = build_pool("traces", 8, 1000, 12, sensitive, 24, 1)
    signal = BY_NAME["traces"]
    spans = 0
    cpu = {"serve": 0.0, "serve --audit": 0.0}
    runs = {"serve": lambda b: _redact(signal, b, Format.PROTOBUF, engine),
            "serve --audit": lambda b: _redact_audited(signal, b, Format.PROTOBUF, engine, auditor)}
    for body in bodies[:2]:  # warm-up: memos, regex caches, the ledger's first plans
        for run in runs.values():
            run(body)[0].to_bytes(Format.PROTOBUF)
    order = list(runs.items())
    for _ in range(args.rounds):
        for body in bodies:
            # Each body is ~0.5 MB: whichever variant reads it second finds it in the
            # cache (~1 us per span cheaper). The order flips body by body, so each
            # variant is first half the time.
            order.reverse()
            for name, run in order:
                t0 = time.process_time()
                batch, report = run(body)
                batch.to_bytes(Format.PROTOBUF)
                cpu[name] += time.process_time() - t0
            spans += report.items_in
    per_span = {k: v / spans * 1e6 for k, v in cpu.items()}
    overhead = per_span["serve --audit"] / per_span["serve"] - 1
    result = {"workload": args.workload, "spans": spans, "cpu_us_per_span": per_span, "overhead": overhead,
              "findings": auditor.snapshot()["totals"]}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.workload}: {spans} spans per variant; CPU per span: serve {per_span['serve']:.1f} us, "
              f"serve --audit {per_span['serve --audit']:.1f} us; overhead {overhead:+.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
