"""Captures what the real OpenTelemetry Python SDK exports, through its OTLP/HTTP protobuf
exporters, into the leak corpus.

Strategy: each source gets its own providers (so its own resource) and exporters aimed at
the capturing receiver (../receiver.py) under its source name. The spans, logs and metrics
are produced the way applications produce them: exceptions raised inside
``start_as_current_span`` (the SDK records them and sets the status), ``logging`` through
the SDK's ``LoggingHandler`` with ``extra=``, ``logger.exception``, instruments with
attributes. DB and GenAI spans carry the attributes their instrumentations set (the keys
and value shapes of OpenTelemetry semconv, OpenLLMetry and OpenInference); no database or
model is called. Every personal value comes from ../plants.py.

usage: python capture_otel_python.py OUT_DIR
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opentelemetry import trace  # noqa: E402
from opentelemetry._logs import SeverityNumber  # noqa: E402
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.metrics import Observation  # noqa: E402
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler  # noqa: E402
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader  # noqa: E402
from opentelemetry.sdk.metrics.view import View  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState  # noqa: E402

from plants import value as P  # noqa: E402
from receiver import Receiver  # noqa: E402


def resource(service: str, **extra) -> Resource:
    return Resource.create({"service.name": service, "service.version": "1.4.2",
                            "deployment.environment.name": "leak-corpus", **extra})


def tracer_provider(rx: Receiver, source: str, **res) -> TracerProvider:
    provider = TracerProvider(resource=resource(source, **res))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=rx.url(source, "traces"))))
    return provider


def logger_provider(rx: Receiver, source: str, **res) -> LoggerProvider:
    provider = LoggerProvider(resource=resource(source, **res))
    provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=rx.url(source, "logs"))))
    return provider


def remote_parent(trace_state: TraceState):
    ctx = SpanContext(trace_id=0x4bf92f3577b34da6a3ce929d0e0e4736, span_id=0x00f067aa0ba902b7, is_remote=True,
                      trace_flags=TraceFlags(TraceFlags.SAMPLED), trace_state=trace_state)
    return trace.set_span_in_context(NonRecordingSpan(ctx))


# --- otel-python: traces ----------------------------------------------------------------


def python_traces(rx: Receiver) -> None:
    provider = tracer_provider(rx, "otel-python", **{"team.oncall.note": f"page {P('p0016')} first"})
    tracer = provider.get_tracer(f"accounts.per-user.{P('p0011')}", f"2.0.0+host.{P('p0012')}",
                                 schema_url=f"https://opentelemetry.io/schemas/1.26.0?requested_by={P('p0013').replace('@', '%40')}")
    accounts: dict[str, str] = {}
    # The request arrives with a W3C tracestate a vendor wrote a user id into.
    parent = remote_parent(TraceState([("congo", f"uid:{P('p0007')}"), ("rojo", "00f067aa0ba902b7")]))
    # (The Python exporter does not encode a link's trace_state; otel-node carries that plant.)
    link_ctx = SpanContext(trace_id=0x0af7651916cd43dd8448eb211c80319c, span_id=0xb7ad6b7169203331, is_remote=True,
                           trace_flags=TraceFlags(TraceFlags.SAMPLED), trace_state=TraceState([("vendor", "tier:gold")]))
    try:
        with tracer.start_as_current_span(
                "GET /accounts/{email}", context=parent, kind=SpanKind.SERVER,
                links=[Link(link_ctx, {"link.reason": f"retry of a request from {P('p0008')}"})],
                attributes={"http.request.method": "GET", "http.route": "/accounts/{email}",
                            "http.response.status_code": 500, "user.id": P("p0015"),
                            "url.full": f"https://api.example.com/accounts/lookup?email={P('p0014')}&page=2"}) as span:
            span.add_event(f"password reset sent to {P('p0004')}",
                           {"delivery.note": f"relayed via {P('p0005')}", "delivery.attempt": 1})
            if P("p0001") not in accounts:
                raise KeyError(f"no account for {P('p0001')}")
    except KeyError:
        pass
    with tracer.start_as_current_span(f"lookup {P('p0002')}", kind=SpanKind.INTERNAL,
                                      attributes={"code.function.name": "lookup", "app.cache.hit": False}):
        pass
    with tracer.start_as_current_span(f"GET /users/{P('p0003')}/orders", kind=SpanKind.CLIENT,
                                      attributes={"http.request.method": "GET", "server.address": "orders.internal",
                                                  "http.response.status_code": 200}):
        pass
    with tracer.start_as_current_span("POST /payments", kind=SpanKind.SERVER,
                                      attributes={"http.request.method": "POST", "http.route": "/payments",
                                                  "http.response.status_code": 402}) as span:
        span.record_exception(ValueError(f"card {P('p0010')} declined by issuer"))
        span.set_status(Status(StatusCode.ERROR, f"payment declined for {P('p0009')}"))
    provider.shutdown()


# --- otel-python: logs --------------------------------------------------------------------


def python_logs(rx: Receiver) -> None:
    provider = logger_provider(rx, "otel-python")
    handler = LoggingHandler(level=logging.DEBUG, logger_provider=provider)
    app = logging.getLogger("shop.checkout")
    app.setLevel(logging.DEBUG)
    app.addHandler(handler)
    app.propagate = False
    app.info("order placed by %s", P("p0101"), extra={
        "user_id": P("p0102"), "client_ip": P("p0103"), "http.route": "/checkout",
        "cart": {"owner": P("p0104"), "items": 3},
        "chat_line": P("p0108"),
        "note": f"support asked to retry with password={P('p0109')}",
    })
    try:
        raise LookupError(f"no stored card for {P('p0106')}")
    except LookupError:
        app.exception("charge of card %s failed", P("p0107"))
    # A logger named after the user it audits: its name becomes the scope name.
    audit = logging.getLogger(f"audit.{P('p0105')}")
    audit.setLevel(logging.INFO)
    audit.addHandler(handler)
    audit.propagate = False
    audit.warning("profile exported")
    provider.shutdown()


# --- otel-python: metrics ------------------------------------------------------------------


def python_metrics(rx: Receiver) -> None:
    tp = TracerProvider(resource=resource("otel-python"))  # exemplars need a sampled span
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=rx.url("otel-python", "metrics")),
                                           export_interval_millis=3_600_000)
    # The view keeps only http.route on the histogram: the other attributes of each
    # measurement become the exemplar's filtered attributes.
    provider = MeterProvider(resource=resource("otel-python"), metric_readers=[reader],
                             views=[View(instrument_name="http.server.request.duration", attribute_keys={"http.route"})])
    meter = provider.get_meter(f"billing.meter.{P('p0208')}", "0.9.0", schema_url="https://opentelemetry.io/schemas/1.26.0")
    orders = meter.create_counter("shop.orders", unit=f"{{order:{P('p0202')}}}",
                                  description=f"Orders; questions to {P('p0201')}")
    orders.add(2, {"http.route": "/checkout", "shop.region": "eu", "customer": P("p0203"),
                   "client.address": P("p0204"), "user.id": P("p0205")})
    orders.add(5, {"http.route": "/checkout", "shop.region": "us"})
    duration = meter.create_histogram("http.server.request.duration", unit="s", description="Duration of HTTP server requests.")
    with tp.get_tracer("exemplars").start_as_current_span("GET /checkout"):
        duration.record(0.125, {"http.route": "/checkout", "buyer": P("p0207")})
    meter.create_observable_gauge("shop.peer.latency", unit="ms", callbacks=[
        lambda options: [Observation(17, {"shop.region": "eu", "peer": f"[{P('p0206')}]:443"})]])
    provider.shutdown()
    tp.shutdown()


# --- otel-python-db: DB client spans ----------------------------------------------------------


def db_traces(rx: Receiver) -> None:
    provider = tracer_provider(rx, "otel-python-db")
    tracer = provider.get_tracer("opentelemetry.instrumentation.dbapi", "0.66b2")
    spans = [
        # psycopg (old semconv): span name is the operation, the statement has literals.
        ("SELECT", {"db.system": "postgresql", "db.name": "shop", "db.user": "app", "net.peer.name": "pg.internal",
                    "db.statement": f"SELECT id, name FROM users WHERE email = '{P('p0301')}' AND pw_hash = '{P('p0302')}'"}),
        # Some instrumentations name the span after the whole statement.
        (f"SELECT * FROM users WHERE email='{P('p0303')}'",
         {"db.system": "postgresql", "db.operation.name": "SELECT", "db.collection.name": "users"}),
        # New semconv, PostgreSQL.
        ("SELECT shop.users", {"db.system.name": "postgresql", "db.namespace": "shop", "db.operation.name": "SELECT",
                               "db.collection.name": "users", "db.query.summary": "SELECT users",
                               "db.query.text": f"SELECT * FROM users WHERE email = '{P('p0315')}' LIMIT 1",
                               "server.address": "pg.internal", "server.port": 5432}),
        # MySQL INSERT.
        ("INSERT", {"db.system": "mysql", "db.name": "crm", "db.statement":
                    f"INSERT INTO leads (phone, ip) VALUES ('{P('p0305')}', '{P('p0304')}')"}),
        # Redis (opentelemetry-instrumentation-redis puts the command and args in db.statement).
        ("SET", {"db.system": "redis", "db.redis.database_index": 0, "net.peer.name": "redis.internal",
                 "db.statement": f'SET user:{P("p0306")} {{"plan":"pro"}} EX 3600'}),
        ("AUTH", {"db.system": "redis", "db.statement": f"AUTH default {P('p0307')}"}),
        ("HSET", {"db.system.name": "redis", "db.operation.name": "HSET",
                  "db.query.text": f"HSET session:{P('p0308')} ip {P('p0309')}"}),
        # MongoDB: the command document as JSON.
        ("find shop.users", {"db.system": "mongodb", "db.name": "shop", "db.mongodb.collection": "users",
                             "db.operation": "find",
                             "db.statement": json.dumps({"find": "users", "filter": {"email": P("p0310")}, "limit": 1})}),
        # Elasticsearch: the query body and the URL.
        ("users/_search", {"db.system": "elasticsearch", "db.operation": "search", "http.request.method": "POST",
                           "db.statement": json.dumps({"query": {"match": {"user.email": P("p0311")}}}),
                           "url.full": f"http://es.internal:9200/users/_search?q=email:{P('p0312')}"}),
        # A client span named after its URL (path id and percent-encoded query value).
        (f"GET https://api.example.com/v1/users/{P('p0316')}?email={P('p0313').replace('@', '%40')}",
         {"http.request.method": "GET", "server.address": "api.example.com"}),
        # Memcached.
        ("get", {"db.system": "memcached", "db.operation": "get", "db.statement": f"get session:{P('p0314')}"}),
    ]
    for name, attributes in spans:
        with tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes):
            pass
    provider.shutdown()


# --- otel-python-genai: AI SDK spans ---------------------------------------------------------


def genai_traces(rx: Receiver) -> None:
    provider = tracer_provider(rx, "otel-python-genai")
    # OpenLLMetry / Traceloop (opentelemetry-instrumentation-openai), indexed prompt keys.
    with provider.get_tracer("opentelemetry.instrumentation.openai.v1", "0.40.0").start_as_current_span(
            "openai.chat", kind=SpanKind.CLIENT, attributes={
                "llm.request.type": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",
                "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": P("p0401"),
                "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": P("p0402"),
                "gen_ai.completion.0.finish_reason": "stop",
                "llm.prompts.0.role": "user", "llm.prompts.0.content": P("p0403"),
                "gen_ai.usage.input_tokens": 31, "gen_ai.usage.output_tokens": 12, "llm.usage.total_tokens": 43,
                "traceloop.entity.input": json.dumps({"args": [], "kwargs": {"email": P("p0404")}}),
            }):
        pass
    # OpenInference (Arize).
    with provider.get_tracer("openinference.instrumentation.openai", "0.1.30").start_as_current_span(
            "ChatCompletion", attributes={
                "openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini", "llm.provider": "openai",
                "input.mime_type": "application/json",
                "input.value": json.dumps({"messages": [{"role": "user", "content": P("p0405")}]}),
                "output.value": P("p0406"), "output.mime_type": "text/plain",
                "llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": P("p0407"),
                "llm.output_messages.0.message.role": "assistant", "llm.output_messages.0.message.content": P("p0408"),
                "llm.token_count.prompt": 20, "llm.token_count.completion": 7,
            }):
        pass
    # Current GenAI semconv: messages as JSON strings.
    with provider.get_tracer("gen_ai.client", "1.0.0").start_as_current_span(
            "chat gpt-4o", kind=SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
                "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": P("p0409")}]}]),
                "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": P("p0410")}],
                                                       "finish_reason": "stop"}]),
                "gen_ai.system_instructions": json.dumps([{"type": "text", "content": P("p0411")}]),
                "gen_ai.usage.input_tokens": 44, "gen_ai.usage.output_tokens": 9,
                "app.prompt_preview_note": f"user wrote from {P('p0412')}",
            }):
        pass
    provider.shutdown()


# --- otel-python-keys: keys as data, typed values, secrets in free text ------------------------

PEM = ("-----BEGIN PRIVATE KEY-----\n" + P("p0507") + "\n"
       "kq6Ev4yQEbSZ3g3n7s9EXAMPLEONLYnotarealkeyAAAAAAAAAAAAAAAAAAAAAAAA\n-----END PRIVATE KEY-----")


def keys_as_data(rx: Receiver) -> None:
    provider = tracer_provider(rx, "otel-python-keys")
    with provider.get_tracer("shop.jobs", "1.0.0").start_as_current_span("nightly export", attributes={
            "job.name": "nightly-export",
            "order.reference": int(P("p0501")),  # an int that is a card number
            "app.context": json.dumps({"user": {"email": P("p0502"), "id": P("p0514")}, "plan": "pro"}),
            "app.blob": f"contact: {P('p0503')}".encode(),  # bytes holding UTF-8 text
            "deploy.log": f"pushed with {P('p0504')} using key {P('p0505')}; db password={P('p0506')}",
            "config.dump": f"aws_secret_access_key={P('p0515')}\n{PEM}",
            "auth.scheme.note": f"forwarded {P('p0508')}",
    }):
        pass
    provider.shutdown()
    logs = logger_provider(rx, "otel-python-keys")
    logger = logs.get_logger("shop.jobs", "1.0.0")
    logger.emit(severity_number=SeverityNumber.INFO, severity_text="INFO",
                body={"event": "visits.rollup", "by_address": {P("p0512"): 4, "127.0.0.1": 1}, "total": 5,
                      "ref": int(P("p0513"))},
                attributes={"visits.by_email": {P("p0509"): 3, P("p0510"): 1}, "job.name": "rollup"})
    logger.emit(severity_number=SeverityNumber.WARN, severity_text="WARN",
                body=f"bounce from {P('p0511')}".encode(), attributes={"job.name": "bounces"})
    logs.shutdown()


def main() -> int:
    out = Path(sys.argv[1])
    with Receiver(out) as rx:
        python_traces(rx)
        python_logs(rx)
        python_metrics(rx)
        db_traces(rx)
        genai_traces(rx)
        keys_as_data(rx)
    return 0


if __name__ == "__main__":
    sys.exit(main())
