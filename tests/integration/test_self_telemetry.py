"""The proxy's own metrics (telemetry.py, admin.py; SPEC section 7), scraped from the
admin port of a fresh proxy after known traffic, so every figure is exact."""

from __future__ import annotations

import hashlib
import json

import grpc

from integration_otlp import MARK, build_request, kvs, malformed_protobuf, to_otlp_json
from integration_support import POLICY, Answer, grpc_export
from opentelemetry.proto.trace.v1 import trace_pb2

SERIES = (
    "redact_proxy_received_items_total", "redact_proxy_requests_total", "redact_proxy_redactions_total",
    "redact_proxy_dropped_items_total", "redact_proxy_forwarded_items_total", "redact_proxy_upstream_errors_total",
    "redact_proxy_request_duration_seconds_bucket", "redact_proxy_redact_duration_seconds_bucket",
    "redact_proxy_inflight_requests", "redact_proxy_policy_reloads_total", "redact_proxy_policy_info",
)


def traces_with_health_check():
    """3 spans with the sensitive attributes (each with an event) + 1 health check."""
    request = build_request("traces", items=3)
    spans = request.resource_spans[0].scope_spans[0].spans
    spans.append(trace_pb2.Span(trace_id=spans[0].trace_id, span_id=b"\x01" * 8, name="GET /healthz",
                                attributes=kvs({"url.path": "/healthz"})))
    return request


def test_metrics_after_known_traffic(own_proxies, grpc_upstream, http_export):
    proxy = own_proxies(grpc_upstream.target, name="metrics")
    before = proxy.metrics()
    for name in SERIES:
        assert name in before.text, f"{name} is not exposed"
    assert before.value("redact_proxy_received_items_total") == 0

    # 1. gRPC traces: 4 spans in, the health check dropped, 3 forwarded. Attribute sets
    #    with the sensitive attributes: 1 resource + 3 spans + 3 events = 7, each with 2
    #    deleted and 2 hashed keys.
    assert grpc_export(proxy, "traces", traces_with_health_check()).code is grpc.StatusCode.OK
    # 2. OTLP-JSON logs over HTTP: 2 records; 1 resource + 2 records = 3 attribute sets,
    #    plus one deleted key inside each structured body.
    logs = json.dumps(to_otlp_json(build_request("logs", items=2))).encode()
    assert http_export(proxy, "logs", logs, content_type="application/json").status == 200
    # 3. A malformed body.
    assert http_export(proxy, "traces", malformed_protobuf("traces")).status == 400
    # 4. Upstream refuses a metrics batch of one data point.
    grpc_upstream.answer = Answer(grpc_code=grpc.StatusCode.UNAVAILABLE)
    assert grpc_export(proxy, "metrics", build_request("metrics")).code is grpc.StatusCode.UNAVAILABLE

    m = proxy.metrics()
    v = m.value
    assert v("redact_proxy_received_items_total", signal="traces", transport="grpc") == 4
    assert v("redact_proxy_received_items_total", signal="logs", transport="http") == 2
    assert v("redact_proxy_received_items_total", signal="metrics", transport="grpc") == 1
    assert v("redact_proxy_received_items_total", transport="http", signal="traces") == 0, "a 400 received nothing"
    assert v("redact_proxy_forwarded_items_total", signal="traces") == 3
    assert v("redact_proxy_forwarded_items_total", signal="logs") == 2
    assert v("redact_proxy_forwarded_items_total", signal="metrics") == 0
    assert v("redact_proxy_dropped_items_total", signal="traces", rule="drop-health-checks") == 1
    assert v("redact_proxy_dropped_items_total", signal="logs") == 0
    assert v("redact_proxy_redactions_total", signal="traces", rule="delete-personal", action="delete") == 14
    assert v("redact_proxy_redactions_total", signal="traces", rule="hash-identifiers", action="hash") == 14
    assert v("redact_proxy_redactions_total", signal="logs", rule="delete-personal", action="delete") == 8
    assert v("redact_proxy_redactions_total", signal="logs", rule="hash-identifiers", action="hash") == 6
    assert v("redact_proxy_requests_total", signal="traces", transport="grpc", code="OK") == 1
    assert v("redact_proxy_requests_total", signal="logs", transport="http", code="200") == 1
    assert v("redact_proxy_requests_total", signal="traces", transport="http", code="400") == 1
    assert v("redact_proxy_requests_total", signal="metrics", transport="grpc", code="UNAVAILABLE") == 1
    assert v("redact_proxy_requests_total") == 4
    assert v("redact_proxy_upstream_errors_total", signal="metrics") == 1
    assert v("redact_proxy_upstream_errors_total") == 1
    assert v("redact_proxy_request_duration_seconds_count", signal="traces", transport="grpc") == 1
    assert v("redact_proxy_request_duration_seconds_count", signal="logs", transport="http") == 1
    assert v("redact_proxy_request_duration_seconds_count", signal="traces", transport="http") == 1
    assert v("redact_proxy_request_duration_seconds_count") == 4
    assert v("redact_proxy_request_duration_seconds_sum") > 0
    assert v("redact_proxy_redact_duration_seconds_count", signal="traces") == 1
    assert v("redact_proxy_redact_duration_seconds_count", signal="logs") == 1
    assert v("redact_proxy_inflight_requests") == 0
    assert v("redact_proxy_policy_reloads_total") == 0
    sha = hashlib.sha256(POLICY.read_bytes()).hexdigest()
    assert m.labelsets("redact_proxy_policy_info") == [{"sha256": sha}]
    assert v("redact_proxy_policy_info", sha256=sha) == 1
    # Labels carry codes and rule names, never telemetry content.
    assert MARK not in m.text
    assert "/healthz" not in m.text
    for labels in m.labelsets("redact_proxy_upstream_errors_total"):
        assert labels["code"] == "UNAVAILABLE"
