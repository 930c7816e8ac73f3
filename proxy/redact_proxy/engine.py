"""The native engine of one policy: a protobuf export request in, the scrubbed request's
bytes (or "unchanged") and its Report out, in one call into Rust with the GIL released.

Strategy: ``Engine(policy)`` compiles everything the request path needs once -- the walk's
table per signal (from the protobuf descriptors and ``fields.FIELDS``, so the Rust side
knows no OTLP field number), each decider's ``descend``, each free-text field's rules,
the drop conditions, the hash key -- into one ``_native.Engine``. ``scrub`` calls it. The
Python scrubber (``scrub/``) stays the reference, and stays the only place some semantics
live: a key's decision (paths, tails, keep_only, key masks), the sanitizers, JSON text,
and masks without a native masker. The engine does not guess those; it returns them as
questions, this module answers each with the reference functions (one fresh Tally per
answer, so the counts the engine adds are the reference's), teaches the answers to the
engine, and calls again. Keys and span names repeat, so a steady stream of batches is one
call each. ``scrub`` returns None when the engine cannot take a body (not what the table
describes, nesting too deep, questions that do not settle): the caller then takes the
reference path, which gives the client the decoder's answer. Either way the result is the
reference's, which tests/scrub/test_engine.py holds it to on generated inputs.
"""

from __future__ import annotations

from typing import cast

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList

from redact_proxy._native import Engine as _NativeEngine
from redact_proxy._native import check_regex
from redact_proxy.fields import FIELDS, Treatment
from redact_proxy.policy import CompiledPolicy, Level
from redact_proxy.policy.compile import OP_HASH, OP_KEEP, OP_REMOVE, OP_REPLACE, OP_REWRITE, Mask, TextOps
from redact_proxy.policy.detectors import DIGIT_DETECTORS, DIGIT_MIN_RUN, expand_detectors
from redact_proxy.policy.schema import LEVELS_OF, Action
from redact_proxy.scrub import Report
from redact_proxy.scrub.attributes import mask_value, rewrite_value, scrub_string
from redact_proxy.scrub.text import Tally, scrub_text
from redact_proxy.signals import ALL, Signal
from redact_proxy.triage import Triage

# Roles and flags of the native table (native/core/src/engine/mod.rs).
_PLAIN, _MSG, _ITEMS, _ATTRS, _TEXT, _BODY = range(6)
_REPEATED, _SIZE, _PRUNE, _SYSTEM = 1, 2, 4, 8
_NO_OPS = 0xFFFF_FFFF
# Native op numbers are the compiler's (OP_KEEP .. OP_REPLACE), in the order the shell reads.
_NATIVE_OP = {OP_KEEP: 0, OP_REMOVE: 1, OP_HASH: 2, OP_REWRITE: 3, OP_REPLACE: 4}
# Question kinds (the shell's `ask_tuple`).
_Q_KEY, _Q_TEXT, _Q_REWRITE, _Q_JSON, _Q_MASK = range(5)
ROUNDS = 4  # calls per body before it goes to the reference path (each round answers all it asked)

_C, _T, _M, _L = (f"opentelemetry.proto.{p}.v1" for p in ("common", "trace", "metrics", "logs"))
_RESOURCE, _SCOPE = "opentelemetry.proto.resource.v1.Resource", f"{_C}.InstrumentationScope"

# The level whose decider reads a message's attributes, and whose rules reach its text fields.
_LEVEL_OF = {
    _RESOURCE: Level.RESOURCE,
    f"{_C}.EntityRef": Level.RESOURCE,
    _SCOPE: Level.SCOPE,
    f"{_T}.Span": Level.SPAN,
    f"{_T}.Status": Level.SPAN,
    f"{_T}.Span.Event": Level.EVENT,
    f"{_T}.Span.Link": Level.LINK,
    f"{_M}.Metric": Level.DATAPOINT,
    f"{_M}.Exemplar": Level.EXEMPLAR,
    f"{_L}.LogRecord": Level.LOG,
    **{
        f"{_M}.{p}": Level.DATAPOINT
        for p in ("NumberDataPoint", "HistogramDataPoint", "ExponentialHistogramDataPoint", "SummaryDataPoint")
    },
    **{f"{ns}.Resource{s}": Level.RESOURCE for ns, s in ((_T, "Spans"), (_M, "Metrics"), (_L, "Logs"))},
    **{f"{ns}.Scope{s}": Level.SCOPE for ns, s in ((_T, "Spans"), (_M, "Metrics"), (_L, "Logs"))},
}
# What the pipeline counts as items (scrub.*.count), each drop-checked.
_ITEM_FIELDS = {(f"{_T}.ScopeSpans", "spans"), (f"{_L}.ScopeLogs", "log_records")} | {
    (f"{_M}.{m}", "data_points") for m in ("Gauge", "Sum", "Histogram", "ExponentialHistogram", "Summary")
}
# Containers a drop can empty (scrub/drop.prune_empty, metrics._prune_metrics): their
# elements of size 0 are removed after a drop below; the size fields say what size is.
_PRUNE_FIELDS = {
    (f"{ns}.Export{name}ServiceRequest", f"resource_{kind}")
    for ns, name, kind in (
        ("opentelemetry.proto.collector.trace.v1", "Trace", "spans"),
        ("opentelemetry.proto.collector.metrics.v1", "Metrics", "metrics"),
        ("opentelemetry.proto.collector.logs.v1", "Logs", "logs"),
    )
}
_PRUNE_FIELDS |= {
    (f"{_T}.ResourceSpans", "scope_spans"),
    (f"{_M}.ResourceMetrics", "scope_metrics"),
    (f"{_L}.ResourceLogs", "scope_logs"),
    (f"{_M}.ScopeMetrics", "metrics"),
}
_SIZE_FIELDS = (
    _PRUNE_FIELDS
    | _ITEM_FIELDS
    | {(f"{_M}.Metric", m) for m in ("gauge", "sum", "histogram", "exponential_histogram", "summary")}
) - {p for p in _PRUNE_FIELDS if p[0].startswith("opentelemetry.proto.collector.")}
_BODY_FIELD = (f"{_L}.LogRecord", "body")


def _layout() -> tuple[int, ...]:
    kv, v = KeyValue.DESCRIPTOR.fields_by_name, AnyValue.DESCRIPTOR.fields_by_name
    return (
        kv["key"].number,
        kv["value"].number,
        v["string_value"].number,
        v["bool_value"].number,
        v["int_value"].number,
        v["double_value"].number,
        v["array_value"].number,
        v["kvlist_value"].number,
        v["bytes_value"].number,
        ArrayValue.DESCRIPTOR.fields_by_name["values"].number,
        KeyValueList.DESCRIPTOR.fields_by_name["values"].number,
    )


class Engine:
    """One policy, compiled for the native engine."""

    def __init__(self, policy: CompiledPolicy):
        self.policy = policy
        self.triage = Triage(policy)  # proves a batch untouched without walking it for output
        n = len(policy.rules)
        # In Level order (LEVELS_OF holds sets): the same ids in every process.
        self._deciders = [(sig.name, lv) for sig in ALL for lv in Level if lv in LEVELS_OF[sig.name]]
        self._decider_index = {key: i for i, key in enumerate(self._deciders)}
        self._texts: list[TextOps] = []  # filled by _table, in the order the spec lists them
        self._targets: list[str] = []  # the target of each
        self._masks = _masks_by_rule(policy)
        self._rewriters = {
            d.rule: d.rewrite
            for dec in policy.deciders.values()
            for r in dec.key_rules
            for d in [r.decision]
            if d.op == OP_REWRITE
        }
        self._signal_index = {sig.name: i for i, sig in enumerate(ALL)}
        # The native build input as plain data (native/core/src/engine/spec.rs); the fuzz
        # target reads the same, as JSON (`spec_json`).
        self.spec = {
            "layout": list(_layout()),
            "signals": [(self._table(sig), self._drops(sig.name)) for sig in ALL],
            "descend": [policy.decider(s, lv).descend for s, lv in self._deciders],
            "texts": [
                _text_spec(ops, target, policy.rules) for ops, target in zip(self._texts, self._targets, strict=True)
            ],
            "mask_digits": [bool(self._masks.get(i) and self._masks[i].digits is not None) for i in range(n)],
            "int_short": 10 ** (DIGIT_MIN_RUN - 1),
            "n_rules": n,
            "masks": [_mask_spec(policy.rules[i]) if i in self._masks else None for i in range(n)],
            "rewriters": [_rewriter_spec(r) for r in policy.rules],
        }
        s = self.spec
        # A regex outside the engine's dialect (dialect_errors) leaves its mask rule to the
        # Python masker; in a drop condition it leaves every batch to the reference.
        drops_native = all(
            check_regex(r.when.values[0]) is None for r in policy.rules if r.when is not None and r.when.op == "matches"
        )
        self._native = (
            None
            if not drops_native
            else _NativeEngine(
                s["layout"],
                s["signals"],
                s["descend"],
                s["texts"],
                s["mask_digits"],
                s["int_short"],
                (policy.hash_algorithm, policy.hash_key),
                n,
                s["masks"],
                s["rewriters"],
            )
        )

    # --- the request path -------------------------------------------------------------

    def scrub(self, signal: Signal, body: bytes) -> tuple[bytes | None, Report] | None:
        """The scrubbed body (None: unchanged) and its Report; None: take the reference path."""
        native = self._native
        if native is None:
            return None
        index = self._signal_index[signal.name]
        for _ in range(ROUNDS):
            result = native.scrub(index, body)
            if result[0] == "done":
                _, out, items, redactions, dropped = result
                return out, Report(
                    items,
                    items - sum(dropped),
                    out is not None,
                    redactions,
                    dropped,
                    "untouched" if out is None else "rewritten",
                )
            if result[0] == "refused":
                return None
            self._answer(native, result[1])
        return None

    def _answer(self, native, questions) -> None:
        keys, answers = [], []
        for q in questions:
            if q[0] == _Q_KEY:
                keys.append(self._decide(q))
            else:
                answers.append(self._reply(q))
        if keys:
            native.learn_keys(keys)
        if answers:
            native.learn_answers(answers)

    def _decide(self, q):
        _, decider, parent, key = q
        d = self.policy.decider(*self._deciders[decider])
        decision = d.decide(key) if parent is None else d.decide_nested(parent, key)
        spec = (
            _NATIVE_OP[decision.op],
            decision.collector_hash,
            max(decision.rule, 0),
            [m.rule for m in decision.masks],
            decision.new_key,
            list(decision.key_rules),
            decision.replacement,
        )
        return decider, parent, key, spec

    def _reply(self, q):
        tally = Tally(len(self.policy.rules))
        kind = q[0]
        if kind == _Q_TEXT:
            _, ops, text, system = q
            out = scrub_text(text, self._texts[ops], tally, system)
        elif kind == _Q_REWRITE:
            _, rule, masks, system, data = q
            value = AnyValue.FromString(data)
            rewrite_value(value, self._rewriters[rule], system)
            if masks:
                mask_value(value, self._mask_objects(masks), tally)
            return q, value.SerializeToString(), _counts(tally)
        elif kind == _Q_JSON:
            _, decider, path, masks, system, text = q
            d = self.policy.decider(*self._deciders[decider])
            out = scrub_string(text, d, path, tally, self.policy.hasher, self._mask_objects(masks), system)
        else:  # _Q_MASK
            _, rule, digits, text = q
            m = self._masks[rule]
            out = m.digits.mask(text) if digits else m.apply(text)
        return q, (None if out is None else out.encode("utf-8", "surrogatepass")), _counts(tally)

    def _mask_objects(self, rules) -> tuple[Mask, ...]:
        return tuple(self._masks[r] for r in rules)

    # --- building -----------------------------------------------------------------------

    def _table(self, sig: Signal) -> list:
        """The walk's messages for ``sig``, root first: (attributes field number, entries)."""
        order = _messages(cast(Descriptor, sig.request.DESCRIPTOR))
        index = {d.full_name: i for i, d in enumerate(order)}
        name_ops = self.policy.text(sig.name, Level.SPAN, "span_name")
        needs_system = any(r.decision.action is Action.SANITIZE_SQL for r in name_ops.rules)
        tables = []
        for d in order:
            level = _LEVEL_OF.get(d.full_name)
            attrs, entries = 0, []
            for f in d.fields:
                pair = (d.full_name, f.name)
                treatment = FIELDS.get(pair)
                if f.message_type is not None and f.message_type.full_name == KeyValue.DESCRIPTOR.full_name:
                    if level is None:
                        raise LookupError(f"attributes of {d.full_name} have no level")
                    attrs = f.number
                    entries.append((f.number, _ATTRS, self._decider_index[(sig.name, level)], 0, 0))
                elif pair == _BODY_FIELD:
                    ops = self.policy.text(sig.name, Level.LOG, "log_body")
                    entries.append(
                        (f.number, _BODY, self._ops_id(ops, "log_body"), 0, self._decider_index[(sig.name, Level.LOG)])
                    )
                elif f.message_type is not None and f.message_type.full_name == AnyValue.DESCRIPTOR.full_name:
                    raise LookupError(f"{'.'.join(pair)}: an AnyValue field the engine does not place")
                elif f.message_type is not None:
                    role = _ITEMS if pair in _ITEM_FIELDS else _MSG
                    flags = (
                        (_REPEATED if f.is_repeated else 0)
                        | (_SIZE if pair in _SIZE_FIELDS else 0)
                        | (_PRUNE if pair in _PRUNE_FIELDS else 0)
                    )
                    entries.append((f.number, role, index[f.message_type.full_name], flags, 0))
                elif treatment is not None and treatment.treatment is Treatment.TEXT:
                    assert treatment.target is not None  # every TEXT field names its target
                    ops = self.policy.text(sig.name, _LEVEL_OF[d.full_name], treatment.target)
                    if ops:
                        flags = (_REPEATED if f.is_repeated else 0) | (
                            _SYSTEM if needs_system and treatment.target == "span_name" else 0
                        )
                        entries.append((f.number, _TEXT, self._ops_id(ops, treatment.target), flags, 0))
                elif f.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES) and (
                    treatment is None or treatment.treatment is not Treatment.IDENTIFIER
                ):
                    raise LookupError(f"{'.'.join(pair)}: a text field the engine does not place")
            tables.append((attrs, entries))
        return tables

    def _ops_id(self, ops: TextOps, target: str) -> int:
        if not ops:
            return _NO_OPS
        self._texts.append(ops)
        self._targets.append(target)
        return len(self._texts) - 1

    def _drops(self, signal: str) -> list:
        out = []
        for key, rules in self.policy.drops[signal].items():
            for r in rules:
                when = self.policy.rules[r.index].when
                assert when is not None  # a drop rule is in `drops` by its condition
                regex = when.op == "matches"
                out.append((key, r.index, regex, [when.values[0]] if regex else list(when.values)))
        return out


def dialect_errors(policy: CompiledPolicy) -> list[str]:
    """Located problems with the policy's mask and drop regexes in the engine's regex
    dialect (RE2's meaning in the Rust regex engine, native/core/src/mask/dialect.rs):
    what `redact-proxy check` reports. Such a regex still works, on the Python path."""
    found = []
    for rule in policy.rules:
        places = [(f"regexes[{j}]", p) for j, p in enumerate(rule.regexes)]
        if rule.when is not None and rule.when.op == "matches":
            places.append(("when.matches", rule.when.values[0]))
        for where, pattern in places:
            why = check_regex(pattern)
            if why is not None:
                found.append(
                    f"{policy.source}:{rule.where}.{where}: regex outside the native engine's dialect "
                    f"({why.splitlines()[0]}); it runs on the slower Python path"
                )
    return found


def _text_spec(ops: TextOps, target: str, policy_rules) -> tuple:
    """(rules, masks): each rule (kind, rule index, replacement, path_ids), kind 1 delete,
    2 replace, 3 statement span name, 4 URL span name (compile._field_rule), 0 no native
    form; the masks by rule index."""
    rules = []
    for r in ops.rules:
        d = r.decision
        rule = d.rule
        if d.op == OP_REMOVE:
            rules.append((1, rule, "", False))
        elif d.op == OP_REPLACE:
            rules.append((2, rule, d.replacement, False))
        elif target == "span_name" and d.action is Action.SANITIZE_SQL:
            rules.append((3, rule, "", False))
        elif target == "span_name" and d.action is Action.SANITIZE_URL:
            rules.append((4, rule, "", bool(policy_rules[rule].path_ids)))
        else:
            rules.append((0, rule, "", False))
    return rules, [m.rule for m in ops.masks]


def _rewriter_spec(rule) -> tuple[int, bool] | None:
    """A sanitize_* rule's sanitizer on values (compile._VALUE_REWRITERS): 1 statement,
    2 URL with its path_ids."""
    if rule.action is Action.SANITIZE_SQL:
        return 1, False
    if rule.action is Action.SANITIZE_URL:
        return 2, bool(rule.path_ids)
    return None


def _mask_spec(rule) -> tuple[list[str], list[str], str, list[str]]:
    """A mask rule for the native masker (native/core/src/mask): its detectors, expanded
    as compile._mask expands them, its regexes, its replacement, its digit detectors."""
    names = expand_detectors(rule.detectors)
    return list(names), list(rule.regexes), rule.replacement, [n for n in names if n in DIGIT_DETECTORS]


def _masks_by_rule(policy: CompiledPolicy) -> dict[int, Mask]:
    found: dict[int, Mask] = {}
    for d in policy.deciders.values():
        for _, m in d.masks:
            found[m.rule] = m
        for m in d.key_masks:
            found[m.rule] = m
    for ops in policy.texts.values():
        for m in ops.masks:
            found[m.rule] = m
    return found


def _counts(tally: Tally) -> list[tuple[int, int]]:
    return [(i, n) for i, n in enumerate(tally.redactions) if n]


def _messages(root: Descriptor) -> list[Descriptor]:
    """The messages the walk enters from ``root``, root first (attribute lists and values
    are read by the engine itself)."""
    skip = {KeyValue.DESCRIPTOR.full_name, AnyValue.DESCRIPTOR.full_name}
    order: list[Descriptor] = []
    seen: set[str] = set()

    def visit(d: Descriptor) -> None:
        if d.full_name in seen or d.full_name in skip:
            return
        seen.add(d.full_name)
        order.append(d)
        for f in d.fields:
            if f.message_type is not None:
                visit(f.message_type)

    visit(root)
    return order
