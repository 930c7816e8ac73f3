"""Triage (redact_proxy/triage.py + the native scan) against the scrubber it stands in for.

The property: whenever triage says a protobuf body is untouched, scrubbing the decoded
batch changes nothing, redacts nothing and drops nothing; the body holds nothing a
decoder normalises (no singular field twice, no overlong varint: checked here against the
wire tree the body was written from, not by asking the walk); and its bytes decode to the
message the full path would forward. Batches are generated from a small vocabulary of
keys and texts that sit right on the policies' edges (a key rule, a drop value as a string
and as a number, an e-mail without TLD, a token anchored by ``^``, a NUL inside a value, a
card number as an int, JSON text, an e-mail as a key, a dotted path spread over a kvlist)
placed at every level and in every free-text field a rule can reach, then written to the
wire with some fields reordered, repeated or given overlong varints. The unit tests below
pin each trigger on its own, the cases the native walk refuses, and that clean batches
are vouched for at all (a triage that always says "no" would pass the property).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from redact_proxy._native import Schema, scan
from scrub_support import ENV, POLICIES, av, kvs

from fuzz_target import assert_verbatim_exact  # tests/fuzz, on pytest's pythonpath

from redact_proxy.codec import Format, decode
from redact_proxy.engine import Engine
from redact_proxy.pipeline import _redact
from redact_proxy.policy import Level
from redact_proxy.policy.compile import load
from redact_proxy.scrub import scrub
from redact_proxy.signals import BY_NAME, LOGS, METRICS, TRACES
from redact_proxy.triage import CHANNELS, JSON_SPACE, SCHEMAS, Triage, relax_anchors

SHIPPED = POLICIES.parents[2] / "policies"
POLICY = load(POLICIES / "triage.yaml", ENV)
KEEP_ONLY = load(POLICIES / "triage_keep_only.yaml", ENV)
FIELDS = load(POLICIES / "triage_fields.yaml", ENV)
VALUES = load(POLICIES / "triage_values.yaml", ENV)
KEY_MASKS = load(POLICIES / "triage_keys.yaml", ENV)
DOCTRINE = load(SHIPPED / "doctrine.yaml", ENV)
STRICT = load(SHIPPED / "doctrine-strict.yaml", ENV)
ALL_POLICIES = {"rules": POLICY, "keep_only": KEEP_ONLY, "fields": FIELDS, "values": VALUES,
                "key_masks": KEY_MASKS, "doctrine": DOCTRINE, "strict": STRICT}
TRIAGES = {id(p): Triage(p) for p in ALL_POLICIES.values()}

PROFILE = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Keys: touched by a rule of some policy, or near one, or nothing special; e-mails and
# IPs as keys; "user" and "id" make the dotted path user.id across a kvlist.
KEYS = ["plain", "k", "", "secret", "my.Password", "passwd", "user.id", "url.full", "route", "target",
        "x", "xx", "user.email", "client.address", "http.route", "db.statement", "user", "id",
        "bob@example.com", "10.0.0.1", "message.content"]
# Texts: hits and near misses for the masks, whole-field rules and drop conditions above.
TEXTS = ["", "plain", "bob@example.com", "bob@example", "10.0.0.1", "1.2.3.4.5", "+49 30 1234567",
         "/healthz", "/healthz/x", "200", "/debug", "/readyz", "readyz", "x/livez", "tok-123", "xtok-123",
         "a tok-1", "acct-1234", "acct-12345", "a\x00tok-1", "\x00", "ok\x00", "https://u:p@h/x?q=1",
         "SELECT 1", "eyJhbGciOiJIUzI1NiJ9.e30.x", "GET /users/12345", "4111 1111 1111 1111", "GET user:1234",
         "SELECT * FROM t WHERE id = 5", '{"find": "users"}']
# Value texts only: JSON the scrubber parses (and near misses), at any depth.
JSON_TEXTS = ['{"secret": "x"}', ' [1, 2]', '\u3000{"plain": 1}', '{"user": {"id": 7}}', '{"plain": "bob@example.com"}',
              '[', '{not json', '{"bob@example.com": 1}', '\x85["acct-1234"]', '{"n": 4111111111111111}']
# Integers: card numbers (Luhn-valid and not), phone-shaped digit runs, drop values.
INTS = [4111111111111111, 4111111111111112, -4111111111111111, 4930123456789, 200, 0, -1, 2**63 - 1, -2**63]
BYTES = [b"tok-1", b"bob@example.com", b"\xff\xfe", b'{"secret": 1}', b"plain", b""]

texts = st.one_of(st.sampled_from(TEXTS), st.text(max_size=6))
scalars = st.one_of(texts, st.sampled_from(JSON_TEXTS), st.integers(-300, 300), st.sampled_from(INTS),
                    st.sampled_from(BYTES), st.sampled_from([True, 1.5]))


def _values(depth: int):
    if depth == 0:
        return scalars
    return st.one_of(scalars, st.lists(_values(depth - 1), max_size=2),
                     st.dictionaries(st.sampled_from(KEYS), _values(depth - 1), max_size=2))


values = _values(2)
# Dotted key rules met across a kvlist: {"user": {"id": ...}} is the path user.id, which
# neither leaf key decides alone.
dotted = st.sampled_from([("user", "id"), ("url", "full"), ("user", "email"), ("client", "address")]).flatmap(
    lambda path: values.map(lambda v: {path[0]: {path[1]: v}}))
attrs = st.one_of(st.dictionaries(st.sampled_from(KEYS), values, max_size=3),
                  st.tuples(st.dictionaries(st.sampled_from(KEYS), values, max_size=2), dotted).map(
                      lambda t: {**t[0], **t[1]}))
maybe = st.one_of(st.just(""), texts)  # most free-text fields are usually empty
# Span names a sanitizer reads as a URL or a statement only in some dialects.
span_names = st.one_of(texts, st.sampled_from(["GET user:1234", "GET /rooms", "SET k 1", "/users/123?x=1"]))


def _fill(target, d: dict) -> None:
    target.extend(kvs(d))


def _resource(draw, container) -> None:
    _fill(container.resource.attributes, draw(attrs))
    container.schema_url = draw(maybe)
    for _ in range(draw(st.integers(0, 1))):
        ref = container.resource.entity_refs.add(schema_url=draw(maybe), type=draw(maybe))
        ref.id_keys.extend(draw(st.lists(texts, max_size=2)))
        ref.description_keys.extend(draw(st.lists(texts, max_size=1)))


def _scope(draw, container) -> None:
    container.scope.name = draw(maybe)
    container.scope.version = draw(maybe)
    container.schema_url = draw(maybe)
    _fill(container.scope.attributes, draw(attrs))


@st.composite
def traces(draw) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    _resource(draw, rs)
    ss = rs.scope_spans.add()
    _scope(draw, ss)
    for _ in range(draw(st.integers(0, 3))):
        span = ss.spans.add(name=draw(span_names), trace_id=b"\x3a" * 16, span_id=b"@+12:::1", trace_state=draw(maybe))
        if draw(st.booleans()):
            span.status.message = draw(texts)
            span.status.code = 2
        _fill(span.attributes, draw(attrs))
        if draw(st.booleans()):  # the dialect a statement span name is sanitized in
            span.attributes.add(key=draw(st.sampled_from(["db.system.name", "db.system"]))).value.string_value = draw(
                st.sampled_from(["redis", "redis", "postgresql", "mongodb", ""]))
        for _ in range(draw(st.integers(0, 1))):
            event = span.events.add(name=draw(texts))
            _fill(event.attributes, draw(attrs))
        for _ in range(draw(st.integers(0, 1))):
            link = span.links.add(trace_state=draw(maybe))
            _fill(link.attributes, draw(attrs))
    return req


@st.composite
def metrics(draw) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    _resource(draw, rm)
    sm = rm.scope_metrics.add()
    _scope(draw, sm)
    metric = sm.metrics.add(name=draw(texts), description=draw(maybe), unit=draw(maybe))
    _fill(metric.metadata, draw(attrs))
    for _ in range(draw(st.integers(0, 3))):
        point = metric.gauge.data_points.add(as_int=draw(st.sampled_from([1, -5, 2**40])))
        _fill(point.attributes, draw(attrs))
        for _ in range(draw(st.integers(0, 1))):
            _fill(point.exemplars.add().filtered_attributes, draw(attrs))
    return req


@st.composite
def logs(draw) -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    _resource(draw, rl)
    sl = rl.scope_logs.add()
    _scope(draw, sl)
    for _ in range(draw(st.integers(0, 3))):
        record = sl.log_records.add(event_name=draw(texts), severity_text=draw(maybe), severity_number=9)
        _fill(record.attributes, draw(attrs))
        body = draw(st.one_of(st.none(), values, dotted))
        if body is not None:
            record.body.CopyFrom(av(body))
    return req


# --- the wire, written by hand: reordered, repeated, overlong -------------------------------

@dataclass
class Wire:
    """One field on the wire. ``value``: an int (varint), bytes (fixed or length-delimited),
    or the fields of a submessage. ``pad``: extra bytes on its (tag, length, value)
    varints, making them overlong."""

    number: int
    wire: int
    value: object
    singular: bool
    oneof: str | None = None
    pad: tuple[int, int, int] = (0, 0, 0)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _enc(n: int, pad: int = 0) -> bytes:
    """A varint, with ``pad`` extra bytes (a non-minimal encoding of the same value)."""
    n &= (1 << 64) - 1
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    pad = min(pad, 10 - len(out))
    if pad > 0:
        out[-1] |= 0x80
        out.extend(b"\x80" * (pad - 1) + b"\x00")
    return bytes(out)


def parse_wire(data: bytes, desc) -> list[Wire]:
    """A body as the tree of its fields (known fields only: the generators write no other)."""
    out, pos = [], 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        number, wire = tag >> 3, tag & 7
        f = desc.fields_by_number[number]
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1 or wire == 5:
            size = 8 if wire == 1 else 4
            value, pos = data[pos:pos + size], pos + size
        else:
            n, pos = _varint(data, pos)
            value, pos = data[pos:pos + n], pos + n
            if f.message_type is not None:
                value = parse_wire(value, f.message_type)
        oneof = f.containing_oneof.full_name if f.containing_oneof is not None else None
        out.append(Wire(number, wire, value, not f.is_repeated, oneof))
    return out


def write_wire(fields: list[Wire]) -> bytes:
    out = bytearray()
    for f in fields:
        pad_tag, pad_len, pad_value = f.pad
        out += _enc(f.number << 3 | f.wire, pad_tag)
        if f.wire == 0:
            out += _enc(f.value, pad_value)
        elif f.wire == 2:
            payload = write_wire(f.value) if isinstance(f.value, list) else f.value
            out += _enc(len(payload), pad_len) + payload
        else:
            out += f.value
    return bytes(out)


def canonical(fields: list[Wire]) -> bool:
    """What every decoder reads alike: minimal varints, no singular field twice in one
    message, at most one member of each oneof."""
    numbers, oneofs = set(), {}
    for f in fields:
        if _overlong(f):
            return False
        if f.singular and f.number in numbers:
            return False
        numbers.add(f.number)
        if f.oneof is not None and oneofs.setdefault(f.oneof, f.number) != f.number:
            return False
        if isinstance(f.value, list) and not canonical(f.value):
            return False
    return True


def _overlong(f: Wire) -> bool:
    """Whether ``write_wire`` gives ``f`` a varint longer than it needs (a padded varint
    already ten bytes long cannot grow)."""
    varints = [(f.number << 3 | f.wire, f.pad[0])]
    if f.wire == 0:
        varints.append((f.value, f.pad[2]))
    elif f.wire == 2:
        varints.append((len(write_wire(f.value) if isinstance(f.value, list) else f.value), f.pad[1]))
    return any(len(_enc(n, pad)) != len(_enc(n)) for n, pad in varints)


def _messages(fields: list[Wire], out: list) -> list:
    out.append(fields)
    for f in fields:
        if isinstance(f.value, list):
            _messages(f.value, out)
    return out


@st.composite
def mangled(draw, requests) -> tuple[bytes, bool]:
    """A generated request written with 0-3 of: a field list reordered, a field repeated
    (singular or not), an overlong tag, length or value. Returns (body, canonical)."""
    request = draw(requests)
    tree = parse_wire(request.SerializeToString(), request.DESCRIPTOR)
    for _ in range(draw(st.integers(0, 3))):
        lists = [m for m in _messages(tree, []) if m]
        if not lists:
            break
        fields = lists[draw(st.integers(0, len(lists) - 1))]
        i = draw(st.integers(0, len(fields) - 1))
        op = draw(st.sampled_from(["reorder", "repeat", "overlong"]))
        if op == "reorder":
            fields[:] = draw(st.permutations(fields))
        elif op == "repeat":
            # The copy goes before or after the original: decoders keep the last.
            fields.insert(draw(st.integers(0, len(fields))), _copy(fields[i]))
        else:
            fields[i].pad = tuple(draw(st.integers(0, 2)) for _ in range(3))
    return write_wire(tree), canonical(tree)


def _copy(f: Wire) -> Wire:
    return replace(f, value=[_copy(x) for x in f.value] if isinstance(f.value, list) else f.value)


def _assert_exact(signal, body: bytes, policy, is_canonical: bool | None = None) -> bool:
    items = TRIAGES[id(policy)].untouched(signal, body)
    message = decode(signal, body, Format.PROTOBUF)
    report = scrub(signal.name, message, policy)
    if items is not None:
        assert not report.changed, "triage vouched for a batch the scrub changes"
        assert not any(report.redactions) and not any(report.dropped)
        assert report.items_out == report.items_in == items
        assert_verbatim_exact(signal.name, body, items)
        assert is_canonical is not False, "triage vouched for bytes a decoder normalises"
        # What forwarding the bytes as they came delivers is what the full path would.
        verbatim = signal.request()
        verbatim.ParseFromString(body)
        assert verbatim == message
    return items is not None


_GENERATORS = {"traces": (TRACES, traces()), "metrics": (METRICS, metrics()), "logs": (LOGS, logs())}
# Combinations the property must see vouched at least once (the others may refuse every
# generated batch: the doctrine masks keys, which almost every batch has).
_MUST_VOUCH = {("rules", "traces"), ("rules", "metrics"), ("rules", "logs"), ("fields", "traces"),
               ("fields", "metrics"), ("fields", "logs"), ("values", "traces"), ("values", "logs"),
               ("keep_only", "metrics")}


@pytest.mark.parametrize("policy", list(ALL_POLICIES))
@pytest.mark.parametrize("signal", list(_GENERATORS))
def test_untouched_means_the_scrub_changes_nothing(signal, policy):
    sig, requests = _GENERATORS[signal]
    compiled = ALL_POLICIES[policy]
    vouched = []

    @PROFILE
    @given(mangled(requests))
    def check(case):
        body, is_canonical = case
        if _assert_exact(sig, body, compiled, is_canonical):
            vouched.append(is_canonical)

    check()
    if (policy, signal) in _MUST_VOUCH:
        assert vouched, "triage vouched for no generated batch"


def test_the_wire_writer_round_trips():
    # The mangler's writer is a faithful protobuf encoder when it mangles nothing.
    req = ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add(name="a", kind=2, start_time_unix_nano=2**63)
    span.attributes.extend(kvs({"k": -5, "d": 1.5, "s": "x", "l": [1, {"i": b"\x00"}]}))
    body = req.SerializeToString()
    tree = parse_wire(body, req.DESCRIPTOR)
    assert write_wire(tree) == body and canonical(tree)
    tree[0].pad = (0, 1, 0)
    again = ExportTraceServiceRequest()
    again.ParseFromString(write_wire(tree))
    assert again == req and not canonical(tree)


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
    body = _span_batch({"plain": "hello", "k": 7, "b": b"\xff", "j": "not json {"}, event="retry")
    assert _assert_exact(TRACES, body, POLICY)
    assert _assert_exact(LOGS, _log_batch(["room joined", 2]), POLICY)
    assert _assert_exact(TRACES, _span_batch({"plain": "hello", "n": 12345}), DOCTRINE)


def test_kvlists_and_json_are_vouched_for_where_no_key_rule_can_reach_them():
    # No key rule and no key mask: a nested key's path decides nothing, and JSON text is
    # scrubbed to itself unless a value mask finds something in it.
    nested = _span_batch({"j": '{"secret": 1}'}, nested={"user": {"id": [1, "a"]}}, name="")
    assert _assert_exact(TRACES, nested, FIELDS)  # (a span name would meet its sanitize rule)
    assert _assert_exact(LOGS, _log_batch({"msg": "room joined", "secret": {"n": 2}}), FIELDS)
    assert _assert_exact(TRACES, _span_batch(nested={"user": {"id": "u1"}}), VALUES)
    # ...but where a key rule exists, the nested path or the JSON text takes the full path.
    assert TRIAGES[id(POLICY)].untouched(TRACES, nested) is None
    assert TRIAGES[id(VALUES)].untouched(TRACES, _span_batch({"j": '{"plain": 1}'})) is None


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


def _full_batch(signal, **texts) -> bytes:
    """One item of ``signal`` with the free-text fields named in ``texts`` set."""
    t = texts.get
    if signal is TRACES:
        req = ExportTraceServiceRequest()
        rs = req.resource_spans.add(schema_url=t("resource_url", ""))
        if "entity_type" in texts or "entity_key" in texts:
            ref = rs.resource.entity_refs.add(type=t("entity_type", ""))
            ref.id_keys.append(t("entity_key", "k"))
        ss = rs.scope_spans.add(schema_url=t("scope_url", ""))
        ss.scope.name, ss.scope.version = t("scope_name", ""), t("scope_version", "")
        span = ss.spans.add(name=t("span_name", "s"), trace_id=b"t" * 16, span_id=b"s" * 8,
                            trace_state=t("trace_state", ""))
        if "status" in texts:
            span.status.message = texts["status"]
        if "event" in texts:
            span.events.add(name=texts["event"])
        if "link_state" in texts:
            span.links.add(trace_state=texts["link_state"])
    elif signal is METRICS:
        req = ExportMetricsServiceRequest()
        sm = req.resource_metrics.add().scope_metrics.add()
        metric = sm.metrics.add(name=t("metric_name", "m"), description=t("description", ""), unit=t("unit", ""))
        metric.gauge.data_points.add(as_int=1)
    else:
        req = ExportLogsServiceRequest()
        req.resource_logs.add().scope_logs.add().log_records.add(
            severity_text=t("severity", ""), event_name=t("event", ""))
    return req.SerializeToString()


# (policy, signal, body): a rule of the new coverage changes it, and triage sees that.
_NEW_COVERAGE = {
    "mask in a bytes value": (POLICY, TRACES, _span_batch({"b": b"mail bob@example.com"})),
    "a card number as an int": (DOCTRINE, TRACES, _span_batch({"n": 4111111111111111})),
    "a negative card number": (DOCTRINE, TRACES, _span_batch({"n": -4111111111111111})),
    "a key rule inside JSON text": (POLICY, TRACES, _span_batch({"j": '{"secret": 1}'})),
    "JSON after whitespace": (POLICY, TRACES, _span_batch({"j": '\n {"secret": 1}'})),
    "JSON text in bytes": (VALUES, TRACES, _span_batch({"b": b'[{"x": "bob@example.com"}]'})),
    "JSON in a log body": (POLICY, LOGS, _log_batch('{"secret": "x"}')),
    "a dotted path across a kvlist": (POLICY, TRACES, _span_batch(nested={"user": {"id": "u1"}})),
    "a nested key under a top-level match": (POLICY, LOGS, _log_batch({"user": {"id": 1}})),
    "an e-mail as a key": (DOCTRINE, TRACES, _span_batch({"bob@example.com": 1})),
    "an IP as a nested key": (KEY_MASKS, METRICS, None),
    "a body replaced whole": (KEY_MASKS, LOGS, _log_batch("x")),
    "mask in a kvlist value": (VALUES, TRACES, _span_batch(nested={"a": ["acct-1234"]})),
    "drop value read from an int": (VALUES, METRICS, None),
    "replace trace_state": (FIELDS, TRACES, _full_batch(TRACES, trace_state="k=v")),
    "replace a link's trace_state": (FIELDS, TRACES, _full_batch(TRACES, link_state="k=v")),
    "replace scope_version": (FIELDS, TRACES, _full_batch(TRACES, scope_version="1.0")),
    "delete status_message": (FIELDS, TRACES, _full_batch(TRACES, status="boom")),
    "delete severity_text": (FIELDS, LOGS, _full_batch(LOGS, severity="INFO")),
    "sanitize a span name": (FIELDS, TRACES, _full_batch(TRACES, span_name="https://h/x?q=secret")),
    "mask scope_name": (FIELDS, TRACES, _full_batch(TRACES, scope_name="bob@example.com")),
    "mask a resource schema_url": (FIELDS, TRACES, _full_batch(TRACES, resource_url="https://bob@example.com/x")),
    "mask a scope schema_url": (FIELDS, TRACES, _full_batch(TRACES, scope_url="tok-1")),
    "mask an entity type": (FIELDS, TRACES, _full_batch(TRACES, entity_type="bob@example.com")),
    "mask an entity id key": (FIELDS, TRACES, _full_batch(TRACES, entity_key="+49 30 1234567")),
    "mask an event name": (FIELDS, TRACES, _full_batch(TRACES, event="tok-9")),
    "mask a log event name": (FIELDS, LOGS, _full_batch(LOGS, event="bob@example.com")),
    "mask a metric name": (FIELDS, METRICS, _full_batch(METRICS, metric_name="tok-7")),
    "mask a metric description": (FIELDS, METRICS, _full_batch(METRICS, description="by bob@example.com")),
    "mask a metric unit": (FIELDS, METRICS, _full_batch(METRICS, unit="4111111111111111")),
}


def _metric_point(attributes: dict) -> bytes:
    req = ExportMetricsServiceRequest()
    point = req.resource_metrics.add().scope_metrics.add().metrics.add(name="m").gauge.data_points.add(as_int=1)
    point.attributes.extend(kvs(attributes))
    return req.SerializeToString()


_NEW_COVERAGE["an IP as a nested key"] = (KEY_MASKS, METRICS, _metric_point({"peers": {"10.0.0.1": 1}}))
_NEW_COVERAGE["drop value read from an int"] = (VALUES, METRICS, _metric_point({"route": 4111111111111111}))


_NEW_COVERAGE["JSON after whitespace, under a key with no mask"] = (
    KEEP_ONLY, METRICS, _metric_point({"plain": ' {"x": 1}'}))


@pytest.mark.parametrize("case", list(_NEW_COVERAGE))
def test_the_new_coverage_stops_triage(case):
    policy, signal, body = _NEW_COVERAGE[case]
    assert TRIAGES[id(policy)].untouched(signal, body) is None
    assert scrub(signal.name, decode(signal, body, Format.PROTOBUF), policy).changed


def test_free_text_fields_without_a_hit_are_vouched_for():
    for signal, texts in ((TRACES, {"scope_name": "api", "span_name": "", "event": "retry",
                                    "resource_url": "https://opentelemetry.io/schemas/1.26.0", "entity_type": "service"}),
                          (METRICS, {"metric_name": "rooms", "description": "open rooms", "unit": "1"}),
                          (LOGS, {"event": "joined"})):
        assert _assert_exact(signal, _full_batch(signal, **texts), FIELDS)
    # Span name sanitizers: a name neither leaves alone is no change ("GET /rooms" is a
    # Redis command only where a span names a database system).
    ops = FIELDS.text("traces", Level.SPAN, "span_name")
    assert not ops.rule_touches("GET /rooms", db_systems=False) and ops.rule_touches("GET /rooms")
    assert _assert_exact(TRACES, _full_batch(TRACES, span_name="GET /rooms"), FIELDS)


def test_statement_span_names_are_judged_by_whether_a_db_system_is_named():
    # The doctrine sanitizes statement span names in the dialect of the span's database:
    # "GET user:1234" is a Redis command only where a span names a system.
    plain = _span_batch(name="GET user:1234")
    assert _assert_exact(TRACES, plain, DOCTRINE)
    redis = _span_batch({"db.system.name": "redis"}, name="GET user:1234")
    assert TRIAGES[id(DOCTRINE)].untouched(TRACES, redis) is None
    assert scrub("traces", decode(TRACES, redis, Format.PROTOBUF), DOCTRINE).changed


def test_a_body_replaced_whole_is_never_vouched_for():
    assert TRIAGES[id(KEY_MASKS)].untouched(LOGS, _full_batch(LOGS)) is None
    assert TRIAGES[id(KEY_MASKS)].untouched(TRACES, _span_batch({"plain": "a"})) is not None


def test_json_space_is_what_python_strips():
    import re2

    space = re2.compile(f"[{JSON_SPACE}]")
    python = {c for c in range(0x110000) if chr(c).isspace()}
    assert max(python) < 0x3100
    assert {c for c in range(0x3100) if space.fullmatch(chr(c))} == python


def test_near_misses_do_not_stop_triage():
    body = _span_batch({"plain": "bob@example", "n": "/healthz/x", "a": "acct-12345"}, name="10.0.0")
    assert _assert_exact(TRACES, body, POLICY)


@pytest.mark.parametrize("text", ["xtok-123", "1.2.3.4.5"])
def test_candidates_the_masks_refuse_are_vouched_for(text):
    # "xtok-123": `^tok-[0-9]+$` relaxed to `tok-[0-9]+` matches inside it; "1.2.3.4.5":
    # the ipv4 pattern matches, its verifier refuses. Triage masks the candidate text for
    # real, sees no change, and vouches; the full scrub agrees.
    body = _span_batch({"plain": text})
    assert _assert_exact(TRACES, body, POLICY)


@pytest.mark.parametrize("text", ["tok-123", "from 10.0.0.1"])
def test_candidates_the_masks_take_stop_triage(text):
    body = _span_batch({"plain": text})
    assert TRIAGES[id(POLICY)].untouched(TRACES, body) is None
    assert scrub("traces", decode(TRACES, body, Format.PROTOBUF), POLICY).changed


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
    found = scan(_ld(1, _ld(2, _ld(2, _ld(5, shallow)))), SCHEMAS["logs"])
    assert found[:2] == ([], []) and found[2][0] == b"\x00x\x00" and found[3:] == (1, False)


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
    body = _span_batch({"n": -12, "s": "ab", "b": b"\xff"}, name="span", event="ev", nested={"in": True})
    keys, scalar_keys, texts, items, nested = scan(body, SCHEMAS["traces"])
    assert items == 1 and nested
    assert set(keys) == {b"route", b"count", b"n", b"s", b"b", b"ctx", b"in"}
    assert set(scalar_keys) == set()  # only doubles mark their key: ints and bools are text
    assert len(texts) == len(CHANNELS)
    # In wire order, between NULs: values (strings, bytes, ints as decimal text, bools as
    # true/false), then each free-text field in its own channel.
    assert texts[0] == b"\x00/rooms/:id\x003\x00-12\x00ab\x00\xff\x00true\x00"
    assert scan(_span_batch({"d": 1.5}), SCHEMAS["traces"])[1] == [b"d"]
    # Every channel splits back into exactly its texts: a NUL inside one is refused.
    assert scan(_span_batch({"s": "a\x00b"}), SCHEMAS["traces"]) is None
    assert scan(_span_batch({"b": b"a\x00b"}), SCHEMAS["traces"]) is None
    assert texts[CHANNELS.index("span_name")] == b"\x00span\x00"
    assert texts[CHANNELS.index("event_name")] == b"\x00ev\x00"
    assert all(t == b"\x00" for i, t in enumerate(texts) if CHANNELS[i] not in ("values", "span_name", "event_name"))
    assert not scan(_span_batch({"flat": "x"}), SCHEMAS["traces"])[4]


def test_every_text_field_has_its_channel():
    # Every field fields.FIELDS gives a treatment (but ids) is collected, each where its
    # rules look for it.
    body = _full_batch(TRACES, resource_url="ru", scope_url="su", scope_name="sn", scope_version="sv",
                       entity_type="et", entity_key="ek", trace_state="ts", link_state="ls", status="st",
                       event="ev", span_name="na")
    texts = scan(body, SCHEMAS["traces"])[2]
    channel = {CHANNELS[i]: t for i, t in enumerate(texts)}
    assert channel["schema_url"] == b"\x00su\x00ru\x00"  # wire order: ScopeSpans (2) before schema_url (3)
    assert channel["entity_ref"] == b"\x00et\x00ek\x00"
    assert channel["trace_state"] == b"\x00ts\x00ls\x00"
    assert (channel["scope_name"], channel["scope_version"], channel["status_message"]) == (
        b"\x00sn\x00", b"\x00sv\x00", b"\x00st\x00")
    texts = scan(_full_batch(METRICS, metric_name="mn", description="md", unit="mu"), SCHEMAS["metrics"])[2]
    assert [texts[CHANNELS.index(c)] for c in ("metric_name", "metric_description", "metric_unit")] == [
        b"\x00mn\x00", b"\x00md\x00", b"\x00mu\x00"]
    texts = scan(_full_batch(LOGS, severity="WARN", event="ev"), SCHEMAS["logs"])[2]
    assert texts[CHANNELS.index("severity_text")] == b"\x00WARN\x00" and texts[CHANNELS.index("event_name")] == b"\x00ev\x00"


def test_schema_rejects_bad_tables():
    with pytest.raises(ValueError):
        Schema([], 1)
    with pytest.raises(ValueError):
        Schema([[(1, 1, 5, 4, 0, 0, 0)]], 1)  # a submessage that is not in the table
    with pytest.raises(ValueError):
        Schema([[(0, 0, 0, 1, 0, 0, 0)]], 1)  # field number 0
    with pytest.raises(ValueError):
        Schema([[(1, 3, 1, 4, 0, 0, 0)]], 1)  # a text channel that is not there
    with pytest.raises(ValueError):
        Schema([[(1, 5, 0, 4, 0, 0, 0)]], 1)  # an INT read as length-delimited
    assert Schema([[(1, 3, 0, 4, 0, 0, 0)]], 1) is not None


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
    batch, report = _redact(TRACES, body, Format.PROTOBUF, Engine(POLICY))
    assert not report.changed
    forwarded = batch.to_bytes(Format.PROTOBUF)
    assert b"bob@example.com" in body and b"bob@example.com" not in forwarded


def test_json_bodies_always_take_the_full_path():
    batch, report = _redact(LOGS, b'{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"x"}}]}]}]}',
                            Format.JSON, Engine(POLICY))
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
    # Singular fields twice: the decoder keeps the last key / name, merges the statuses,
    # while the bytes still carry the first (a key rule's "secret", an e-mail).
    "a KeyValue with two keys": ("traces", _ld(1, _ld(1, _ld(1, _ld(1, b"secret") + _ld(1, b"k") + _ld(2, b"\x0a\x01a")))),
                                 _ld(1, _ld(1, _ld(1, _ld(1, b"k") + _ld(2, b"\x0a\x01a"))))),
    "a span with two names": ("traces", _ld(1, _ld(2, _ld(2, _ld(5, b"bob@example.com") + _ld(5, b"a")))),
                              _ld(1, _ld(2, _ld(2, _ld(5, b"a"))))),
    "a span with two statuses": ("traces", _ld(1, _ld(2, _ld(2, _ld(15, _ld(2, b"x")) + _ld(15, b"\x18\x02")))),
                                 _ld(1, _ld(2, _ld(2, _ld(15, _ld(2, b"x") + b"\x18\x02"))))),
    "an AnyValue string twice": ("logs", _ld(1, _ld(2, _ld(2, _ld(5, _ld(1, b"a") + _ld(1, b"b"))))),
                                 _ld(1, _ld(2, _ld(2, _ld(5, _ld(1, b"b")))))),
    # Overlong varints: a tag, a length, a value, a packed element.
    "an overlong tag": ("logs", _ld(1, _ld(2, _ld(2, b"\x90\x00\x01"))), _ld(1, _ld(2, _ld(2, b"\x10\x01")))),
    "an overlong length": ("traces", _ld(1, _ld(2, _ld(2, b"\x2a\x81\x00a"))), _ld(1, _ld(2, _ld(2, b"\x2a\x01a")))),
    "an overlong value": ("logs", _ld(1, _ld(2, _ld(2, b"\x10\x89\x00"))), _ld(1, _ld(2, _ld(2, b"\x10\x09")))),
    "an overlong int value": ("logs", _ld(1, _ld(2, _ld(2, _ld(5, b"\x18\x85\x80\x00")))),
                              _ld(1, _ld(2, _ld(2, _ld(5, b"\x18\x05"))))),
    "an overlong packed element": ("metrics", _ld(1, _ld(2, _ld(2, _ld(10, _ld(1, _ld(8, _ld(2, b"\x01\x82\x00"))))))),
                                   _ld(1, _ld(2, _ld(2, _ld(10, _ld(1, _ld(8, _ld(2, b"\x01\x02")))))))),
    "a NUL inside a span name": ("traces", _ld(1, _ld(2, _ld(2, _ld(5, b"a\x00b")))), _ld(1, _ld(2, _ld(2, _ld(5, b"ab"))))),
}


@pytest.mark.parametrize("case", list(_REFUSED))
def test_scan_refuses_what_the_decoder_reads_otherwise(case):
    signal, bad, good = _REFUSED[case]
    assert scan(bad, SCHEMAS[signal]) is None
    assert scan(good, SCHEMAS[signal]) is not None


def test_a_verbatim_batch_is_decoded_only_for_another_encoding():
    body = _span_batch({"plain": "a"})
    batch, report = _redact(TRACES, body, Format.PROTOBUF, Engine(POLICY))
    assert report.items_in == 1 and not report.changed
    assert batch.to_bytes(Format.PROTOBUF) is body
    assert batch._message is None  # nothing decoded so far
    assert b'"plain"' in batch.to_bytes(Format.JSON)
