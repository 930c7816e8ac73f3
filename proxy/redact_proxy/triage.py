"""Triage: prove from a protobuf body's bytes that the policy leaves the batch as it is.

Strategy: the scrubber walks the decoded batch in Python, about 1 µs per attribute, and
most batches hold nothing any rule touches. The native ``scan`` (native/python/src/triage.rs) reads
the wire bytes once and returns the distinct attribute keys (at every depth), the keys
whose value is a number or boolean, whether any kvlist holds keys (``nested``), and text
channels: the "values" channel holds every AnyValue string, bytes and integer (as its
decimal text) anywhere -- attributes, arrays, kvlists, log bodies -- and each free-text
target of ``fields.FIELDS`` (span_name, status_message, ...) has a channel of its own.
Each channel is its texts joined with NULs (one before the first, one after each). The
roles come from ``fields.FIELDS``, so a field given a treatment there is collected here.
The batch is *untouched* -- the scrub would change nothing and count nothing -- when:

1. every key gets "keep", with its key unchanged (no ``keys`` mask), from the decider of
   every level of the signal (this covers delete, hash, replace, sanitize_*, keep_only
   and key masks, by asking the deciders themselves: a decision runs the key masks on
   the key, exactly);
2. no key sits under another key (``nested`` is False), or the signal has no key rule and
   no key mask at any level: a nested key is decided by its dotted path and the tails of
   it (``Decider.decide_nested``), which the distinct leaf keys cannot tell;
3. no drop rule can match: its key is absent, or present only with values that are not
   numbers or booleans and no NUL-delimited value text equals one of its values (``in``,
   ``equals``) or matches its pattern whole (``matches``);
4. in the values channel, every text in which a relaxed pattern of an attribute mask
   (any level) or a log_body mask matches is left unchanged by those masks themselves
   (candidates confirmed: the verifiers, checksums and tables run only on the few texts
   the alternation finds), and, when the signal has any key rule or mask, no text starts
   (after whitespace, as Python's ``str.isspace`` reads it) with ``{`` or ``[``: the
   scrubber parses such text as JSON and applies the key rules inside it;
5. in each free-text channel, the same for that target's masks, and no whole-field rule
   (delete, replace, sanitize_*) on the target would change any of its distinct texts
   (``TextOps.rule_touches``, told whether any key of the batch names a database system,
   which picks a statement sanitizer's dialect); and
6. for logs, no whole-field rule deletes or replaces the body.

Why 4 and 5 are exact (and 1's key masks and 3 by the same argument): ``Masker.mask``
returns None for a value its alternation does not match (verifiers and the refusal budget
only run on matches); ``mask_int`` runs a subset of those patterns (the digit detectors)
on the decimal text the walk writes. A match inside one text is also a match at the same
place in its channel: RE2 has no lookaround, ``\\b`` and ``\\B`` read NUL exactly as
they read the start or end of a text (a non-word character), and ``^ $ \\A \\z`` --
the only assertions that differ -- are replaced by an empty group, which can only make a
pattern match more. Every channel is NUL_FREE (a NUL inside a text makes ``scan``
refuse), so a channel splits back into exactly its texts and a candidate names the one
text to confirm; running all the signal's masks of a channel on it is a superset of what
the scrubber runs on it (a mask rule's key filter, ``mask_int``'s digit detectors). A
match that spans a NUL costs a full scrub, never a missed mask. Everything the
check cannot vouch for (JSON bodies, a body ``scan`` refuses) takes the full path.
``tests/scrub/test_triage.py`` compares the two paths.

Forwarded as it came: the native walk also checks the body is exactly what the decoder
accepts and an encoder writes -- every field known, with a wire type the decoder takes
for it, valid UTF-8 in strings, whole minimal varints and packed runs, no singular field
twice, no two members of one oneof -- and counts its items. Any field this OTLP version
does not know makes it refuse (the full path then discards such fields), so nothing
unscanned leaves, and no bytes the decoder reads differently from how they look (the
last of two span names, a merge of two status messages) leave either. The decoded batch
is made only if a forwarder needs another encoding (``codec.Batch.verbatim``).
"""

from __future__ import annotations

from typing import Any

import re2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from redact_proxy._native import Schema, scan

from redact_proxy.fields import FIELDS, Treatment
from redact_proxy.policy import CompiledPolicy, Level
from redact_proxy.policy.compile import DECISION_CACHE_LIMIT, OP_KEEP, OP_REMOVE, OP_REPLACE, TextOps
from redact_proxy.policy.regex import compile_regex
from redact_proxy.policy.regex import options as regex_options
from redact_proxy.policy.schema import LEVELS_OF
from redact_proxy.signals import ALL, Signal, descriptor
from redact_proxy.validate import wire_types

# Field kinds and flags of the native schema (native/core/src/walk.rs).
_PLAIN, _MESSAGE, _KEY, _TEXT, _SCALAR, _INT, _BOOL = range(7)
_ITEM, _UTF8, _REPEATED, _NESTED, _NUL_FREE = 1, 2, 4, 8, 16

VALUES = "values"
# The text channels ``scan`` fills: AnyValue strings, bytes and ints, then one per
# free-text target, in the order fields.FIELDS first names them.
CHANNELS: tuple[str, ...] = (VALUES,) + tuple(
    dict.fromkeys(f.target for f in FIELDS.values() if f.treatment is Treatment.TEXT and f.target is not None)
)
_CHANNEL = {name: i for i, name in enumerate(CHANNELS)}
_VALUES = _CHANNEL[VALUES]

_C = "opentelemetry.proto.common.v1"
# The AnyValue kinds a drop condition reads as text besides strings (attributes.text_of):
# ints and bools go to the values channel as that text (ints are also masked by it,
# scrub.text.mask_int); a double only marks its key (its repr is not rebuilt natively).
_INTS = {(f"{_C}.AnyValue", "int_value")}
_BOOLS = {(f"{_C}.AnyValue", "bool_value")}
_SCALARS = {(f"{_C}.AnyValue", "double_value")}
# Keys under a key: kvlist values (attributes that are maps, structured log bodies).
_NESTS = {(f"{_C}.KeyValueList", "values")}
_KEY_FIELD = (f"{_C}.KeyValue", "key")
# What the pipeline counts as items (scrub.*.count).
_ITEMS = {
    ("opentelemetry.proto.trace.v1.ScopeSpans", "spans"),
    ("opentelemetry.proto.logs.v1.ScopeLogs", "log_records"),
} | {
    (f"opentelemetry.proto.metrics.v1.{m}", "data_points")
    for m in ("Gauge", "Sum", "Histogram", "ExponentialHistogram", "Summary")
}

_T = FieldDescriptor
_TEXT_TYPES = {_T.TYPE_STRING, _T.TYPE_BYTES}

_REGEX_MEMORY = 64 << 20  # bytes of DFA cache: one big alternation over ~250 KB of text


def _roles() -> dict[tuple[str, str], tuple[int, int]]:
    """(message, field) -> (kind, channel) for every field the walk collects."""
    roles: dict[tuple[str, str], tuple[int, int]] = {}
    for pair, field in FIELDS.items():
        if field.treatment is Treatment.KEY:
            roles[pair] = (_KEY, 0)
        elif field.treatment is Treatment.VALUE:
            roles[pair] = (_TEXT, _VALUES)
        elif field.treatment is Treatment.TEXT:
            assert field.target is not None, "a TEXT field is built with its target (fields._text)"
            roles[pair] = (_TEXT, _CHANNEL[field.target])
        # IDENTIFIER: random ids no rule reads, stepped over
    roles.update({p: (_INT, _VALUES) for p in _INTS})
    roles.update({p: (_BOOL, _VALUES) for p in _BOOLS})
    roles.update({p: (_SCALAR, 0) for p in _SCALARS})
    return roles


_ROLES = _roles()


def _expected_type(kind: int, f: FieldDescriptor) -> bool:
    if kind == _KEY:
        return f.type == _T.TYPE_STRING
    if kind == _TEXT:
        return f.type in _TEXT_TYPES
    if kind == _INT:
        return f.type == _T.TYPE_INT64
    if kind == _BOOL:
        return f.type == _T.TYPE_BOOL
    return f.type not in _TEXT_TYPES and f.message_type is None


def build_schema(root: Descriptor) -> Schema:
    """The native walk's table for ``root``: every field of every message it can reach,
    with the wire types the decoder takes for it and whether it may repeat; roles (key,
    text channel, integer, number-or-boolean, item, nested) from ``fields.FIELDS`` and the
    names above. Raises LookupError when a named field is missing or of another type (an
    OTLP rename must fail loudly, not turn triage blind)."""
    order = _messages(root)
    index = {d.full_name: i for i, d in enumerate(order)}
    named = {(d.full_name, f.name): f for d in order for f in d.fields}
    wanted = set(_ROLES) | _ITEMS | _NESTS
    missing = sorted(".".join(p) for p in wanted if p not in named and p[0] in index)
    if missing or _KEY_FIELD not in named:
        raise LookupError(f"OTLP fields not found for triage: {', '.join(missing) or 'KeyValue.key'}")
    for pair, (kind, _channel) in _ROLES.items():
        if pair in named and not _expected_type(kind, named[pair]):
            raise LookupError(f"OTLP field {'.'.join(pair)} is not of the type triage expects")

    tables = []
    for d in order:
        oneofs = {o.full_name: i + 1 for i, o in enumerate(d.oneofs)}
        fields = []
        for f in d.fields:
            pair = (d.full_name, f.name)
            kind, target = _ROLES.get(pair, (_PLAIN, 0))
            if f.message_type is not None:
                kind, target = _MESSAGE, index[f.message_type.full_name]
            wires, packed = wire_types(f)
            oneof = oneofs[f.containing_oneof.full_name] if f.containing_oneof is not None else 0
            flags = (
                (_ITEM if pair in _ITEMS else 0)
                | (_UTF8 if f.type == _T.TYPE_STRING else 0)
                | (_REPEATED if f.is_repeated else 0)
                | (_NESTED if pair in _NESTS else 0)
                | (_NUL_FREE if kind == _TEXT else 0)
            )
            fields.append((f.number, kind, target, wires, packed, oneof, flags))
        tables.append(fields)
    return Schema(tables, len(CHANNELS))


def _messages(root: Descriptor) -> list[Descriptor]:
    """Every message reachable from ``root``, root first."""
    order: list[Descriptor] = []
    seen: set[str] = set()

    def visit(d: Descriptor) -> None:
        if d.full_name not in seen:
            seen.add(d.full_name)
            order.append(d)
            for f in d.fields:
                if f.message_type is not None:
                    visit(f.message_type)

    visit(root)
    return order


def _check_coverage() -> None:
    """Every field fields.FIELDS names exists in some export request: a renamed message
    would otherwise drop out of every schema unnoticed."""
    named = {(d.full_name, f.name) for s in ALL for d in _messages(descriptor(s.request)) for f in d.fields}
    missing = sorted(".".join(p) for p in set(_ROLES) | _ITEMS | _NESTS if p not in named)
    if missing:
        raise LookupError(f"OTLP fields not found for triage: {', '.join(missing)}")


_check_coverage()
SCHEMAS: dict[str, Schema] = {s.name: build_schema(descriptor(s.request)) for s in ALL}


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
                out.append("(?:)" if nxt in "Az" and not in_class else pattern[i : i + 2])
                i += 2
            continue
        if in_class:
            if pattern.startswith("[:", i) and (end := pattern.find(":]", i + 2)) >= 0:
                out.append(pattern[i : end + 2])  # [:alpha:] inside a class
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
        regexes: dict = {}  # the same masks on many fields: one compiled alternation
        self._checks = {s.name: _Checks(policy, s.name, regexes) for s in ALL}

    def untouched(self, signal: Signal, body: bytes) -> int | None:
        """The number of items in the protobuf ``body`` of ``signal`` when it can be
        forwarded as it is: the decoder would accept it, with no field it does not know,
        and scrubbing it would change nothing. None: not proven, decode and scrub it."""
        return self.judge(signal, body)[1]

    def exact(self, signal: Signal, body: bytes) -> bool:
        """Whether the walk vouches that the decoder accepts ``body`` exactly, with no
        field it does not know: what the native engine takes."""
        return scan(body, SCHEMAS[signal.name]) is not None

    def judge(self, signal: Signal, body: bytes) -> tuple[bool, int | None]:
        """(whether the walk vouches that the decoder accepts ``body`` exactly, with no
        field it does not know; the item count when, moreover, scrubbing would change
        nothing, else None). The native engine takes the bodies the walk vouches for."""
        name = signal.name
        checks = self._checks[name]
        found = scan(body, SCHEMAS[name])
        if found is None:
            return False, None
        if checks.never:
            return True, None
        keys, scalar_keys, texts, items, nested = found
        if nested and not checks.nested_ok:
            return True, None
        values = texts[_VALUES]
        memo = self._touches[name]
        drops = checks.drops
        for key in keys:
            touched = memo.get(key)
            if touched is None:
                touched = self._key_touched(name, key)
                if len(memo) >= DECISION_CACHE_LIMIT:
                    memo.clear()
                memo[key] = touched
            if touched:
                return True, None
            drop = drops.get(key)
            if drop is not None:
                finds, reads_scalars = drop
                if (reads_scalars and key in scalar_keys) or finds.search(values) is not None:
                    return True, None
        if checks.json is not None and checks.json.search(values) is not None:
            return True, None
        if checks.values is not None and _masked(checks.values, values, checks.confirmed):
            return True, None
        for channel, regex, text_rules, judged, confirmed in checks.channels:
            joined = texts[channel]
            if len(joined) == 1:
                continue  # no text in this field anywhere in the batch
            if regex is not None and _masked(regex, joined, confirmed):
                return True, None
            if text_rules and _rule_touches(text_rules, judged, joined, any(k in keys for k in _DB_SYSTEM_KEYS)):
                return True, None
        return True, items

    def _key_touched(self, signal: str, raw: bytes) -> bool:
        key = raw.decode("utf-8")  # scan returns no body with invalid UTF-8 in a string
        for level in LEVELS_OF[signal]:
            d = self.policy.decider(signal, level).decide(key)
            if d.op != OP_KEEP or d.new_key is not None:
                return True
        return False


def _masked(candidates, joined: bytes, memo: dict) -> bool:
    """Whether a mask would change one of the NUL-joined texts: each text the relaxed
    alternation finds a candidate in is masked for real (memoised, bounded)."""
    regex, masks = candidates
    pos = 0
    for m in regex.finditer(joined):  # one pass (a search per candidate rescans the rest)
        start, end = m.span()
        if start < pos:
            continue  # inside a text already judged
        if b"\x00" in joined[start:end]:
            return True  # spans two texts: not judged here
        head = joined.rfind(b"\x00", 0, start) + 1
        tail = joined.find(b"\x00", end)
        text = joined[head:tail]
        changed = memo.get(text)
        if changed is None:
            try:
                decoded = text.decode("utf-8")
            except UnicodeDecodeError:  # bytes that are not text: the scrubber leaves them
                changed = False
            else:
                changed = any(mask.masker.mask(decoded) is not None for mask in masks)
            if len(memo) >= DECISION_CACHE_LIMIT:
                memo.clear()
            memo[text] = changed
        if changed:
            return True
        pos = tail  # the next text starts after this NUL
    return False


# The keys a statement sanitizer reads an item's dialect from (attributes.system_of).
_DB_SYSTEM_KEYS = (b"db.system.name", b"db.system")


def _rule_touches(rules, memo: dict[tuple[bytes, bool], bool], joined: bytes, db_systems: bool) -> bool:
    """Whether a whole-field rule would change one of the texts of a NUL_FREE channel;
    ``db_systems``: whether any key of the batch (at any depth: more than the items' own
    attributes the scrubber reads) names a database system."""
    for text in set(joined[1:-1].split(b"\x00")):
        memo_key = (text, db_systems)
        touched = memo.get(memo_key)
        if touched is None:
            decoded = text.decode("utf-8")  # a free-text field is a `string`: scan checked it
            touched = any(ops.rule_touches(decoded, db_systems) for ops in rules)
            if len(memo) >= DECISION_CACHE_LIMIT:
                memo.clear()
            memo[memo_key] = touched
        if touched:
            return True
    return False


# Python's str.isspace, the whitespace ``scrub.attributes.scrub_string`` strips before
# it looks for JSON (tests/scrub/test_triage.py checks the two agree).
JSON_SPACE = (
    r"\t\n\x0b\x0c\r\x1c-\x20\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}"
    r"\x{202f}\x{205f}\x{3000}"
)
# A value text the scrubber would parse as JSON (and so meet keys inside).
_JSON_TEXT = rf"\x00[{JSON_SPACE}]*[{{\[]"


class _Checks:
    """What ``Triage.untouched`` tests for one signal, derived from the policy once."""

    __slots__ = ("never", "nested_ok", "drops", "json", "values", "confirmed", "channels")

    def __init__(self, policy: CompiledPolicy, signal: str, regexes: dict):
        deciders = [policy.decider(signal, level) for level in LEVELS_OF[signal]]
        texts = {(level, target): ops for (sig, level, target), ops in policy.texts.items() if sig == signal}
        body = texts.get((Level.LOG, "log_body"))
        self.never = body is not None and body.rule is not None and body.rule.op in (OP_REMOVE, OP_REPLACE)
        value_masks = [m for d in deciders for _filter, m in d.masks] + list(body.masks if body else ())
        self.nested_ok = not any(d.descend for d in deciders)
        self.drops = _drop_regexes(policy, signal)
        # JSON text meets the key rules and masks; with neither it is scrubbed to itself.
        json = any(d.descend or d.masks for d in deciders) or bool(value_masks)
        self.json = _compile([_JSON_TEXT]) if json else None
        self.values = _candidates(regexes, value_masks)
        self.confirmed: dict[bytes, bool] = {}  # value text -> a mask changes it
        # (channel, relaxed mask alternation, whole-field rules, their memo, the masks' memo)
        channels: list[tuple[int, Any, tuple[TextOps, ...], dict, dict]] = []
        for target in CHANNELS[1:]:
            ops = [o for (_level, t), o in texts.items() if t == target]
            rules = tuple(o for o in ops if o.rule is not None)
            candidates = _candidates(regexes, [m for o in ops for m in o.masks])
            if rules or candidates is not None:
                channels.append((_CHANNEL[target], candidates, rules, {}, {}))
        self.channels = tuple(channels)
        if self.values is False or any(c[1] is False for c in channels):
            self.never = True  # a pattern RE2 will not combine: triage is off for the signal


def _candidates(cache: dict, masks):
    """(the relaxed alternation of ``masks``, the masks), None when there is none, False
    when the alternation will not compile."""
    regex = _alternation(cache, masks)
    if regex is None or regex is False:
        return regex
    return regex, tuple({m.rule: m for m in masks}.values())


def _alternation(cache: dict, masks, extra: tuple[str, ...] = ()):
    """The relaxed patterns of ``masks`` (and ``extra``, used as they are) as one RE2
    alternation, memoised in ``cache`` by rules; None when there is none, False when it
    will not compile."""
    unique = {m.rule: m for m in masks}
    memo_key = (tuple(sorted(unique)), extra)
    if memo_key not in cache:
        cache[memo_key] = _compile([relax_anchors(p) for m in unique.values() for p in m.masker.patterns] + list(extra))
    return cache[memo_key]


def _compile(patterns: list[str]):
    if not patterns:
        return None
    try:
        return re2.compile("|".join(f"(?:{p})" for p in patterns), regex_options(max_mem=_REGEX_MEMORY))
    except re2.error:
        return False


# Every text ``attributes.text_of`` gives a double matches this (Python's float repr: 1.5,
# 1e+16, -inf, nan); a drop value that does not can only equal a string, an int or a bool,
# whose texts are in the values channel. (Over-broad on purpose: it need only cover.)
_SCALAR_TEXT = re2.compile(r"-?(?:[0-9][0-9.e+\-]*|inf|nan)")


def _drop_regexes(policy: CompiledPolicy, signal: str) -> dict[bytes, tuple[Any, bool]]:
    """Per key a drop rule tests: a regex that finds a whole text (between two NULs) of
    the values channel one of those rules would match, and whether a number or boolean
    under that key could match too."""
    alternatives: dict[bytes, list[str]] = {}
    reads_scalars: dict[bytes, bool] = {}
    for key, rules in policy.drops[signal].items():
        k = key.encode()
        for drop in rules:
            when = policy.rules[drop.index].when
            assert when is not None, "the schema gives every drop rule a `when:`"
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
