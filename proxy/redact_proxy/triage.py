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

Fields the decoder does not know are not read here; they are discarded from the decoded
batch, and the original bytes are forwarded only when they equal its encoding
(``codec.Batch.to_bytes``), so nothing unscanned leaves.
"""

from __future__ import annotations

import re2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from redact_proxy_native import Schema, scan

from redact_proxy.policy import CompiledPolicy
from redact_proxy.policy.compile import DECISION_CACHE_LIMIT, OP_KEEP
from redact_proxy.policy.schema import LEVELS_OF, compile_regex
from redact_proxy.signals import ALL, Signal

# Field kinds of the native schema (native/src/lib.rs).
_SKIP, _MESSAGE, _KEY, _TEXT, _SCALAR = range(5)

_KEYS = {("opentelemetry.proto.common.v1.KeyValue", "key")}
_TEXTS = {
    ("opentelemetry.proto.common.v1.AnyValue", "string_value"),
    ("opentelemetry.proto.trace.v1.Span", "name"),
    ("opentelemetry.proto.trace.v1.Span.Event", "name"),
    ("opentelemetry.proto.logs.v1.LogRecord", "event_name"),
}
# The AnyValue kinds a drop condition reads as text besides strings (attributes.text_of).
_SCALARS = {("opentelemetry.proto.common.v1.AnyValue", f) for f in ("bool_value", "int_value", "double_value")}

_REGEX_MEMORY = 64 << 20  # bytes of DFA cache: one big alternation over ~250 KB of text


def build_schema(root: Descriptor) -> Schema:
    """The native walk's table for ``root``: key and text fields by name, and only the
    submessages that can (transitively) hold one, so e.g. Status and Buckets are skipped
    whole. Raises LookupError when a named field is missing (an OTLP rename must fail
    loudly, not turn triage blind)."""
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
    missing = sorted(f"{m}.{f}" for m, f in (_KEYS | _TEXTS | _SCALARS) if (m, f) not in named and m in index)
    if missing or not any(m in index for m, _ in _KEYS):
        raise LookupError(f"OTLP fields not found for triage: {', '.join(missing) or 'KeyValue.key'}")
    for pair in _KEYS | _TEXTS:
        if pair in named and named[pair].type != FieldDescriptor.TYPE_STRING:
            raise LookupError(f"OTLP field {'.'.join(pair)} is not a string")

    # Messages worth walking: those holding a key or text field, and their ancestors.
    wanted = {m for m, f in _KEYS | _TEXTS if (m, f) in named}
    changed = True
    while changed:
        changed = False
        for d in order:
            if d.full_name not in wanted and any(
                f.message_type is not None and f.message_type.full_name in wanted for f in d.fields
            ):
                wanted.add(d.full_name)
                changed = True

    tables = []
    for d in order:
        fields = []
        for f in d.fields:
            pair = (d.full_name, f.name)
            if pair in _KEYS:
                fields.append((f.number, _KEY, 0))
            elif pair in _TEXTS:
                fields.append((f.number, _TEXT, 0))
            elif pair in _SCALARS:
                fields.append((f.number, _SCALAR, 0))
            elif f.message_type is not None and f.message_type.full_name in wanted:
                fields.append((f.number, _MESSAGE, index[f.message_type.full_name]))
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

    def untouched(self, signal: Signal, body: bytes) -> bool:
        """True when scrubbing the protobuf ``body`` of ``signal`` would change nothing.
        False also means "not proven": the caller scrubs as usual."""
        name = signal.name
        regex = self._masks[name]
        if regex is False:
            return False
        found = scan(body, SCHEMAS[name])
        if found is None:
            return False
        keys, scalar_keys, texts = found
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
                return False
            drop = drops.get(key)
            if drop is not None:
                finds, reads_scalars = drop
                if (reads_scalars and key in scalar_keys) or finds.search(texts) is not None:
                    return False
        return regex is None or regex.search(texts) is None

    def _key_touched(self, signal: str, raw: bytes) -> bool:
        try:
            key = raw.decode("utf-8")
        except UnicodeDecodeError:
            return True  # the decoder refuses such a body anyway; never vouch for it
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
