"""Triage: prove from a protobuf body's bytes that the policy leaves the batch as it is.

Strategy: the scrubber walks the decoded batch in Python, about 1 µs per attribute, and
most batches hold nothing any rule touches. The native ``scan`` (native/src/lib.rs) reads
the wire bytes once and returns the distinct attribute keys (at every depth), the keys
whose value is a number or boolean, and every string a mask rule or a drop condition can
read (string values anywhere, span, event and log event names), joined with NULs (one
before the first, one after each).
The batch is *untouched* -- the scrub would change nothing and count nothing -- when:

1. no key gets anything but "keep" from any decider of the signal, at any level, nested
   or not (this covers delete, hash, sanitize_* and keep_only, by asking the deciders
   themselves);
2. no drop rule can match: its key is absent, or present only with values that are not
   numbers or booleans and no NUL-delimited text equals one of its values (``in``,
   ``equals``) or matches its pattern whole (``matches``); and
3. the alternation of every mask pattern of the signal matches nowhere in the texts.

Why 3 is exact (and 2 by the same argument): ``Masker.mask`` returns None for a value its alternation does not match
(verifiers and the refusal budget only run on matches). A match inside one value is
also a match at the same place in the joined texts: RE2 has no lookaround, ``\\b`` and
``\\B`` read NUL exactly as they read the start or end of a text (a non-word character),
and ``^ $ \\A \\z`` -- the only assertions that differ -- are replaced by an empty group,
which can only make a pattern match more. A match that spans a NUL costs a full scrub,
never a missed mask. Everything the check cannot vouch for (JSON bodies, a body ``scan``
refuses) takes the full path. ``tests/scrub/test_triage.py`` compares the two paths.

Forwarded as it came: the native walk also checks the body is exactly what the decoder
accepts -- every field known, with a wire type the decoder takes for it, valid UTF-8 in
strings, whole varints and packed runs, no two members of one oneof -- and counts its
items. Any field this OTLP version does not know makes it refuse (the full path then
discards such fields), so nothing unscanned leaves. The decoded batch is made only if a
forwarder needs another encoding (``codec.Batch.verbatim``).
"""

from __future__ import annotations

import re2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from redact_proxy_native import Schema, scan

from redact_proxy.policy import CompiledPolicy
from redact_proxy.policy.compile import DECISION_CACHE_LIMIT, OP_KEEP
from redact_proxy.policy.schema import LEVELS_OF, compile_regex
from redact_proxy.signals import ALL, Signal

# Field kinds and flags of the native schema (native/src/lib.rs).
_PLAIN, _MESSAGE, _KEY, _TEXT, _SCALAR = range(5)
_ITEM, _UTF8 = 1, 2

_KEYS = {("opentelemetry.proto.common.v1.KeyValue", "key")}
_TEXTS = {
    ("opentelemetry.proto.common.v1.AnyValue", "string_value"),
    ("opentelemetry.proto.trace.v1.Span", "name"),
    ("opentelemetry.proto.trace.v1.Span.Event", "name"),
    ("opentelemetry.proto.logs.v1.LogRecord", "event_name"),
}
# The AnyValue kinds a drop condition reads as text besides strings (attributes.text_of).
_SCALARS = {("opentelemetry.proto.common.v1.AnyValue", f) for f in ("bool_value", "int_value", "double_value")}
# What the pipeline counts as items (scrub.*.count).
_ITEMS = {("opentelemetry.proto.trace.v1.ScopeSpans", "spans"),
          ("opentelemetry.proto.logs.v1.ScopeLogs", "log_records")} | {
    (f"opentelemetry.proto.metrics.v1.{m}", "data_points")
    for m in ("Gauge", "Sum", "Histogram", "ExponentialHistogram", "Summary")}

_T = FieldDescriptor
_VARINT = {_T.TYPE_INT32, _T.TYPE_INT64, _T.TYPE_UINT32, _T.TYPE_UINT64, _T.TYPE_SINT32,
           _T.TYPE_SINT64, _T.TYPE_BOOL, _T.TYPE_ENUM}
_FIXED64 = {_T.TYPE_FIXED64, _T.TYPE_SFIXED64, _T.TYPE_DOUBLE}
_FIXED32 = {_T.TYPE_FIXED32, _T.TYPE_SFIXED32, _T.TYPE_FLOAT}

_REGEX_MEMORY = 64 << 20  # bytes of DFA cache: one big alternation over ~250 KB of text


def _wire(f: FieldDescriptor) -> tuple[int, int]:
    """(accepted wire types as a bit mask, packed element size: 0, 1 = varint, 4, 8).
    A repeated number is accepted packed (2) and unpacked, as decoders must."""
    repeated = f.is_repeated
    for types, wire, size in ((_VARINT, 0, 1), (_FIXED64, 1, 8), (_FIXED32, 5, 4)):
        if f.type in types:
            return (1 << wire) | (1 << 2 if repeated else 0), size if repeated else 0
    return 1 << 2, 0  # string, bytes, message (groups: none in OTLP, and never accepted)


def build_schema(root: Descriptor) -> Schema:
    """The native walk's table for ``root``: every field of every message it can reach,
    with the wire types the decoder takes for it; key, text, number-or-boolean and item
    fields by name. Raises LookupError when a named field is missing (an OTLP rename
    must fail loudly, not turn triage blind)."""
    order: list[Descriptor] = []
    index: dict[str, int] = {}

    def visit(d: Descriptor) -> None:
        if d.full_name not in index:
            index[d.full_name] = len(order)
            order.append(d)
            for f in d.fields:
                if f.message_type is not None:
                    visit(f.message_type)

    visit(root)
    named = {(d.full_name, f.name): f for d in order for f in d.fields}
    roles = {**{p: _KEY for p in _KEYS}, **{p: _TEXT for p in _TEXTS}, **{p: _SCALAR for p in _SCALARS}}
    wanted = set(roles) | _ITEMS
    missing = sorted(".".join(p) for p in wanted if p not in named and p[0] in index)
    if missing or not any(p in named for p in _KEYS):
        raise LookupError(f"OTLP fields not found for triage: {', '.join(missing) or 'KeyValue.key'}")
    for pair, role in roles.items():
        if pair in named and (named[pair].type == _T.TYPE_STRING) != (role in (_KEY, _TEXT)):
            raise LookupError(f"OTLP field {'.'.join(pair)} is not of the type triage expects")

    tables = []
    for d in order:
        oneofs = {o.full_name: i + 1 for i, o in enumerate(d.oneofs)}
        fields = []
        for f in d.fields:
            pair = (d.full_name, f.name)
            kind = roles.get(pair, _MESSAGE if f.message_type is not None else _PLAIN)
            target = index[f.message_type.full_name] if f.message_type is not None else 0
            wires, packed = _wire(f)
            oneof = oneofs[f.containing_oneof.full_name] if f.containing_oneof is not None else 0
            flags = (_ITEM if pair in _ITEMS else 0) | (_UTF8 if f.type == _T.TYPE_STRING else 0)
            fields.append((f.number, kind, target, wires, packed, oneof, flags))
        tables.append(fields)
    return Schema(tables)


SCHEMAS: dict[str, Schema] = {s.name: build_schema(s.request.DESCRIPTOR) for s in ALL}


def relax_anchors(pattern: str) -> str:
    """``pattern`` with every ``^``, ``$``, ``\\A`` and ``\\z`` outside a character class
    replaced by ``(?:)``: the same pattern minus the assertions that read where a text
    starts or ends, so it matches wherever the original did, and perhaps more."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt == "Q":  # \Q...\E: literal text
                end = pattern.find("\\E", i + 2)
                end = n if end < 0 else end + 2
                out.append(pattern[i:end])
                i = end
            else:
                out.append("(?:)" if nxt in "Az" and not in_class else pattern[i:i + 2])
                i += 2
            continue
        if in_class:
            if pattern.startswith("[:", i) and (end := pattern.find(":]", i + 2)) >= 0:
                out.append(pattern[i:end + 2])  # [:alpha:] inside a class
                i = end + 2
                continue
            in_class = c != "]"
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            j = i + 1
            if pattern.startswith("^", j):
                j += 1
            if pattern.startswith("]", j):  # a leading ] is a literal
                j += 1
            out.append(pattern[i:j])
            i = j
            continue
        out.append("(?:)" if c in "^$" else c)
        i += 1
    return "".join(out)


class Triage:
    """The untouched-batch check for one CompiledPolicy (built when it is loaded)."""

    def __init__(self, policy: CompiledPolicy):
        self.policy = policy
        self._touches: dict[str, dict[bytes, bool]] = {s.name: {} for s in ALL}
        self._masks = {s.name: _mask_regex(policy, s.name) for s in ALL}
        self._drops = {s.name: _drop_regexes(policy, s.name) for s in ALL}

    def untouched(self, signal: Signal, body: bytes) -> int | None:
        """The number of items in the protobuf ``body`` of ``signal`` when it can be
        forwarded as it is: the decoder would accept it, with no field it does not know,
        and scrubbing it would change nothing. None: not proven, decode and scrub it."""
        name = signal.name
        regex = self._masks[name]
        if regex is False:
            return None
        found = scan(body, SCHEMAS[name])
        if found is None:
            return None
        keys, scalar_keys, texts, items = found
        memo = self._touches[name]
        drops = self._drops[name]
        for key in keys:
            touched = memo.get(key)
            if touched is None:
                touched = self._key_touched(name, key)
                if len(memo) >= DECISION_CACHE_LIMIT:
                    memo.clear()
                memo[key] = touched
            if touched:
                return None
            drop = drops.get(key)
            if drop is not None:
                finds, reads_scalars = drop
                if (reads_scalars and key in scalar_keys) or finds.search(texts) is not None:
                    return None
        if regex is not None and regex.search(texts) is not None:
            return None
        return items

    def _key_touched(self, signal: str, raw: bytes) -> bool:
        key = raw.decode("utf-8")  # scan returns no body with invalid UTF-8 in a string
        for level in LEVELS_OF[signal]:
            decider = self.policy.decider(signal, level)
            if decider.decide(key).op != OP_KEEP or decider.decide_nested(key).op != OP_KEEP:
                return True
        return False


# Every text ``attributes.text_of`` gives a number or a boolean matches this (ints, and
# Python's float repr: 1.5, 1e+16, -inf, nan); a drop value that does not can only ever
# equal a string.
_SCALAR_TEXT = re2.compile(r"-?(?:[0-9][0-9.e+\-]*|inf|nan)|true|false")


def _drop_regexes(policy: CompiledPolicy, signal: str) -> dict[bytes, tuple[object, bool]]:
    """Per key a drop rule tests: a regex that finds a whole text (between two NULs) one
    of those rules would match, and whether a number or boolean under that key could
    match too."""
    alternatives: dict[bytes, list[str]] = {}
    reads_scalars: dict[bytes, bool] = {}
    for key, rules in policy.drops[signal].items():
        k = key.encode()
        for drop in rules:
            when = policy.rules[drop.index].when
            if when.op == "matches":
                alternatives.setdefault(k, []).append(relax_anchors(when.values[0]))
                reads_scalars[k] = True  # what a pattern accepts is not worked out here
            else:
                alternatives.setdefault(k, []).extend(re2.escape(v) for v in when.values)
                if any(_SCALAR_TEXT.fullmatch(v) for v in when.values):
                    reads_scalars[k] = True
    drops = {}
    for k, alts in alternatives.items():
        try:  # the options drop conditions are compiled with (``.`` matches a newline)
            regex = compile_regex(r"\x00(?:" + "|".join(f"(?:{a})" for a in alts) + r")\x00")
        except re2.error:
            regex = compile_regex("")  # matches everywhere: never vouch for this key
        drops[k] = (regex, reads_scalars.get(k, False))
    return drops


def _mask_regex(policy: CompiledPolicy, signal: str):
    """Every mask pattern that can run on ``signal``, relaxed, as one RE2 alternation;
    None when there is none, False when it will not compile (triage is then off)."""
    masks = {}
    for (sig, _target), found in policy.name_masks.items():
        if sig == signal:
            masks.update((m.rule, m) for m in found)
    for level in LEVELS_OF[signal]:
        masks.update((m.rule, m) for _filter, m in policy.decider(signal, level).masks)
    patterns = [relax_anchors(p) for m in masks.values() for p in m.masker.patterns]
    if not patterns:
        return None
    options = re2.Options()
    options.log_errors = False
    options.max_mem = _REGEX_MEMORY
    try:
        return re2.compile("|".join(f"(?:{p})" for p in patterns), options)
    except re2.error:
        return False
