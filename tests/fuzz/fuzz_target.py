"""The fuzz target shared by the bounded CI run (test_fuzz_pipeline.py) and the
coverage-guided run (atheris_pipeline.py): bytes in, through exactly what a receiver does
with a body -- decompress, decode, scrub, encode -- and two invariants checked.

1. Never crash: decoding may refuse (MalformedRequest, RequestTooLarge); nothing else may
   raise, at any step, for any input.
2. Never leak: in every batch that would be forwarded, no planted sensitive key survives
   at any level or nesting depth, and no planted sensitive value survives in any
   attribute value, span/event name or log body (the places the policy scrubs).
3. Triage is exact: a protobuf body triage vouches for (the pipeline then forwards it
   as it came, undecoded) is one the decoder accepts, with no unknown field, the item
   count triage gives, and that the scrub leaves unchanged.
4. The native engine is the reference: on a protobuf body it takes, it never panics,
   its output decodes to the reference's output with the same counts, and it never
   emits a planted value. It sees, as in the pipeline, the bodies the wire check
   (validate.py) passes as known-only and triage's walk vouches the decoder accepts.
5. The native audit walk is the reference: on every forwarded batch it finds what the
   reference walk finds (and on any bytes at all it answers, never panics).

The policy deletes the planted keys and masks anything shaped like a planted value, so
a planted value moved by a mutation under an innocent key must still be masked.
"""

from __future__ import annotations

import re
from pathlib import Path

from redact_proxy.audit import Auditor
from redact_proxy.codec import Batch, Format, decompress
from redact_proxy.engine import Engine
from redact_proxy.errors import MalformedRequest, RequestTooLarge
from redact_proxy.policy.compile import compile_policy
from redact_proxy.policy.schema import parse
from redact_proxy.scrub import count as scrub_count
from redact_proxy.scrub import scrub
from redact_proxy.signals import BY_NAME
from redact_proxy.validate import Wire, check_wire

CORPUS = Path(__file__).parent / "corpus"
LIMIT = 1 << 20  # max decompressed bytes, as --max-request-bytes

SENSITIVE_KEYS = ("user.email", "message.content", "http.request.header.authorization")
PLANTED = re.compile(rb"PLANTED[0-9a-f]{8}")
POLICY = compile_policy(parse(b"""
version: 1
hash: {algorithm: sha256}
rules:
  - name: delete-sensitive
    action: delete
    keys: [user.email, message.content, http.request.header.authorization]
  - name: hash-user
    action: hash
    keys: [user.id]
  - name: mask-planted
    action: mask
    regexes: ['PLANTED[0-9a-f]{8}']
    targets: [attributes, span_name, event_name, log_body]
  - name: drop-health
    action: drop
    when: {key: http.route, in: [/healthz]}
""", "fuzz-policy.yaml"), {})
ENGINE = Engine(POLICY)
TRIAGE = ENGINE.triage
AUDIT = Auditor(POLICY)  # the native walk, and the reference hashing as it does
AUDIT_REFERENCE = Auditor(POLICY, native=False, hash64=AUDIT.tally.hash64)
AUDIT_REFERENCE.ledger._ephemeral = AUDIT.ledger._ephemeral  # the same sample hashes


class Leak(AssertionError):
    pass


def check_one(data: bytes, signal: str, fmt: Format, encoding: str | None = None) -> bool:
    """Run one input; returns True when it was accepted (decoded) and checked."""
    try:
        body = decompress(data, encoding, LIMIT)
    except (MalformedRequest, RequestTooLarge):
        return False
    items = TRIAGE.untouched(BY_NAME[signal], body) if fmt is Format.PROTOBUF else None
    # As the pipeline does: the engine takes what the wire check passes as known-only.
    native = ENGINE.scrub(BY_NAME[signal], body) if fmt is Format.PROTOBUF and _known_only(signal, body) else None
    try:
        batch = Batch.from_bytes(BY_NAME[signal], body, fmt)
    except MalformedRequest:
        if items is not None:
            raise Leak("triage vouched for a body the decoder refuses") from None
        if native is not None:
            raise Leak("the engine scrubbed a body the decoder refuses") from None
        return False
    if items is not None:
        assert_verbatim_exact(signal, body, items)
    reference = BY_NAME[signal].request.FromString(body) if native is not None else None
    report = scrub(signal, batch.message, POLICY)
    if items is not None and (report.changed or any(report.redactions) or any(report.dropped)):
        raise Leak("triage vouched for a batch the scrub changes")
    if native is not None:
        _assert_engine_is_reference(signal, body, native, reference, report)
    if report.changed:
        batch.modified()
    _assert_audit_is_reference(signal, body, batch, report)
    for out_fmt in (Format.PROTOBUF, Format.JSON):
        forwarded = batch.to_bytes(out_fmt)
        # What upstream receives, read back the way upstream would read it.
        again = Batch.from_bytes(BY_NAME[signal], forwarded, out_fmt).message
        _assert_clean(again)
    return True


def _known_only(signal: str, body: bytes) -> bool:
    try:
        known = check_wire(BY_NAME[signal], body) is Wire.KNOWN_ONLY
    except MalformedRequest:
        return False
    return known and TRIAGE.judge(BY_NAME[signal], body)[0]


def _assert_engine_is_reference(signal: str, body: bytes, native, reference, report) -> None:
    out, got = native
    engine_out = BY_NAME[signal].request.FromString(body if out is None else out)
    _assert_clean(engine_out)
    scrub(signal, reference, POLICY)
    # The reference drops unknown fields when it re-encodes; the engine copies them.
    engine_out.DiscardUnknownFields()
    reference.DiscardUnknownFields()
    if engine_out != reference:
        raise Leak("the engine's output differs from the reference's")
    if (got.redactions, got.dropped, got.items_in) != (report.redactions, report.dropped, report.items_in):
        raise Leak("the engine's counts differ from the reference's")


def _assert_audit_is_reference(signal: str, body: bytes, batch: Batch, report) -> None:
    forwarded = batch.to_bytes(Format.PROTOBUF)
    if AUDIT.observe(signal, forwarded, report) != AUDIT_REFERENCE.observe(signal, batch.message, report):
        raise Leak("the native audit's findings differ from the reference's")
    AUDIT.tally.native.observe(("traces", "metrics", "logs").index(signal), body)  # raw bytes: answers, whatever they are
    if AUDIT.ledger.batches % 32 == 0:
        got, want = AUDIT.snapshot(), AUDIT_REFERENCE.snapshot()
        if {**got, "since": None} != {**want, "since": None}:
            raise Leak("the native audit's ledger differs from the reference's")


def assert_verbatim_exact(signal: str, body: bytes, items: int) -> None:
    """What forwarding ``body`` undecoded assumes: no field unknown to the decoder (it
    re-encodes unknown fields, so dropping them would change the encoding) and the
    item count the pipeline reports."""
    message = BY_NAME[signal].request()
    message.ParseFromString(body)
    before = message.SerializeToString()
    message.DiscardUnknownFields()
    if message.SerializeToString() != before:
        raise Leak("triage vouched for a body with unknown fields")
    if scrub_count(signal, message) != items:
        raise Leak("triage counted the items wrong")


def _assert_clean(message) -> None:
    for where, key, value in _walk(message):
        if key in SENSITIVE_KEYS:
            raise Leak(f"sensitive key survived at {where}")
        if value is not None and PLANTED.search(value):
            raise Leak(f"planted value survived at {where}")


def _strings(value, where):
    """(where, key, text) for every key and string inside an AnyValue."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        yield where, None, value.string_value.encode("utf-8", "surrogatepass")
    elif kind == "array_value":
        for i, item in enumerate(value.array_value.values):
            yield from _strings(item, f"{where}[{i}]")
    elif kind == "kvlist_value":
        for kv in value.kvlist_value.values:
            yield f"{where}.{{key}}", kv.key, None
            yield from _strings(kv.value, f"{where}.{{value}}")


def _attrs(attrs, where):
    for kv in attrs:
        yield where, kv.key, None
        yield from _strings(kv.value, where)


def _walk(message):
    name = message.DESCRIPTOR.name
    if name.startswith("ExportTrace"):
        for rs in message.resource_spans:
            yield from _attrs(rs.resource.attributes, "resource")
            for ss in rs.scope_spans:
                yield from _attrs(ss.scope.attributes, "scope")
                for span in ss.spans:
                    yield "span.name", None, span.name.encode("utf-8", "surrogatepass")
                    yield from _attrs(span.attributes, "span")
                    for ev in span.events:
                        yield "event.name", None, ev.name.encode("utf-8", "surrogatepass")
                        yield from _attrs(ev.attributes, "event")
                    for link in span.links:
                        yield from _attrs(link.attributes, "link")
    elif name.startswith("ExportMetrics"):
        for rm in message.resource_metrics:
            yield from _attrs(rm.resource.attributes, "resource")
            for sm in rm.scope_metrics:
                yield from _attrs(sm.scope.attributes, "scope")
                for metric in sm.metrics:
                    yield from _attrs(metric.metadata, "metadata")
                    kind = metric.WhichOneof("data")
                    for point in (getattr(metric, kind).data_points if kind else ()):
                        yield from _attrs(point.attributes, "datapoint")
                        for ex in getattr(point, "exemplars", ()):
                            yield from _attrs(ex.filtered_attributes, "exemplar")
    else:
        for rl in message.resource_logs:
            yield from _attrs(rl.resource.attributes, "resource")
            for sl in rl.scope_logs:
                yield from _attrs(sl.scope.attributes, "scope")
                for rec in sl.log_records:
                    yield from _attrs(rec.attributes, "log")
                    yield "log.event_name", None, rec.event_name.encode("utf-8", "surrogatepass")
                    if rec.HasField("body"):
                        yield from _strings(rec.body, "log.body")


def seeds() -> list[tuple[str, Format, bytes]]:
    """The corpus: (signal, format, bytes), from files named <signal>-<name>.<pb|json>."""
    out = []
    for path in sorted(CORPUS.iterdir()):
        signal = path.name.split("-", 1)[0]
        fmt = Format.JSON if path.suffix == ".json" else Format.PROTOBUF
        out.append((signal, fmt, path.read_bytes()))
    return out
