"""Reading a scrubbed export request into the ledger: every attribute (nested keys by
their dotted path, JSON text as structured data, as the scrubber reads them) and every
free-text field of ``fields.TARGET_LEVELS`` (span, event, scope and metric names, status
messages, log bodies, trace_state, schema_urls, entity refs, ...), under its target name.

Strategy: one walk per signal over the request *as the scrub left it*, levels named as
the policy names them. A field's plan is looked up once per key (``Ledger`` memoises
it); each value then costs its checks and nothing else. The walk holds the ledger's
lock for the whole request, so ``/audit`` never reads a half-counted batch.
"""

from __future__ import annotations

import json

from redact_proxy.audit.ledger import Ledger, Plan
from redact_proxy.policy import Level
from redact_proxy.policy.compile import join
from redact_proxy.scrub.jsontext import MAX_CHARS, MAX_DEPTH, looks_like

_R, _S = Level.RESOURCE, Level.SCOPE


def observe(ledger: Ledger, signal: str, request, report) -> dict[tuple[str, str], int]:
    """Count what survived in one scrubbed ``request`` (``report``: the scrub's Report);
    returns this request's findings by (level, kind)."""
    combos: dict[tuple[str, tuple[str, ...]], int] = {}  # (level, kinds) -> n, as the ledger tallies
    with ledger.lock():
        _WALKS[signal](ledger, request, combos)
        found: dict[tuple[str, str], int] = {}
        for (level, kinds), n in combos.items():
            for kind in kinds:
                found[(level, kind)] = found.get((level, kind), 0) + n
        ledger.items[signal] += report.items_out
        ledger.batches += 1
        applied = ledger.applied
        if len(applied) == len(report.redactions):  # the same policy (a reload may race)
            for i, (n, m) in enumerate(zip(report.redactions, report.dropped, strict=True)):
                if n or m:
                    applied[i] += n + m
        ledger.add_totals(signal, found)
    return found


def _attrs(ledger: Ledger, signal: str, level: Level, kvs, found: dict) -> None:
    if not kvs:
        return
    memo = ledger.plan_memo(signal, level.value, "attributes")
    text = ledger.text
    for kv in kvs:
        key = kv.key
        plan = memo.get(key)
        if plan is None:
            plan = memo[key] = ledger.key_plan(signal, level, None, "attributes", key, ())
        if plan.key_kinds:
            ledger.key(plan, key, found)
        value = kv.value
        s = value.string_value
        if s:  # the usual value, inline (a non-empty string_value is the one set)
            head = s[:1]
            if plan.skip or not (head == "{" or head == "[" or (head.isspace() and looks_like(s))):
                text(plan, s, found)
            else:
                _json(ledger, signal, level, plan, s, key, found, 0)
        else:
            _value(ledger, signal, level, plan, value, key, found)


def _value(
    ledger: Ledger, signal: str, level: Level, plan: Plan, value, path: str, found: dict, space: str = "nested"
) -> None:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        text = value.string_value
        if plan.skip or not looks_like(text):
            ledger.text(plan, text, found)
        else:
            _json(ledger, signal, level, plan, text, path, found, 0, space)
    elif kind == "int_value":
        ledger.digits(plan, value.int_value, found)
    elif kind == "kvlist_value":
        ledger.other(plan)
        if not plan.skip:
            _kvlist(ledger, signal, level, plan, value.kvlist_value.values, path, found, space)
    elif kind == "array_value":
        for item in value.array_value.values:
            _value(ledger, signal, level, plan, item, path, found, space)
    elif kind == "bytes_value":
        try:
            ledger.text(plan, value.bytes_value.decode("utf-8"), found)
        except UnicodeDecodeError:
            ledger.other(plan)  # not text: nothing to read in it
    elif kind is not None:
        ledger.other(plan)


def _nested(ledger: Ledger, signal: str, level: Level, parent: Plan, path: str, key: str, space: str) -> Plan:
    memo = ledger.plan_memo(signal, level.value, space)
    plan = memo.get((path, key))
    if plan is None:
        plan = memo[(path, key)] = ledger.key_plan(signal, level, path, parent.field.path, key, parent.masks)
    return plan


def _kvlist(
    ledger: Ledger, signal: str, level: Level, parent: Plan, kvs, path: str, found: dict, space: str = "nested"
) -> None:
    for kv in kvs:
        plan = _nested(ledger, signal, level, parent, path, kv.key, space)
        if plan.key_kinds:
            ledger.key(plan, kv.key, found)
        _value(ledger, signal, level, plan, kv.value, join(path, kv.key), found, space)


class _Members(list):
    """A JSON object as its (key, value) members, duplicates kept (as jsontext reads it)."""


def _json(
    ledger: Ledger,
    signal: str,
    level: Level,
    plan: Plan,
    text: str,
    path: str,
    found: dict,
    depth: int,
    space: str = "nested",
) -> None:
    tree = None
    if len(text) <= MAX_CHARS and depth < MAX_DEPTH:
        try:
            tree = json.loads(text, object_pairs_hook=_Members)
        except (ValueError, RecursionError):
            tree = None
    if not isinstance(tree, list):  # not JSON (or a bare scalar): text like any other
        ledger.text(plan, text, found)
        return
    _tree(ledger, signal, level, plan, tree, path, found, depth, space)


def _tree(
    ledger: Ledger, signal: str, level: Level, plan: Plan, node, path: str, found: dict, depth: int, space: str
) -> None:
    if depth >= MAX_DEPTH:
        return
    if isinstance(node, _Members):
        ledger.other(plan)
        for key, value in node:
            key = str(key)
            child = _nested(ledger, signal, level, plan, path, key, space)
            if child.key_kinds:
                ledger.key(child, key, found)
            _tree(ledger, signal, level, child, value, join(path, key), found, depth + 1, space)
    elif isinstance(node, list):
        for item in node:
            _tree(ledger, signal, level, plan, item, path, found, depth + 1, space)
    elif isinstance(node, str):
        if not plan.skip and looks_like(node):
            _json(ledger, signal, level, plan, node, path, found, depth + 1, space)
        else:
            ledger.text(plan, node, found)
    elif isinstance(node, int) and not isinstance(node, bool):
        ledger.digits(plan, node, found)
    elif node is not None:
        ledger.other(plan)


def _text(ledger: Ledger, plan: Plan, text: str, found: dict) -> None:
    if text:
        ledger.text(plan, text, found)


class _Common:
    """The plans of what every signal has: resource (attributes, schema_url, entity refs)
    and scope (attributes, name, version, schema_url)."""

    __slots__ = ("signal", "schema_r", "entity", "name", "version", "schema_s")

    def __init__(self, ledger: Ledger, signal: str):
        self.signal = signal
        self.schema_r = ledger.text_plan(signal, _R, "schema_url")
        self.entity = ledger.text_plan(signal, _R, "entity_ref")
        self.name = ledger.text_plan(signal, _S, "scope_name")
        self.version = ledger.text_plan(signal, _S, "scope_version")
        self.schema_s = ledger.text_plan(signal, _S, "schema_url")

    def resource(self, ledger: Ledger, container, found: dict) -> None:
        resource = container.resource
        _attrs(ledger, self.signal, _R, resource.attributes, found)
        _text(ledger, self.schema_r, container.schema_url, found)
        for ref in resource.entity_refs:
            _text(ledger, self.entity, ref.type, found)
            for key in (*ref.id_keys, *ref.description_keys):
                _text(ledger, self.entity, key, found)
            _text(ledger, self.schema_r, ref.schema_url, found)

    def scope(self, ledger: Ledger, container, found: dict) -> None:
        scope = container.scope
        _attrs(ledger, self.signal, _S, scope.attributes, found)
        _text(ledger, self.name, scope.name, found)
        _text(ledger, self.version, scope.version, found)
        _text(ledger, self.schema_s, container.schema_url, found)


def _traces(ledger: Ledger, request, found: dict) -> None:
    common = _Common(ledger, "traces")
    name = ledger.text_plan("traces", Level.SPAN, "span_name")
    status = ledger.text_plan("traces", Level.SPAN, "status_message")
    state = ledger.text_plan("traces", Level.SPAN, "trace_state")
    event_name = ledger.text_plan("traces", Level.EVENT, "event_name")
    link_state = ledger.text_plan("traces", Level.LINK, "trace_state")
    for rs in request.resource_spans:
        common.resource(ledger, rs, found)
        for ss in rs.scope_spans:
            common.scope(ledger, ss, found)
            text = ledger.text
            for span in ss.spans:
                _attrs(ledger, "traces", Level.SPAN, span.attributes, found)
                text(name, span.name, found)
                if span.HasField("status") and span.status.message:
                    text(status, span.status.message, found)
                if span.trace_state:
                    text(state, span.trace_state, found)
                for event in span.events:
                    _attrs(ledger, "traces", Level.EVENT, event.attributes, found)
                    _text(ledger, event_name, event.name, found)
                for link in span.links:
                    _attrs(ledger, "traces", Level.LINK, link.attributes, found)
                    _text(ledger, link_state, link.trace_state, found)


def _points(metric):
    kind = metric.WhichOneof("data")
    return getattr(metric, kind).data_points if kind else ()


def _metrics(ledger: Ledger, request, found: dict) -> None:
    common = _Common(ledger, "metrics")
    name = ledger.text_plan("metrics", Level.DATAPOINT, "metric_name")
    description = ledger.text_plan("metrics", Level.DATAPOINT, "metric_description")
    unit = ledger.text_plan("metrics", Level.DATAPOINT, "metric_unit")
    for rm in request.resource_metrics:
        common.resource(ledger, rm, found)
        for sm in rm.scope_metrics:
            common.scope(ledger, sm, found)
            for metric in sm.metrics:
                _attrs(ledger, "metrics", Level.DATAPOINT, metric.metadata, found)
                ledger.text(name, metric.name, found)
                _text(ledger, description, metric.description, found)
                _text(ledger, unit, metric.unit, found)
                for point in _points(metric):
                    _attrs(ledger, "metrics", Level.DATAPOINT, point.attributes, found)
                    for exemplar in getattr(point, "exemplars", ()):
                        _attrs(ledger, "metrics", Level.EXEMPLAR, exemplar.filtered_attributes, found)


def _logs(ledger: Ledger, request, found: dict) -> None:
    common = _Common(ledger, "logs")
    body = ledger.text_plan("logs", Level.LOG, "log_body")
    event_name = ledger.text_plan("logs", Level.LOG, "event_name")
    severity = ledger.text_plan("logs", Level.LOG, "severity_text")
    for rl in request.resource_logs:
        common.resource(ledger, rl, found)
        for sl in rl.scope_logs:
            common.scope(ledger, sl, found)
            for record in sl.log_records:
                _attrs(ledger, "logs", Level.LOG, record.attributes, found)
                if record.HasField("body"):
                    _body(ledger, body, record.body, found)
                _text(ledger, event_name, record.event_name, found)
                _text(ledger, severity, record.severity_text, found)


def _body(ledger: Ledger, plan: Plan, value, found: dict) -> None:
    """A log body: text, JSON text or structured; keys inside from the body root ("")."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        text = value.string_value
        if plan.skip or not looks_like(text):
            ledger.text(plan, text, found)
        else:
            _json(ledger, "logs", Level.LOG, plan, text, "", found, 0, "body")
    elif kind == "kvlist_value":
        ledger.other(plan)
        if not plan.skip:
            _kvlist(ledger, "logs", Level.LOG, plan, value.kvlist_value.values, "", found, "body")
    elif kind == "array_value":
        for item in value.array_value.values:
            _body(ledger, plan, item, found)
    elif kind is not None:
        _value(ledger, "logs", Level.LOG, plan, value, "", found, "body")


_WALKS = {"traces": _traces, "metrics": _metrics, "logs": _logs}
