"""The native audit walk against the reference walk (issue 14: "same counts"; the brief:
"Two implementations, one truth"): fed the same scrubbed requests, the two auditors
return the same findings per request and end with the same snapshot -- every field, count,
length, cardinality, sample hash, rule label and total.

Inputs: hypothesis-generated requests of all three signals (the triage strategies: every
free-text field, kvlists, arrays, JSON text, bytes, integers) under the test and shipped
policies, scrubbed by the reference scrubber, one auditor pair per policy and signal so
memos, samples and cardinality checks carry over from request to request; the leak and
fuzz corpora; the audit's own planted-leak inputs; streams that cross the high-
cardinality checks, fill the field cap and the native plan memos; bodies the native walk
refuses (then recorded from the decoded message).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from helpers.wire import field
from redact_proxy.audit import Auditor, inputs, native
from redact_proxy.audit.ledger import OTHER_FIELDS
from redact_proxy.codec import Format
from redact_proxy.engine import Engine
from redact_proxy.pipeline import _redact
from redact_proxy.scrub import scrub
from redact_proxy.signals import BY_NAME

from test_audit_cli import CLEAN, LEAKY
from test_ledger import policy as audit_policy
from test_triage import ALL_POLICIES, logs, metrics, traces  # tests/scrub, on pytest's pythonpath

ROOT = Path(__file__).resolve().parents[2]
GENERATORS = {"traces": traces(), "metrics": metrics(), "logs": logs()}
PROFILE = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def pair(policy, **kw) -> tuple[Auditor, Auditor]:
    """A native auditor and a reference one that hash as it does (sketches and samples)."""
    fast = Auditor(policy, **kw)
    reference = Auditor(policy, native=False, hash64=fast.tally.hash64, **kw)
    reference.ledger._ephemeral = fast.ledger._ephemeral
    return fast, reference


def feed(auditors: tuple[Auditor, Auditor], signal: str, body: bytes, report) -> dict:
    fast, reference = auditors
    got = fast.observe(signal, body, report)
    want = reference.observe(signal, BY_NAME[signal].request.FromString(body), report)
    assert got == want, "per-request findings differ"
    return got


def assert_same(auditors: tuple[Auditor, Auditor]) -> None:
    got, want = (a.snapshot() for a in auditors)
    got.pop("since"), want.pop("since")
    for part in want:
        assert got[part] == want[part], part


def scrubbed(signal: str, request, policy) -> tuple[bytes, object]:
    report = scrub(signal, request, policy)
    return request.SerializeToString(), report


@pytest.mark.parametrize("policy", list(ALL_POLICIES))
@pytest.mark.parametrize("signal", list(GENERATORS))
def test_generated_requests_under_the_test_and_shipped_policies(signal, policy):
    compiled = ALL_POLICIES[policy]
    auditors = pair(compiled)

    @PROFILE
    @given(GENERATORS[signal])
    def check(request):
        feed(auditors, signal, *scrubbed(signal, request, compiled))
        assert_same(auditors)

    check()


def _corpus():
    for path in sorted((ROOT / "tests" / "testdata" / "leak-corpus").glob("*.pb")) + sorted(
            (ROOT / "tests" / "fuzz" / "corpus").glob("*.pb")):
        signal = next(s for s in ("traces", "metrics", "logs") if s in path.name)
        data = path.read_bytes()
        yield signal, gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


@pytest.mark.parametrize("policy", ["doctrine", "strict", "rules", "values"])
def test_the_leak_and_fuzz_corpora(policy):
    compiled = ALL_POLICIES[policy]
    auditors = pair(compiled)
    for signal, body in _corpus():
        try:
            request = BY_NAME[signal].request.FromString(body)
        except Exception:  # noqa: BLE001 -- a fuzz input the decoder refuses: nothing to audit
            continue
        feed(auditors, signal, *scrubbed(signal, request, compiled))
    assert_same(auditors)


def test_the_planted_leak_inputs_through_the_pipeline():
    """The CLI's inputs, through ``_redact`` as ``serve`` runs it (engine and all)."""
    policy = audit_policy()
    engine, auditors = Engine(policy), pair(policy)
    for path in LEAKY + CLEAN:
        for body in inputs.read(path.name, path.read_bytes(), None):
            batch, report = _redact(BY_NAME[body.signal], body.data, body.fmt, engine)
            feed(auditors, body.signal, batch.to_bytes(Format.PROTOBUF), report)
    assert_same(auditors)
    assert auditors[0].snapshot()["totals"], "the planted leaks were found"


def _request(attrs: dict, name: str = "op") -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add(name=name, trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
    for key, value in attrs.items():
        span.attributes.add(key=key).value.string_value = value
    return req


def _stream(auditors, policy, requests) -> None:
    for req in requests:
        feed(auditors, "traces", *scrubbed("traces", req, policy))
    assert_same(auditors)


def test_high_cardinality_samples_and_memos_across_a_stream():
    policy = ALL_POLICIES["rules"]
    auditors = pair(policy)
    _stream(auditors, policy, (
        _request({"app.order": f"order {i}", "app.ref": f"ref-{i % 7}", "app.when": "2024-01-01",
                  "app.note": "call me at bob@example.com", "app.key": "a1b2c3d4e5f6g7h8i9j0k1l2"}, name=f"op {i % 3}")
        for i in range(300)))
    snap = auditors[0].snapshot()
    assert any(f["kind"] == "high_cardinality" for f in snap["findings"])


def test_the_field_cap_pools_the_same_fields():
    policy = ALL_POLICIES["rules"]
    auditors = pair(policy, max_fields=16)
    _stream(auditors, policy, [_request({f"app.k{i}.{j}": "+44 20 7946 0958" for i in range(20)}) for j in range(3)])
    assert any(f["field"] == OTHER_FIELDS for f in auditors[0].snapshot()["fields"])


def test_plans_dropped_when_full_are_learnt_again(monkeypatch):
    monkeypatch.setattr(native, "MAX_PLANS", 40)
    policy = ALL_POLICIES["rules"]
    auditors = pair(policy)
    _stream(auditors, policy, [_request({f"app.k{i % 30}": f"v{i}" for i in range(j, j + 25)}) for j in range(12)])


def test_a_body_the_walk_refuses_is_recorded_from_the_decoded_message():
    policy = ALL_POLICIES["rules"]
    auditors = pair(policy)
    body, report = scrubbed("traces", _request({"app.ip": "10.1.2.3"}), policy)
    # The span's name twice: a decoder keeps the last; the native walk refuses the body.
    twice = ExportTraceServiceRequest.FromString(body)
    span = twice.resource_spans[0].scope_spans[0].spans[0]
    span_bytes = span.SerializeToString() + field(5, b"ada!")  # field 5: the name
    assert ExportTraceServiceRequest.FromString(body).resource_spans[0].scope_spans[0].spans[0].name == "op"
    odd = _with_span(body, span_bytes)
    assert ExportTraceServiceRequest.FromString(odd).resource_spans[0].scope_spans[0].spans[0].name == "ada!"
    feed(auditors, "traces", body, report)  # plans and keys learnt: the walk has nothing to ask
    assert auditors[0].tally.native.observe(0, odd) == ("refused", "a singular field twice")
    feed(auditors, "traces", odd, report)
    assert_same(auditors)


def _with_span(body: bytes, span: bytes) -> bytes:
    """``body`` (one resource, one scope, one span) with its span's bytes replaced."""
    req = ExportTraceServiceRequest.FromString(body)
    ss = req.resource_spans[0].scope_spans[0]
    del ss.spans[:]
    scope_spans = ss.SerializeToString() + field(2, span)
    rs = req.resource_spans[0]
    del rs.scope_spans[:]
    resource_spans = rs.SerializeToString() + field(2, scope_spans)
    return field(1, resource_spans)


def test_a_reload_starts_the_native_tallies_over():
    policy = audit_policy()
    fast, _ = pair(policy)
    body, report = scrubbed("traces", _request({"app.phone": "+44 20 7946 0958"}), policy)
    assert fast.observe("traces", body, report)
    fast.set_policy(policy)
    snap = fast.snapshot()
    assert snap["findings"] == [] and snap["batches"] == 0
    assert fast.observe("traces", body, report)
    assert fast.snapshot()["findings"]


def test_the_fuzz_targets_audit_table_is_current():
    """native/fuzz/audit.json is the table audit/native.py builds today (regenerate it with
    `python tests/fuzz/engine_spec.py --audit > native/fuzz/audit.json`)."""
    import engine_spec

    assert (ROOT / "native" / "fuzz" / "audit.json").read_text() == engine_spec.audit_json()
