#!/usr/bin/env python3
"""Mask detectors: what the secret detectors cost, and how often each detector is wrong.

What it measures (fixed seed, so every run sees the same values):

(a) cost - µs per ``Masker.mask`` of a 200-byte value, for a masker with the original
    detector set (email, ipv4, ipv6, credit_card, iban, jwt, bearer_token, phone) and one
    with that set plus the ``secrets`` group, on values with no candidate (ordinary log
    text), with two candidates both mask (an e-mail, an address), and with two secrets
    (a ``password=`` assignment and a GitHub token: work only the second one does). Both
    maskers run alternately in the same loop, so machine noise hits them alike; the
    ratio is the figure that matters. CPU time (``time.process_time``), not wall time.
    With ``--baseline FILE`` a third masker is built from another detectors.py (for
    example ``git show HEAD~1:proxy/redact_proxy/policy/detectors.py > /tmp/old.py``).
(b) precision - for every detector alone: the share of a realistic negative corpus it
    changes (false positives; trace/span ids, UUIDs, md5/sha1/sha256 digests, base64
    payload ids, k8s pod names, version strings, timestamps, English log lines, URLs
    without credentials, SQL without literals, plus tests/testdata/detectors/
    negatives.yaml), and the share of its positive corpus (tests/testdata/detectors/
    positives.yaml) it masks exactly as expected (true positives).

    python benchmarks/detectors.py [--seconds 2] [--negatives 2000] [--baseline FILE]
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import random
import string
import sys
import time
import uuid
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "proxy"))

from redact_proxy.policy.detectors import DETECTOR_GROUPS, DETECTORS, Masker  # noqa: E402

CORPUS = ROOT / "tests" / "testdata" / "detectors"
ORIGINAL = ("email", "ipv4", "ipv6", "credit_card", "iban", "jwt", "bearer_token", "phone")
SIZE = 200

_WORDS = (
    "request handled upstream retry cache miss connection pool exhausted timeout after "
    "backoff scheduling worker shard rebalancing completed status ok region queue depth "
    "latency budget exceeded deploying rollout healthy pods ready replica lagging behind"
).split()
_ENGLISH = [
    "Connection reset by peer while reading response headers from upstream",
    "User session expired; redirecting to the login page",
    "Retrying request in 250ms (attempt 3 of 5) after a 503 from the payments service",
    "Invalid token: signature mismatch, rejecting the request",
    "Password reset requested for the account; an e-mail will follow",
    "Scheduled secret rotation finished without errors",
    "Cache hit ratio dropped below 80 percent during the last 5 minutes",
    "Processed 1200 records in 3.2 seconds, 4 failed validation",
]
_SQL = [
    "SELECT id, name, email FROM users WHERE id = ? AND tenant_id = ?",
    "UPDATE accounts SET password = ?, updated_at = ? WHERE id = ?",
    "INSERT INTO tokens (user_id, token, expires_at) VALUES (?, ?, ?)",
    "DELETE FROM sessions WHERE token = $1 AND created_at < $2",
    "SELECT * FROM orders o JOIN items i ON i.order_id = o.id WHERE o.status IN (?)",
]
_URLS = [
    "https://api.example.com/v1/orders/{n}/items?limit=50&page={m}",
    "http://checkout.internal:8080/health",
    "https://cdn.example.net/static/app.{hex8}.js",
    "/api/v2/users/{n}/preferences?lang=en",
]


def _clean_value(rng: random.Random) -> str:
    """~200 bytes of ordinary log text: no detector has a candidate in it."""
    words = []
    while sum(len(w) + 1 for w in words) < SIZE + 20:
        words.append(rng.choice(_WORDS))
    return " ".join(words)[:SIZE]


def _candidate_value(rng: random.Random) -> str:
    """~200 bytes of log text with two candidates both sets mask (an e-mail, an IPv4)."""
    head = _clean_value(rng)[:120]
    tail = f" user=ada{rng.randrange(1000)}@example.com ip=10.{rng.randrange(256)}.2.3 "
    return (head + tail + _clean_value(rng))[:SIZE]


def _secret_value(rng: random.Random) -> str:
    """~200 bytes of log text with two secrets (a password assignment, a GitHub token)."""
    head = _clean_value(rng)[:100]
    body = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(36))
    tail = f" password=hunter{rng.randrange(100)} token ghp_{body} "
    return (head + tail + _clean_value(rng))[:SIZE]


def _negatives(rng: random.Random, per_kind: int) -> dict[str, list[str]]:
    def hexs(n: int) -> str:
        return "".join(rng.choice("0123456789abcdef") for _ in range(n))

    def pod() -> str:
        name = rng.choice(["checkout", "payments-api", "cart", "search-indexer", "gateway"])
        alnum = string.ascii_lowercase + string.digits
        return f"{name}-{hexs(rng.choice((9, 10)))}-{''.join(rng.choice(alnum) for _ in range(5))}"

    def version() -> str:
        parts = [str(rng.randrange(30)) for _ in range(rng.choice((2, 3, 4)))]
        return rng.choice(["v", "", "version "]) + ".".join(parts) + rng.choice(["", "-rc.1", "+build.7"])

    def timestamp() -> str:
        secs = rng.randrange(1_500_000_000, 1_800_000_000)
        return rng.choice([
            str(secs), str(secs * 1000 + rng.randrange(1000)), str(secs * 10**9 + rng.randrange(10**9)),
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{rng.randrange(10**6):06d}Z",
            time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(secs)),
        ])

    def url() -> str:
        return rng.choice(_URLS).format(n=rng.randrange(10**6), m=rng.randrange(20), hex8=hexs(8))

    kinds = {
        "trace/span ids": lambda: rng.choice([hexs(32), hexs(16), f"00-{hexs(32)}-{hexs(16)}-01"]),
        "uuids": lambda: str(uuid.UUID(int=rng.getrandbits(128))),
        "hex digests": lambda: hexs(rng.choice((32, 40, 64))),
        "base64 ids": lambda: base64.b64encode(rng.randbytes(rng.choice((12, 16, 24, 32)))).decode(),
        "k8s pod names": pod,
        "version strings": version,
        "timestamps": timestamp,
        "english lines": lambda: rng.choice(_ENGLISH),
        "urls": url,
        "sql": lambda: rng.choice(_SQL),
    }
    out = {kind: [make() for _ in range(per_kind)] for kind, make in kinds.items()}
    files = yaml.safe_load((CORPUS / "negatives.yaml").read_text())
    out["negatives.yaml"] = list(files["common"])
    return out


def _load_baseline(path: Path):
    spec = importlib.util.spec_from_file_location("baseline_detectors", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _time(maskers: dict[str, Masker], values: list[str], seconds: float) -> dict[str, float]:
    """µs per value for each masker, interleaved in rounds over the same values."""
    spent = dict.fromkeys(maskers, 0.0)
    calls = dict.fromkeys(maskers, 0)
    deadline = time.monotonic() + seconds * len(maskers)
    while time.monotonic() < deadline:
        for name, masker in maskers.items():
            mask = masker.mask
            start = time.process_time()
            for value in values:
                mask(value)
            spent[name] += time.process_time() - start
            calls[name] += len(values)
    return {name: spent[name] / calls[name] * 1e6 for name in maskers}


def cost(seconds: float, baseline: Path | None) -> None:
    rng = random.Random(7)
    maskers = {
        "original": Masker(ORIGINAL, [], "[REDACTED]"),
        "original+secrets": Masker([*ORIGINAL, "secrets"], [], "[REDACTED]"),
    }
    if baseline is not None:
        maskers = {"baseline": _load_baseline(baseline).Masker(ORIGINAL, [], "[REDACTED]"), **maskers}
    print(f"(a) cost: µs per {SIZE}-byte value (CPU time, interleaved)\n")
    head = f"{'value':<16}" + "".join(f"{name:>18}" for name in maskers) + f"{'ratio':>8}"
    print(head)
    print("-" * len(head))
    kinds = (("no candidate", _clean_value), ("e-mail + ipv4", _candidate_value),
             ("2 secrets", _secret_value))
    for label, make in kinds:
        values = [make(rng) for _ in range(200)]
        assert all(len(v) == SIZE for v in values)
        result = _time(maskers, values, seconds)
        ratio = result["original+secrets"] / result["original"]
        print(f"{label:<16}" + "".join(f"{result[n]:>18.2f}" for n in maskers) + f"{ratio:>7.2f}x")
    print()


def precision(per_kind: int) -> None:
    rng = random.Random(11)
    negatives = _negatives(rng, per_kind)
    positives = yaml.safe_load((CORPUS / "positives.yaml").read_text())
    kinds = list(negatives)
    print("(b) precision: share of each negative kind a detector changes (false positives), "
          "and of its positive corpus it masks as expected (true positives)\n")
    short = {k: k.split()[0][:7] for k in kinds}
    head = f"{'detector':<22}" + "".join(f"{short[k]:>8}" for k in kinds) + f"{'FP all':>9}{'TP':>10}"
    print(head)
    print("-" * len(head))
    secrets = set(DETECTOR_GROUPS["secrets"])
    for name in DETECTORS:
        masker = Masker([name], [], "[R]")
        cells, hit_total, total = [], 0, 0
        for kind in kinds:
            hits = sum(masker.mask(v) is not None for v in negatives[kind])
            hit_total += hits
            total += len(negatives[kind])
            cells.append(f"{100 * hits / len(negatives[kind]):>7.2f}%")
        cases = positives.get(name, [])
        tp = sum(masker.mask(v) == expected for v, expected in cases)
        mark = "*" if name in secrets else " "
        print(f"{name + mark:<22}" + "".join(cells) + f"{100 * hit_total / total:>8.3f}%"
              f"{tp:>6}/{len(cases):<3}")
    print(f"\n* secrets group. Negative kinds: {', '.join(f'{short[k]}={k} ({len(negatives[k])})' for k in kinds)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per masker and value kind")
    parser.add_argument("--negatives", type=int, default=2000, help="generated values per negative kind")
    parser.add_argument("--baseline", type=Path, help="another detectors.py to time beside")
    args = parser.parse_args()
    cost(args.seconds, args.baseline)
    precision(args.negatives)


if __name__ == "__main__":
    main()
