"""The coverage semantics of SPEC 6: whole-field rules on free text, nested paths, keys as
data, every value type, JSON text."""

from __future__ import annotations

import json
import textwrap

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from redact_proxy.errors import PolicyError
from redact_proxy.policy import Level
from redact_proxy.policy.compile import compile_policy
from redact_proxy.policy.schema import parse
from redact_proxy.scrub import scrub
from redact_proxy.scrub.jsontext import MAX_CHARS, MAX_DEPTH
from scrub_support import ENV, H, av, kvs, pairs


def policy(text: str, env=ENV):
    return compile_policy(parse(textwrap.dedent(text).encode(), "p.yaml"), env)


def one_span(**fields) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    span = req.resource_spans.add().scope_spans.add().spans.add(trace_id=b"t" * 16, span_id=b"s" * 8)
    for name, value in fields.items():
        if name == "attributes":
            span.attributes.extend(kvs(value))
        elif name == "status_message":
            span.status.message = value
            span.status.code = 2
        else:
            setattr(span, name, value)
    return req


def span_of(req):
    return req.resource_spans[0].scope_spans[0].spans[0]


def one_log(body=None, attributes=None) -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    record = req.resource_logs.add().scope_logs.add().log_records.add()
    if body is not None:
        record.body.CopyFrom(av(body))
    if attributes:
        record.attributes.extend(kvs(attributes))
    return req


def record_of(req):
    return req.resource_logs[0].scope_logs[0].log_records[0]


def py(value):
    """An AnyValue as a Python value (kvlists as dicts)."""
    kind = value.WhichOneof("value")
    if kind == "kvlist_value":
        return {kv.key: py(kv.value) for kv in value.kvlist_value.values}
    if kind == "array_value":
        return [py(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


# --- whole-field rules ------------------------------------------------------------------

FIELD_RULES = """
version: 1
rules:
  - name: no-status-text
    action: delete
    fields: [status_message, severity_text]
  - name: fixed-state
    action: replace
    fields: [trace_state]
    replacement: 'redacted=1'
  - name: statement-names
    action: sanitize_sql
    fields: [span_name]
  - name: mask
    action: mask
    detectors: [email]
    targets: [status_message, metric_description, scope_name]
"""


def test_a_status_message_is_deleted_whole_and_counted():
    p = policy(FIELD_RULES)
    req = one_span(name="GET /x", status_message="KeyError: no account for ada@example.com")
    report = scrub("traces", req, p)
    assert span_of(req).status.message == ""
    assert span_of(req).status.code == 2  # the status itself stays
    assert report.redactions[0] == 1 and report.changed


def test_an_empty_field_is_not_a_redaction():
    p = policy(FIELD_RULES)
    req = one_span(name="GET /x")
    report = scrub("traces", req, p)
    assert not report.changed and sum(report.redactions) == 0


def test_replace_puts_the_fixed_text_and_masks_do_not_run_on_it():
    p = policy(FIELD_RULES)
    req = one_span(name="op", trace_state="vendor=user:ada@example.com")
    scrub("traces", req, p)
    assert span_of(req).trace_state == "redacted=1"


def test_a_span_name_that_is_a_statement_loses_its_literals():
    p = policy(FIELD_RULES)
    req = one_span(name="SELECT * FROM users WHERE email = 'ada@example.com'",
                   attributes={"db.system.name": "postgresql"})
    scrub("traces", req, p)
    name = span_of(req).name
    assert "ada@example.com" not in name and name.startswith("SELECT")


def test_a_span_name_that_is_no_statement_is_left_alone():
    p = policy(FIELD_RULES)
    for name in ("GET /rooms/{id}", "SELECT users", "HTTP GET"):
        req = one_span(name=name)
        report = scrub("traces", req, p)
        assert span_of(req).name == name and not report.changed


def test_metric_and_scope_metadata_are_masked():
    p = policy(FIELD_RULES)
    req = ExportMetricsServiceRequest()
    sm = req.resource_metrics.add().scope_metrics.add()
    sm.scope.name = "lib-for-ada@example.com"
    metric = sm.metrics.add(name="requests", description="per ada@example.com", unit="1")
    metric.gauge.data_points.add(as_int=1)
    scrub("metrics", req, p)
    assert "ada@example.com" not in req.SerializeToString().decode("latin-1")
    assert metric.name == "requests"


@pytest.mark.parametrize("rule, message", [
    ("action: delete\n    fields: [span_name]", "span_name is required by OTLP and cannot be deleted"),
    ("action: delete\n    fields: [nope]", "unknown field 'nope' for action delete"),
    ("action: sanitize_sql\n    fields: [status_message]", "unknown field 'status_message' for action sanitize_sql"),
    ("action: hash\n    fields: [span_name]", "unknown field for action hash"),
    ("action: replace", "action replace needs `keys:`, `patterns:` or `fields:`"),
])
def test_field_rules_are_checked_with_located_errors(rule, message):
    with pytest.raises(PolicyError) as info:
        policy(f"version: 1\nrules:\n  - name: r\n    {rule}\n")
    assert any(message in e and e.startswith("p.yaml:") for e in info.value.errors), info.value.errors


# --- nested data meets the rules for dotted keys ---------------------------------------------

NESTED = """
version: 1
rules:
  - name: hash-user-id
    action: hash
    keys: [user.id]
  - name: delete-user
    action: delete
    patterns: ['user\\..*', 'exception\\.message']
  - name: delete-err-message
    action: delete
    keys: [err.message, err.stack]
"""


def test_a_kvlist_attribute_meets_the_rules_for_its_dotted_paths():
    p = policy(NESTED)
    req = one_span(name="op", attributes={
        "user": {"id": "u-42", "email": "ada@example.com", "plan": None},
        "ctx": {"user": {"id": "u-7"}, "err": {"message": "boom ada", "code": 3}},
        "list": [{"user": {"email": "x@example.com"}}],
    })
    scrub("traces", req, p)
    got = {kv.key: py(kv.value) for kv in span_of(req).attributes}
    assert got == {
        "user": {"id": H("u-42")},  # user.plan is caught by user\..* too
        "ctx": {"user": {"id": H("u-7")}, "err": {"code": 3}},  # tails: user.id, err.message
        "list": [{"user": {}}],  # arrays add nothing to the path
    }


def test_file_order_decides_between_rules_matching_different_tails():
    p = policy("""
        version: 1
        rules:
          - name: keep-first
            action: hash
            keys: [id]
          - name: then-delete
            action: delete
            keys: [user.id]
    """)
    req = one_span(name="op", attributes={"user": {"id": "u"}})
    scrub("traces", req, p)
    assert py(span_of(req).attributes[0].value) == {"id": H("u")}


def test_a_structured_log_body_meets_the_rules_from_its_root():
    p = policy(NESTED)
    req = one_log(body={"msg": "login", "err": {"message": "no ada@example.com", "stack": "at x", "type": "E"},
                        "user": {"id": "u-1"}})
    scrub("logs", req, p)
    assert py(record_of(req).body) == {"msg": "login", "err": {"type": "E"}, "user": {"id": H("u-1")}}


def test_a_flat_top_level_key_is_matched_whole_not_by_tails():
    p = policy(NESTED)
    req = one_span(name="op", attributes={"app.user.id": "u", "app.err.message": "m"})
    scrub("traces", req, p)
    assert pairs(span_of(req).attributes) == {"app.user.id": "u", "app.err.message": "m"}


# --- keys are data ---------------------------------------------------------------------------

KEYS = """
version: 1
rules:
  - name: mask-keys
    action: mask
    detectors: [email, ipv4]
    targets: [keys, attributes]
    replacement: '{hash}'
"""


def test_keys_that_are_personal_data_become_their_hash():
    p = policy(KEYS)
    req = one_span(name="op", attributes={"ada@example.com": 3, "hits": {"203.0.113.7": 1, "ok": 2}})
    report = scrub("traces", req, p)
    attrs = span_of(req).attributes
    assert [kv.key for kv in attrs] == [H("ada@example.com"), "hits"]
    assert py(attrs[1].value) == {H("203.0.113.7"): 1, "ok": 2}
    assert report.redactions == [2]


# --- every value type --------------------------------------------------------------------------

VALUES = """
version: 1
rules:
  - name: mask
    action: mask
    detectors: [email, credit_card]
"""


def test_utf8_bytes_are_masked_as_text_and_stay_bytes():
    p = policy(VALUES)
    req = one_span(name="op", attributes={"b": b"from ada@example.com", "raw": b"\xff\xfeada@example.com"})
    scrub("traces", req, p)
    attrs = span_of(req).attributes
    assert attrs[0].value.bytes_value == b"from [REDACTED]"
    assert attrs[1].value.bytes_value == b"\xff\xfeada@example.com"  # not text: left to key rules


def test_an_integer_that_is_a_card_number_is_replaced():
    p = policy(VALUES)
    req = one_span(name="op", attributes={"card": 4111111111111111, "count": 1234, "ts": 1700000000000})
    report = scrub("traces", req, p)
    assert pairs(span_of(req).attributes) == {"card": "[REDACTED]", "count": 1234, "ts": 1700000000000}
    assert report.redactions == [1]


# --- JSON text ------------------------------------------------------------------------------------

JSON_RULES = NESTED + """
  - name: mask
    action: mask
    detectors: [email]
"""


def test_a_json_string_value_is_scrubbed_as_structured_data():
    p = policy(JSON_RULES)
    doc = {"user": {"id": "u-1", "email": "a@example.com"}, "note": "mail b@example.com", "n": [1, 2]}
    req = one_span(name="op", attributes={"payload": json.dumps(doc, indent=2)})
    scrub("traces", req, p)
    out = json.loads(span_of(req).attributes[0].value.string_value)
    # paths under an attribute start at its key: payload.user.id has the tail user.id
    assert out == {"user": {"id": H("u-1")}, "note": "mail [REDACTED]", "n": [1, 2]}


def test_untouched_json_keeps_its_bytes():
    p = policy(JSON_RULES)
    text = '{ "a": 1,  "b": [true, null] }'
    req = one_span(name="op", attributes={"payload": text})
    report = scrub("traces", req, p)
    assert span_of(req).attributes[0].value.string_value == text and not report.changed


def test_duplicate_json_members_are_all_scrubbed():
    p = policy(JSON_RULES)
    req = one_span(name="op", attributes={"p": '{"note": "a@example.com", "note": "fine"}'})
    scrub("traces", req, p)
    assert "a@example.com" not in span_of(req).attributes[0].value.string_value


def test_a_json_log_body_and_json_inside_json():
    p = policy(JSON_RULES)
    inner = json.dumps({"err": {"message": "x", "stack": "y"}})
    req = one_log(body=json.dumps({"level": 30, "msg": "hi", "ctx": inner}))
    scrub("logs", req, p)
    out = json.loads(record_of(req).body.string_value)
    assert out["level"] == 30 and json.loads(out["ctx"]) == {"err": {}}


@pytest.mark.parametrize("text", [
    "{not json a@example.com",
    '"a@example.com"',  # a JSON scalar is plain text
    "[" * (MAX_DEPTH + 1) + '"a@example.com"' + "]" * (MAX_DEPTH + 1),
    '{"k": "' + "x" * MAX_CHARS + ' a@example.com"}',
])
def test_text_that_is_not_json_or_over_the_limits_is_masked_as_text(text):
    p = policy(JSON_RULES)
    req = one_span(name="op", attributes={"p": text})
    scrub("traces", req, p)
    assert "a@example.com" not in span_of(req).attributes[0].value.string_value


def test_every_sanitizer_on_a_field_runs_in_file_order_and_a_delete_ends_the_list():
    p = policy("""
        version: 1
        rules:
          - name: urls
            action: sanitize_url
            path_ids: true
            fields: [span_name]
          - name: statements
            action: sanitize_sql
            fields: [span_name]
          - name: gone
            action: replace
            fields: [span_name]
            replacement: never
    """)
    # replace comes last, so it always applies: check the two sanitizers on their own first
    ops = p.text("traces", Level.SPAN, "span_name")
    assert [r.decision.rule for r in ops.rules] == [0, 1, 2]
    req = one_span(name="GET /users/42?email=a@example.com")
    report = scrub("traces", req, p)
    assert span_of(req).name == "never" and report.redactions == [1, 0, 1]
    p2 = policy("""
        version: 1
        rules:
          - name: urls
            action: sanitize_url
            path_ids: true
            fields: [span_name]
          - name: statements
            action: sanitize_sql
            fields: [span_name]
    """)
    for name, want, counts in [
        ("GET /users/42?email=a@example.com", "GET /users/{id}?email=REDACTED", [1, 0]),
        ("SELECT * FROM t WHERE a = 'x'", "SELECT * FROM t WHERE a = ?", [0, 1]),
    ]:
        req = one_span(name=name)
        report = scrub("traces", req, p2)
        assert (span_of(req).name, report.redactions) == (want, counts)
        assert p2.text("traces", Level.SPAN, "span_name").rule_touches(name, db_systems=False)
    assert not p2.text("traces", Level.SPAN, "span_name").rule_touches("GET /users/{id}", db_systems=False)
