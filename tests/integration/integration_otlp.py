"""OTLP data of the integration suite: what is sent, and what must arrive.

Every batch carries ``sensitive_attributes()`` at every level its signal has, so one
check (``assert_redacted``) covers deletion, keyed hashing and pass-through anywhere.
``MARK`` (unique per session) is planted in keys and values of everything sent, and
``GONE`` in values under deleted keys: GONE must never be seen past the proxy, MARK never
in the proxy's logs. The OTLP-JSON reader here is the suite's own, independent of the
proxy's codec.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import uuid

from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry._logs import SeverityNumber
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


# ≥ 16 bytes, as the policy's hmac-sha256 requires.
HASH_KEY = "integration-suite-hash-key-7f3a9c"
MARK = "mk" + uuid.uuid4().hex[:12]
# Values under keys the policy deletes carry GONE: it must never be seen past the proxy.
GONE = MARK + "gone"


def hmac_hex(data: bytes | str) -> str:
    """What the policy's hash rule must produce: lowercase hex HMAC-SHA256 (SPEC 6)."""
    if isinstance(data, str):
        data = data.encode()
    return hmac.new(HASH_KEY.encode(), data, hashlib.sha256).hexdigest()


# --- the three signals ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Sig:
    name: str
    request: type
    response: type
    grpc_method: str
    http_path: str
    rejected_field: str  # partial_success.<field>


_COLLECTOR = "/opentelemetry.proto.collector"
SIGNALS = {
    "traces": Sig("traces", trace_service_pb2.ExportTraceServiceRequest,
                  trace_service_pb2.ExportTraceServiceResponse,
                  f"{_COLLECTOR}.trace.v1.TraceService/Export", "/v1/traces", "rejected_spans"),
    "metrics": Sig("metrics", metrics_service_pb2.ExportMetricsServiceRequest,
                   metrics_service_pb2.ExportMetricsServiceResponse,
                   f"{_COLLECTOR}.metrics.v1.MetricsService/Export", "/v1/metrics", "rejected_data_points"),
    "logs": Sig("logs", logs_service_pb2.ExportLogsServiceRequest,
                logs_service_pb2.ExportLogsServiceResponse,
                f"{_COLLECTOR}.logs.v1.LogsService/Export", "/v1/logs", "rejected_log_records"),
}
SIGNAL_NAMES = tuple(SIGNALS)


# --- OTLP values <-> Python -------------------------------------------------------------


def py_value(v: common_pb2.AnyValue):
    kind = v.WhichOneof("value")
    if kind == "kvlist_value":
        return {kv.key: py_value(kv.value) for kv in v.kvlist_value.values}
    if kind == "array_value":
        return [py_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


def attrs(kvs) -> dict:
    return {kv.key: py_value(kv.value) for kv in kvs}


def any_value(x) -> common_pb2.AnyValue:
    if isinstance(x, bool):
        return common_pb2.AnyValue(bool_value=x)
    if isinstance(x, int):
        return common_pb2.AnyValue(int_value=x)
    if isinstance(x, float):
        return common_pb2.AnyValue(double_value=x)
    if isinstance(x, bytes):
        return common_pb2.AnyValue(bytes_value=x)
    if isinstance(x, dict):
        return common_pb2.AnyValue(kvlist_value=common_pb2.KeyValueList(values=kvs(x)))
    if isinstance(x, (list, tuple)):
        return common_pb2.AnyValue(array_value=common_pb2.ArrayValue(values=[any_value(i) for i in x]))
    return common_pb2.AnyValue(string_value=str(x))


def kvs(d: dict) -> list:
    return [common_pb2.KeyValue(key=k, value=any_value(v)) for k, v in d.items()]


# The attributes every batch of the suite carries, and what must arrive upstream.
def sensitive_attributes() -> dict:
    return {
        "user.email": f"{GONE}@example.com",  # delete-personal (keys)
        f"secret.{MARK}": f"{GONE}-token",  # delete-personal (patterns)
        "user.id": f"{MARK}-user-42",  # hash-identifiers, string
        "session.id": 4242,  # hash-identifiers, int: hashed as its decimal text
        f"keep.{MARK}": f"{MARK}-kept",  # no rule: unchanged
        "http.route": "/checkout",
    }


DELETED_KEYS = ("user.email", f"secret.{MARK}")


def expected_attributes() -> dict:
    return {
        "user.id": hmac_hex(f"{MARK}-user-42"),
        "session.id": hmac_hex(b"4242"),
        f"keep.{MARK}": f"{MARK}-kept",
        "http.route": "/checkout",
    }


def assert_redacted(actual: dict, *, extra: dict | None = None) -> None:
    """``actual`` (an attribute dict that arrived upstream) holds exactly the redacted
    form of ``sensitive_attributes()`` plus ``extra``."""
    for key in DELETED_KEYS:
        assert key not in actual, f"{key} should have been deleted"
    want = {**expected_attributes(), **(extra or {})}
    assert {k: actual.get(k) for k in want} == want


# --- hand-built export requests (1 item each unless asked) --------------------------------

TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN_ID = bytes.fromhex("eee19b7ec3c1b174")
PARENT_ID = bytes.fromhex("eee19b7ec3c1b173")


def build_request(signal: str, items: int = 1) -> Message:
    """An export request of ``signal`` with ``items`` items, each carrying the sensitive
    attributes (and markers) at every level the signal has."""
    res = resource_pb2.Resource(attributes=kvs({"service.name": "itest", **sensitive_attributes()}))
    scope = common_pb2.InstrumentationScope(name=f"itest.scope.{MARK}", version="1.0")
    if signal == "traces":
        spans = [
            trace_pb2.Span(
                trace_id=TRACE_ID, span_id=(int.from_bytes(SPAN_ID, "big") + i).to_bytes(8, "big"),
                parent_span_id=PARENT_ID, name=f"span {MARK} {i}", kind=trace_pb2.Span.SPAN_KIND_SERVER,
                start_time_unix_nano=1_700_000_000_000_000_000, end_time_unix_nano=1_700_000_000_500_000_000,
                attributes=kvs(sensitive_attributes()),
                events=[trace_pb2.Span.Event(name=f"event {MARK}", time_unix_nano=1_700_000_000_100_000_000,
                                             attributes=kvs(sensitive_attributes()))],
            )
            for i in range(items)
        ]
        return trace_service_pb2.ExportTraceServiceRequest(resource_spans=[trace_pb2.ResourceSpans(
            resource=res, scope_spans=[trace_pb2.ScopeSpans(scope=scope, spans=spans)])])
    if signal == "metrics":
        points = [
            metrics_pb2.NumberDataPoint(attributes=kvs({**sensitive_attributes(), "n": i}),
                                        time_unix_nano=1_700_000_000_000_000_000, as_int=10 + i)
            for i in range(items)
        ]
        metric = metrics_pb2.Metric(name=f"itest.requests.{MARK}", unit="1", sum=metrics_pb2.Sum(
            data_points=points, is_monotonic=True,
            aggregation_temporality=metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE))
        return metrics_service_pb2.ExportMetricsServiceRequest(resource_metrics=[metrics_pb2.ResourceMetrics(
            resource=res, scope_metrics=[metrics_pb2.ScopeMetrics(scope=scope, metrics=[metric])])])
    records = [
        logs_pb2.LogRecord(time_unix_nano=1_700_000_000_000_000_000, severity_number=9, severity_text="INFO",
                           body=any_value({"msg": f"hello {MARK}", f"secret.{MARK}": f"{GONE}-body"}),
                           attributes=kvs(sensitive_attributes()), trace_id=TRACE_ID, span_id=SPAN_ID)
        for _ in range(items)
    ]
    return logs_service_pb2.ExportLogsServiceRequest(resource_logs=[logs_pb2.ResourceLogs(
        resource=res, scope_logs=[logs_pb2.ScopeLogs(scope=scope, log_records=records)])])


def items_of(signal: str, msg: Message) -> list:
    """The items (spans, data points, log records) of an export request, in order."""
    if signal == "traces":
        return [s for rs in msg.resource_spans for ss in rs.scope_spans for s in ss.spans]
    if signal == "logs":
        return [r for rl in msg.resource_logs for sl in rl.scope_logs for r in sl.log_records]
    out = []
    for rm in msg.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                out.extend(getattr(m, kind).data_points)
    return out


def resources_of(signal: str, msg: Message) -> list:
    field = {"traces": "resource_spans", "metrics": "resource_metrics", "logs": "resource_logs"}[signal]
    return [r.resource for r in getattr(msg, field)]


def malformed_protobuf(signal: str) -> bytes:
    """A real request, truncated: its outer length prefix promises bytes that never come."""
    data = build_request(signal).SerializeToString()
    return data[: len(data) - 7]


def malformed_json() -> bytes:
    return ('{"resourceSpans": [{"resource": {"attributes": [{"key": "' + MARK + '", "value": {"stringValue": "'
            + GONE).encode()


# --- OTLP-JSON as the capture reads it (independent of the proxy's codec) ---------------

_ID_MEMBERS = {"traceId", "spanId", "parentSpanId"}


def _ids(tree, convert):
    if isinstance(tree, dict):
        for k, v in tree.items():
            if k in _ID_MEMBERS and isinstance(v, str):
                tree[k] = convert(v)
            else:
                _ids(v, convert)
    elif isinstance(tree, list):
        for v in tree:
            _ids(v, convert)


def parse_otlp_json(signal: str, data: bytes) -> Message:
    """OTLP-JSON -> protobuf: hex ids (OTLP spec, "JSON Protobuf Encoding"), strict."""
    tree = json.loads(data)
    _ids(tree, lambda h: base64.b64encode(bytes.fromhex(h)).decode())
    return json_format.ParseDict(tree, SIGNALS[signal].request())


def to_otlp_json(msg: Message) -> dict:
    tree = json_format.MessageToDict(msg)
    _ids(tree, lambda b: base64.b64decode(b).hex())
    return tree


# --- what arrived upstream ----------------------------------------------------------------


@dataclasses.dataclass
class Received:
    signal: str
    message: Message | None  # None when the capture could not parse the body
    raw: bytes  # as it arrived on the wire (HTTP: before any Content-Encoding)
    headers: dict  # lowercased names: HTTP headers or gRPC metadata
    content_type: str | None = None
    parse_error: str | None = None

    def serialized(self) -> bytes:
        return self.message.SerializeToString() if self.message is not None else self.raw


# --- OpenTelemetry SDK data -----------------------------------------------------------------
#
# The SDK's providers record into in-memory exporters/readers; a test then hands the
# recorded data to a real OTLP exporter (gRPC or HTTP/protobuf) and checks its verdict.


def sdk_resource():
    return Resource.create({"service.name": "itest-sdk", **sensitive_attributes()})


HEALTH_SPAN = "GET /healthz"


def sdk_spans():
    """Three finished spans: a parent with an event, a child, and a health check the
    policy's drop rule removes."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=sdk_resource())
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer(f"itest.tracer.{MARK}", "1.0")
    with tracer.start_as_current_span(f"checkout {MARK}", attributes=sensitive_attributes()) as parent:
        parent.add_event(f"payment {MARK}", attributes=sensitive_attributes())
        with tracer.start_as_current_span("load cart", attributes={**sensitive_attributes(), "cart.items": 3}):
            pass
    with tracer.start_as_current_span(HEALTH_SPAN, attributes={"url.path": "/healthz", f"keep.{MARK}": MARK}):
        pass
    provider.shutdown()
    return memory.get_finished_spans()


def sdk_metrics():
    """MetricsData: a counter with two attribute sets and a histogram (3 points)."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], resource=sdk_resource())
    meter = provider.get_meter(f"itest.meter.{MARK}", "1.0")
    counter = meter.create_counter(f"itest.requests.{MARK}", unit="1")
    counter.add(3, sensitive_attributes())
    counter.add(5, {"http.route": "/other", f"keep.{MARK}": f"{MARK}-kept"})
    histogram = meter.create_histogram("itest.latency", unit="ms")
    histogram.record(12.5, sensitive_attributes())
    data = reader.get_metrics_data()
    provider.shutdown()
    return data


def sdk_logs():
    """Two log records through the logs API: one with a structured body, one with text."""
    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=sdk_resource())
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = provider.get_logger(f"itest.logger.{MARK}")
    logger.emit(
        severity_number=SeverityNumber.WARN, severity_text="WARN",
        body={"msg": f"order placed {MARK}", f"secret.{MARK}": f"{GONE}-body"},
        attributes=sensitive_attributes(),
    )
    logger.emit(severity_number=SeverityNumber.INFO, severity_text="INFO", body=f"text record {MARK}",
                attributes=sensitive_attributes())
    provider.shutdown()
    return memory.get_finished_logs()


# --- checks of what arrived ------------------------------------------------------------------


def assert_nothing_deleted_leaked(received: list[Received]) -> None:
    for r in received:
        assert r.parse_error is None, f"upstream could not read what the proxy sent: {r.parse_error}"
        assert GONE.encode() not in r.serialized(), "a deleted value reached upstream"
        assert GONE.encode() not in r.raw, "a deleted value reached upstream"


def merged(signal: str, received: list[Received]) -> list:
    """Items of every request upstream received for ``signal``, in arrival order."""
    out = []
    for r in received:
        if r.signal == signal:
            out.extend((r.message, item) for item in items_of(signal, r.message))
    return out


def check_sdk_arrival(signal: str, data, received: list[Received]) -> None:
    """What the SDK exported arrived upstream redacted and otherwise unchanged."""
    assert [r.signal for r in received] and {r.signal for r in received} == {signal}
    assert_nothing_deleted_leaked(received)
    for r in received:
        for resource in resources_of(signal, r.message):
            assert_redacted(attrs(resource.attributes), extra={"service.name": "itest-sdk"})
    check = {"traces": _check_spans, "metrics": _check_metrics, "logs": _check_logs}[signal]
    check(data, [item for _, item in merged(signal, received)], received)


def _check_spans(spans, arrived, received) -> None:
    sent = {s.context.span_id.to_bytes(8, "big"): s for s in spans if s.name != HEALTH_SPAN}
    assert len(spans) == 3 and len(sent) == 2
    assert len(arrived) == 2, "the health-check span is dropped, the other two arrive"
    assert {s.span_id for s in arrived} == set(sent)
    for span in arrived:
        original = sent[span.span_id]
        assert span.trace_id == original.context.trace_id.to_bytes(16, "big")
        assert span.name == original.name
        parent = original.parent.span_id.to_bytes(8, "big") if original.parent else b""
        assert span.parent_span_id == parent
        assert span.start_time_unix_nano == original.start_time
        assert span.end_time_unix_nano == original.end_time
        assert_redacted(attrs(span.attributes), extra={"cart.items": 3} if span.name == "load cart" else None)
        assert [e.name for e in span.events] == [e.name for e in original.events]
        for event in span.events:
            assert_redacted(attrs(event.attributes))
    scopes = {ss.scope.name for r in received for rs in r.message.resource_spans for ss in rs.scope_spans}
    assert scopes == {f"itest.tracer.{MARK}"}


def _check_metrics(data, arrived, received) -> None:
    metrics = {m.name: m for r in received for rm in r.message.resource_metrics
               for sm in rm.scope_metrics for m in sm.metrics}
    assert set(metrics) == {f"itest.requests.{MARK}", "itest.latency"}
    counter = metrics[f"itest.requests.{MARK}"]
    assert counter.unit == "1" and counter.sum.is_monotonic
    points = sorted(counter.sum.data_points, key=lambda p: p.as_int)
    assert [p.as_int for p in points] == [3, 5]
    assert_redacted(attrs(points[0].attributes))
    assert attrs(points[1].attributes) == {"http.route": "/other", f"keep.{MARK}": f"{MARK}-kept"}
    histogram = metrics["itest.latency"].histogram
    assert len(histogram.data_points) == 1
    point = histogram.data_points[0]
    assert (point.count, point.sum) == (1, 12.5)
    assert_redacted(attrs(point.attributes))
    sent_points = sum(len(m.data.data_points) for rm in data.resource_metrics for sm in rm.scope_metrics
                      for m in sm.metrics)
    assert len(arrived) == sent_points == 3


def _check_logs(records, arrived, received) -> None:
    assert len(records) == len(arrived) == 2
    by_body = {}
    for record in arrived:
        body = py_value(record.body)
        by_body["structured" if isinstance(body, dict) else "text"] = (record, body)
    record, body = by_body["structured"]
    assert body == {"msg": f"order placed {MARK}"}, "keys inside a structured body are scrubbed too"
    assert record.severity_text == "WARN"
    assert_redacted(attrs(record.attributes))
    record, body = by_body["text"]
    assert body == f"text record {MARK}"
    assert record.severity_text == "INFO"
    assert_redacted(attrs(record.attributes))
