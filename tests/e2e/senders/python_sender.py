"""Sends traces, metrics and logs through redact-proxy with the real OpenTelemetry
Python SDK, playing the Railgun API (service.name railgun-api).

Transports: traces and logs over OTLP/gRPC, metrics over OTLP/HTTP (protobuf).
The data: one request span with a child DB span, a message event and an
exception event, all carrying the canaries of tests/e2e/pii.py; one health-check
span the doctrine drops; the API's metrics (HTTP server duration, messages,
connections, rooms, P2P, DB pool) with canaries among the data-point attributes;
one log record with canaries in its attributes and in its structured body.

Every export result is recorded; the process exits 1 if any export failed, so a
proxy that refuses data fails the test here, not later as "no data". Prints a
JSON report (trace ids as hex, export counts) on stdout.

usage: python_sender.py --grpc HOST:PORT --http http://HOST:PORT --run RUN_ID --pii PII.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import Observation
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

RESULTS: dict[str, list[str]] = {"traces": [], "metrics": [], "logs": []}


def recording(signal: str, exporter):
    """Wrap an exporter's export() to record each result; everything else passes through.
    (The result enums differ by signal and SDK version; all name success SUCCESS.)"""
    inner_export = exporter.export

    def export(batch, *args, **kwargs):
        result = inner_export(batch, *args, **kwargs)
        RESULTS[signal].append("ok" if getattr(result, "name", None) == "SUCCESS" else str(result))
        return result

    exporter.export = export
    return exporter


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grpc", required=True, help="redact-proxy OTLP/gRPC HOST:PORT")
    ap.add_argument("--http", required=True, help="redact-proxy OTLP/HTTP base URL")
    ap.add_argument("--run", required=True)
    ap.add_argument("--pii", required=True, help="JSON from `python -m tests.e2e.pii`")
    args = ap.parse_args()
    pii = json.load(open(args.pii))
    personal, hashed = pii["personal"], pii["hashed"]

    resource = Resource.create({
        "service.name": "railgun-api",
        "service.version": "e2e",
        "deployment.environment.name": "e2e",
        "host.name": "e2e-python-host",
        **pii["resource_personal"],
    })

    # --- traces, OTLP/gRPC -------------------------------------------------------------
    span_exporter = recording("traces", OTLPSpanExporter(endpoint=args.grpc, insecure=True, timeout=10))
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    tracer = tracer_provider.get_tracer("railgun.e2e.python")

    with tracer.start_as_current_span("POST " + pii["route"], kind=trace.SpanKind.SERVER, attributes={
        "e2e.run": args.run,
        "http.request.method": "POST",
        "http.route": pii["route"],
        "http.response.status_code": 201,
        **{k: personal[k] for k in ("message.content", "user.email", "client.address",
                                  "http.request.header.authorization", "user.identity_key", "url.full")},
        **hashed,
    }) as request_span:
        with tracer.start_as_current_span("SELECT messages", kind=trace.SpanKind.CLIENT, attributes={
            "e2e.run": args.run,
            "db.system": "postgresql",
            "db.operation.name": "SELECT",
            "db.statement": personal["db.statement"],
        }):
            pass
        request_span.add_event("message.sent", {
            "messaging.message.body.size": 27,
            "recipient.user_id": personal["recipient.user_id"],
        })
        request_span.add_event("exception", {
            "exception.type": "UniqueViolation",
            "exception.message": personal["exception.message"],
        })
        request_trace_id = format(request_span.get_span_context().trace_id, "032x")

    # A readiness probe: dropped whole by the doctrine's drop-health-checks rules.
    with tracer.start_as_current_span("GET /healthz", kind=trace.SpanKind.SERVER, attributes={
        "e2e.run": args.run, "test.healthcheck": True,
        "http.request.method": "GET", "url.path": "/healthz", "http.route": "/healthz",
        "http.response.status_code": 200,
    }) as health_span:
        health_trace_id = format(health_span.get_span_context().trace_id, "032x")

    # --- metrics, OTLP/HTTP protobuf ---------------------------------------------------------
    metric_exporter = recording("metrics", OTLPMetricExporter(endpoint=f"{args.http}/v1/metrics", timeout=10))
    reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=1000)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = meter_provider.get_meter("railgun.e2e.python")
    duration = meter.create_histogram("http.server.request.duration", unit="s",
                                      description="Duration of HTTP server requests.")
    messages = meter.create_counter("railgun.messages", unit="{message}", description="Messages relayed.")
    sizes = meter.create_histogram("railgun.message.size", unit="By", description="Message sizes on the wire.")
    connections = meter.create_up_down_counter("railgun.websocket.connections", unit="{connection}")
    rooms = meter.create_up_down_counter("railgun.rooms.active", unit="{room}")
    fallbacks = meter.create_counter("railgun.p2p.fallback.activations", unit="{activation}")
    peers = meter.create_up_down_counter("railgun.p2p.peers", unit="{peer}")
    meter.create_observable_up_down_counter(
        "db.client.connection.count", unit="{connection}",
        callbacks=[lambda options: [
            Observation(4, {"db.client.connection.pool.name": "main", "db.client.connection.state": "used"}),
            Observation(6, {"db.client.connection.pool.name": "main", "db.client.connection.state": "idle"}),
        ]])
    meter.create_observable_up_down_counter(
        "db.client.connection.max", unit="{connection}",
        callbacks=[lambda options: [Observation(10, {"db.client.connection.pool.name": "main"})]])

    connections.add(12)
    rooms.add(3)
    peers.add(2)
    for i in range(8):   # a few seconds of traffic, so Prometheus sees rates
        status = 500 if i == 3 else 200
        common = {"http.request.method": "POST", "http.route": pii["route"], "http.response.status_code": status}
        duration.record(0.05 + 0.01 * i, {**common, "user.email": personal["user.email"],
                                          "client.address": personal["client.address"]})
        messages.add(5, {"room.id": hashed["room.id"], "user.email": personal["user.email"]})
        sizes.record(120 + i, {"room.id": hashed["room.id"]})
        if i == 5:
            fallbacks.add(1, {"user.id": hashed["user.id"]})
        time.sleep(0.5)

    # --- logs, OTLP/gRPC ----------------------------------------------------------------------------
    log_exporter = recording("logs", OTLPLogExporter(endpoint=args.grpc, insecure=True, timeout=10))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    logger = logger_provider.get_logger("railgun.e2e.python")
    fields = dict(
        severity_number=SeverityNumber.INFO, severity_text="INFO",
        body={"event": "user.login", "e2e.run": args.run, "user.email": personal["user.email"],
              "message.content": personal["message.content"]},
        attributes={"e2e.run": args.run, "user.id": hashed["user.id"], "user.email": personal["user.email"],
                    "client.address": personal["client.address"]},
    )
    try:
        logger.emit(**fields)
    except TypeError:  # older API: emit(LogRecord)
        from opentelemetry._logs import LogRecord
        logger.emit(LogRecord(**fields))

    tracer_provider.shutdown()
    meter_provider.shutdown()
    logger_provider.shutdown()

    failed = {s: [r for r in rs if r != "ok"] for s, rs in RESULTS.items()}
    report = {
        "service": "railgun-api",
        "run": args.run,
        "trace_ids": {"request": request_trace_id, "healthcheck": health_trace_id},
        "exports": {s: len(rs) for s, rs in RESULTS.items()},
        "failed": failed,
    }
    print(json.dumps(report))
    if any(failed.values()) or not all(RESULTS.values()):
        print(f"python sender: exports failed or missing: {RESULTS}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
