"""Value actions through ``redact_proxy.scrub.scrub``: ``mask`` (attribute strings at every
level, inside arrays and kvlists; span names, event names, log bodies), ``sanitize_sql`` and
``sanitize_url`` as key actions, and how they combine with the key rules (SPEC section 6,
steps 2 and 4: key rules decide first; masks rewrite what survived un-hashed).

Policies are compiled from small YAML documents; hashes are recomputed here with ``hmac``,
not with the proxy's hasher."""

from __future__ import annotations

import textwrap

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from redact_proxy.errors import PolicyError
from redact_proxy.policy.compile import compile_policy
from redact_proxy.policy.schema import parse
from redact_proxy.scrub import scrub
from scrub_support import ENV, H, av, kvs

EMAIL = "ada.lovelace@example.com"
OTHER_EMAIL = "grace@example.org"


def compiled(text: str, env: dict | None = None):
    doc = parse(textwrap.dedent(text).lstrip("\n").encode(), "p.yaml")
    return compile_policy(doc, ENV if env is None else env)


# --- AnyValue <-> Python -------------------------------------------------------------------


def py(v: AnyValue):
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [py(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: py(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind) if kind else None


def as_dict(attrs) -> dict:
    return {kv.key: py(kv.value) for kv in attrs}


# --- one request per signal, the same attributes at every level ------------------------------


class Batch:
    """One export request with ``attributes`` at every level of its signal, plus the
    names and bodies mask targets can reach. ``levels[name]`` is the live attribute list."""

    def __init__(self, signal: str, attributes: dict, *, name: str = "", body=None, body_text: str = ""):
        self.signal = signal
        self.levels: dict[str, object] = {}
        a = lambda: kvs(attributes)  # noqa: E731
        if signal == "traces":
            self.request = ExportTraceServiceRequest()
            rs = self.request.resource_spans.add()
            rs.resource.attributes.extend(a())
            ss = rs.scope_spans.add()
            ss.scope.attributes.extend(a())
            self.span = ss.spans.add(name=name, attributes=a())
            self.event = self.span.events.add(name=name, attributes=a())
            link = self.span.links.add(attributes=a())
            self.levels = {"resource": rs.resource.attributes, "scope": ss.scope.attributes,
                           "span": self.span.attributes, "event": self.event.attributes,
                           "link": link.attributes}
        elif signal == "metrics":
            self.request = ExportMetricsServiceRequest()
            rm = self.request.resource_metrics.add()
            rm.resource.attributes.extend(a())
            sm = rm.scope_metrics.add()
            sm.scope.attributes.extend(a())
            point = sm.metrics.add(name=name).gauge.data_points.add(as_int=1, attributes=a())
            exemplar = point.exemplars.add(as_int=1, filtered_attributes=a())
            self.levels = {"resource": rm.resource.attributes, "scope": sm.scope.attributes,
                           "datapoint": point.attributes, "exemplar": exemplar.filtered_attributes}
        else:
            self.request = ExportLogsServiceRequest()
            rl = self.request.resource_logs.add()
            rl.resource.attributes.extend(a())
            sl = rl.scope_logs.add()
            sl.scope.attributes.extend(a())
            self.structured = sl.log_records.add(event_name=name, attributes=a(),
                                                 body=av(body if body is not None else {}))
            self.text = sl.log_records.add(event_name=name, body=AnyValue(string_value=body_text))
            self.levels = {"resource": rl.resource.attributes, "scope": sl.scope.attributes,
                           "log": self.structured.attributes}

    def scrub(self, policy):
        return scrub(self.signal, self.request, policy)


LEVELS = {
    "traces": ("resource", "scope", "span", "event", "link"),
    "metrics": ("resource", "scope", "datapoint", "exemplar"),
    "logs": ("resource", "scope", "log"),
}
ALL_LEVELS = [(s, lv) for s, levels in LEVELS.items() for lv in levels]

# Personal data in strings at every depth an attribute value has.
SENT = {
    "note": f"contact {EMAIL} today",
    "tags": ["plain", f"to {EMAIL}", 7, ["nested", EMAIL]],
    "ctx": {"who": EMAIL, "deeper": {"list": [f"cc {EMAIL}"]}, "n": 3},
    "count": 5,
    "flag": True,
}
MASKED = {
    "note": "contact [REDACTED] today",
    "tags": ["plain", "to [REDACTED]", 7, ["nested", "[REDACTED]"]],
    "ctx": {"who": "[REDACTED]", "deeper": {"list": ["cc [REDACTED]"]}, "n": 3},
    "count": 5,
    "flag": True,
}

MASK_EMAIL = "version: 1\nrules:\n  - name: mask-email\n    action: mask\n    detectors: [email]\n"


# --- mask on attributes ------------------------------------------------------------------------


@pytest.mark.parametrize("signal", LEVELS)
def test_mask_rewrites_strings_at_every_level_inside_arrays_and_kvlists(signal):
    batch = Batch(signal, SENT)
    report = batch.scrub(compiled(MASK_EMAIL))
    assert report.changed
    for level, attrs in batch.levels.items():
        assert as_dict(attrs) == MASKED, level


@pytest.mark.parametrize("signal, level", ALL_LEVELS)
def test_mask_restricted_to_one_signal_and_level_touches_nothing_else(signal, level):
    policy = compiled(MASK_EMAIL + f"    signals: [{signal}]\n    levels: [{level}]\n")
    for other in LEVELS:
        batch = Batch(other, SENT)
        report = batch.scrub(policy)
        for lv, attrs in batch.levels.items():
            want = MASKED if (other, lv) == (signal, level) else SENT
            assert as_dict(attrs) == want, (other, lv)
        assert report.changed is (other == signal)


def test_mask_with_keys_touches_only_those_keys():
    policy = compiled(MASK_EMAIL + "    keys: [note, tags]\n    patterns: ['free\\..*']\n")
    batch = Batch("traces", {
        "note": f"from {EMAIL}",
        "tags": [EMAIL, "x"],
        "free.text": f"cc {EMAIL}",
        "other": f"from {EMAIL}",  # identical PII under a key the rule does not name
        "xfree.text": f"cc {EMAIL}",  # patterns are full matches
    }, name=f"span {EMAIL}")
    batch.scrub(policy)
    assert as_dict(batch.levels["span"]) == {
        "note": "from [REDACTED]",
        "tags": ["[REDACTED]", "x"],
        "free.text": "cc [REDACTED]",
        "other": f"from {EMAIL}",
        "xfree.text": f"cc {EMAIL}",
    }
    assert batch.span.name == f"span {EMAIL}", "targets default to attributes"


def test_targets_default_to_attributes_only():
    policy = compiled(MASK_EMAIL)
    traces = Batch("traces", {"note": EMAIL}, name=f"GET /users/{EMAIL}")
    logs = Batch("logs", {"note": EMAIL}, name=f"login {EMAIL}", body={"msg": EMAIL}, body_text=f"hi {EMAIL}")
    traces.scrub(policy)
    logs.scrub(policy)
    assert as_dict(traces.levels["span"]) == as_dict(logs.levels["log"]) == {"note": "[REDACTED]"}
    assert traces.span.name == traces.event.name == f"GET /users/{EMAIL}"
    assert logs.structured.event_name == logs.text.event_name == f"login {EMAIL}"
    assert py(logs.structured.body) == {"msg": EMAIL}
    assert logs.text.body.string_value == f"hi {EMAIL}"


BODY = {"msg": f"order by {EMAIL}", "items": [EMAIL, 2, {"cc": [f"x {OTHER_EMAIL}"]}], "n": 1, "ok": False}
MASKED_BODY = {"msg": "order by [REDACTED]", "items": ["[REDACTED]", 2, {"cc": ["x [REDACTED]"]}], "n": 1, "ok": False}


@pytest.mark.parametrize("target", ["attributes", "span_name", "event_name", "log_body"])
def test_each_target_reaches_exactly_its_own_strings(target):
    policy = compiled(MASK_EMAIL + f"    targets: [{target}]\n")
    name = f"GET /users/{EMAIL}"
    traces = Batch("traces", {"note": EMAIL}, name=name)
    logs = Batch("logs", {"note": EMAIL}, name=name, body=BODY, body_text=f"signup {EMAIL} ok")
    traces.scrub(policy)
    logs.scrub(policy)
    masked_name = "GET /users/[REDACTED]"
    attrs_want = {"note": "[REDACTED]" if target == "attributes" else EMAIL}
    for attrs in (*traces.levels.values(), *logs.levels.values()):
        assert as_dict(attrs) == attrs_want
    assert traces.span.name == (masked_name if target == "span_name" else name)
    # event_name: span events and log records' event_name alike.
    for got in (traces.event.name, logs.structured.event_name, logs.text.event_name):
        assert got == (masked_name if target == "event_name" else name)
    # log_body: string bodies and every string inside structured bodies.
    assert py(logs.structured.body) == (MASKED_BODY if target == "log_body" else BODY)
    assert logs.text.body.string_value == ("signup [REDACTED] ok" if target == "log_body" else f"signup {EMAIL} ok")


def test_name_targets_follow_the_rules_signals_and_levels():
    name = f"call {EMAIL}"
    masked = "call [REDACTED]"
    # span_name lives at level span, event_name at event (traces) and log (logs).
    policy = compiled(MASK_EMAIL + "    targets: [span_name, event_name, log_body]\n    levels: [event]\n")
    traces = Batch("traces", {}, name=name)
    logs = Batch("logs", {}, name=name, body_text=name)
    traces.scrub(policy)
    logs.scrub(policy)
    assert (traces.span.name, traces.event.name) == (name, masked)
    assert (logs.structured.event_name, logs.text.body.string_value) == (name, name)

    policy = compiled(MASK_EMAIL + "    targets: [event_name, log_body]\n    signals: [logs]\n")
    traces = Batch("traces", {}, name=name)
    logs = Batch("logs", {}, name=name, body_text=name)
    traces.scrub(policy)
    logs.scrub(policy)
    assert traces.event.name == name
    assert (logs.structured.event_name, logs.text.event_name, logs.text.body.string_value) == (masked, masked, masked)


# --- replacement ---------------------------------------------------------------------------------


def test_hash_replacement_is_the_keyed_hash_of_the_matched_text():
    policy = compiled("""
        version: 1
        rules:
          - name: mask-email
            action: mask
            detectors: [email]
            targets: [attributes, span_name]
            replacement: '<{hash}>'
    """)
    batch = Batch("traces", {"note": f"from {EMAIL} to {OTHER_EMAIL}", "again": EMAIL}, name=f"mail {EMAIL}")
    batch.scrub(policy)
    assert as_dict(batch.levels["span"]) == {
        "note": f"from <{H(EMAIL)}> to <{H(OTHER_EMAIL)}>",
        "again": f"<{H(EMAIL)}>",  # the same address gives the same hash: correlation survives
    }
    assert batch.span.name == f"mail <{H(EMAIL)}>"


def test_hash_replacement_needs_the_hash_key():
    text = """
        version: 1
        rules:
          - name: mask-email
            action: mask
            detectors: [email]
            replacement: '{hash}'
    """
    with pytest.raises(PolicyError) as info:
        compiled(text, env={})
    assert "REDACT_PROXY_HASH_KEY" in str(info.value.errors)


# --- masks and key rules --------------------------------------------------------------------------

# A mask an operator could well write: long hex strings look like tokens. A keyed hash is a
# long hex string too; the key rule's output must not be masked again (SPEC 6 step 4:
# "mask rules rewrite matching substrings of surviving, un-hashed string values").
HASH_AND_MASK = """
    version: 1
    rules:
      - name: delete-email
        action: delete
        keys: [user.email]
      - name: hash-ids
        action: hash
        keys: [user.id]
      - name: mask-tokens
        action: mask
        regexes: ['[0-9a-f]{16,}']
        detectors: [email]
        targets: [attributes, log_body]
"""
TOKEN = "deadbeefdeadbeef0123"


def test_a_hashed_attribute_is_not_masked_and_a_deleted_one_not_counted():
    policy = compiled(HASH_AND_MASK)
    batch = Batch("traces", {"user.id": "u-1", "user.email": EMAIL, "note": f"t={TOKEN}"})
    report = batch.scrub(policy)
    for attrs in batch.levels.values():
        assert as_dict(attrs) == {"user.id": H("u-1"), "note": "t=[REDACTED]"}
    assert report.redactions == [5, 5, 5]  # one deletion, hash, mask per level


def test_a_hashed_key_inside_a_kvlist_is_not_masked():
    policy = compiled(HASH_AND_MASK)
    batch = Batch("traces", {"ctx": {"user.id": "u-1", "user.email": EMAIL, "note": f"t={TOKEN}"}})
    batch.scrub(policy)
    assert as_dict(batch.levels["span"]) == {"ctx": {"user.id": H("u-1"), "note": "t=[REDACTED]"}}


def test_a_hashed_key_inside_a_structured_log_body_is_not_masked():
    policy = compiled(HASH_AND_MASK)
    batch = Batch("logs", {}, body={"user.id": "u-1", "user.email": EMAIL, "msg": f"t={TOKEN} by {EMAIL}"})
    batch.scrub(policy)
    assert py(batch.structured.body) == {"user.id": H("u-1"), "msg": "t=[REDACTED] by [REDACTED]"}


def test_masks_run_after_key_rules_wherever_they_stand_in_the_file():
    policy = compiled("""
        version: 1
        rules:
          - name: mask-email
            action: mask
            detectors: [email]
          - name: hash-ids
            action: hash
            keys: [user.id]
    """)
    batch = Batch("logs", {"user.id": EMAIL, "note": EMAIL})
    batch.scrub(policy)
    # The hash is of the original value, not of "[REDACTED]".
    assert as_dict(batch.levels["log"]) == {"user.id": H(EMAIL), "note": "[REDACTED]"}


@pytest.mark.parametrize("order, expected", [
    (("first", "second"), "id=[T]"),  # the second rule sees the first one's output
    (("second", "first"), "id=tok-42"),
])
def test_mask_rules_apply_in_sequence_in_file_order(order, expected):
    rules = {
        "first": "  - name: first\n    action: mask\n    regexes: ['secret-[a-z]+']\n    replacement: tok-42\n",
        "second": "  - name: second\n    action: mask\n    regexes: ['tok-[0-9]+']\n    replacement: '[T]'\n",
    }
    policy = compiled("version: 1\nrules:\n" + "".join(rules[n] for n in order))
    batch = Batch("metrics", {"note": "id=secret-abc"})
    report = batch.scrub(policy)
    assert as_dict(batch.levels["datapoint"]) == {"note": expected}
    assert report.redactions == ([4, 4] if order == ("first", "second") else [0, 4])


def test_redaction_counters_per_rule():
    policy = compiled("""
        version: 1
        rules:
          - name: delete-email
            action: delete
            keys: [user.email]
          - name: mask-email
            action: mask
            detectors: [email]
            targets: [attributes, span_name]
          - name: mask-ip
            action: mask
            detectors: [ipv4]
    """)
    req = ExportTraceServiceRequest()
    spans = req.resource_spans.add().scope_spans.add().spans
    spans.add(name=f"mail {EMAIL}", attributes=kvs({
        "user.email": EMAIL,
        "a": f"{EMAIL} and {OTHER_EMAIL}",  # two matches in one value: one masked value
        "b": EMAIL,
        "c": "nothing here",
    }))
    spans.add(name="plain", attributes=kvs({"b": OTHER_EMAIL}))
    report = scrub("traces", req, policy)
    assert report.redactions == [1, 4, 0]  # delete: 1; masks: a, b, span name, b again; ipv4: none
    assert report.dropped == [0, 0, 0]


# --- sanitize_sql / sanitize_url as key actions ----------------------------------------------------

SANITIZE = """
    version: 1
    rules:
      - name: sql
        action: sanitize_sql
        keys: [db.statement]
      - name: url
        action: sanitize_url
        keys: [url.full]
      - name: url-ids
        action: sanitize_url
        keys: [http.target]
        path_ids: true
"""
SQL = "SELECT * FROM users WHERE email = 'a@b.c' AND id IN (1, 2, 3)"
SQL_OUT = "SELECT * FROM users WHERE email = ? AND id IN (?)"
URL = "https://bob:pw@h.example/rooms/42?token=abc#frag"


@pytest.mark.parametrize("signal", LEVELS)
def test_sanitizers_rewrite_strings_arrays_and_bytes_at_every_level(signal):
    batch = Batch(signal, {
        "db.statement": SQL,
        "url.full": [URL, "/rooms/7?q=ada"],
        "http.target": URL.encode(),  # bytes are read as UTF-8 and become a string
        "ctx": {"db.statement": ["UPDATE t SET name = 'bob' WHERE id = 7", 3]},  # any depth
        "route": "/rooms/:id",
    })
    report = batch.scrub(compiled(SANITIZE))
    n = len(batch.levels)
    for level, attrs in batch.levels.items():
        assert as_dict(attrs) == {
            "db.statement": SQL_OUT,
            "url.full": ["https://h.example/rooms/42?token=REDACTED", "/rooms/7?q=REDACTED"],
            "http.target": "https://h.example/rooms/{id}?token=REDACTED",
            "ctx": {"db.statement": ["UPDATE t SET name = ? WHERE id = ?", 3]},
            "route": "/rooms/:id",
        }, level
    assert report.redactions == [2 * n, n, n]


def test_sanitized_values_are_still_masked():
    policy = compiled(SANITIZE + """
      - name: mask-email
        action: mask
        detectors: [email]
    """)
    batch = Batch("traces", {"url.full": f"https://h.example/users/{EMAIL}/profile?x=1"})
    report = batch.scrub(policy)
    assert as_dict(batch.levels["span"]) == {"url.full": "https://h.example/users/[REDACTED]/profile?x=REDACTED"}
    assert report.redactions == [0, 5, 0, 5]


def test_sanitized_sql_keeps_its_shape_under_every_detector():
    # Masks run on sanitized values too; what sanitize_sql leaves (keywords, identifiers,
    # operators, ?) is no personal data and must come through the detectors intact.
    policy = compiled(SANITIZE + """
      - name: mask-all
        action: mask
        detectors: [email, ipv4, ipv6, credit_card, iban, jwt, bearer_token, phone]
    """)
    statements = {
        "SELECT * FROM sessions WHERE token = 'eyJhbGciOiJIUzI1NiJ9.e30.x' AND ip = '10.0.0.1'":
            "SELECT * FROM sessions WHERE token = ? AND ip = ?",
        "UPDATE auth SET basic = 'dXNlcjpwYXNz', phone = '+1 555 123 4567' WHERE id = 7":
            "UPDATE auth SET basic = ?, phone = ? WHERE id = ?",
    }
    batch = Batch("traces", {"db.statement": list(statements)})
    batch.scrub(policy)
    assert as_dict(batch.levels["span"]) == {"db.statement": list(statements.values())}


def test_a_sanitize_rule_first_in_file_order_wins_over_a_later_hash():
    policy = compiled("""
        version: 1
        rules:
          - name: sql
            action: sanitize_sql
            keys: [db.statement]
          - name: hash-all
            action: hash
            patterns: ['db\\..*']
    """)
    batch = Batch("logs", {"db.statement": SQL, "db.user": "app"})
    batch.scrub(policy)
    assert as_dict(batch.levels["log"]) == {"db.statement": SQL_OUT, "db.user": H("app")}
