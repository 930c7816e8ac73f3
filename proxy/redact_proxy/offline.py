"""The scrubber without a network: ``apply`` (files in, redacted files out) and ``test``
(a policy's embedded ``tests:`` cases).

Strategy: both build ordinary export requests and run them through the same ``scrub`` the
proxy runs, so what they show is what the proxy does. ``apply`` reads OTLP protobuf (one
export request) or OTLP-JSON (one request, or JSON lines as the collector's file
exporter writes them); ``test`` builds a one-item request per case with the case's
attributes at the case's level and compares what is left.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
from pathlib import Path
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from redact_proxy.codec import Batch, Format
from redact_proxy.errors import ConfigError, MalformedRequest
from redact_proxy.policy import CompiledPolicy, Level
from redact_proxy.policy.compile import compile_policy
from redact_proxy.policy.schema import DEFAULT_KEY_ENV, PolicyCase, load_file
from redact_proxy.scrub import scrub
from redact_proxy.scrub.attributes import hash_value
from redact_proxy.signals import BY_NAME, json_signal


# --- apply ------------------------------------------------------------------------------


def guess_format(path: str | None, explicit: str | None) -> Format:
    if explicit:
        return Format.JSON if explicit == "json" else Format.PROTOBUF
    if path and Path(path).suffix.lower() in (".json", ".jsonl", ".ndjson"):
        return Format.JSON
    if path and Path(path).suffix.lower() in (".pb", ".bin", ".protobuf"):
        return Format.PROTOBUF
    raise ConfigError(["cannot tell the input format from the file name; give --format json or --format protobuf"])


def apply(policy: CompiledPolicy, data: bytes, fmt: Format, signal: str | None) -> list[bytes]:
    """Redact every export request in ``data``; returns one output document per request."""
    if fmt is Format.PROTOBUF:
        if signal is None:
            raise ConfigError(["protobuf input does not say its signal; give --signal traces|metrics|logs"])
        return [_apply_one(policy, data, fmt, signal)]
    text = data.decode("utf-8", "replace").strip()
    try:  # one document, however it is laid out ...
        docs = [text] if isinstance(json.loads(text), dict) else []
    except ValueError:  # ... or JSON lines, one export request per line
        docs = []
    if not docs:
        docs = [ln for ln in text.splitlines() if ln.strip()]
    out = []
    for n, doc in enumerate(docs, 1):
        sig = signal or _json_signal(doc, n)
        out.append(_apply_one(policy, doc.encode(), fmt, sig))
    return out


def _json_signal(doc: str, n: int) -> str:
    try:
        root = json.loads(doc)
    except ValueError as exc:
        raise MalformedRequest(f"document {n} is not valid JSON") from exc
    signal = json_signal(root)
    if signal is not None:
        return signal
    raise MalformedRequest(f"document {n} is not an OTLP export request (no resourceSpans/Metrics/Logs)")


def _apply_one(policy: CompiledPolicy, data: bytes, fmt: Format, signal: str) -> bytes:
    batch = Batch.from_bytes(BY_NAME[signal], data, fmt)
    if scrub(signal, batch.message, policy).changed:
        batch.modified()
    return batch.to_bytes(fmt)


# --- test -------------------------------------------------------------------------------


def load_for_test(path: str, environ=None) -> tuple[CompiledPolicy, list[PolicyCase], str | None]:
    """The policy and its cases. A missing hash key is replaced by a fixed test key (with
    a note): `{hash}` expectations are computed with the same key, so cases do not depend
    on the production secret and can run in CI without it."""
    doc = load_file(path)
    environ = dict(os.environ if environ is None else environ)
    note = None
    key_env = doc.hash.key_env or DEFAULT_KEY_ENV
    if doc.hash.algorithm == "hmac-sha256" and doc.hash.key_file is None and not environ.get(key_env):
        environ[key_env] = "redact-proxy-test-key-not-secret"
        note = f"{key_env} not set: hashing with a fixed test key"
    return compile_policy(doc, environ), list(doc.tests), note


def _any(value, out: AnyValue) -> None:
    if isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, int):
        out.int_value = value
    elif isinstance(value, float):
        out.double_value = value
    elif isinstance(value, (bytes, bytearray)):
        out.bytes_value = bytes(value)
    elif isinstance(value, list):
        out.array_value.SetInParent()
        for item in value:
            _any(item, out.array_value.values.add())
    elif isinstance(value, dict):
        out.kvlist_value.SetInParent()
        for k, v in value.items():
            _any(v, out.kvlist_value.values.add(key=str(k)).value)
    elif value is not None:
        out.string_value = str(value)


def _plain(value: AnyValue):
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_plain(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _plain(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


def _one_item(case: PolicyCase):
    """A request with one item; returns (request, the attribute list the case fills, the
    messages holding each free-text target of the case's level, by target)."""
    req: Any = BY_NAME[case.signal].request()  # which request type is known at run time only
    if case.signal == "traces":
        rs = req.resource_spans.add()
        ss = rs.scope_spans.add()
        span = ss.spans.add(name="test", trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
        event = span.events.add(name="e")
        link = span.links.add(trace_id=b"\x03" * 16, span_id=b"\x04" * 8)
        where = {
            Level.RESOURCE: (rs.resource.attributes, {"schema_url": (rs, "schema_url")}),
            Level.SCOPE: (ss.scope.attributes, _scope_fields(ss)),
            Level.SPAN: (
                span.attributes,
                {
                    "span_name": (span, "name"),
                    "status_message": (span.status, "message"),
                    "trace_state": (span, "trace_state"),
                },
            ),
            Level.EVENT: (event.attributes, {"event_name": (event, "name")}),
            Level.LINK: (link.attributes, {"trace_state": (link, "trace_state")}),
        }
    elif case.signal == "metrics":
        rm = req.resource_metrics.add()
        sm = rm.scope_metrics.add()
        metric = sm.metrics.add(name="test")
        point = metric.gauge.data_points.add(as_int=1)
        where = {
            Level.RESOURCE: (rm.resource.attributes, {"schema_url": (rm, "schema_url")}),
            Level.SCOPE: (sm.scope.attributes, _scope_fields(sm)),
            Level.DATAPOINT: (point.attributes, {f"metric_{f}": (metric, f) for f in ("name", "description", "unit")}),
            Level.EXEMPLAR: (point.exemplars.add(as_int=1).filtered_attributes, {}),
        }
    else:
        rl = req.resource_logs.add()
        sl = rl.scope_logs.add()
        record = sl.log_records.add(severity_text="INFO")
        where = {
            Level.RESOURCE: (rl.resource.attributes, {"schema_url": (rl, "schema_url")}),
            Level.SCOPE: (sl.scope.attributes, _scope_fields(sl)),
            Level.LOG: (
                record.attributes,
                {
                    "event_name": (record, "event_name"),
                    "severity_text": (record, "severity_text"),
                    "log_body": (record.body, "string_value"),
                },
            ),
        }
    if case.level not in where:
        raise ConfigError([f"{case.where}: level {case.level.value} does not exist in {case.signal}"])
    return req, *where[case.level]


def _scope_fields(container) -> dict:
    return {
        "scope_name": (container.scope, "name"),
        "scope_version": (container.scope, "version"),
        "schema_url": (container, "schema_url"),
    }


def run_case(policy: CompiledPolicy, case: PolicyCase) -> tuple[dict, dict] | None:
    """What the case's input attributes and fields become; None when the item was dropped."""
    req, attrs, texts = _one_item(case)
    for key, value in case.input.items():
        _any(value, attrs.add(key=str(key)).value)
    for target, text in case.fields.items():
        message, name = texts[target]
        setattr(message, name, text)
    report = scrub(case.signal, req, policy)
    if report.items_out == 0:
        return None
    # Scrubbing edits in place: `attrs` and the field holders are live views.
    fields = {t: getattr(*texts[t]) for t in case.expect_fields}
    return {kv.key: _plain(kv.value) for kv in attrs}, fields


def expected(policy: CompiledPolicy, case: PolicyCase) -> tuple[dict, dict] | None:
    """The case's expectation, attributes and fields (None: the item is dropped), with
    `{hash}` resolved to the hash of the input value under the same key."""
    if case.expect is None:
        return None
    return _expected_attributes(policy, case), dict(case.expect_fields)


def _expected_attributes(policy: CompiledPolicy, case: PolicyCase) -> dict:
    out = {}
    for key, value in (case.expect or {}).items():  # None (dropped) never gets here
        if value == "{hash}":
            tmp = AnyValue()
            _any(case.input.get(key), tmp)
            hash_value(tmp, policy.hasher)
            value = _plain(tmp)
        out[str(key)] = value
    return out


def run_tests(policy: CompiledPolicy, cases: list[PolicyCase], source: str, out=None) -> int:
    out = sys.stdout if out is None else out  # looked up now: callers may have redirected it
    failed = 0
    for case in cases:
        got = run_case(policy, case)
        want = expected(policy, case)
        if got == want:
            print(f"ok    {case.name}", file=out)
            continue
        failed += 1
        print(f"FAIL  {case.name}  ({source}:{case.where})", file=out)
        want_text = ["(dropped)"] if want is None else _lines(*want)
        got_text = ["(dropped)"] if got is None else _lines(*got)
        for line in difflib.unified_diff(want_text, got_text, "expected", "got", lineterm="", n=10):
            print(f"      {line}", file=out)
    print(f"{len(cases) - failed} passed, {failed} failed", file=out)
    return 1 if failed else 0


def _lines(attrs: dict, fields: dict) -> list[str]:
    return [f"{k}: {json.dumps(v, sort_keys=True, default=str)}" for k, v in sorted(attrs.items())] + [
        f"({t}): {json.dumps(v)}" for t, v in sorted(fields.items())
    ]
