#!/usr/bin/env python3
"""Statement and URL sanitizers: the Python reference against the native port, side by side.

What it measures: µs of CPU time (``time.process_time``) per call, for each family of
input, through ``redact_proxy.policy`` (Python) and ``redact_proxy._native`` (Rust, GIL
released, including the str -> UTF-8 -> str crossing, printed last on its own). Inputs
are the project's corpora (``tests/testdata/sql_corpus.yaml``,
``tests/testdata/statements/*.yaml`` with each case's own ``db.system``) and a fixed URL
set; both implementations run alternately over the same inputs, best of three rounds,
so machine noise hits them alike. Before timing, every output is compared: a mismatch
is reported and the run exits 1.

    python benchmarks/native_sanitize.py [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "proxy"))

from redact_proxy import _native  # noqa: E402
from redact_proxy.policy import sql, statements, url  # noqa: E402

DATA = ROOT / "tests" / "testdata"

URLS = [
    "https://user:pw@example.com:8443/a/b?x=1&y=&z#frag",
    "https://shop.example/cart?item=42&coupon=SAVE10&email=bob%40example.com",
    "/api/v1/users/550e8400-e29b-41d4-a716-446655440000/orders?page=2&size=50",
    "/users/john%40example.com/profile",
    "http://[2001:db8::1]:8080/p?a=b",
    "example.com/p?token=abc",
    "/app;jsessionid=ABC123DEF?x=1",
    "https://例え.jp/パス?q=値",
    "/static/js/main.4f2a9c.js",
    "mailto:john@example.com",
]
SPAN_NAMES = ["GET /users/42?email=a@b.c", "POST https://api.example/login?next=/home#top",
              "GET /users/{id}", "checkout"]


def _statement_cases() -> dict[str, list[tuple[str, str | None]]]:
    families: dict[str, list[tuple[str, str | None]]] = {}
    for case in yaml.safe_load((DATA / "sql_corpus.yaml").read_text("utf-8")):
        families.setdefault("sql (generic)", []).append((case["input"], None))
    for path in sorted((DATA / "statements").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text("utf-8"))
        if path.stem == "span_names":
            continue
        for case in doc["cases"]:
            families.setdefault(path.stem, []).append((case["input"], case.get("system", doc["system"])))
    return families


def _time(fn, items, seconds: float) -> float:
    """µs per call of ``fn(*item)`` over ``items``, repeated for about ``seconds``."""
    calls, spent = 0, 0.0
    while spent < seconds:
        start = time.process_time()
        for item in items:
            fn(*item)
        spent += time.process_time() - start
        calls += len(items)
    return spent / calls * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="CPU seconds per measurement")
    args = parser.parse_args()

    groups: list[tuple[str, object, object, list[tuple]]] = []
    for family, cases in _statement_cases().items():
        groups.append((f"statement {family}", statements.sanitize, _native.sanitize_statement, cases))
    span_cases = [(c["input"], c.get("system")) for c in yaml.safe_load(
        (DATA / "statements" / "span_names.yaml").read_text("utf-8"))["cases"]]
    groups.append(("span name (db)", statements.sanitize_span_name, _native.sql_span_name, span_cases))
    for path_ids in (False, True):
        items = [(u, path_ids) for u in URLS]
        groups.append((f"url path_ids={path_ids}", url.sanitize_url, _native.sanitize_url, items))
    groups.append(("span name (url)", url.sanitize_span_name, _native.url_span_name,
                   [(n, True) for n in SPAN_NAMES]))

    mismatches = 0
    for label, py, rs, items in groups:
        for item in items:
            if py(*item) != rs(*item):
                mismatches += 1
                print(f"MISMATCH {label}: {item!r}", file=sys.stderr)
    if mismatches:
        return 1

    print(f"{'inputs':28} {'n':>4} {'python µs':>10} {'native µs':>10} {'speed-up':>9}")
    total_py = total_rs = 0.0
    total_n = 0
    for label, py, rs, items in groups:
        # Alternate so noise hits both alike; keep the best of three rounds each.
        py_us, rs_us = [], []
        for _ in range(3):
            py_us.append(_time(py, items, args.seconds / 3))
            rs_us.append(_time(rs, items, args.seconds / 3))
        p, r = min(py_us), min(rs_us)
        total_py += p * len(items)
        total_rs += r * len(items)
        total_n += len(items)
        print(f"{label:28} {len(items):>4} {p:>10.2f} {r:>10.2f} {p / r:>8.1f}x")
    print(f"{'all (mean per call)':28} {total_n:>4} {total_py / total_n:>10.2f} "
          f"{total_rs / total_n:>10.2f} {total_py / total_rs:>8.1f}x")
    # What every native figure above includes: the call, str -> UTF-8 -> str, the GIL
    # release. The engine calls the Rust functions directly and does not pay it.
    crossing = min(_time(_native.sanitize_query, [("",)] * 100, args.seconds / 3) for _ in range(3))
    print(f"{'native crossing (empty input)':28} {'':>4} {'':>10} {crossing:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
