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
    auditor = Auditor(policy(), max_fields=8)
    audited(auditor, {f"app.k{i}": "+44 20 7946 0958" for i in range(20)})
    snap = auditor.snapshot()
    assert snap["limits"]["fields_tracked"] <= 8 + 1
    pooled = [f for f in snap["fields"] if f["field"] == OTHER_FIELDS]
    assert pooled and pooled[0]["fields_pooled"] >= 10
    assert pooled[0]["findings"]["phone"] >= 10
