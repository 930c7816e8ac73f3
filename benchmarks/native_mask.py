#!/usr/bin/env python3
"""Mask engine: µs per 200-byte value, the Python reference beside the native masker.

What it measures (fixed seed, so every run masks the same values): for each detector
set -- the doctrine policy's first mask rule, the ``secrets`` group, and every detector
at once -- the CPU time (``time.process_time``) of one ``mask`` call on a 200-byte value,
for ``redact_proxy.policy.detectors.Masker`` (RE2) and ``redact_proxy._native.Masker``
(``redact_core::mask``), timed alternately in the same loop so machine noise hits both
alike. Values: ``benchmarks/engine.py``'s ``free_text`` (words with an e-mail in ~3% and
an address in ~2% of the slots: most values hold a candidate or two), and ``clean`` (the
same words only: the no-candidate pass every ordinary value pays). The native call
includes the boundary crossing (str in, GIL released, str or None out).

    python benchmarks/native_mask.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "proxy"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from engine import _WORDS, free_text
from redact_proxy import _native
from redact_proxy.policy import load
from redact_proxy.policy.detectors import DETECTORS, Masker
from redact_proxy.policy.schema import Action


def clean_text(rng: random.Random, size: int = 200) -> str:
    words = []
    while sum(len(w) + 1 for w in words) < size:
        words.append(rng.choice(_WORDS))
    return " ".join(words)[:size]


def _per_call(fns, values, seconds: float) -> list[float]:
    """µs of CPU per call of each fn over values, the fns interleaved round by round."""
    spent = [0.0] * len(fns)
    rounds = 0
    deadline = time.process_time() + seconds
    while time.process_time() < deadline or rounds < 3:
        for i, fn in enumerate(fns):
            t0 = time.process_time()
            for value in values:
                fn(value)
            spent[i] += time.process_time() - t0
        rounds += 1
    return [1e6 * s / (rounds * len(values)) for s in spent]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0, help="measuring time per row")
    parser.add_argument("--policy", default=str(ROOT / "policies" / "doctrine.yaml"))
    args = parser.parse_args()
    os.environ.setdefault("REDACT_PROXY_HASH_KEY", "benchmark-key-0123456789abcdef")
    policy = load(args.policy)
    rule = next(r for r in policy.rules if r.action is Action.MASK)
    sets = {"policy": list(rule.detectors), "secrets": ["secrets"], "all": list(DETECTORS)}
    rng = random.Random(7)
    values = {"free_text": [free_text(rng) for _ in range(200)], "clean": [clean_text(rng) for _ in range(200)]}
    print(f"{'detectors':<10}{'values':<11}{'python µs':>11}{'native µs':>11}{'speed-up':>10}")
    for set_name, names in sets.items():
        reference = Masker(names, (), "[REDACTED]")
        native = _native.Masker(names, [], "[REDACTED]", None, "sha256")
        for value_name, texts in values.items():
            assert [reference.mask(t) for t in texts] == [native.mask(t) for t in texts]
            py, rs = _per_call([reference.mask, native.mask], texts, args.seconds)
            print(f"{set_name:<10}{value_name:<11}{py:>11.2f}{rs:>11.2f}{py / rs:>9.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
