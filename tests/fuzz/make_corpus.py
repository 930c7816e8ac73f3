"""Writes the seed corpus (run once; the files are committed): realistic requests of each
signal with sensitive keys and planted values at every level, in protobuf and OTLP-JSON.

    .venv/bin/python tests/fuzz/make_corpus.py
"""

from __future__ import annotations

from pathlib import Path

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from redact_proxy.codec import Format, encode

CORPUS = Path(__file__).parent / "corpus"


def _plant(attrs, n: int) -> None:
    attrs.add(key="user.email").value.string_value = f"PLANTED{n:08x}"
    attrs.add(key="http.route").value.string_value = "/rooms/{id}"
    attrs.add(key="user.id").value.int_value = 42 + n
    kv = attrs.add(key="request.meta").value.kvlist_value.values
    kv.add(key="message.content").value.string_value = f"PLANTED{n + 1:08x}"
    kv.add(key="note").value.string_value = f"see PLANTED{n + 2:08x} now"
    arr = attrs.add(key="tags").value.array_value.values
    arr.add().string_value = f"PLANTED{n + 3:08x}"
    arr.add().double_value = 1.5


def traces() -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    _plant(rs.resource.attributes, 0x10)
    ss = rs.scope_spans.add()
    ss.scope.name = "fuzz"
    _plant(ss.scope.attributes, 0x20)
    span = ss.spans.add(name="GET PLANTED00000030", trace_id=bytes(range(16)), span_id=bytes(range(8)))
    _plant(span.attributes, 0x40)
    ev = span.events.add(name="PLANTED00000050")
    _plant(ev.attributes, 0x60)
    link = span.links.add(trace_id=bytes(range(16, 32)), span_id=bytes(range(8, 16)))
    _plant(link.attributes, 0x70)
    return req


def metrics() -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    _plant(rm.resource.attributes, 0x10)
    sm = rm.scope_metrics.add()
    gauge = sm.metrics.add(name="g").gauge.data_points.add(as_int=3)
    _plant(gauge.attributes, 0x20)
    hist = sm.metrics.add(name="h").histogram.data_points.add(count=2, bucket_counts=[1, 1], explicit_bounds=[1.0])
    _plant(hist.attributes, 0x30)
    _plant(hist.exemplars.add(as_double=0.5, span_id=bytes(8), trace_id=bytes(16)).filtered_attributes, 0x40)
    summary = sm.metrics.add(name="s").summary.data_points.add(count=1, sum=2.0)
    _plant(summary.attributes, 0x50)
    return req


def logs() -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    _plant(rl.resource.attributes, 0x10)
    sl = rl.scope_logs.add()
    rec = sl.log_records.add(severity_text="INFO", event_name="PLANTED00000020")
    _plant(rec.attributes, 0x30)
    _plant(rec.body.kvlist_value.values, 0x40)
    sl.log_records.add(severity_text="WARN").body.string_value = "login by PLANTED00000050"
    return req


def main() -> None:
    CORPUS.mkdir(exist_ok=True)
    for name, req in (("traces", traces()), ("metrics", metrics()), ("logs", logs())):
        (CORPUS / f"{name}-planted.pb").write_bytes(encode(req, Format.PROTOBUF))
        (CORPUS / f"{name}-planted.json").write_bytes(encode(req, Format.JSON))


if __name__ == "__main__":
    main()
