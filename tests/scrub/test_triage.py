"""Triage (redact_proxy/triage.py + the native scan) against the scrubber it stands in for.

The property: whenever triage says a protobuf body is untouched, scrubbing the decoded
batch changes nothing, redacts nothing and drops nothing. Batches are generated from a
small vocabulary of keys and texts that sit right on the policies' edges (a key rule, a
drop value as a string and as a number, an e-mail without TLD, a token anchored by ``^``,
a NUL inside a value) and are placed at every level a rule can reach. The unit tests
below pin each trigger on its own, the cases the native walk refuses, and that clean
batches are vouched for at all (a triage that always says "no" would pass the property).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from redact_proxy_native import Schema, scan
from scrub_support import ENV, POLICIES, av, kvs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fuzz"))
from fuzz_target import assert_verbatim_exact  # noqa: E402

from redact_proxy.codec import Format, decode
from redact_proxy.pipeline import _redact
from redact_proxy.policy.compile import load
from redact_proxy.scrub import scrub
from redact_proxy.signals import BY_NAME, LOGS, METRICS, TRACES
from redact_proxy.triage import SCHEMAS, Triage, relax_anchors

POLICY = load(POLICIES / "triage.yaml", ENV)
KEEP_ONLY = load(POLICIES / "triage_keep_only.yaml", ENV)
DOCTRINE = load(POLICIES.parents[2] / "policies" / "doctrine.yaml", ENV)
TRIAGES = {id(p): Triage(p) for p in (POLICY, KEEP_ONLY, DOCTRINE)}

PROFILE = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Keys: touched by a rule of some policy, or near one, or nothing special.
KEYS = ["plain", "k", "", "secret", "my.Password", "passwd", "user.id", "url.full", "route", "target",
        "x", "xx", "user.email", "client.address", "http.route", "db.statement"]
# Texts: hits and near misses for the masks and drop conditions above.
TEXTS = ["", "plain", "bob@example.com", "bob@example", "10.0.0.1", "1.2.3.4.5", "+49 30 1234567",
         "/healthz", "/healthz/x", "200", "/debug", "/readyz", "readyz", "x/livez", "tok-123", "xtok-123",
         "a tok-1", "acct-1234", "acct-12345", "a\x00tok-1", "\x00", "ok\x00", "https://u:p@h/x?q=1",
         "SELECT 1", "eyJhbGciOiJIUzI1NiJ9.e30.x"]

texts = st.one_of(st.sampled_from(TEXTS), st.text(max_size=6))
scalars = st.one_of(texts, st.integers(-300, 300), st.sampled_from([200, True, 1.5, b"tok-1"]))


def _values(depth: int):
    if depth == 0:
        return scalars
    return st.one_of(scalars, st.lists(_values(depth - 1), max_size=2),
                     st.dictionaries(st.sampled_from(KEYS), _values(depth - 1), max_size=2))


values = _values(2)
attrs = st.dictionaries(st.sampled_from(KEYS), values, max_size=3)


def _fill(target, d: dict) -> None:
    target.extend(kvs(d))


@st.composite
def traces(draw) -> bytes:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    _fill(rs.resource.attributes, draw(attrs))
    ss = rs.scope_spans.add()
    ss.scope.name = draw(texts)
    _fill(ss.scope.attributes, draw(attrs))
    for _ in range(draw(st.integers(0, 3))):
        span = ss.spans.add(name=draw(texts), trace_id=b"\x3a" * 16, span_id=b"@+12:::1")
        _fill(span.attributes, draw(attrs))
        for _ in range(draw(st.integers(0, 1))):
            event = span.events.add(name=draw(texts))
            _fill(event.attributes, draw(attrs))
        for _ in range(draw(st.integers(0, 1))):
            _fill(span.links.add().attributes, draw(attrs))
    return req.SerializeToString()


@st.composite
def metrics(draw) -> bytes:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    _fill(rm.resource.attributes, draw(attrs))
    sm = rm.scope_metrics.add()
    metric = sm.metrics.add(name=draw(texts))
    _fill(metric.metadata, draw(attrs))
    for _ in range(draw(st.integers(0, 3))):
        point = metric.gauge.data_points.add(as_int=1)
        _fill(point.attributes, draw(attrs))
        for _ in range(draw(st.integers(0, 1))):
            _fill(point.exemplars.add().filtered_attributes, draw(attrs))
    return req.SerializeToString()


@st.composite
def logs(draw) -> bytes:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    _fill(rl.resource.attributes, draw(attrs))
    sl = rl.scope_logs.add()
    for _ in range(draw(st.integers(0, 3))):
        record = sl.log_records.add(event_name=draw(texts))
        _fill(record.attributes, draw(attrs))
        body = draw(st.one_of(st.none(), values))
        if body is not None:
            record.body.CopyFrom(av(body))
    return req.SerializeToString()


def _assert_exact(signal, body: bytes, policy) -> bool:
    items = TRIAGES[id(policy)].untouched(signal, body)
    report = scrub(signal.name, decode(signal, body, Format.PROTOBUF), policy)
    if items is not None:
        assert not report.changed, "triage vouched for a batch the scrub changes"
        assert not any(report.redactions) and not any(report.dropped)
        assert report.items_out == report.items_in == items
        assert_verbatim_exact(signal.name, body, items)
    return items is not None


@pytest.mark.parametrize("policy", [POLICY, KEEP_ONLY, DOCTRINE], ids=["rules", "keep_only", "doctrine"])
@pytest.mark.parametrize("signal,bodies", [(TRACES, traces()), (METRICS, metrics()), (LOGS, logs())],
                         ids=["traces", "metrics", "logs"])
def test_untouched_means_the_scrub_changes_nothing(signal, bodies, policy):
    @PROFILE
    @given(bodies)
    def check(body):
        _assert_exact(signal, body, policy)

    check()


# --- each trigger alone ---------------------------------------------------------------------

def _span_batch(attributes=None, name="GET /rooms", event=None, nested=None) -> bytes:
    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    span = ss.spans.add(name=name, trace_id=b"t" * 16, span_id=b"s" * 8)
    span.attributes.extend(kvs({"route": "/rooms/:id", "count": 3, **(attributes or {})}))
    if event is not None:
        span.events.add(name=event)
    if nested is not None:
        span.attributes.extend(kvs({"ctx": nested}))
    return req.SerializeToString()


def _log_batch(body) -> bytes:
    req = ExportLogsServiceRequest()
    req.resource_logs.add().scope_logs.add().log_records.add().body.CopyFrom(av(body))
    return req.SerializeToString()


def test_a_clean_batch_is_vouched_for():
    body = _span_batch({"plain": "hello", "k": 7}, event="retry", nested={"inner": ["a", 1]})
    assert _assert_exact(TRACES, body, POLICY)
    assert _assert_exact(LOGS, _log_batch({"msg": "room joined", "n": 2}), POLICY)


@pytest.mark.parametrize("body", [
    _span_batch({"secret": "x"}),                      # delete, exact key
    _span_batch({"db.PASSWORD.hash": 1}),              # delete, key pattern
    _span_batch({"user.id": "u1"}),                    # hash
    _span_batch({"url.full": "https://h/p"}),          # sanitize_url
    _span_batch(nested={"a": {"secret": "x"}}),        # a key rule two kvlists down
    _span_batch({"route": "/healthz"}),                # drop value as a string
    _span_batch({"route": 200}),                       # drop value "200" read from an int
    _span_batch({"plain": "mail bob@example.com"}),    # mask in an attribute value
    _span_batch(nested=["ok", "10.0.0.1"]),            # mask in an array
    _span_batch(name="bob@example.com"),               # mask in a span name
    _span_batch(event="call +49 30 1234567"),          # mask in an event name
    _span_batch({"a": "x", "b": "tok-123"}),           # ^...$ user regex, not the first text
    _span_batch({"plain": "acct-1234"}),               # \b user regex at a value's end
], ids=lambda b: str(len(b)))
def test_each_rule_kind_stops_triage(body):
    assert TRIAGES[id(POLICY)].untouched(TRACES, body) is None
    assert scrub("traces", decode(TRACES, body, Format.PROTOBUF), POLICY).changed


def test_near_misses_do_not_stop_triage():
    body = _span_batch({"plain": "bob@example", "n": "/healthz/x", "a": "acct-12345"}, name="10.0.0")
    assert _assert_exact(TRACES, body, POLICY)


@pytest.mark.parametrize("text", ["xtok-123", "1.2.3.4.5"])
def test_triage_is_conservative_where_the_scrub_looks_closer(text):
    # "xtok-123": `^tok-[0-9]+$` relaxed to `tok-[0-9]+` matches inside it; "1.2.3.4.5":
    # the ipv4 pattern matches, its verifier refuses. Both are scrubbed in full, unchanged.
    body = _span_batch({"plain": text})
    assert TRIAGES[id(POLICY)].untouched(TRACES, body) is None
    assert not scrub("traces", decode(TRACES, body, Format.PROTOBUF), POLICY).changed


def test_drop_values_are_whole_texts():
    # "/readyz" matches only as a whole value: "x/readyz" and "/readyz/1" are not dropped.
    req = ExportLogsServiceRequest()
    record = req.resource_logs.add().scope_logs.add().log_records.add()
    record.attributes.extend(kvs({"target": "x/readyz", "other": "/readyz/1"}))
    assert _assert_exact(LOGS, req.SerializeToString(), POLICY)
    record.attributes.extend(kvs({"z": "/livez"}))  # a whole text, under another key: not proven
    assert TRIAGES[id(POLICY)].untouched(LOGS, req.SerializeToString()) is None


def test_keep_only_and_the_empty_key():
    triage = TRIAGES[id(KEEP_ONLY)]
    req = ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add(name="s")
    span.attributes.extend(kvs({"plain": "a", "k": 1}))
    assert _assert_exact(TRACES, req.SerializeToString(), KEEP_ONLY)
    span.attributes.extend(kvs({"other": "a"}))  # not in the allowlist: keep_only deletes it
    assert triage.untouched(TRACES, req.SerializeToString()) is None
    # A KeyValue with no key on the wire is the empty key, which `x*` matches.
    req = ExportTraceServiceRequest()
    req.resource_spans.add().resource.attributes.add(value=AnyValue(string_value="v"))
    assert triage.untouched(TRACES, req.SerializeToString()) is None
    assert scrub("traces", decode(TRACES, req.SerializeToString(), Format.PROTOBUF), KEEP_ONLY).changed


# --- what the native walk refuses ------------------------------------------------------------

def test_scan_refuses_what_it_cannot_read_exactly():
    good = _span_batch({"plain": "a"})
    assert scan(good, SCHEMAS["traces"]) is not None
    assert scan(good[:-3], SCHEMAS["traces"]) is None              # truncated
    assert scan(good + b"\x0b\x0c", SCHEMAS["traces"]) is None       # a group (wire type 3)
    assert scan(good + b"\xff" * 11, SCHEMAS["traces"]) is None      # a varint over 64 bits
    kv_key_as_varint = b"\x0a\x06\x0a\x04\x0a\x02\x08\x01"  # resource_spans/resource/attributes/key=varint
    assert scan(kv_key_as_varint, SCHEMAS["traces"]) is None
    # A log body 130 arrays deep (the decoder refuses it first; the walk must not recurse on).
    deep = AnyValue(string_value="x").SerializeToString()
    for _ in range(130):
        deep = _ld(5, _ld(1, deep))  # AnyValue.array_value -> ArrayValue.values
    body = _ld(1, _ld(2, _ld(2, _ld(5, deep))))  # resource_logs/scope_logs/log_records/body
    assert scan(body, SCHEMAS["logs"]) is None
    shallow = AnyValue(string_value="x").SerializeToString()
    for _ in range(20):
        shallow = _ld(5, _ld(1, shallow))
    assert scan(_ld(1, _ld(2, _ld(2, _ld(5, shallow)))), SCHEMAS["logs"]) == ([], [], b"\x00x\x00", 1)


def _ld(field: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    out = bytearray([field << 3 | 2])
    n = len(payload)
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + payload


def test_scan_collects_keys_scalar_keys_and_texts():
    body = _span_batch({"n": 1, "s": "a\x00b"}, name="span", event="ev", nested={"in": True})
    keys, scalar_keys, texts, items = scan(body, SCHEMAS["traces"])
    assert items == 1
    assert set(keys) == {b"route", b"count", b"n", b"s", b"ctx", b"in"}
    assert set(scalar_keys) == {b"count", b"n", b"in"}
    assert texts == b"\x00span\x00/rooms/:id\x00a\x00b\x00ev\x00"  # in wire order, between NULs


def test_schema_rejects_bad_tables():
    with pytest.raises(ValueError):
        Schema([])
    with pytest.raises(ValueError):
        Schema([[(1, 1, 5)]])  # a submessage that is not in the table
    with pytest.raises(ValueError):
        Schema([[(0, 0, 0)]])  # field number 0


def test_unknown_fields_are_not_vouched_for():
    # Field 99 of a Span, unknown to this OTLP version, holding an e-mail: triage refuses
    # the body, and what leaves is the decoded batch without the unknown field.
    req = ExportTraceServiceRequest()
    req.resource_spans.add().scope_spans.add().spans.add(name="a", trace_id=b"t" * 16, span_id=b"s" * 8)
    span_bytes = req.resource_spans[0].scope_spans[0].spans[0].SerializeToString() + b"\x9a\x06\x0fbob@example.com"
    body = b"\x0a" + bytes([len(span_bytes) + 4]) + b"\x12" + bytes([len(span_bytes) + 2]) + b"\x12" + \
        bytes([len(span_bytes)]) + span_bytes
    assert TRIAGES[id(POLICY)].untouched(TRACES, body) is None
    assert TRIAGES[id(POLICY)].untouched(TRACES, req.SerializeToString()) == 1
    batch, report = _redact(TRACES, body, Format.PROTOBUF, POLICY, TRIAGES[id(POLICY)])
    assert not report.changed
    forwarded = batch.to_bytes(Format.PROTOBUF)
    assert b"bob@example.com" in body and b"bob@example.com" not in forwarded


def test_json_bodies_always_take_the_full_path():
    batch, report = _redact(LOGS, b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"x"}}]}]}]}',
                            Format.JSON, POLICY, TRIAGES[id(POLICY)])
    assert report.items_in == 1 and batch.to_bytes(Format.JSON)


# --- relaxing anchors ---------------------------------------------------------------------

@pytest.mark.parametrize("pattern,relaxed", [
    ("^tok$", "(?:)tok(?:)"),
    (r"\Aa\z", "(?:)a(?:)"),
    ("[^a$]b", "[^a$]b"),
    ("[]^]x", "[]^]x"),
    ("[^]$]x$", "[^]$]x(?:)"),
    ("[[:alpha:]^]+", "[[:alpha:]^]+"),
    (r"\^\$", r"\^\$"),
    (r"\Q^$\E$", r"\Q^$\E(?:)"),
    (r"\bword\B", r"\bword\B"),
    ("(?m)^a$|b", "(?m)(?:)a(?:)|b"),
])
def test_relax_anchors(pattern, relaxed):
    assert relax_anchors(pattern) == relaxed


def test_every_signal_has_a_schema():
    assert set(SCHEMAS) == set(BY_NAME)


# --- forwarded as it came: only what the decoder reads exactly the same ---------------------

def _metrics_with_point(point_bytes: bytes) -> bytes:
    """resource_metrics/scope_metrics/metrics(histogram)/data_points = point_bytes."""
    return _ld(1, _ld(2, _ld(2, _ld(9, _ld(1, point_bytes)))))


def test_scan_takes_packed_and_unpacked_numbers_and_counts_items():
    packed = _ld(6, bytes(16)) + b"\x19" + bytes(8)     # bucket_counts: 2 fixed64 packed; time
    unpacked = b"\x31" + bytes(8) + b"\x31" + bytes(8)   # bucket_counts: 2 fixed64, one by one
    body = _metrics_with_point(packed) + _metrics_with_point(unpacked)
    assert scan(body, SCHEMAS["metrics"])[3] == 2
    assert_verbatim_exact("metrics", body, 2)


# (signal, refused body, the same body made right): the walk refuses for the reason named.
_REFUSED = {
    "packed fixed64 run of 7 bytes": ("metrics", _metrics_with_point(_ld(6, bytes(7))),
                                      _metrics_with_point(_ld(6, bytes(8)))),
    "packed varints cut short": ("metrics", _metrics_with_point(_ld(10, b"\x80")),
                                 _metrics_with_point(b"\x50\x01")),  # flags, a varint
    "invalid UTF-8 in a scope name": ("traces", _ld(1, _ld(2, _ld(1, _ld(1, b"\xff")))),
                                      _ld(1, _ld(2, _ld(1, _ld(1, b"ok"))))),
    "an AnyValue both string and int": ("traces", _ld(1, _ld(1, _ld(1, _ld(1, b"k") + _ld(2, b"\x0a\x01a\x18\x05")))),
                                        _ld(1, _ld(1, _ld(1, _ld(1, b"k") + _ld(2, b"\x0a\x01a"))))),
    "Span.kind as wire type 2": ("traces", _ld(1, _ld(2, _ld(2, b"\x32\x00"))), _ld(1, _ld(2, _ld(2, b"\x30\x01")))),
    "a field number OTLP does not have": ("logs", _ld(1, _ld(2, _ld(2, b"\xf8\x07\x01"))), _ld(1, _ld(2, _ld(2, b"\x10\x01")))),
}


@pytest.mark.parametrize("case", list(_REFUSED))
def test_scan_refuses_what_the_decoder_reads_otherwise(case):
    signal, bad, good = _REFUSED[case]
    assert scan(bad, SCHEMAS[signal]) is None
    assert scan(good, SCHEMAS[signal]) is not None


def test_a_verbatim_batch_is_decoded_only_for_another_encoding():
    body = _span_batch({"plain": "a"})
    batch, report = _redact(TRACES, body, Format.PROTOBUF, POLICY, TRIAGES[id(POLICY)])
    assert report.items_in == 1 and not report.changed
    assert batch.to_bytes(Format.PROTOBUF) is body
    assert batch._message is None  # nothing decoded so far
    assert b'"plain"' in batch.to_bytes(Format.JSON)
