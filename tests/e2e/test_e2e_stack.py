"""End to end: real OpenTelemetry SDKs (Python over gRPC and HTTP/protobuf, Node.js
over HTTP/JSON) -> redact-proxy (policies/doctrine.yaml) -> the real collector ->
Jaeger v2 and Prometheus -> Alertmanager, wired with the configs of deploy/.

What is read back, and from where:
- Jaeger's query API: the spans arrived, trace ids intact, ids hashed with the
  deployment's key, doctrine-forbidden keys gone, health-check spans absent;
- the collector's input (a file-exporter tap): the same for logs, and absence of
  dropped spans;
- Prometheus' HTTP API: application metrics without forbidden labels, the proxy's
  own metrics scraped, every dashboard query answering;
- everything (Jaeger, the tap, every Prometheus label value, the processes' logs):
  no canary value of tests/e2e/pii.py anywhere;
- stopping the proxy fires RedactProxyDown, which Alertmanager routes to PagerDuty,
  Slack and the security team's mail (loopback sinks).

Waits are bounded and say what they waited for; nothing asserts on timings.
"""

from __future__ import annotations

import json
import re
import urllib.parse

import pytest

from . import pii, tools
from .stack import Stack, get_json, http_get

pytestmark = pytest.mark.timeout(300)

SERVICES = ("railgun-api", "railgun-gateway")
ARRIVAL_TIMEOUT = 90.0  # seconds: SDK -> proxy -> collector batch -> Jaeger / Prometheus scrape
# Grafana variables for a live query: a 1m window holds many 2s scrapes.
LIVE_VARIABLES = {"$__rate_interval": "1m", "$__interval": "10s", "$__range": "1h",
                  "$job": "railgun-api", "$instance": ".*"}
# Panels that legitimately have no series in a healthy run: nothing was refused and
# the collector never failed.
MAY_BE_EMPTY = {"Refusals", "Upstream errors"}
SPEC_METRIC_FAMILIES = (
    "redact_proxy_received_items", "redact_proxy_requests", "redact_proxy_redactions",
    "redact_proxy_dropped_items", "redact_proxy_forwarded_items", "redact_proxy_upstream_errors",
    "redact_proxy_request_duration_seconds", "redact_proxy_redact_duration_seconds",
    "redact_proxy_inflight_requests", "redact_proxy_policy_reloads", "redact_proxy_policy_info",
)


def tag_map(tags: list[dict]) -> dict:
    return {t["key"]: t["value"] for t in tags}


def any_value(value: dict):
    """OTLP-JSON AnyValue -> Python."""
    if "kvlistValue" in value:
        return {kv["key"]: any_value(kv.get("value", {})) for kv in value["kvlistValue"].get("values", [])}
    if "arrayValue" in value:
        return [any_value(v) for v in value["arrayValue"].get("values", [])]
    for key in ("stringValue", "boolValue", "doubleValue", "bytesValue"):
        if key in value:
            return value[key]
    if "intValue" in value:
        return int(value["intValue"])
    return None


def attrs(items: list[dict]) -> dict:
    return {kv["key"]: any_value(kv.get("value", {})) for kv in items or []}


def tap_lines(stack: Stack) -> list[dict]:
    if not stack.tap.exists():
        return []
    out = []
    for line in stack.tap.read_text().splitlines():
        if line.strip():
            out.append(json.loads(line))
    return out


def tap_log_records(stack: Stack, run: str) -> dict[str, list[tuple[dict, dict]]]:
    """service.name -> [(resource attributes, log record)] for this run."""
    out: dict[str, list] = {}
    for doc in tap_lines(stack):
        for rl in doc.get("resourceLogs", []):
            resource = attrs(rl.get("resource", {}).get("attributes"))
            for sl in rl.get("scopeLogs", []):
                for record in sl.get("logRecords", []):
                    if attrs(record.get("attributes")).get("e2e.run") == run:
                        out.setdefault(resource.get("service.name"), []).append((resource, record))
    return out


def tap_spans(stack: Stack) -> list[dict]:
    return [span for doc in tap_lines(stack) for rs in doc.get("resourceSpans", [])
            for ss in rs.get("scopeSpans", []) for span in ss.get("spans", [])]


@pytest.fixture(scope="module")
def run_id(sent):
    runs = {r["run"] for r in sent.values()}
    assert len(runs) == 1
    return runs.pop()


@pytest.fixture(scope="module")
def delivered(stack, sent, run_id):
    """Waits until the last thing each sender sent (its log record) reached the
    collector. The senders' exports are synchronous through the proxy, so by then
    every earlier item the proxy forwarded is past the collector's receiver too."""
    stack.wait_for("both senders' log records in the collector tap",
                   lambda: set(SERVICES) <= set(tap_log_records(stack, run_id)), timeout=ARRIVAL_TIMEOUT)
    for service in SERVICES:
        tid = sent[service]["trace_ids"]["request"]
        stack.wait_for(f"{service} request trace {tid} (2 spans) in Jaeger",
                       lambda: (t := stack.jaeger_trace(tid)) is not None and len(t["spans"]) >= 2,
                       timeout=ARRIVAL_TIMEOUT)
    return True


@pytest.mark.parametrize("service", SERVICES)
def test_spans_arrive_redacted_with_hashed_ids(stack, sent, run_id, delivered, service):
    tid = sent[service]["trace_ids"]["request"]
    trace = stack.jaeger_trace(tid)
    # Trace ids survive the proxy (and, for Node, OTLP-JSON -> gRPC) byte for byte.
    assert int(trace["traceID"], 16) == int(tid, 16)
    spans = {s["operationName"]: s for s in trace["spans"]}
    request, db = spans[f"POST {pii.ROUTE}"], spans["SELECT messages"]

    tags = tag_map(request["tags"])
    assert tags["http.route"] == pii.ROUTE and tags["e2e.run"] == run_id
    assert not pii.leaked(tags), f"personal data in the request span's attributes: {pii.leaked(tags)}"
    for key, raw in pii.HASHED.items():
        assert tags.get(key) == stack.hash(raw), f"{key} is not the HMAC of the raw id: {tags.get(key)!r}"

    db_tags = tag_map(db["tags"])
    assert db_tags["db.system"] == "postgresql" and db_tags["db.operation.name"] == "SELECT"
    assert not pii.leaked(db_tags), db_tags   # the SQL literal is gone (statement deleted or sanitized)

    events = {tag_map(log["fields"]).get("event"): tag_map(log["fields"]) for log in request["logs"]}
    assert events["message.sent"]["messaging.message.body.size"] == 27
    assert events["exception"]["exception.type"] == "UniqueViolation"
    assert not pii.leaked(events), events

    process = trace["processes"][request["processID"]]
    assert process["serviceName"] == service
    process_tags = tag_map(process["tags"])
    assert not pii.leaked(process_tags), process_tags

    text = json.dumps(trace)
    for canary in pii.canaries():
        assert canary not in text, f"canary {canary!r} in Jaeger's trace"


@pytest.mark.parametrize("service", SERVICES)
def test_health_check_spans_are_dropped(stack, sent, delivered, service):
    tid = sent[service]["trace_ids"]["healthcheck"]
    assert stack.jaeger_trace(tid) is None, f"health-check trace {tid} reached Jaeger"
    tid_int = int(tid, 16)
    for span in tap_spans(stack):
        assert int(span["traceId"], 16) != tid_int, f"health-check span reached the collector: {span['name']}"
    operations = get_json(f"{stack.url('jaeger_query')}/api/services/{service}/operations")["data"]
    assert not any(re.search(r"/(healthz|readyz)$", str(op)) for op in operations), operations
    dropped = stack.wait_for(
        "redact_proxy_dropped_items_total{signal=traces} >= 2 in Prometheus",
        lambda: [r for r in stack.prom_query('sum(redact_proxy_dropped_items_total{signal="traces"}) >= 2')],
        timeout=ARRIVAL_TIMEOUT)
    assert float(dropped[0]["value"][1]) >= 2


@pytest.mark.parametrize("service", SERVICES)
def test_logs_reach_the_collector_redacted(stack, run_id, delivered, service):
    records = tap_log_records(stack, run_id)[service]
    assert len(records) == 1, records
    resource, record = records[0]
    assert not pii.leaked(resource), resource
    attributes = attrs(record.get("attributes"))
    assert attributes["user.id"] == stack.hash(pii.HASHED["user.id"])
    assert not pii.leaked(attributes), attributes
    body = any_value(record["body"])
    assert body["event"] == "user.login" and body["e2e.run"] == run_id
    assert not pii.leaked(body), body


def test_application_metrics_reach_prometheus_redacted(stack, delivered):
    series = stack.wait_for(
        "railgun-api and railgun-gateway HTTP metrics in Prometheus",
        lambda: (r := stack.prom_query('http_server_request_duration_seconds_count{job=~"railgun-api|railgun-gateway"}'))
        and {s["metric"]["job"] for s in r} == set(SERVICES) and r,
        timeout=ARRIVAL_TIMEOUT)
    for s in series:
        assert not pii.leaked(s["metric"]), s["metric"]
        assert s["metric"]["http_route"] in (pii.ROUTE, "/rooms")

    messages = stack.wait_for("railgun_messages_total in Prometheus",
                              lambda: stack.prom_query("railgun_messages_total"), timeout=ARRIVAL_TIMEOUT)
    expected_room = stack.hash(pii.HASHED["room.id"])
    assert {s["metric"].get("room_id") for s in messages} == {expected_room}
    assert not pii.leaked([s["metric"] for s in messages])

    fallback = stack.wait_for("railgun_p2p_fallback_activations_total in Prometheus",
                              lambda: stack.prom_query("railgun_p2p_fallback_activations_total"),
                              timeout=ARRIVAL_TIMEOUT)
    assert {s["metric"].get("user_id") for s in fallback} == {stack.hash(pii.HASHED["user.id"])}


def test_proxy_metrics_are_scraped(stack, delivered):
    status, body = http_get(f"{stack.url('proxy_admin')}/metrics")
    assert status == 200
    exposition = body.decode()
    for family in SPEC_METRIC_FAMILIES:
        # counters are exposed as <family>_total in the classic text format
        assert re.search(rf"^# TYPE {family}(_total)? ", exposition, re.M), f"{family} missing from /metrics"

    assert stack.wait_for("up{job=redact-proxy} == 1",
                          lambda: stack.prom_query('up{job="redact-proxy"} == 1'), timeout=ARRIVAL_TIMEOUT)
    want = {("traces", "grpc"), ("traces", "http"), ("metrics", "http"), ("logs", "grpc"), ("logs", "http")}

    def received():
        got = stack.prom_query('sum by (signal, transport) (redact_proxy_received_items_total{job="redact-proxy"}) > 0')
        return want <= {(r["metric"]["signal"], r["metric"]["transport"]) for r in got}

    stack.wait_for(f"redact_proxy_received_items_total > 0 for {sorted(want)}", received, timeout=ARRIVAL_TIMEOUT)
    forwarded = stack.prom_query('sum by (signal) (redact_proxy_forwarded_items_total{job="redact-proxy"}) > 0')
    assert {r["metric"]["signal"] for r in forwarded} == {"traces", "metrics", "logs"}
    actions = stack.prom_query('sum by (action) (redact_proxy_redactions_total{job="redact-proxy"}) > 0')
    assert {"delete", "hash"} <= {r["metric"]["action"] for r in actions}
    assert stack.prom_query('redact_proxy_policy_info{job="redact-proxy"} == 1')


def dashboard_targets():
    out = []
    for path in sorted((tools.DEPLOY / "grafana/dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        panels = []
        for panel in dashboard["panels"]:
            panels += [panel, *panel.get("panels", [])]
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    out.append(pytest.param(panel["title"], target["expr"],
                                            id=f"{path.stem}:{panel['title']}:{target['refId']}"))
    return out


@pytest.mark.parametrize("title,expr", dashboard_targets())
def test_dashboard_query_answers_from_live_prometheus(stack, delivered, title, expr):
    for var in sorted(LIVE_VARIABLES, key=len, reverse=True):
        expr = expr.replace(var, LIVE_VARIABLES[var])
    if title in MAY_BE_EMPTY:
        stack.prom_query(expr)  # must still be valid PromQL that Prometheus accepts
        return
    stack.wait_for(f"data for panel {title!r}: {expr}", lambda: stack.prom_query(expr), timeout=ARRIVAL_TIMEOUT)


def test_no_canary_reaches_any_backend_or_log(stack, sent, delivered):
    sources: dict[str, str] = {"collector tap (everything the collector received)": stack.tap.read_text()}
    for service in SERVICES:
        q = urllib.parse.urlencode({"service": service, "limit": 100, "lookback": "1h"})
        sources[f"Jaeger traces of {service}"] = json.dumps(get_json(f"{stack.url('jaeger_query')}/api/traces?{q}"))
    labels = get_json(f"{stack.url('prometheus')}/api/v1/labels")["data"]
    values = {label: get_json(f"{stack.url('prometheus')}/api/v1/label/{label}/values")["data"] for label in labels}
    sources["Prometheus label names and values"] = json.dumps(values)
    for name in ("redact-proxy", "otel-collector", "jaeger", "prometheus", "alertmanager"):
        sources[f"{name} log"] = stack.procs[name].log_path.read_text(errors="replace")
    assert any(tid in sources[f"Jaeger traces of {s}"] or tid.lstrip("0") in sources[f"Jaeger traces of {s}"]
               for s in SERVICES for tid in [sent[s]["trace_ids"]["request"]]), "Jaeger returned no traces"
    leaks = [(canary, source) for canary in pii.canaries() for source, text in sources.items() if canary in text]
    assert not leaks, "personal data got past redact-proxy:\n" + "\n".join(f"  {c!r} in {s}" for c, s in leaks)


@pytest.mark.timeout(600)
def test_stopping_the_proxy_fires_redact_proxy_down(stack, delivered):
    """Prometheus fires RedactProxyDown (for: 1m) and Alertmanager routes it to the
    critical receivers and the security team. Restarts the proxy afterwards."""
    assert stack.sinks is not None
    stack.stop_proxy()
    try:
        firing = stack.wait_for(
            "RedactProxyDown firing in Prometheus",
            lambda: [a for a in get_json(f"{stack.url('prometheus')}/api/v1/alerts")["data"]["alerts"]
                     if a["labels"]["alertname"] == "RedactProxyDown" and a["state"] == "firing"],
            timeout=240, interval=2)
        assert firing[0]["labels"]["severity"] == "critical"

        def routed():
            alerts = get_json(f"{stack.url('alertmanager')}/api/v2/alerts")
            for alert in alerts:
                if alert["labels"].get("alertname") == "RedactProxyDown":
                    return {r["name"] for r in alert["receivers"]}
            return None

        receivers = stack.wait_for("RedactProxyDown in Alertmanager", routed, timeout=120, interval=2)
        assert receivers == {"security-email", "pagerduty-and-slack"}, receivers

        def delivered_to_all():
            items = stack.sinks.inbox.snapshot()
            got = set()
            for item in items:
                if "RedactProxyDown" not in item.body:
                    continue
                if item.kind == "http":
                    got.add(item.where)
                elif item.kind == "smtp":
                    got.add(f"smtp:{item.where}")
            want = {"/pagerduty", "/slack", "smtp:security@e2e.invalid"}
            return want <= got and got

        stack.wait_for("RedactProxyDown delivered to PagerDuty, Slack and the security team's mail",
                       delivered_to_all, timeout=180, interval=2)
        pagerduty = next(i for i in stack.sinks.inbox.snapshot()
                         if i.where == "/pagerduty" and "RedactProxyDown" in i.body)
        event = json.loads(pagerduty.body)
        assert event["routing_key"] == "e2e-routing-key" and event["event_action"] == "trigger"
    finally:
        stack.start_proxy()
