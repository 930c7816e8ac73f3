"""What the walk reads, on hand-made requests: JSON text and kvlists as nested keys, the
policy's own work left out, a reload starting over, and the field cap."""

from __future__ import annotations

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from redact_proxy.audit import Auditor
from redact_proxy.audit.ledger import OTHER_FIELDS
from redact_proxy.scrub import scrub

from test_ledger import policy


def request(attrs: dict) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add(name="op", trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
    for key, value in attrs.items():
        kv = span.attributes.add(key=key)
        if isinstance(value, dict):
            kv.value.kvlist_value.SetInParent()
            for k, v in value.items():
                kv.value.kvlist_value.values.add(key=k).value.string_value = v
        else:
            kv.value.string_value = value
    return req


def audited(auditor: Auditor, attrs: dict) -> dict:
    req = request(attrs)
    auditor.observe("traces", req, scrub("traces", req, auditor.ledger.policy))
    return {(f["field"], f["kind"]): f for f in auditor.snapshot()["findings"]}


def test_json_text_and_kvlists_are_read_as_nested_keys():
    found = audited(Auditor(policy()), {
        "app.payload": '{"order": {"card": "4111 1111 1111 1111"}, "contact": "ada@example.com"}',
        "app.map": {"ip": "10.1.2.3"},
    })
    assert ("attributes.app.payload.order.card", "credit_card") in found
    assert ("attributes.app.map.ip", "ipv4") in found
    # The policy masks e-mails in attributes, nested ones included: nothing to report.
    assert not any(kind == "email" for _, kind in found)


def test_a_reload_starts_over():
    auditor = Auditor(policy())
    assert audited(auditor, {"app.phone": "+44 20 7946 0958"})
    auditor.set_policy(policy())
    snap = auditor.snapshot()
    assert snap["findings"] == [] and snap["batches"] == 0


def test_fields_past_the_cap_are_pooled():
    auditor = Auditor(policy(), max_fields=16)  # 10 of them the free-text fields of traces
    audited(auditor, {f"app.k{i}": "+44 20 7946 0958" for i in range(20)})
    snap = auditor.snapshot()
    assert snap["limits"]["fields_tracked"] <= 16 + 1
    pooled = [f for f in snap["fields"] if f["field"] == OTHER_FIELDS]
    assert pooled and pooled[0]["fields_pooled"] >= 10
    assert pooled[0]["findings"]["phone"] >= 10


def test_every_free_text_field_of_the_field_table_is_read():
    """Each target of fields.TARGET_LEVELS (but the attribute values and keys, read as
    attributes.<key>) is audited: a UUID planted in each one is found there."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    from redact_proxy.fields import TARGET_LEVELS

    uid = "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"

    def common(resource_container, scope_container):
        resource_container.schema_url = uid
        resource_container.resource.entity_refs.add(type=uid, id_keys=[uid], description_keys=[uid])
        scope_container.schema_url = uid
        scope_container.scope.name, scope_container.scope.version = uid, uid

    traces = ExportTraceServiceRequest()
    rs = traces.resource_spans.add()
    ss = rs.scope_spans.add()
    common(rs, ss)
    span = ss.spans.add(name=uid, trace_id=b"\x01" * 16, span_id=b"\x02" * 8, trace_state=uid)
    span.status.message = uid
    span.events.add(name=uid)
    span.links.add(trace_id=b"\x03" * 16, span_id=b"\x04" * 8, trace_state=uid)
    metrics = ExportMetricsServiceRequest()
    rm = metrics.resource_metrics.add()
    sm = rm.scope_metrics.add()
    common(rm, sm)
    sm.metrics.add(name=uid, description=uid, unit=uid).gauge.data_points.add(as_int=1)
    logs = ExportLogsServiceRequest()
    rl = logs.resource_logs.add()
    sl = rl.scope_logs.add()
    common(rl, sl)
    sl.log_records.add(severity_text=uid, event_name=uid).body.string_value = uid
    auditor = Auditor(policy())
    for signal, req in (("traces", traces), ("metrics", metrics), ("logs", logs)):
        auditor.observe(signal, req, scrub(signal, req, auditor.ledger.policy))
    found = {(f["signal"], f["level"], f["field"]) for f in auditor.snapshot()["findings"] if f["kind"] == "uuid"}
    for target, places in TARGET_LEVELS.items():
        for signal, level in places:
            assert (signal, level, target) in found, (signal, level, target)
