#!/usr/bin/env python3
"""OTLP-JSON transcoding, Python codec vs the native one (otlpjson.py), µs per span.

What it measures, on benchmarks/engine.py's 1000-span traces batch (fixed seed) as the
codec's OTLP-JSON (about 1 MB):
  decode  JSON body -> protobuf bytes: codec.decode(...).SerializeToString()
          against otlpjson.decode
  encode  protobuf bytes -> JSON body: codec.encode(Request.FromString(pb), JSON)
          against otlpjson.encode
  floor   a bare upb parse + serialize of the protobuf (what any OTLP hop pays)
Each pair and the floor are timed alternately in one loop, best of the rounds, so
machine noise hits them alike. The ratios are what matter.

    python benchmarks/native_json.py [--seconds 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "proxy"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from engine import traces  # noqa: E402

from redact_proxy import codec, otlpjson  # noqa: E402
from redact_proxy.codec import Format  # noqa: E402
from redact_proxy.signals import TRACES  # noqa: E402

SPANS = 1000


def _best(fns: dict, seconds: float) -> dict[str, float]:
    """Best time per call of each function, calling them in turn until ``seconds``."""
    best = {name: float("inf") for name in fns}
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per pair (default 2)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()

    pb = traces(random.Random(1))
    body = codec.encode(TRACES.request.FromString(pb), Format.JSON)
    assert otlpjson.decode(body, "traces") == codec.decode(TRACES, body, Format.JSON).SerializeToString()
    assert otlpjson.encode(pb, "traces") == body

    floor = lambda: TRACES.request.FromString(pb).SerializeToString()  # noqa: E731
    # The floor is timed beside each pair, so each ratio is of one stretch of machine time.
    t = {f"{k}_decode" if k == "floor" else k: v for k, v in _best({
        "python_decode": lambda: codec.decode(TRACES, body, Format.JSON).SerializeToString(),
        "native_decode": lambda: otlpjson.decode(body, "traces"),
        "floor": floor,
    }, args.seconds).items()}
    t |= {f"{k}_encode" if k == "floor" else k: v for k, v in _best({
        "python_encode": lambda: codec.encode(TRACES.request.FromString(pb), Format.JSON),
        "native_encode": lambda: otlpjson.encode(pb, "traces"),
        "floor": floor,
    }, args.seconds).items()}
    us = {k: v / SPANS * 1e6 for k, v in t.items()}
    if args.json:
        print(json.dumps({"json_bytes": len(body), "pb_bytes": len(pb), "us_per_span": us}, indent=2))
        return
    print(f"1000-span traces batch: {len(body)} bytes of OTLP-JSON, {len(pb)} of protobuf")
    print(f"{'µs per span':<12}{'python':>10}{'native':>10}{'speed-up':>10}{'native/floor':>14}")
    for op in ("decode", "encode"):
        py, nat = us[f"python_{op}"], us[f"native_{op}"]
        print(f"{op:<12}{py:>10.2f}{nat:>10.2f}{py / nat:>9.1f}x{nat / us[f'floor_{op}']:>13.1f}x")
    print(f"{'floor':<12}{min(us['floor_decode'], us['floor_encode']):>20.2f}   (upb parse + serialize)")


if __name__ == "__main__":
    main()
