"""Every text-bearing field of OTLP, and what the scrubber does with it.

Strategy: one table, ``FIELDS``, names each ``string`` and ``bytes`` field reachable from
the three export requests (by protobuf message and field name) and gives it exactly one
``Treatment``. ``tests/test_fields.py`` walks the protobuf descriptors in use and fails on
any field without one, so an OTLP upgrade that adds a field cannot add an unscanned one
silently: the upgrade fails CI until the field is given a treatment here (and, if it is
text, a target the scrubbers read).

The treatments:

- ``KEY``: an attribute or kvlist key. Key rules decide on it (nested keys by their
  dotted path); masks with the ``keys`` target rewrite it.
- ``VALUE``: the string or bytes of an AnyValue, wherever it sits (attribute, array,
  kvlist, log body). Key rules decide; masks with the ``attributes`` target (or
  ``log_body`` under a body) scan it; JSON text is scrubbed as structured data.
- ``TEXT``: a free-text field with a target name: ``mask`` rules reach it through
  ``targets:``, and ``delete`` / ``replace`` (and for span names ``sanitize_sql`` /
  ``sanitize_url``) rules through ``fields:``. ``TARGET_LEVELS`` says at which
  (signal, level) each target lives, so a rule's ``signals:``/``levels:`` select it.
- ``IDENTIFIER``: trace and span ids: random bytes of a fixed length (16 or 8) that the
  decoder and the collector check; they carry no text and are forwarded as they are.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Treatment(enum.Enum):
    KEY = "key"
    VALUE = "value"
    TEXT = "text"
    IDENTIFIER = "identifier"


@dataclass(frozen=True)
class Field:
    treatment: Treatment
    target: str | None = None  # TEXT only: the name rules use in targets:/fields:


_C, _T, _M, _L = (f"opentelemetry.proto.{p}.v1" for p in ("common", "trace", "metrics", "logs"))


def _text(target: str) -> Field:
    return Field(Treatment.TEXT, target)


_ID = Field(Treatment.IDENTIFIER)

FIELDS: dict[tuple[str, str], Field] = {
    (f"{_C}.KeyValue", "key"): Field(Treatment.KEY),
    (f"{_C}.AnyValue", "string_value"): Field(Treatment.VALUE),
    (f"{_C}.AnyValue", "bytes_value"): Field(Treatment.VALUE),
    (f"{_C}.InstrumentationScope", "name"): _text("scope_name"),
    (f"{_C}.InstrumentationScope", "version"): _text("scope_version"),
    (f"{_C}.EntityRef", "schema_url"): _text("schema_url"),
    (f"{_C}.EntityRef", "type"): _text("entity_ref"),
    (f"{_C}.EntityRef", "id_keys"): _text("entity_ref"),
    (f"{_C}.EntityRef", "description_keys"): _text("entity_ref"),
    (f"{_T}.ResourceSpans", "schema_url"): _text("schema_url"),
    (f"{_T}.ScopeSpans", "schema_url"): _text("schema_url"),
    (f"{_T}.Span", "name"): _text("span_name"),
    (f"{_T}.Span", "trace_state"): _text("trace_state"),
    (f"{_T}.Span", "trace_id"): _ID,
    (f"{_T}.Span", "span_id"): _ID,
    (f"{_T}.Span", "parent_span_id"): _ID,
    (f"{_T}.Span.Event", "name"): _text("event_name"),
    (f"{_T}.Span.Link", "trace_state"): _text("trace_state"),
    (f"{_T}.Span.Link", "trace_id"): _ID,
    (f"{_T}.Span.Link", "span_id"): _ID,
    (f"{_T}.Status", "message"): _text("status_message"),
    (f"{_M}.ResourceMetrics", "schema_url"): _text("schema_url"),
    (f"{_M}.ScopeMetrics", "schema_url"): _text("schema_url"),
    (f"{_M}.Metric", "name"): _text("metric_name"),
    (f"{_M}.Metric", "description"): _text("metric_description"),
    (f"{_M}.Metric", "unit"): _text("metric_unit"),
    (f"{_M}.Exemplar", "trace_id"): _ID,
    (f"{_M}.Exemplar", "span_id"): _ID,
    (f"{_L}.ResourceLogs", "schema_url"): _text("schema_url"),
    (f"{_L}.ScopeLogs", "schema_url"): _text("schema_url"),
    (f"{_L}.LogRecord", "severity_text"): _text("severity_text"),
    (f"{_L}.LogRecord", "event_name"): _text("event_name"),
    (f"{_L}.LogRecord", "trace_id"): _ID,
    (f"{_L}.LogRecord", "span_id"): _ID,
}

_ALL_SIGNALS = ("traces", "metrics", "logs")
_R, _S = "resource", "scope"

# Where each target lives: the (signal, level) pairs a rule must cover to reach it. A
# resource's schema_url and entity refs are resource-level, a scope's name, version and
# schema_url scope-level; metric metadata counts as data-point level (as its `metadata`
# attributes do). Levels by name (policy.schema.Level values).
TARGET_LEVELS: dict[str, tuple[tuple[str, str], ...]] = {
    "attributes": (),  # every level: the attribute values
    "keys": (),  # every level: the attribute keys
    "span_name": (("traces", "span"),),
    "event_name": (("traces", "event"), ("logs", "log")),
    "status_message": (("traces", "span"),),
    "trace_state": (("traces", "span"), ("traces", "link")),
    "scope_name": tuple((s, _S) for s in _ALL_SIGNALS),
    "scope_version": tuple((s, _S) for s in _ALL_SIGNALS),
    "schema_url": tuple((s, lv) for s in _ALL_SIGNALS for lv in (_R, _S)),
    "entity_ref": tuple((s, _R) for s in _ALL_SIGNALS),
    "metric_name": (("metrics", "datapoint"),),
    "metric_description": (("metrics", "datapoint"),),
    "metric_unit": (("metrics", "datapoint"),),
    "severity_text": (("logs", "log"),),
    "log_body": (("logs", "log"),),
}

# Mask targets: free text, plus attribute values and keys.
MASK_TARGETS: tuple[str, ...] = tuple(TARGET_LEVELS)
# Whole-field targets (`fields:`): the free-text fields, and the log body.
FIELD_TARGETS: tuple[str, ...] = tuple(t for t in TARGET_LEVELS if t not in ("attributes", "keys"))
# A field OTLP requires to be non-empty cannot be deleted, only replaced or sanitized.
REQUIRED_TARGETS = frozenset({"span_name", "metric_name"})
# sanitize_sql / sanitize_url can rewrite these whole fields (the collector's
# sanitize_span_name is the anchor): a name that is a statement or a URL keeps its shape.
SANITIZE_TARGETS = frozenset({"span_name"})
