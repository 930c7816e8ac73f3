"""Attribute lists and AnyValues, scrubbed under one Decider.

Strategy: walk a KeyValue list once. Each key's Decision comes from the decider's memo
(one dict lookup for a known key); its ``op`` says what to do with the value, and its
``new_key`` whether the key itself is rewritten (keys are data). Kept values that are
kvlists or arrays are descended into, because key rules apply at any depth: a nested key
is decided by its dotted path from the top attribute (or the body root) and the tails of
that path (``Decider.decide_nested``); arrays add nothing to the path. Removals are
collected and done last, back to front, so indices stay valid. Every change is counted in
the ``Tally`` against the rule that made it. Mask rules run last, on what the key rules
kept (SPEC 6, step 4): on strings, on bytes that are UTF-8 text, on the decimal text of
integers (the digit detectors only), and on JSON text as structured data (``jsontext``).

Depth: values are as deep as the decoder let them be (protobuf's recursion limit, 100);
a RecursionError here fails the batch closed, like any other exception.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from redact_proxy.policy import Decider, Decision
from redact_proxy.policy.compile import OP_HASH, OP_KEEP, OP_REMOVE, OP_REPLACE, Mask, TextOps, join
from redact_proxy.scrub import jsontext
from redact_proxy.scrub.text import Tally, mask_int, mask_text, scrub_text

__all__ = ["DbSystem", "Tally", "hash_value", "mask_text", "scrub_attributes", "scrub_text", "scrub_value", "text_of"]


def text_of(value: AnyValue) -> str | None:
    """Canonical text of a scalar value, as drop conditions compare it (and as the
    policy's YAML scalars are written: see schema.text_of_scalar). None for non-scalars."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return str(value.int_value)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "double_value":
        return repr(value.double_value)
    return None


def scalars(value: AnyValue) -> Iterator[tuple[AnyValue, str | None]]:
    """Every scalar inside ``value`` with its kind (``WhichOneof``; None for an empty
    value), depth first and in order; arrays and kvlists are walked, not given. The one
    walk under hash_value, rewrite_value and mask_value: a caller may replace the scalar
    it is given (it is a leaf: the walk never looks into it again)."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        for item in value.array_value.values:
            yield from scalars(item)
    elif kind == "kvlist_value":
        for kv in value.kvlist_value.values:
            yield from scalars(kv.value)
    else:
        yield value, kind


def hash_value(value: AnyValue, hasher: Callable[[bytes], str]) -> None:
    """Replace every scalar in ``value`` by the hex hash of its canonical bytes (SPEC 6):
    UTF-8 of a string, raw bytes, decimal int, true/false, shortest round-trip double.
    Arrays and kvlists keep their shape."""
    for leaf, kind in scalars(value):
        if kind == "string_value":
            leaf.string_value = hasher(leaf.string_value.encode())
        elif kind == "bytes_value":
            leaf.string_value = hasher(leaf.bytes_value)
        elif kind == "int_value":
            leaf.string_value = hasher(str(leaf.int_value).encode())
        elif kind == "bool_value":
            leaf.string_value = hasher(b"true" if leaf.bool_value else b"false")
        elif kind == "double_value":
            leaf.string_value = hasher(repr(leaf.double_value).encode())


def collector_hash_value(value: AnyValue, hasher: Callable[[bytes], str]) -> None:
    """The collector attributes processor's ``hash`` (contrib attraction/hasher.go):
    strings as UTF-8, bools as one byte, ints and doubles as their 8 little-endian bytes;
    any other value becomes the empty string. Used for rules imported from a collector
    config, so hashes it already stored stay comparable."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        data = value.string_value.encode()
    elif kind == "bool_value":
        data = b"\x01" if value.bool_value else b"\x00"
    elif kind == "int_value":
        data = struct.pack("<q", value.int_value)
    elif kind == "double_value":
        data = struct.pack("<d", value.double_value)
    else:
        value.string_value = ""
        return
    value.string_value = hasher(data)


def rewrite_value(value: AnyValue, rewrite, system: str | None) -> None:
    """Apply a string rewriter (sanitize_sql/url) to every string inside ``value``. Bytes
    are read as UTF-8 (invalid sequences replaced) and become a string; numbers and
    booleans carry no text to sanitize and stay."""
    for leaf, kind in scalars(value):
        if kind == "string_value":
            leaf.string_value = rewrite(leaf.string_value, system)
        elif kind == "bytes_value":
            leaf.string_value = rewrite(leaf.bytes_value.decode("utf-8", "replace"), system)


def system_of(kvs) -> str | None:
    """The database system an item's attributes name (db.system.name, else db.system),
    which picks the dialect ``sanitize_sql`` reads a statement in."""
    found = None
    for kv in kvs:
        if kv.key == "db.system.name":
            return kv.value.string_value or None
        if kv.key == "db.system":
            found = kv.value.string_value or None
    return found


def scrub_attributes(attrs, decider: Decider, tally: Tally, hasher, system: "DbSystem | None" = None) -> None:
    """Scrub a top-level attribute list: key rules, then keep_only, then masks.
    ``system``: the list's db system when the caller already looked it up."""
    if attrs:
        _scrub_kvs(attrs, decider, None, tally, hasher, (), system or DbSystem(attrs))


def scrub_value(
    value: AnyValue, decider: Decider, tally: Tally, hasher, ops: TextOps | None = None, system: str | None = None
) -> bool:
    """Scrub a value that is not itself under a key (a log body): its whole-field rule,
    key rules on the keys inside it (paths from the body root), then ``ops.masks`` on its
    text. Returns False when the rule deletes the value (the caller clears the field)."""
    masks: tuple[Mask, ...] = ()
    if ops is not None:
        d = ops.rule
        if d is not None and d.op in (OP_REMOVE, OP_REPLACE) and value.WhichOneof("value") is not None:
            tally.redactions[d.rule] += 1
            tally.changed = True
            if d.op == OP_REMOVE:
                return False
            value.string_value = d.replacement
            return True
        masks = ops.masks
    if decider.descend or masks:
        _value(value, value.WhichOneof("value"), decider, "", tally, hasher, masks, system)
    return True


class DbSystem:
    """The db system of a top-level attribute list, looked up on first need (only
    sanitize_sql reads it)."""

    __slots__ = ("kvs", "done", "value")

    def __init__(self, kvs):
        self.kvs = kvs
        self.done = False
        self.value = None

    @classmethod
    def known(cls, value: str | None) -> "DbSystem":
        lazy = cls(())
        lazy.done, lazy.value = True, value
        return lazy

    def get(self) -> str | None:
        if not self.done:
            self.value, self.done = system_of(self.kvs), True
        return self.value


def _scrub_kvs(kvs, decider: Decider, parent: str | None, tally: Tally, hasher, inherited, system) -> None:
    # The hot loop: most attributes are kept, so that path is one memo lookup and, when
    # key rules or masks exist, one look at the value's kind (no call per attribute).
    # ``parent``: None for a top-level attribute list, else the dotted path of the value
    # this kvlist is. ``inherited``: the masks of the attribute this kvlist sits under.
    # ``system``: a DbSystem (top level) or the db system already looked up.
    doomed = None
    descend = decider.descend
    top = parent is None
    memo = decider.top
    for i, kv in enumerate(kvs):
        key = kv.key
        if parent is None:  # top: said so for the type checker, which does not follow `top`
            d: Decision | None = memo.get(key)
            if d is None:
                d = decider.decide(key)
        else:
            d = decider.decide_nested(parent, key)
        if d.new_key is not None:
            kv.key = d.new_key
            for rule in d.key_rules:
                tally.redactions[rule] += 1
            tally.changed = True
        op = d.op
        if op == OP_KEEP:
            masks = d.masks or inherited
            if descend or masks:
                value = kv.value
                kind = value.WhichOneof("value")
                if (
                    kind == "kvlist_value"
                    or kind == "array_value"
                    or (kind == "string_value" and (masks or jsontext.looks_like(value.string_value)))
                    or (masks and (kind == "bytes_value" or kind == "int_value"))
                ):
                    _value(
                        value,
                        kind,
                        decider,
                        key if parent is None else join(parent, key),
                        tally,
                        hasher,
                        masks,
                        system.get() if top else system,
                    )
            continue
        tally.redactions[d.rule] += 1
        tally.changed = True
        if op == OP_REMOVE:
            if doomed is None:
                doomed = []
            doomed.append(i)
        elif op == OP_HASH:  # a hashed value is final: never masked
            (collector_hash_value if d.collector_hash else hash_value)(kv.value, hasher)
        elif op == OP_REPLACE:  # replaced whole, whatever its type
            kv.value.string_value = d.replacement
        else:  # OP_REWRITE: sanitize, then mask what survived
            rewrite_value(kv.value, d.rewrite, system.get() if top else system)
            masks = d.masks or inherited
            if masks:
                mask_value(kv.value, masks, tally)
    if doomed:
        for i in reversed(doomed):
            del kvs[i]


def mask_value(value: AnyValue, masks, tally: Tally) -> None:
    """Mask every string inside ``value`` (arrays and kvlists included) as text."""
    for leaf, kind in scalars(value):
        if kind == "string_value":
            masked = mask_text(leaf.string_value, masks, tally)
            if masked is not None:
                leaf.string_value = masked


def _value(value: AnyValue, kind: str | None, decider: Decider, path: str, tally: Tally, hasher, masks, system) -> None:
    """A kept value at dotted ``path``: key rules on the keys inside it, masks on its
    strings, UTF-8 bytes and integers; JSON text scrubbed as structured data."""
    if kind == "kvlist_value":
        kvs = value.kvlist_value.values
        if kvs:
            _scrub_kvs(kvs, decider, path, tally, hasher, masks, system)
    elif kind == "array_value":
        for item in value.array_value.values:
            _value(item, item.WhichOneof("value"), decider, path, tally, hasher, masks, system)
    elif kind == "string_value":
        out = scrub_string(value.string_value, decider, path, tally, hasher, masks, system)
        if out is not None:
            value.string_value = out
    elif kind == "bytes_value" and masks:
        try:
            text = value.bytes_value.decode("utf-8")
        except UnicodeDecodeError:
            return  # not text: left to the key rules (README, "Value types")
        out = scrub_string(text, decider, path, tally, hasher, masks, system)
        if out is not None:
            value.bytes_value = out.encode("utf-8", "surrogatepass")
    elif kind == "int_value" and masks:
        out = mask_int(value.int_value, masks, tally)
        if out is not None:
            value.string_value = out


def scrub_string(text: str, decider: Decider, path: str, tally: Tally, hasher, masks, system) -> str | None:
    """A kept string at ``path``: JSON text is scrubbed as structured data under the key
    rules and masks; any other text (or JSON over the limits) is masked as text."""
    if jsontext.looks_like(text):
        out = jsontext.scrub(text, decider, path, tally, hasher, masks, system)
        if out is not jsontext.NOT_JSON:
            return out
    return mask_text(text, masks, tally) if masks else None
