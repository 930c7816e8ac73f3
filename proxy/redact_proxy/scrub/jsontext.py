"""A string value (or a log body) that is a JSON object or array, scrubbed as structured data.

Strategy: applications log JSON lines and put JSON documents into attributes
(``gen_ai.input.messages``, request bodies); the key rules must meet the keys inside them
as they meet the keys of a kvlist. The text is parsed, walked with the same path
semantics (an object member is a nested key under the path of the value the text sits in;
arrays add nothing), its strings and integers masked, and written back as compact JSON --
only when something changed, so an untouched document keeps its bytes. Objects are
parsed as their list of members, duplicates kept: a decoder that kept only the last
``"email"`` would let the first one pass unseen into the unchanged text.

Bounds: text over ``MAX_CHARS`` characters or nested deeper than ``MAX_DEPTH`` (JSON
strings inside JSON count) is not parsed; it is masked as text, as is text that is not
JSON. ``scrub`` returns ``NOT_JSON`` for those, the new text, or None when unchanged.
"""

from __future__ import annotations

import json

from redact_proxy.policy.compile import OP_HASH, OP_KEEP, OP_REMOVE, OP_REPLACE, join
from redact_proxy.scrub.text import Tally, mask_int, mask_text

MAX_CHARS = 64 * 1024
MAX_DEPTH = 32

NOT_JSON = object()
_START = ("{", "[")


def looks_like(text: str) -> bool:
    """Whether ``text`` may be a JSON object or array: its first non-blank character."""
    head = text[:1]
    return head in _START or (head.isspace() and text.lstrip()[:1] in _START)


class _Object(list):
    """A JSON object as its [key, value] members, in order, duplicates kept."""


def _members(pairs) -> _Object:
    return _Object([k, v] for k, v in pairs)


class _TooDeep(Exception):
    pass


def scrub(text: str, decider, path: str, tally: Tally, hasher, masks, system, depth: int = 0):
    """The scrubbed JSON text, None if nothing changed, or NOT_JSON (mask it as text)."""
    if len(text) > MAX_CHARS:
        return NOT_JSON
    try:
        doc = json.loads(text, object_pairs_hook=_members)
    except (ValueError, RecursionError):
        return NOT_JSON
    if not isinstance(doc, list):  # a bare JSON scalar is just text
        return NOT_JSON
    walk = _Walk(decider, tally, hasher, system)
    try:
        changed = walk.container(doc, path, masks, depth)
    except _TooDeep:
        return NOT_JSON
    if not changed:
        return None
    tally.changed = True
    return _dump(doc)


class _Walk:
    __slots__ = ("decider", "tally", "hasher", "system")

    def __init__(self, decider, tally, hasher, system):
        self.decider = decider
        self.tally = tally
        self.hasher = hasher
        self.system = system

    def container(self, doc: list, path: str, masks, depth: int) -> bool:
        """Scrub an object or array in place; True when anything changed."""
        if depth >= MAX_DEPTH:
            raise _TooDeep
        changed = False
        if isinstance(doc, _Object):
            decider = self.decider
            doomed = []
            for i, member in enumerate(doc):
                key = member[0]
                d = decider.decide_nested(path, key)
                if d.new_key is not None:
                    member[0] = d.new_key
                    for rule in d.key_rules:
                        self.tally.redactions[rule] += 1
                    changed = True
                op = d.op
                if op == OP_KEEP:
                    new, hit = self.value(member[1], join(path, key), d.masks or masks, depth + 1)
                    if hit:
                        member[1] = new
                        changed = True
                    continue
                self.tally.redactions[d.rule] += 1
                changed = True
                if op == OP_REMOVE:
                    doomed.append(i)
                elif op == OP_HASH:
                    member[1] = self.hashed(member[1])
                elif op == OP_REPLACE:
                    member[1] = d.replacement
                else:  # OP_REWRITE: sanitize every string, then mask
                    member[1] = self.rewritten(member[1], d.rewrite)
                    new, hit = self.value(member[1], join(path, key), d.masks or masks, depth + 1)
                    if hit:
                        member[1] = new
            for i in reversed(doomed):
                del doc[i]
        else:
            for i, item in enumerate(doc):
                new, hit = self.value(item, path, masks, depth + 1)
                if hit:
                    doc[i] = new
                    changed = True
        return changed

    def value(self, value, path: str, masks, depth: int):
        """(new value, changed) for one JSON value."""
        if isinstance(value, list):
            return value, self.container(value, path, masks, depth)
        if isinstance(value, str):
            if looks_like(value):
                out = scrub(value, self.decider, path, self.tally, self.hasher, masks, self.system, depth + 1)
                if out is not NOT_JSON:
                    return (out, True) if out is not None else (value, False)
            if masks:
                out = mask_text(value, masks, self.tally)
                if out is not None:
                    return out, True
            return value, False
        if masks and isinstance(value, int) and not isinstance(value, bool):
            out = mask_int(value, masks, self.tally)
            if out is not None:
                return out, True
        return value, False

    def hashed(self, value):
        """Every scalar replaced by the hash of its canonical text (SPEC 6); shape kept."""
        if isinstance(value, _Object):
            return _Object([k, self.hashed(v)] for k, v in value)
        if isinstance(value, list):
            return [self.hashed(v) for v in value]
        if value is None:
            return None
        if isinstance(value, bool):
            data = b"true" if value else b"false"
        elif isinstance(value, float):
            data = repr(value).encode()
        else:
            data = str(value).encode("utf-8", "surrogatepass")
        return self.hasher(data)

    def rewritten(self, value, rewrite):
        if isinstance(value, _Object):
            return _Object([k, self.rewritten(v, rewrite)] for k, v in value)
        if isinstance(value, list):
            return [self.rewritten(v, rewrite) for v in value]
        if isinstance(value, str):
            return rewrite(value, self.system)
        return value


def _dump(value) -> str:
    if isinstance(value, _Object):
        return "{" + ",".join(f"{_scalar(k)}:{_dump(v)}" for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_dump(v) for v in value) + "]"
    return _scalar(value)


def _scalar(value) -> str:
    return json.dumps(value, ensure_ascii=False)
