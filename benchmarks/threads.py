#!/usr/bin/env python3
"""Scrub throughput of one process with 1 and N scrub threads, side by side.

The native engine releases the GIL for its walk, so several threads of one process can
scrub at once; what still holds the GIL (the wire check, triage's policy side, answering
the engine's questions, the hand-offs) does not scale. This measures how much does:
``threads`` workers each run pipeline._redact over the same pool of batches for
``--seconds``; the figure is items/s with N threads over items/s with 1, measured in the
same run, alternating (1, N, 1, N, ...) so machine drift hits both alike. Compare it
with compare.py's `--workers 2 / --workers 1` (processes, no shared GIL).

    python benchmarks/threads.py [--threads 2] [--seconds 3] [--rounds 3] [--workload traces]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from engine import WORKLOADS  # noqa: E402

from redact_proxy.codec import Format  # noqa: E402
from redact_proxy.engine import Engine  # noqa: E402
from redact_proxy.pipeline import _redact  # noqa: E402
from redact_proxy.policy import load  # noqa: E402
from redact_proxy.signals import BY_NAME  # noqa: E402


def run(engine: Engine, signal, pool: list[bytes], items: int, threads: int, seconds: float) -> float:
    """Items per second scrubbed by ``threads`` threads for ``seconds``."""
    done = [0] * threads
    stop = time.perf_counter() + seconds

    def work(i: int) -> None:
        n = i
        while time.perf_counter() < stop:
            _redact(signal, pool[n % len(pool)], Format.PROTOBUF, engine)
            n += threads
            done[i] += items

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(done) / (time.perf_counter() - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", default=str(ROOT / "policies" / "doctrine.yaml"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workload", default="traces", choices=sorted(WORKLOADS))
    args = parser.parse_args()
    os.environ.setdefault("REDACT_PROXY_HASH_KEY", "benchmark-key-0123456789abcdef")
    policy = load(args.policy)
    signal_name, _cls, make, items = WORKLOADS[args.workload]
    pool = [make(random.Random(42 + i)) for i in range(48)]
    engine = Engine(policy)
    signal = BY_NAME[signal_name]
    run(engine, signal, pool, items, 1, 1.0)  # warm-up: key decisions, allocator
    one, many = [], []
    for r in range(args.rounds):
        print(f"round {r + 1}/{args.rounds} ...", file=sys.stderr)
        one.append(run(engine, signal, pool, items, 1, args.seconds))
        many.append(run(engine, signal, pool, items, args.threads, args.seconds))
    print(f"workload {args.workload}, {os.cpu_count()} cores, {args.rounds} rounds of {args.seconds:.0f}s each")
    for r, (a, b) in enumerate(zip(one, many, strict=True)):
        print(f"  round {r + 1}: 1 thread {a:,.0f} items/s, {args.threads} threads {b:,.0f} items/s: {b / a:.2f}x")
    print(f"median ratio {sorted(b / a for a, b in zip(one, many, strict=True))[len(one) // 2]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
