"""Which fields of an export request the audit reads, and as what: one table per signal,
shared by the reference walk (``walk.py``, over decoded messages) and the native one
(``native.py``, over the wire bytes), so the two read the same fields in the same order.

Strategy: built once from the protobuf descriptors and ``fields.FIELDS``, like the
engine's table (``engine.py``): a message's attribute lists are ``ATTRS`` (read under
their level's decider), its free-text fields (``Treatment.TEXT``) are ``TEXT`` under their
``fields.TARGET_LEVELS`` target, the log body is ``BODY``, and the messages that lead to
them are ``MSG``. Entries are in field-number order, the order both a decoder's
``ListFields`` and a canonical encoder's bytes give, so per field the values arrive in the
same order on either walk (what a field's first sample and its cardinality checks see).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from google.protobuf.descriptor import Descriptor
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from redact_proxy.engine import _BODY_FIELD, _LEVEL_OF, _messages
from redact_proxy.fields import FIELDS, Treatment
from redact_proxy.policy import Level
from redact_proxy.signals import ALL

# Roles and flags (native/core/src/audit/mod.rs reads the same numbers).
MSG, ATTRS, TEXT, BODY = 1, 3, 4, 5
REPEATED = 1
ALWAYS = 2  # counted on every item, empty or not (span and metric names: every item has one)
_ALWAYS = {("opentelemetry.proto.trace.v1.Span", "name"), ("opentelemetry.proto.metrics.v1.Metric", "name")}
# The attribute spaces of one (signal, level): top-level keys, keys nested under them
# (kvlists, JSON text), and, for log records, keys inside the body.
SPACES = ("attributes", "nested", "body")


@dataclass(frozen=True)
class Entry:
    number: int
    role: int
    target: int  # MSG: a message index; ATTRS: a space; TEXT, BODY: a text field index
    flags: int
    extra: int  # ATTRS: the nested space; BODY: the body space; MSG/TEXT: oneof group + 1 (0: none)


@dataclass(frozen=True)
class SignalTable:
    messages: tuple[tuple[Entry, ...], ...]  # 0: the export request
    texts: tuple[tuple[Level, str], ...]  # the free-text fields, in the order their plans are made


def _space(signal: str, level: Level, name: str) -> int:
    return SPACE_INDEX[(signal, level, name)]


def _build(sig) -> SignalTable:
    order = _messages(cast(Descriptor, sig.request.DESCRIPTOR))
    index = {d.full_name: i for i, d in enumerate(order)}
    texts: list[tuple[Level, str]] = []
    tables = []
    for d in order:
        level = _LEVEL_OF.get(d.full_name)
        oneofs = {o.full_name: i + 1 for i, o in enumerate(d.oneofs)}
        entries = []
        for f in sorted(d.fields, key=lambda f: f.number):
            pair = (d.full_name, f.name)
            treatment = FIELDS.get(pair)
            repeated = REPEATED if f.is_repeated else 0
            oneof = oneofs[f.containing_oneof.full_name] if f.containing_oneof is not None else 0
            if f.message_type is not None and f.message_type.full_name == KeyValue.DESCRIPTOR.full_name:
                assert level is not None, f"attributes of {d.full_name} have no level"
                top, nested = _space(sig.name, level, "attributes"), _space(sig.name, level, "nested")
                entries.append(Entry(f.number, ATTRS, top, repeated, nested))
            elif pair == _BODY_FIELD:
                if (Level.LOG, "log_body") not in texts:
                    texts.append((Level.LOG, "log_body"))
                body = _space(sig.name, Level.LOG, "body")
                entries.append(Entry(f.number, BODY, texts.index((Level.LOG, "log_body")), 0, body))
            elif f.message_type is not None and f.message_type.full_name != AnyValue.DESCRIPTOR.full_name:
                entries.append(Entry(f.number, MSG, index[f.message_type.full_name], repeated, oneof))
            elif treatment is not None and treatment.treatment is Treatment.TEXT:
                assert treatment.target is not None
                where = (_LEVEL_OF[d.full_name], treatment.target)
                if where not in texts:
                    texts.append(where)
                flags = repeated | (ALWAYS if pair in _ALWAYS else 0)
                entries.append(Entry(f.number, TEXT, texts.index(where), flags, oneof))
        tables.append(entries)
    # A message with nothing to read under it is not entered (histogram buckets, ...).
    useful = [any(e.role != MSG for e in entries) for entries in tables]
    changed = True
    while changed:
        changed = False
        for i, entries in enumerate(tables):
            if not useful[i] and any(e.role == MSG and useful[e.target] for e in entries):
                useful[i] = changed = True
    return SignalTable(
        tuple(tuple(e for e in entries if e.role != MSG or useful[e.target]) for entries in tables), tuple(texts)
    )


SPACE_LIST: tuple[tuple[str, Level, str], ...] = tuple(
    (sig.name, lv, name) for sig in ALL for lv in Level for name in SPACES
)
SPACE_INDEX = {s: i for i, s in enumerate(SPACE_LIST)}
LEVELS: tuple[Level, ...] = tuple(Level)
TABLES: dict[str, SignalTable] = {sig.name: _build(sig) for sig in ALL}
