"""Attribute lists and AnyValues, scrubbed under one Decider.

Strategy: walk a KeyValue list once. Each key's Decision comes from the decider's memo
(one dict lookup for a known key); its ``op`` says what to do with the value.
Kept values that are kvlists or arrays are descended into, because a key rule applies to
keys at any depth. Removals are collected and done last, back to front, so indices stay
valid. Every change is counted in the ``Tally`` against the rule that made it. Mask rules run
last, on what the key rules kept (SPEC 6, step 4).

Depth: values are as deep as the decoder let them be (protobuf's recursion limit, 100);
a RecursionError here fails the batch closed, like any other exception.
"""

from __future__ import annotations

import struct
from typing import Callable

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from redact_proxy.policy import Decider, Decision
from redact_proxy.policy.compile import OP_HASH, OP_KEEP, OP_REMOVE


class Tally:
    """Per-batch counters, indexed by rule."""

    __slots__ = ("redactions", "dropped", "changed")

    def __init__(self, n_rules: int):
        self.redactions = [0] * n_rules
        self.dropped = [0] * n_rules
        self.changed = False


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


def hash_value(value: AnyValue, hasher: Callable[[bytes], str]) -> None:
    """Replace every scalar in ``value`` by the hex hash of its canonical bytes (SPEC 6):
    UTF-8 of a string, raw bytes, decimal int, true/false, shortest round-trip double.
    Arrays and kvlists keep their shape."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        value.string_value = hasher(value.string_value.encode())
    elif kind == "bytes_value":
        value.string_value = hasher(value.bytes_value)
    elif kind == "int_value":
        value.string_value = hasher(str(value.int_value).encode())
    elif kind == "bool_value":
        value.string_value = hasher(b"true" if value.bool_value else b"false")
    elif kind == "double_value":
        value.string_value = hasher(repr(value.double_value).encode())
    elif kind == "array_value":
        for item in value.array_value.values:
            hash_value(item, hasher)
    elif kind == "kvlist_value":
        for kv in value.kvlist_value.values:
            hash_value(kv.value, hasher)


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


def rewrite_value(value: AnyValue, rewrite: Callable[[str], str]) -> None:
    """Apply a string rewriter (sanitize_sql/url) to every string inside ``value``. Bytes
    are read as UTF-8 (invalid sequences replaced) and become a string; numbers and
    booleans carry no text to sanitize and stay."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        value.string_value = rewrite(value.string_value)
    elif kind == "bytes_value":
        value.string_value = rewrite(value.bytes_value.decode("utf-8", "replace"))
    elif kind == "array_value":
        for item in value.array_value.values:
            rewrite_value(item, rewrite)
    elif kind == "kvlist_value":
        for kv in value.kvlist_value.values:
            rewrite_value(kv.value, rewrite)


def mask_text(text: str, masks, tally: Tally) -> str | None:
    """``text`` after every mask, or None if none of them changed it."""
    out = None
    for m in masks:
        masked = m.apply(text if out is None else out)
        if masked is not None:
            out = masked
            tally.redactions[m.rule] += 1
    if out is not None:
        tally.changed = True
    return out


def mask_value(value: AnyValue, masks, tally: Tally) -> None:
    """Mask every string inside ``value`` (arrays and kvlists included)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        masked = mask_text(value.string_value, masks, tally)
        if masked is not None:
            value.string_value = masked
    elif kind == "array_value":
        for item in value.array_value.values:
            mask_value(item, masks, tally)
    elif kind == "kvlist_value":
        for kv in value.kvlist_value.values:
            mask_value(kv.value, masks, tally)


def scrub_attributes(attrs, decider: Decider, tally: Tally, hasher) -> None:
    """Scrub a top-level attribute list: key rules, then keep_only, then masks."""
    if attrs:
        _scrub_kvs(attrs, decider, decider.top, decider.decide, tally, hasher, ())


def scrub_value(value: AnyValue, decider: Decider, tally: Tally, hasher, masks=()) -> None:
    """Scrub a value that is not itself under a key (a log body): key rules on the keys
    inside it, then ``masks`` on its strings."""
    if decider.has_key_rules or masks:
        _value(value, value.WhichOneof("value"), decider, tally, hasher, masks)


def _scrub_kvs(kvs, decider: Decider, memo: dict, decide, tally: Tally, hasher, inherited) -> None:
    # The hot loop: most attributes are kept, so that path is one memo lookup and, when
    # key rules or masks exist, one look at the value's kind (no call per attribute).
    # ``inherited``: the masks of the attribute this kvlist sits under.
    doomed = None
    descend = decider.has_key_rules
    for i, kv in enumerate(kvs):
        key = kv.key
        d: Decision | None = memo.get(key)
        if d is None:
            d = decide(key)
        op = d.op
        if op == OP_KEEP:
            masks = d.masks or inherited
            if descend or masks:
                value = kv.value
                kind = value.WhichOneof("value")
                if kind == "kvlist_value" or kind == "array_value" or (masks and kind == "string_value"):
                    _value(value, kind, decider, tally, hasher, masks)
            continue
        tally.redactions[d.rule] += 1
        tally.changed = True
        if op == OP_REMOVE:
            if doomed is None:
                doomed = []
            doomed.append(i)
        elif op == OP_HASH:  # a hashed value is final: never masked
            (collector_hash_value if d.collector_hash else hash_value)(kv.value, hasher)
        else:  # OP_REWRITE: sanitize, then mask what survived
            rewrite_value(kv.value, d.rewrite)
            masks = d.masks or inherited
            if masks:
                mask_value(kv.value, masks, tally)
    if doomed:
        for i in reversed(doomed):
            del kvs[i]


def _value(value: AnyValue, kind: str | None, decider: Decider, tally: Tally, hasher, masks) -> None:
    """A kept value: key rules on the keys inside it, masks on its strings."""
    if kind == "kvlist_value":
        kvs = value.kvlist_value.values
        if kvs:
            _scrub_kvs(kvs, decider, decider.nested, decider.decide_nested, tally, hasher, masks)
    elif kind == "array_value":
        for item in value.array_value.values:
            _value(item, item.WhichOneof("value"), decider, tally, hasher, masks)
    elif kind == "string_value" and masks:
        masked = mask_text(value.string_value, masks, tally)
        if masked is not None:
            value.string_value = masked
