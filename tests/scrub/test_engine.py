"""The native engine against the Python reference: on every input, the same output
message and the same counts (issue: "Two implementations, one truth").

Inputs: hypothesis-generated requests of all three signals (the triage strategies: every
free-text field, kvlists, arrays, JSON text, bytes, ints, db systems, drop values) under
the shipped policies, the test policies, and hypothesis-generated random policies; the
leak corpus; the fuzz corpus. A difference of output message (decoded and compared as
messages), of redaction or drop counts, or of item counts fails.
"""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scrub_support import ENV
from test_triage import ALL_POLICIES, KEYS, logs, metrics, traces

from redact_proxy.engine import Engine
from redact_proxy.policy.compile import load
from redact_proxy.scrub import scrub
from redact_proxy.signals import BY_NAME

ROOT = Path(__file__).resolve().parents[2]
ENGINES = {name: Engine(p) for name, p in ALL_POLICIES.items()}
GENERATORS = {"traces": traces(), "metrics": metrics(), "logs": logs()}
PROFILE = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def assert_same(signal: str, body: bytes, policy, engine: Engine) -> None:
    """The engine's result on ``body`` is the reference's, or the engine declines."""
    sig = BY_NAME[signal]
    reference = sig.request.FromString(body)
    try:
        report = scrub(signal, reference, policy)
    except Exception:  # noqa: BLE001 - the reference refuses: the engine must not answer
        assert engine.scrub(sig, body) is None
        return
    result = engine.scrub(sig, body)
    assert result is not None, "the engine declined a body the reference scrubs"
    out, got = result
    native = sig.request.FromString(body if out is None else out)
    assert native == reference, f"output differs:\nengine:\n{native}\nreference:\n{reference}"
    assert got.redactions == report.redactions
    assert got.dropped == report.dropped
    assert (got.items_in, got.items_out) == (report.items_in, report.items_out)


@pytest.mark.parametrize("policy", list(ALL_POLICIES))
@pytest.mark.parametrize("signal", list(GENERATORS))
def test_generated_requests_under_the_test_and_shipped_policies(signal, policy):
    compiled, engine = ALL_POLICIES[policy], ENGINES[policy]

    @PROFILE
    @given(GENERATORS[signal])
    def check(request):
        assert_same(signal, request.SerializeToString(), compiled, engine)

    check()


# --- random policies --------------------------------------------------------------------

_SIGNALS = ["traces", "metrics", "logs"]
_LEVELS = ["resource", "scope", "span", "event", "link", "datapoint", "exemplar", "log"]
_TARGETS = ["attributes", "keys", "span_name", "event_name", "status_message", "trace_state", "scope_name",
            "scope_version", "schema_url", "entity_ref", "metric_name", "metric_description", "metric_unit",
            "severity_text", "log_body"]
_FIELDS = [t for t in _TARGETS if t not in ("attributes", "keys", "span_name", "metric_name")]
_PATTERNS = ["(?i).*pass.*", "user\\..*", ".*\\.id", "[a-z]+", "x+", ".*address"]
_DETECTORS = ["email", "ipv4", "phone", "credit_card", "iban", "secrets", "jwt"]

keys = st.lists(st.sampled_from([k for k in KEYS if k]), min_size=1, max_size=3, unique=True)
scope = st.fixed_dictionaries({}, optional={
    "signals": st.lists(st.sampled_from(_SIGNALS), min_size=1, max_size=3, unique=True),
})
key_rule = st.fixed_dictionaries(
    {"action": st.sampled_from(["delete", "hash", "sanitize_url", "sanitize_sql", "keep_only", "replace"]),
     "keys": keys},
    optional={"patterns": st.lists(st.sampled_from(_PATTERNS), max_size=2, unique=True)})
field_rule = st.fixed_dictionaries(
    {"action": st.sampled_from(["delete", "replace"]),
     "fields": st.lists(st.sampled_from(_FIELDS), min_size=1, max_size=3, unique=True)})
name_rule = st.fixed_dictionaries({"action": st.sampled_from(["sanitize_sql", "sanitize_url"]),
                                   "fields": st.just(["span_name"])})
mask_rule = st.fixed_dictionaries(
    {"action": st.just("mask"),
     "detectors": st.lists(st.sampled_from(_DETECTORS), min_size=1, max_size=3, unique=True),
     "targets": st.lists(st.sampled_from(_TARGETS), min_size=1, max_size=5, unique=True)},
    optional={"regexes": st.lists(st.sampled_from(["^tok-[0-9]+$", "acct-[0-9]{4}\\b"]), max_size=1),
              "replacement": st.sampled_from(["[X]", "<{hash}>"]),
              "keys": keys})
drop_rule = st.fixed_dictionaries(
    {"action": st.just("drop"),
     "when": st.one_of(
         st.fixed_dictionaries({"key": st.sampled_from(KEYS[:12]), "in": st.lists(
             st.sampled_from(["/healthz", "200", "plain", "1", "true", "1.5"]), min_size=1, max_size=2)}),
         st.fixed_dictionaries({"key": st.sampled_from(KEYS[:12]), "matches": st.sampled_from(
             ["^/(ready|live)z$", "pl.*", "[0-9]+"])}))})
policies = st.lists(st.one_of(key_rule, field_rule, name_rule, mask_rule, drop_rule), min_size=1, max_size=6)


def _compile(rules: list[dict]):
    doc = {"version": 1, "hash": {"key_env": "REDACT_PROXY_HASH_KEY"},
           "rules": [{"name": f"r{i}", **r, **({"replacement": "gone"} if r["action"] == "replace" else {})}
                     for i, r in enumerate(rules)]}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        yaml.safe_dump(doc, f)
        f.flush()
        try:
            return load(f.name, ENV)
        except Exception:  # noqa: BLE001 - a generated rule set the schema refuses
            return None


@pytest.mark.parametrize("signal", list(GENERATORS))
def test_generated_requests_under_random_policies(signal):
    compiled_any = []

    @settings(max_examples=80, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(policies, st.lists(GENERATORS[signal], min_size=1, max_size=3))
    def check(rules, requests):
        policy = _compile(rules)
        if policy is None:
            return
        compiled_any.append(1)
        engine = Engine(policy)
        for request in requests:
            assert_same(signal, request.SerializeToString(), policy, engine)

    check()
    assert len(compiled_any) > 20, "the random policy generator makes too few valid policies"


# --- corpora ----------------------------------------------------------------------------

def _corpus():
    for path in sorted((ROOT / "tests" / "testdata" / "leak-corpus").glob("*.pb")) + sorted(
            (ROOT / "tests" / "fuzz" / "corpus").glob("*.pb")):
        signal = next(s for s in ("traces", "metrics", "logs") if s in path.name)
        data = path.read_bytes()
        yield pytest.param(signal, gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data, id=path.name)


@pytest.mark.parametrize("policy", ["doctrine", "strict", "rules", "values"])
@pytest.mark.parametrize(("signal", "body"), list(_corpus()))
def test_the_leak_and_fuzz_corpora(signal, body, policy):
    assert_same(signal, body, ALL_POLICIES[policy], ENGINES[policy])


def test_a_body_the_table_does_not_describe_is_declined():
    engine = ENGINES["doctrine"]
    assert engine.scrub(BY_NAME["traces"], b"\x0a\x05\x0a\x03\xff\xff") is None  # truncated
    assert engine.scrub(BY_NAME["traces"], b"\x0b") is None  # a group wire type


def test_the_fuzz_targets_table_is_current():
    """native/fuzz/spec.json is what the fuzz policy compiles to today (regenerate it with
    `python tests/fuzz/engine_spec.py > native/fuzz/spec.json`)."""
    import engine_spec

    assert (ROOT / "native" / "fuzz" / "spec.json").read_text() == engine_spec.spec_json()


# --- OTLP-JSON: transcoded natively, scrubbed by the engine, JSON again for upstream -------

@pytest.mark.parametrize("signal", list(GENERATORS))
def test_json_bodies_take_the_engine_and_come_out_as_the_reference_would(signal):
    """pipeline._redact on an OTLP-JSON body: the native transcoder and engine, then
    native JSON encoding; the reference: the codec's JSON decode, the Python scrub, the
    codec's JSON encode. Same JSON bytes (hex ids byte-exact), same counts."""
    from redact_proxy.codec import Format, decode, encode
    from redact_proxy.pipeline import _redact

    sig = BY_NAME[signal]
    compiled, engine = ALL_POLICIES["doctrine"], ENGINES["doctrine"]
    took_engine = []

    @PROFILE
    @given(GENERATORS[signal])
    def check(request):
        body = encode(request, Format.JSON)
        batch, report = _redact(sig, body, Format.JSON, engine)
        reference = decode(sig, body, Format.JSON)
        expected = scrub(signal, reference, compiled)
        assert batch.fmt is Format.JSON
        assert batch.to_bytes(Format.JSON) == encode(reference, Format.JSON)
        assert (report.redactions, report.dropped, report.items_in) == (
            expected.redactions, expected.dropped, expected.items_in)
        took_engine.append(batch._message is None)  # the engine's batch: never decoded in Python

    check()
    assert any(took_engine), "no generated JSON body took the engine"


def test_each_path_is_named_in_the_report():
    """The closed set redact_proxy_triage_total counts: which path scrubbed a batch."""
    from redact_proxy.codec import Format, encode
    from redact_proxy.pipeline import _redact
    from redact_proxy.scrub import PATHS

    engine, sig = ENGINES["doctrine"], BY_NAME["traces"]
    req = sig.request()
    span = req.resource_spans.add().scope_spans.add().spans.add(name="GET /rooms", trace_id=b"t" * 16, span_id=b"s" * 8)
    clean = req.SerializeToString()
    span.attributes.add(key="user.email").value.string_value = "ada@example.com"
    dirty = req.SerializeToString()
    unknown = dirty + b"\xa0\x06\x01"  # field 100, varint: unknown to this OTLP version
    nul = sig.request()
    nul.resource_spans.add().scope_spans.add().spans.add(name="a\x00b", trace_id=b"t" * 16, span_id=b"s" * 8)
    cases = {
        "untouched": (clean, Format.PROTOBUF),
        "rewritten": (dirty, Format.PROTOBUF),
        "reference_unknown_fields": (unknown, Format.PROTOBUF),
        "reference_unvouched": (nul.SerializeToString(), Format.PROTOBUF),  # NUL in a text: triage's walk refuses
        # An unknown member nested past the transcoder's bound (512) but not Python's: the
        # codec ignores it, the transcoder refuses the body.
        "reference_json_refused": (b'{"resourceSpans": [], "x": ' + b"[" * 600 + b"]" * 600 + b"}", Format.JSON),
        "json": (encode(sig.request.FromString(dirty), Format.JSON), Format.JSON),
    }
    seen = {}
    for name, (body, fmt) in cases.items():
        _batch, report = _redact(sig, body, fmt, engine)
        seen[name] = report.path
    assert seen["untouched"] == "untouched" and seen["rewritten"] == "rewritten"
    assert seen["reference_unknown_fields"] == "reference_unknown_fields"
    assert seen["reference_unvouched"] == "reference_unvouched"
    assert seen["json"] == "rewritten"
    assert seen["reference_json_refused"] == "reference_json_refused"
    assert set(seen.values()) <= set(PATHS)


def test_a_regex_outside_the_engines_dialect_is_reported_and_still_applied(tmp_path):
    r"""`redact-proxy check` reports it (engine.dialect_errors); the engine asks Python for
    that mask rule, and leaves every batch to the reference when it is a drop condition."""
    from redact_proxy.engine import dialect_errors

    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nhash: {algorithm: sha256}\nrules:\n"
                    "  - {name: m, action: mask, regexes: ['\\Qtok-\\E[0-9]+'], targets: [attributes, span_name]}\n")
    policy = load(path, ENV)
    [problem] = dialect_errors(policy)
    assert "rules[0].regexes[0]" in problem and "tok-" not in problem.split("(")[0]
    engine = Engine(policy)
    req = BY_NAME["traces"].request()
    span = req.resource_spans.add().scope_spans.add().spans.add(name="tok-12 x", trace_id=b"t" * 16, span_id=b"s" * 8)
    span.attributes.add(key="note").value.string_value = "id tok-99"
    assert_same("traces", req.SerializeToString(), policy, engine)
    path.write_text("version: 1\nhash: {algorithm: sha256}\nrules:\n"
                    "  - {name: d, action: drop, when: {key: route, matches: '\\C+'}}\n")
    policy = load(path, ENV)
    assert dialect_errors(policy) and Engine(policy).scrub(BY_NAME["traces"], req.SerializeToString()) is None
