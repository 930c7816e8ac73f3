"""The ledger's bounds and its parts: memory stays bounded under a stream of distinct
keys (measured as the size of the structure, not timed), the sketch, the shapes."""

from __future__ import annotations

import random
import sys
import uuid
from array import array

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from redact_proxy.audit import Auditor, expand_kinds
from redact_proxy.audit.ledger import MAX_FIELDS, OTHER_FIELDS
from redact_proxy.audit.shapes import SKETCH_K, Sketch, is_free_text, shape_kinds
from redact_proxy.policy.compile import compile_policy
from redact_proxy.policy.schema import load_file
from redact_proxy.scrub import scrub

from test_audit_cli import KEY, POLICY


def policy():
    return compile_policy(load_file(POLICY), {"REDACT_PROXY_HASH_KEY": KEY})


def deep_size(obj, seen=None) -> int:
    """Bytes held by ``obj`` and everything it references (objects counted once)."""
    seen = set() if seen is None else seen
    if id(obj) in seen or isinstance(obj, type):
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, (list, tuple, set, frozenset)):
        size += sum(deep_size(x, seen) for x in obj)
    elif isinstance(obj, array):
        pass
    elif hasattr(obj, "__slots__"):
        size += sum(deep_size(getattr(obj, s), seen) for s in obj.__slots__ if hasattr(obj, s))
    return size


def batch(rng: random.Random, n_keys: int) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    spans = req.resource_spans.add().scope_spans.add().spans
    for _ in range(100):
        span = spans.add(name=f"op-{rng.randrange(10**9)}", trace_id=rng.randbytes(16), span_id=rng.randbytes(8))
        for _ in range(n_keys):
            # A distinct key every time, and a distinct value: the worst case for every table.
            span.attributes.add(key=f"k.{uuid.UUID(int=rng.getrandbits(128))}").value.string_value = (
                f"v {rng.getrandbits(64):x} and some words in it")
    return req


def ledger_size(auditor: Auditor) -> int:
    """The ledger's Python structures, and the native tallies, plans and memos beside them."""
    led = auditor.ledger
    native = auditor.tally.native.approx_bytes() if auditor.tally is not None else 0
    return deep_size([led.fields, led.plans, led._memos, led._personal, led.totals, led.applied]) + native


@pytest.mark.parametrize("native", [True, False], ids=["native", "reference"])
def test_memory_is_bounded_under_distinct_keys(native):
    auditor = Auditor(policy(), max_fields=256, native=native)
    rng = random.Random(7)
    peaks = []
    for _round in range(5):
        peak = 0
        for _ in range(10):  # 10 batches x 100 spans x 10 new keys = 10,000 new keys a round
            req = batch(rng, 10)
            report = scrub("traces", req, auditor.ledger.policy)
            auditor.observe("traces", req, report)
            peak = max(peak, ledger_size(auditor))
        peaks.append(peak)
    led = auditor.ledger
    assert len(led.fields) <= 256 + 1  # the cap, plus one "(other fields)" for traces/span
    assert all(len(m) <= 4096 for m in led.plans.values())
    other = led.fields[("traces", "span", OTHER_FIELDS)]
    assert other.names.estimate() > 25_000  # ~50,000 distinct keys pooled, estimated
    # Once the tables are full (after the first round), more distinct keys add nothing:
    # the memos fill and reset, so each round peaks at the same size, not a growing one.
    assert max(peaks[2:]) <= 1.1 * peaks[1], peaks
    assert peaks[-1] < 40 << 20, peaks


def test_the_default_cap():
    assert MAX_FIELDS == 2048


def test_sketch_is_exact_below_k_and_close_above():
    s = Sketch()
    for i in range(SKETCH_K - 1):
        s.add(f"value-{i}")
        s.add(f"value-{i}")
    assert s.estimate() == SKETCH_K - 1
    s = Sketch()
    for i in range(20_000):
        s.add(f"value-{i}")
    assert 0.6 * 20_000 < s.estimate() < 1.4 * 20_000
    assert len(s.mins) == SKETCH_K


def test_shapes():
    assert shape_kinds(str(uuid.UUID(int=12345))) == ("uuid",)
    assert shape_kinds("account 482910337561 closed") == ("digits",)
    assert shape_kinds("port 8080 year 2026") == ()
    assert shape_kinds("tok_9fK2mQ7xL0pR4sV8wZ3c") == ("high_entropy",)
    assert shape_kinds("aaaaaaaaaaaaaaaaaaaaaaaaaaaa") == ()
    assert shape_kinds("/api/v1/accounts/{id}/statements") == ()
    assert is_free_text("please call me back after five tomorrow")
    assert not is_free_text("GET /users/{id}")


def test_fail_on_names():
    assert expand_kinds(["ip", "uuid"]) == {"ipv4", "ipv6", "uuid"}
    assert "github_token" in expand_kinds(["secrets"])
