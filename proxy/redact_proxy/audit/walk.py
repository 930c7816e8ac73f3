"""Reading a scrubbed export request into the ledger: every attribute (nested keys by
their dotted path, JSON text as structured data, as the scrubber reads them) and every
free-text field of ``fields.TARGET_LEVELS`` (span, event, scope and metric names, status
messages, log bodies, trace_state, schema_urls, entity refs, ...), under its target name.

Strategy: one walk over the request *as the scrub left it*, driven by ``table.py`` (the
fields to read, in field-number order, levels named as the policy names them); this is
the reference the native walk (``native.py``) is held to. A field's plan is looked up once per key (``Ledger`` memoises
it); each value then costs its checks and nothing else. The walk holds the ledger's
lock for the whole request, so ``/audit`` never reads a half-counted batch.
"""

from __future__ import annotations

import json
from typing import Protocol

from redact_proxy.audit.ledger import Plan
from redact_proxy.audit.table import ALWAYS, ATTRS, MSG, REPEATED, SPACE_LIST, TABLES, TEXT
from redact_proxy.policy import Level
from redact_proxy.policy.compile import join
from redact_proxy.scrub.jsontext import MAX_CHARS, MAX_DEPTH, looks_like


class Ledger(Protocol):
    """What the walk needs of a ledger: plans, and the value counts (``ledger.Ledger``;
    ``native.Recorder`` records the counts instead)."""

    def plan_memo(self, signal: str, level: str, space: str) -> dict: ...
    def key_plan(self, signal: str, level: Level, parent: str | None, shown_parent: str, key: str, masks) -> Plan: ...
    def text_plan(self, signal: str, level: Level, target: str) -> Plan: ...
    def text(self, plan: Plan, text: str, found: dict) -> None: ...
    def digits(self, plan: Plan, number: int, found: dict) -> None: ...
    def other(self, plan: Plan) -> None: ...
    def key(self, plan: Plan, key: str, found: dict) -> None: ...


def observe(ledger: Ledger, signal: str, request) -> dict[tuple[str, str], int]:
    """Count what survived in one scrubbed ``request`` (the ledger's lock held); returns
    this request's findings by (level, kind)."""
    combos: dict[tuple[str, tuple[str, ...]], int] = {}  # (level, kinds) -> n, as the ledger tallies
    _message(ledger, signal, 0, request, text_plans(ledger, signal), combos)
    found: dict[tuple[str, str], int] = {}
    for (level, kinds), n in combos.items():
        for kind in kinds:
            found[(level, kind)] = found.get((level, kind), 0) + n
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


def text_plans(ledger: Ledger, signal: str) -> list[Plan]:
    """The plans of ``signal``'s free-text fields, in the table's order (made per request,
    as key plans are memoised: a reload's new policy is read at once)."""
    return [ledger.text_plan(signal, level, target) for level, target in TABLES[signal].texts]


def _message(ledger: Ledger, signal: str, index: int, message, plans: list[Plan], found: dict) -> None:
    """One message of the table (``index``): its fields in field-number order (``ListFields``
    gives that order, a canonical encoder's bytes too: the native walk reads the same)."""
    entries = _BY_NUMBER[signal][index]
    always = _ALWAYS_OF[signal][index]
    for fd, value in message.ListFields():
        e = entries.get(fd.number)
        if e is None:
            continue
        role = e.role
        if role == MSG:
            if e.flags & REPEATED:
                for m in value:
                    _message(ledger, signal, e.target, m, plans, found)
            else:
                _message(ledger, signal, e.target, value, plans, found)
        elif role == ATTRS:
            _attrs(ledger, signal, SPACE_LIST[e.target][1], value, found)
        elif role == TEXT:
            if e.flags & ALWAYS:
                always = tuple(a for a in always if a is not e)
            for text in value if e.flags & REPEATED else (value,):
                _text(ledger, plans[e.target], text, found)
        else:  # BODY: a value of its own plan, keys inside from the body root ("")
            _value(ledger, signal, Level.LOG, plans[e.target], value, "", found, "body")
    for e in always:  # absent means empty: an item's name is counted all the same
        ledger.text(plans[e.target], "", found)


_BY_NUMBER = {signal: [{e.number: e for e in m} for m in t.messages] for signal, t in TABLES.items()}
_ALWAYS_OF = {
    signal: [tuple(e for e in m if e.role == TEXT and e.flags & ALWAYS) for m in t.messages]
    for signal, t in TABLES.items()
}
