"""validate.py: what the collector's pdata refuses is refused -- ids of the wrong length
in every place an id sits, a known field with the wrong wire type (how a request sent to
another signal's endpoint shows) -- by the native walk and by the exact Python walk
alike; what pdata accepts (empty ids, unknown fields, packed or not) passes."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from redact_proxy import validate
from redact_proxy.codec import Batch, Format, decode
from redact_proxy.errors import MalformedRequest
from redact_proxy.engine import Engine
from redact_proxy.pipeline import _redact
from redact_proxy.policy.compile import load
from redact_proxy.signals import BY_NAME, LOGS, METRICS, TRACES
from redact_proxy.triage import Triage
from redact_proxy.validate import ID_LENGTHS, Wire, check_decoded, check_wire
from helpers import wire

SECRET = "SECRET-PII-0xdeadbeef"
T16, S8 = bytes(range(1, 17)), bytes(range(1, 9))


def _traces(**span) -> ExportTraceServiceRequest:
    links = span.pop("links", [])
    req = ExportTraceServiceRequest()
    s = req.resource_spans.add().scope_spans.add().spans.add(name="GET /x", **span)
    for link in links:
        s.links.add(**link)
    return req


def _logs(**record) -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    req.resource_logs.add().scope_logs.add().log_records.add(time_unix_nano=1, **record)
    return req


def _metrics(kind: str, **exemplar) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    metric = req.resource_metrics.add().scope_metrics.add().metrics.add(name="m")
    point = getattr(metric, kind).data_points.add(time_unix_nano=5)
    point.exemplars.add(as_double=1.0, **exemplar)
    return req


def _checked_both_ways(signal, body: bytes) -> None:
    """The wire check, and the exact walk on the decoded message: each must refuse."""
    with pytest.raises(MalformedRequest) as wire:
        check_wire(signal, body)
    with pytest.raises(MalformedRequest) as exact:
        check_decoded(decode(signal, body, Format.PROTOBUF))
    assert str(wire.value) == str(exact.value)
    with pytest.raises(MalformedRequest):
        Batch.from_bytes(signal, body, Format.PROTOBUF)


BAD_IDS = [
    (TRACES, _traces(trace_id=T16[:15], span_id=S8)),
    (TRACES, _traces(trace_id=T16 + b"x", span_id=S8)),
    (TRACES, _traces(trace_id=T16, span_id=S8 * 2)),
    (TRACES, _traces(trace_id=T16, span_id=S8, parent_span_id=S8[:7])),
    (TRACES, _traces(trace_id=T16, span_id=S8, links=[{"trace_id": S8, "span_id": S8}])),
    (TRACES, _traces(trace_id=T16, span_id=S8, links=[{"trace_id": T16, "span_id": T16}])),
    (LOGS, _logs(trace_id=SECRET.encode())),
    (LOGS, _logs(trace_id=T16, span_id=b"\x00")),
    (METRICS, _metrics("gauge", trace_id=S8)),
    (METRICS, _metrics("sum", span_id=T16)),
    (METRICS, _metrics("histogram", trace_id=T16, span_id=b"abc")),
    (METRICS, _metrics("exponential_histogram", trace_id=T16[:1])),
]


@pytest.mark.parametrize("signal, msg", BAD_IDS, ids=[
    "span-trace-15", "span-trace-17", "span-id-16", "parent-7", "link-trace-8", "link-span-16",
    "log-trace-secret", "log-span-1", "gauge-exemplar-trace", "sum-exemplar-span",
    "histogram-exemplar-span", "exphistogram-exemplar-trace"])
def test_ids_of_the_wrong_length_are_refused(signal, msg):
    _checked_both_ways(signal, msg.SerializeToString())


def test_id_messages_name_the_kind_never_the_value():
    with pytest.raises(MalformedRequest) as info:
        check_wire(LOGS, _logs(trace_id=SECRET.encode()).SerializeToString())
    assert str(info.value) == "a trace id is neither 16 bytes nor empty"
    with pytest.raises(MalformedRequest) as info:
        check_wire(TRACES, _traces(span_id=SECRET.encode()).SerializeToString())
    assert str(info.value) == "a span id is neither 8 bytes nor empty"


@pytest.mark.parametrize("signal, msg", [
    (TRACES, _traces(trace_id=T16, span_id=S8, parent_span_id=S8, links=[{"trace_id": T16, "span_id": S8}])),
    (TRACES, _traces()),  # empty ids: the zero id, which pdata reads too
    (LOGS, _logs(trace_id=T16, span_id=S8)),
    (LOGS, _logs()),
    (METRICS, _metrics("gauge", trace_id=T16, span_id=S8)),
    (METRICS, _metrics("sum")),
], ids=["traces", "traces-no-ids", "logs", "logs-no-ids", "metrics", "metrics-no-ids"])
def test_valid_ids_pass_and_are_proved_known_only(signal, msg):
    body = msg.SerializeToString()
    assert check_wire(signal, body) is Wire.KNOWN_ONLY
    check_decoded(decode(signal, body, Format.PROTOBUF))
    assert Batch.from_bytes(signal, body, Format.PROTOBUF).message == msg


def test_an_empty_id_sent_on_the_wire_passes():
    # A length-0 id field is legal protobuf (no canonical encoder writes it).
    span = wire.field(1, b"") + wire.field(2, b"") + wire.field(5, b"n")
    body = wire.field(1, wire.field(2, wire.field(2, span)))
    assert check_wire(TRACES, body) is Wire.KNOWN_ONLY


def test_an_id_sent_twice_is_judged_exactly():
    # The walk cannot vouch for a singular field twice; the exact walk sees the value the
    # decoder keeps (the last). pdata reads both and refuses the bad first one, but the
    # message forwarded is the decoded one, re-encoded: only the last ever leaves.
    span = wire.field(1, b"short") + wire.field(1, T16) + wire.field(5, b"n")
    body = wire.field(1, wire.field(2, wire.field(2, span)))
    assert check_wire(TRACES, body) is Wire.UNPROVEN
    check_decoded(decode(TRACES, body, Format.PROTOBUF))
    bad_last = wire.field(1, wire.field(2, wire.field(2, wire.field(1, T16) + wire.field(1, b"short"))))
    with pytest.raises(MalformedRequest):
        Batch.from_bytes(TRACES, bad_last, Format.PROTOBUF)


# --- wrong wire types: a request for another signal --------------------------------------


def _sdk_logs() -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    rec = req.resource_logs.add().scope_logs.add().log_records.add(
        time_unix_nano=1_700_000_000_000_000_000, observed_time_unix_nano=1_700_000_000_000_000_001,
        severity_number=9, severity_text="INFO")
    rec.body.string_value = f"user said {SECRET}"
    rec.attributes.append(KeyValue(key="message.content", value=AnyValue(string_value=SECRET)))
    return req


def _sdk_traces() -> ExportTraceServiceRequest:
    return _traces(trace_id=T16, span_id=S8, kind=2, start_time_unix_nano=1, end_time_unix_nano=2,
                   attributes=[KeyValue(key="k", value=AnyValue(string_value=SECRET))])


def _sdk_metrics() -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    metric = req.resource_metrics.add().scope_metrics.add().metrics.add(name="http.server.duration", unit="ms")
    metric.gauge.data_points.add(as_double=1.5, time_unix_nano=5).attributes.append(
        KeyValue(key="k", value=AnyValue(string_value=SECRET)))
    return req


MADE = {"traces": _sdk_traces, "logs": _sdk_logs, "metrics": _sdk_metrics}


@pytest.mark.parametrize("sent, endpoint", [(a, b) for a in MADE for b in MADE if a != b])
def test_a_request_for_another_signal_is_refused(sent, endpoint):
    body = MADE[sent]().SerializeToString()
    with pytest.raises(MalformedRequest) as info:
        Batch.from_bytes(BY_NAME[endpoint], body, Format.PROTOBUF)
    assert SECRET not in str(info.value)


def test_logs_as_traces_decode_but_fail_on_wire_types():
    # The case of the issue: upb reads these logs as a span (the log body becomes the
    # span name) and keeps the timestamps, whose wire type a span's ids do not have, as
    # unknown fields.
    body = _sdk_logs().SerializeToString()
    decoded = decode(TRACES, body, Format.PROTOBUF)
    assert decoded.resource_spans[0].scope_spans[0].spans[0].name.endswith(SECRET)
    assert check_wire(TRACES, body) is Wire.UNPROVEN
    with pytest.raises(MalformedRequest) as info:
        check_decoded(decoded)
    assert str(info.value) == ("Span.trace_id has the wrong wire type "
                               "(is the body for another signal's endpoint?)")


def test_wrong_wire_type_deep_in_the_tree_is_found():
    # AnyValue.string_value (field 1, string) sent as a varint inside an attribute.
    value = wire.varint(1 << 3 | 0) + wire.varint(7)
    kv = wire.field(1, b"k") + wire.field(2, value)
    body = wire.field(1, wire.field(1, wire.field(1, kv)))  # resource attribute
    assert check_wire(TRACES, body) is Wire.UNPROVEN
    with pytest.raises(MalformedRequest) as info:
        Batch.from_bytes(TRACES, body, Format.PROTOBUF)
    assert str(info.value).startswith("AnyValue.string_value has the wrong wire type")


def test_unknown_fields_pass_and_are_discarded():
    # A field number this OTLP version lacks is legal (a newer SDK): kept out, not refused.
    span = (wire.field(1, T16) + wire.field(5, b"n") + wire.field(999, SECRET.encode())
            + wire.varint(900 << 3) + b"\x01")
    body = wire.field(1, wire.field(2, wire.field(2, span)))
    assert check_wire(TRACES, body) is Wire.UNKNOWN_FIELDS
    batch = Batch.from_bytes(TRACES, body, Format.PROTOBUF)
    assert SECRET.encode() not in batch.to_bytes(Format.PROTOBUF)
    assert batch.message.resource_spans[0].scope_spans[0].spans[0].name == "n"


def test_packed_and_unpacked_repeated_numbers_both_pass():
    req = ExportMetricsServiceRequest()
    metric = req.resource_metrics.add().scope_metrics.add().metrics.add(name="m")
    metric.histogram.data_points.add(bucket_counts=[1, 2], explicit_bounds=[0.5])
    packed = req.SerializeToString()
    assert check_wire(METRICS, packed) is Wire.KNOWN_ONLY
    # bucket_counts (6, fixed64) one element at a time, unpacked
    point = wire.varint(6 << 3 | 1) + (1).to_bytes(8, "little") + wire.varint(6 << 3 | 1) + (2).to_bytes(8, "little")
    body = wire.field(1, wire.field(2, wire.field(2, wire.field(1, b"m") + wire.field(9, wire.field(1, point)))))
    assert check_wire(METRICS, body) is Wire.KNOWN_ONLY
    msg = Batch.from_bytes(METRICS, body, Format.PROTOBUF).message
    assert list(msg.resource_metrics[0].scope_metrics[0].metrics[0].histogram.data_points[0].bucket_counts) == [1, 2]


def test_deep_nesting_beyond_the_walk_is_checked_exactly():
    value = wire.field(1, b"x")
    for _ in range(25):  # 3 messages a level: past the walk's 64, within upb's 100
        value = wire.field(6, wire.field(1, wire.field(1, b"k") + wire.field(2, value)))
    body = wire.field(1, wire.field(1, wire.field(1, wire.field(1, b"a") + wire.field(2, value))))
    assert check_wire(TRACES, body) is Wire.UNPROVEN
    Batch.from_bytes(TRACES, body, Format.PROTOBUF)  # valid: passes the exact walk


def test_every_identifier_field_has_a_length():
    # BAD_IDS above puts a bad id in each of these places.
    t, m, lg = "opentelemetry.proto.trace.v1", "opentelemetry.proto.metrics.v1", "opentelemetry.proto.logs.v1"
    assert ID_LENGTHS == {
        (f"{t}.Span", "trace_id"): 16, (f"{t}.Span", "span_id"): 8, (f"{t}.Span", "parent_span_id"): 8,
        (f"{t}.Span.Link", "trace_id"): 16, (f"{t}.Span.Link", "span_id"): 8,
        (f"{lg}.LogRecord", "trace_id"): 16, (f"{lg}.LogRecord", "span_id"): 8,
        (f"{m}.Exemplar", "trace_id"): 16, (f"{m}.Exemplar", "span_id"): 8,
    }
    assert [len(validate._SCANS[s.name]) for s in (TRACES, LOGS, METRICS)] == [3, 2, 2]


# --- the pipeline checks before triage forwards anything verbatim -------------------------


POLICIES = Path(__file__).parent / "testdata" / "policies"


def test_a_body_triage_would_forward_verbatim_is_still_checked():
    policy = load(POLICIES / "drop.yaml")  # nothing in these spans meets its rules
    engine = Engine(policy)
    triage = engine.triage
    good = _traces(trace_id=T16, span_id=S8).SerializeToString()
    batch, _report = _redact(TRACES, good, Format.PROTOBUF, engine)
    assert batch.to_bytes(Format.PROTOBUF) is good  # the verbatim path is taken for this policy
    bad = _traces(trace_id=T16, span_id=S8 + b"!").SerializeToString()
    assert triage.untouched(TRACES, bad) is not None  # triage alone would have passed it on
    with pytest.raises(MalformedRequest):
        _redact(TRACES, bad, Format.PROTOBUF, engine)
