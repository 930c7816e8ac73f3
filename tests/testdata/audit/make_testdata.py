#!/usr/bin/env python3
"""Generate the audit's captured-style inputs with the real OpenTelemetry Python SDK.

Each leaky input carries planted leaks that ``policy.yaml`` lets through; ``PLANTED``
(planted.json, written beside them) lists, per leak, the value, and where ``audit`` must
report it (signal, level, field path, kind). The clean inputs hold nothing an audit
should flag. Formats: what the collector's file exporter writes (JSON lines; protobuf with
4-byte length prefixes), a single OTLP-JSON document, a bare protobuf request; gzip.

    python tests/testdata/audit/make_testdata.py     # rewrites the files in this directory
"""

from __future__ import annotations

import gzip
import json
import logging
import struct
import sys
from pathlib import Path

from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2] / "proxy"))

from redact_proxy.codec import Format, encode  # noqa: E402  (OTLP-JSON as the proxy writes it)

RESOURCE = Resource.create({"service.name": "checkout", "service.version": "1.4.2", "deployment.environment.name": "prod"})

# The planted values. Every one is something policy.yaml does not catch.
PHONE = "+44 20 7946 0958"
IBAN = "DE89370400440532013000"
NOTE = "customer asked us to leave the parcel behind the blue garden gate"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJncmFjZSJ9.c2lnbmF0dXJlLXNlY3JldA"
ACCOUNT = "482910337561"
IP = "10.20.30.40"
EMAIL_KEY = "grace.hopper@example.org"
CARD = "4111 1111 1111 1111"
BODY_EMAIL = "ada@example.net"
MOBILE = "+1 415 555 0100"
GITHUB = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
CLIENT_IP = "192.168.17.23"
CUSTOMER_ID = "100000000123"
ORDER_UUIDS = [f"3f2c8a1e-9b7d-4c2a-8e{i:02d}-1a2b3c4d5e6f" for i in range(64)]
NAMES = [f"{first} {last}" for first in ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John")
         for last in ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Backus")][:64]
HASHED_USER = "user-7731"  # hashed by the policy: must not be reported

PLANTED = [
    {"value": PHONE, "signal": "traces", "level": "span", "field": "attributes.app.customer_phone", "kind": "phone"},
    {"value": IBAN, "signal": "traces", "level": "span", "field": "attributes.app.payout_account", "kind": "iban"},
    {"value": NOTE, "signal": "traces", "level": "span", "field": "attributes.app.delivery_note", "kind": "free_text"},
    {"value": JWT, "signal": "traces", "level": "span", "field": "status_message", "kind": "jwt"},
    {"value": ACCOUNT, "signal": "traces", "level": "span", "field": "span_name", "kind": "digits"},
    {"value": IP, "signal": "traces", "level": "event", "field": "attributes.exception.message", "kind": "ipv4"},
    {"value": EMAIL_KEY, "signal": "traces", "level": "span", "field": None, "kind": "email"},  # a key: hashed
    {"value": ORDER_UUIDS[0], "signal": "traces", "level": "span", "field": "attributes.app.order_ref", "kind": "uuid"},
    {"value": NAMES[0], "signal": "traces", "level": "span", "field": "attributes.app.user_name",
     "kind": "high_cardinality"},
    {"value": CARD, "signal": "logs", "level": "log", "field": "log_body", "kind": "credit_card"},
    {"value": BODY_EMAIL, "signal": "logs", "level": "log", "field": "log_body.user.email", "kind": "email"},
    {"value": MOBILE, "signal": "logs", "level": "log", "field": "log_body.contact.mobile", "kind": "phone"},
    {"value": GITHUB, "signal": "logs", "level": "log", "field": "attributes.app.debug", "kind": "github_token"},
    {"value": CLIENT_IP, "signal": "logs", "level": "log", "field": "attributes.client_ip", "kind": "ipv4"},
    {"value": CUSTOMER_ID, "signal": "metrics", "level": "datapoint", "field": "attributes.app.customer_id",
     "kind": "digits"},
]


def _tracer():
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("checkout.api", "1.4.2"), exporter


def leaky_traces() -> list[bytes]:
    tracer, exporter = _tracer()
    for i in range(64):
        with tracer.start_as_current_span(f"GET /accounts/{ACCOUNT}" if i == 0 else "GET /accounts/{id}") as span:
            span.set_attribute("http.request.method", "GET")
            span.set_attribute("http.route", "/accounts/{id}")
            span.set_attribute("http.response.status_code", 200)
            span.set_attribute("enduser.id", HASHED_USER)
            span.set_attribute("app.user_name", NAMES[i])
            span.set_attribute("app.order_ref", ORDER_UUIDS[i])
            if i == 1:
                span.set_attribute("app.customer_phone", PHONE)
                span.set_attribute("app.payout_account", IBAN)
                span.set_attribute("app.delivery_note", NOTE)
                span.set_attribute(EMAIL_KEY, "1")
                span.set_attribute("user.email", "someone@example.com")  # masked by the policy
            if i == 2:
                span.set_status(Status(StatusCode.ERROR, f"token rejected: {JWT}"))
                try:
                    raise ConnectionError(f"connection refused by {IP}")
                except ConnectionError as exc:
                    span.record_exception(exc)
    spans = exporter.get_finished_spans()
    # Two export requests, as a batch processor would send them.
    return [encode(encode_spans(spans[:30]), Format.JSON), encode(encode_spans(spans[30:]), Format.JSON)]


def clean_traces() -> list[bytes]:
    tracer, exporter = _tracer()
    for i in range(40):
        with tracer.start_as_current_span("GET /health/{check}" if i % 2 else "POST /cart/{id}/items") as span:
            span.set_attribute("http.request.method", "GET" if i % 2 else "POST")
            span.set_attribute("http.route", "/health/{check}" if i % 2 else "/cart/{id}/items")
            span.set_attribute("http.response.status_code", 200)
            span.set_attribute("server.port", 8080)
            span.set_attribute("url.scheme", "https")
            span.set_attribute("app.cache", "hit" if i % 3 else "miss")
    spans = exporter.get_finished_spans()
    return [encode_spans(spans[:20]).SerializeToString(), encode_spans(spans[20:]).SerializeToString()]


def _logging(name: str):
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = logging.getLogger(name)
    logger.handlers[:] = [LoggingHandler(level=logging.INFO, logger_provider=provider)]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger, provider, exporter


def leaky_logs() -> bytes:
    logger, provider, exporter = _logging("checkout.payments")
    # stdlib logging through the SDK's handler: the message is the body.
    logger.warning("card declined for %s", CARD)
    logger.info("login ok", extra={"client_ip": CLIENT_IP, "app.debug": f"retrying with {GITHUB}"})
    # A structlog-style JSON line as the message.
    logger.info(json.dumps({"event": "signup", "user": {"email": BODY_EMAIL, "plan": "pro"}}))
    # A structured body through the logs API (a dict becomes a kvlist).
    provider.get_logger("checkout.crm").emit(
        body={"event": "contact updated", "contact": {"mobile": MOBILE, "country": "US"}},
        severity_number=SeverityNumber.INFO, severity_text="INFO")
    provider.force_flush()
    return encode(encode_logs(exporter.get_finished_logs()), Format.JSON)


def clean_logs() -> list[bytes]:
    logger, provider, exporter = _logging("checkout.worker")
    for i in range(10):
        logger.info("cart saved", extra={"app.items": i})
        logger.warning("cache miss")
    provider.force_flush()
    records = exporter.get_finished_logs()
    return [encode(encode_logs(records[:10]), Format.JSON), encode(encode_logs(records[10:]), Format.JSON)]


def leaky_metrics() -> bytes:
    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    counter = provider.get_meter("checkout.billing").create_counter("app.invoices", unit="{invoice}")
    counter.add(1, {"app.customer_id": CUSTOMER_ID, "app.region": "eu"})
    counter.add(2, {"app.region": "us"})
    return encode_metrics(reader.get_metrics_data()).SerializeToString()


def main() -> int:
    (HERE / "traces-leaky.jsonl.gz").write_bytes(gzip.compress(b"\n".join(leaky_traces()) + b"\n", mtime=0))
    (HERE / "logs-leaky.json").write_bytes(leaky_logs() + b"\n")
    (HERE / "metrics-leaky.pb").write_bytes(leaky_metrics())
    # The file exporter's `format: proto`: each request after its 4-byte big-endian length.
    (HERE / "clean-spans.binpb").write_bytes(b"".join(struct.pack(">I", len(r)) + r for r in clean_traces()))
    (HERE / "logs-clean.jsonl").write_bytes(b"\n".join(clean_logs()) + b"\n")
    (HERE / "planted.json").write_text(json.dumps(PLANTED, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
