"""The audit's memory: one ``Field`` per (signal, level, field path) of what the policy
let through, with counts, lengths, a distinct-value sketch and findings by kind.

Strategy: the ledger is fed scrubbed export requests (``walk.py`` reads them; the scrub
itself is the proxy's, never redone here) and keeps numbers only. What a field's values
are checked for is decided once per key and memoised in a ``Plan``, like the policy's own
``Decider``: the rule that decided the key (through that same Decider), whether the
registry knows the key, whether the key itself looks personal (then it is kept and shown
only as its keyed hash), and which detectors the policy did not already run on it.

Bounds, whatever the traffic: at most ``MAX_FIELDS`` fields (later ones are pooled into
one "(other fields)" per signal and level, with a sketch of how many there were), plans
and value memos reset when full (as the Decider's memo does), a fixed-size sketch per
field. tests/audit/test_ledger.py measures the structure under a stream of distinct keys.

Values never leave this module: a field holds counts, lengths and at most one sample, the
keyed hash of a value that had a finding (the policy's hash key, so it matches what a
``hash`` rule would have forwarded; a policy with no key gets a random one per process).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import threading
import time
from dataclasses import replace

from redact_proxy.audit import registry
from redact_proxy.audit.shapes import (
    MASK64,
    ALL_DETECTORS,
    Detectors,
    Sketch,
    applied_detectors,
    is_free_text,
    shape_kinds,
)
from redact_proxy.policy import CompiledPolicy, Decision, Level
from redact_proxy.policy.compile import OP_HASH, OP_REMOVE, OP_REPLACE, join

MAX_FIELDS = 2048  # fields tracked one by one; later ones share an "(other fields)" entry
PLAN_MEMO_LIMIT = 4096  # memoised key plans per (signal, level), as compile.DECISION_CACHE_LIMIT
VALUE_MEMO_LIMIT = 8192  # memoised value classifications per detector set
VALUE_MEMO_MAX = 256  # characters; longer values rarely repeat
HIGH_CARDINALITY_MIN = 50  # values of a field before its cardinality is judged
HIGH_CARDINALITY_SHARE = 0.5  # distinct / values at or above which a field is identifier-like
HASH_CHARS = 16  # hex characters of a keyed hash shown for a key or a sample
OTHER_FIELDS = "(other fields)"
_HIGH_CARDINALITY: tuple[str, ...] = ("high_cardinality",)
# Registry keys that hold ids software generates for itself and its machines, not for
# people: their identifier shapes are expected (the SDKs set service.instance.id to a
# random UUID). Detectors still run on them.
_INFRASTRUCTURE_ID = re.compile(
    r"service\.instance\.id|host\.id|host\.image\.id|container\.id|container\.image\.id|k8s\.[a-z_]+\.uid"
    r"|faas\.instance|cloud\.resource_id|process\.pid|os\.build_id|telemetry\.[a-z_.]+"
    r"|vcs\.(?:ref\.head|ref\.base|repository\.ref)\.revision"
)


class Field:
    """What survived in one field. ``decided``: the rule that decided it (a label, see
    ``decision_label``); ``key_rule``: whether a key rule matched it at all."""

    __slots__ = (
        "signal",
        "level",
        "path",
        "decided",
        "key_rule",
        "registry",
        "values",
        "chars",
        "longest",
        "sketch",
        "kinds",
        "sample",
        "flagged",
        "names",
        "shapes",
        "native",
        "native_distinct",
    )

    def __init__(
        self, signal: str, level: str, path: str, decided: str, key_rule: bool | None, in_registry: bool | None
    ):
        self.signal, self.level, self.path = signal, level, path
        self.decided, self.key_rule, self.registry = decided, key_rule, in_registry
        self.values = self.chars = self.longest = 0
        self.sketch = Sketch()
        self.kinds: dict[tuple[str, ...], int] = {}  # findings by their tuple of kinds
        self.sample: str | None = None
        self.flagged = False  # high cardinality already counted
        self.names: Sketch | None = None  # OTHER_FIELDS only: how many fields it pools
        self.shapes = True  # identifier shapes are findings here (not under an infrastructure id)
        self.native: int | None = None  # its id in the native tallies (native.py)
        self.native_distinct: int | None = None  # their sketch's estimate, when they hold the counts

    def distinct(self) -> int:
        return self.sketch.estimate() if self.native_distinct is None else self.native_distinct

    def high_cardinality(self) -> bool:
        """Distinct values close to the number of values: ids, names, addresses."""
        return (
            self.shapes
            and self.values >= HIGH_CARDINALITY_MIN
            and self.path != OTHER_FIELDS
            and self.distinct() >= HIGH_CARDINALITY_SHARE * self.values
        )


class Plan:
    """How one key's values are checked (memoised per key)."""

    __slots__ = ("field", "level", "masks", "remaining", "skip", "prose", "memo", "key_kinds", "shapes", "native")

    def __init__(
        self, field: Field, level: str, masks: tuple, remaining: frozenset, skip: bool, prose: bool, memo: dict
    ):
        self.field = field
        self.level = level
        self.masks = masks  # the policy's mask rules on this field (nested keys inherit them)
        self.remaining = remaining  # detectors the policy did not run on this field
        self.skip = skip  # the value is the policy's own output (a hash, a replacement): counted only
        self.prose = prose  # a key outside the registry: free text in it is a finding
        self.memo = memo  # text -> kinds, shared by plans with the same detector set
        self.key_kinds: tuple[str, ...] = ()  # what the key itself holds (keys are data too)
        self.shapes = True  # identifier shapes count (not for _INFRASTRUCTURE_ID keys)
        self.native: tuple[int, int] | None = None  # (generation, id) in the native tallies (native.py)


def decision_label(policy: CompiledPolicy, d: Decision) -> str:
    if d.action is not None:
        return f"{d.action.value} by {policy.rules[d.rule].name}"
    if d.masks:
        return "mask by " + ",".join(policy.rules[m.rule].name for m in d.masks)
    return "no rule"


class Ledger:
    def __init__(self, policy: CompiledPolicy, max_fields: int = MAX_FIELDS, policy_key: bool = True, hash64=None):
        self.max_fields = max_fields
        # The sketches' hash of a value: Python's own (randomised per process); the
        # differential test gives the native tallies' instead, so the two sketches agree.
        self.hash64 = hash64 or _python_hash
        self.policy_key = policy_key  # False: the policy was compiled with a stand-in key
        self.detectors = Detectors()
        self._ephemeral = hmac.new(os.urandom(32), digestmod=hashlib.sha256)
        self._lock = threading.Lock()
        self.reset(policy)

    def reset(self, policy: CompiledPolicy) -> None:
        """Start over under ``policy`` (at start and on every reload)."""
        with self._lock:
            self.reset_locked(policy)

    def reset_locked(self, policy: CompiledPolicy) -> None:
        """``reset``, the lock already held."""
        self.policy = policy
        # Keyed hashes only: the policy's when it has a key, else this process's own.
        keyed = getattr(policy.hasher, "__name__", "") == "hmac_sha256"
        self.hash_key = "policy" if keyed and self.policy_key else "ephemeral"
        self._hasher = policy.hasher if keyed else self._ephemeral_hash
        self.fields: dict[tuple[str, str, str], Field] = {}
        self.plans: dict[tuple, dict] = {}
        self._memos: dict[tuple[frozenset, bool], dict] = {}
        self._personal: dict[str, tuple[str, tuple[str, ...]]] = {}  # key -> show_key
        self.items = {"traces": 0, "metrics": 0, "logs": 0}
        self.batches = 0
        self.applied = [0] * len(policy.rules)  # changes per rule, from the scrub's Report
        self.totals: dict[tuple[str, str, str], int] = {}  # (signal, level, kind) -> findings
        self.since = time.time()

    def _ephemeral_hash(self, data: bytes) -> str:
        h = self._ephemeral.copy()
        h.update(data)
        return h.hexdigest()

    def hash16(self, data: bytes) -> str:
        return self._hasher(data)[:HASH_CHARS]

    # --- keys --------------------------------------------------------------------------

    def show_key(self, key: str) -> tuple[str, tuple[str, ...]]:
        """``key`` as it may be printed and what it holds: itself, or its keyed hash when
        the key itself looks personal (a detector or an identifier shape finds something
        in it: those kinds)."""
        shown = self._personal.get(key)
        if shown is None:
            kinds = shape_kinds(key) + self.detectors.kinds(key, ALL_DETECTORS)
            shown = (f"#{self.hash16(key.encode('utf-8', 'surrogatepass'))}" if kinds else key, kinds)
            if len(self._personal) >= PLAN_MEMO_LIMIT:
                self._personal.clear()
            self._personal[key] = shown
        return shown

    def field(
        self, signal: str, level: str, path: str, decided: str, key_rule: bool | None, in_registry: bool | None
    ) -> Field:
        where = (signal, level, path)
        f = self.fields.get(where)
        if f is None:
            if len(self.fields) >= self.max_fields:
                other = (signal, level, OTHER_FIELDS)
                f = self.fields.get(other)
                if f is None:  # may take the table one over its cap per (signal, level): bounded
                    f = self.fields[other] = Field(signal, level, OTHER_FIELDS, "(various)", None, None)
                    f.names = Sketch()
                assert f.names is not None  # every OTHER_FIELDS entry is made with its sketch, just above
                f.names.add(path)
                return f
            f = self.fields[where] = Field(signal, level, path, decided, key_rule, in_registry)
        return f

    def plan_memo(self, signal: str, level: str, space: str) -> dict:
        memo = self.plans.get((signal, level, space))
        if memo is None:
            memo = self.plans[(signal, level, space)] = {}
        elif len(memo) >= PLAN_MEMO_LIMIT:
            memo.clear()
        return memo

    def key_plan(self, signal: str, level: Level, parent: str | None, shown_parent: str, key: str, masks) -> Plan:
        """The plan for attribute ``key`` (``parent``: None at the top of an attribute list,
        else the dotted path of the value it sits in); ``masks``: the mask rules the
        scrub ran on it (a nested key inherits its top attribute's)."""
        decider = self.policy.decider(signal, level)
        if parent is None:
            d = decider.decide(key)
            masks = d.masks
        else:
            d = decider.decide_nested(parent, key)
        shown, key_kinds = self.show_key(key)
        path = f"{shown_parent}.{shown}"
        known = registry.known(key if parent is None else join(parent, key))
        f = self.field(
            signal,
            level.value,
            path,
            decision_label(self.policy, d if parent is None else _with_masks(d, masks)),
            d.action is not None,
            known,
        )
        skip = d.op in (OP_HASH, OP_REPLACE, OP_REMOVE)
        if f.path != OTHER_FIELDS:  # the pool judges every shape
            f.shapes = not (known and _INFRASTRUCTURE_ID.fullmatch(key if parent is None else join(parent, key)))
        plan = self._plan(f, level.value, masks, skip, not known)
        plan.key_kinds = key_kinds
        return plan

    def text_plan(self, signal: str, level: Level, target: str) -> Plan:
        """The plan for a free-text field (``fields.TARGET_LEVELS`` target)."""
        ops = self.policy.text(signal, level, target)
        rule = ops.rule
        skip = rule is not None and rule.op in (OP_REMOVE, OP_REPLACE)
        if rule is not None and rule.action is not None:  # a whole-field rule always has one
            decided = f"{rule.action.value} by {self.policy.rules[rule.rule].name}"
        elif ops.masks:
            decided = "mask by " + ",".join(self.policy.rules[m.rule].name for m in ops.masks)
        else:
            decided = "no rule"
        f = self.field(signal, level.value, target, decided, None, None)
        return self._plan(f, level.value, ops.masks, skip, False)

    def _plan(self, f: Field, level: str, masks, skip: bool, prose: bool) -> Plan:
        remaining = ALL_DETECTORS - applied_detectors(self.policy, masks) if masks else ALL_DETECTORS
        memo = self._memos.get((remaining, f.shapes))
        if memo is None:
            if len(self._memos) >= 64:
                self._memos.clear()
            memo = self._memos[(remaining, f.shapes)] = {}
        plan = Plan(f, level, tuple(masks), remaining, skip, prose, memo)
        plan.shapes = f.shapes
        return plan

    # --- values ------------------------------------------------------------------------

    def text(self, plan: Plan, text: str, found: dict) -> None:
        """One surviving string of ``plan``'s field. The hot path (every kept string
        value): counts, one sketch comparison, one memo lookup for a value seen before.
        Findings are tallied by their tuple of kinds (one dict update per value), split
        into kinds only when read (``kind_counts``, ``walk.observe``)."""
        f = plan.field
        f.values += 1
        n = len(text)
        f.chars += n
        if n > f.longest:
            f.longest = n
        if plan.skip or not n:
            return
        sketch = f.sketch
        h = self.hash64(text)
        if h < sketch.top:
            sketch.add_hash(h)
        if plan.shapes:
            v = f.values
            if v >= HIGH_CARDINALITY_MIN and not v & (v - 1) and not f.flagged and f.high_cardinality():
                f.flagged = True  # judged at each power of two: a field counts once, when it crosses
                key = (plan.level, _HIGH_CARDINALITY)
                found[key] = found.get(key, 0) + 1
        # A field of distinct values (flagged above) would only fill the memo: not used.
        kinds = self.classify(plan, text, not f.flagged)
        if kinds:
            combos = f.kinds
            combos[kinds] = combos.get(kinds, 0) + 1
            key = (plan.level, kinds)
            found[key] = found.get(key, 0) + 1
            if f.sample is None:
                f.sample = self.hash16(text.encode("utf-8", "surrogatepass"))

    def classify(self, plan: Plan, text: str, memoise: bool = True) -> tuple[str, ...]:
        """The kinds of a non-empty surviving string of ``plan``'s field: its identifier
        shapes, the detectors the policy did not run on it (a named detector says more than
        "high entropy"), and free text under a key the registry does not know."""
        n = len(text)
        memo = plan.memo if memoise and n <= VALUE_MEMO_MAX else None
        kinds = None if memo is None else memo.get(text)
        if kinds is None:
            kinds = shape_kinds(text) if plan.shapes else ()
            if plan.remaining:
                named = self.detectors.kinds(text, plan.remaining)
                if named:
                    kinds = tuple(k for k in kinds if k != "high_entropy") + named
            if memo is not None:
                if len(memo) >= VALUE_MEMO_LIMIT:
                    memo.clear()
                memo[text] = kinds
        if plan.prose and n >= 12 and text.count(" ") >= 3 and is_free_text(text):
            kinds += ("free_text",)
        return kinds

    def digit_kinds(self, plan: Plan, number: int) -> tuple[str, ...]:
        """The kinds of a surviving integer of ``plan``'s field (the detectors that read digits)."""
        if plan.skip or not plan.remaining or -1_000_000 < number < 1_000_000:
            return ()
        return self.detectors.kinds(str(number), plan.remaining)

    def digits(self, plan: Plan, number: int, found: dict) -> None:
        """One surviving integer: the detectors that read digits (phone, card)."""
        plan.field.values += 1
        kinds = self.digit_kinds(plan, number)
        if kinds:
            self._found(plan, kinds, str(number), found)

    def other(self, plan: Plan) -> None:
        """A surviving value with no text in it (bool, double, undecodable bytes)."""
        plan.field.values += 1

    def key(self, plan: Plan, key: str, found: dict) -> None:
        """One occurrence of a key that itself looks personal."""
        self._found(plan, plan.key_kinds, key, found)

    def _found(self, plan: Plan, kinds: tuple[str, ...], text: str, found: dict) -> None:
        f = plan.field
        f.kinds[kinds] = f.kinds.get(kinds, 0) + 1
        found[(plan.level, kinds)] = found.get((plan.level, kinds), 0) + 1
        if f.sample is None:
            f.sample = self.hash16(text.encode("utf-8", "surrogatepass"))

    def lock(self) -> threading.Lock:
        return self._lock

    def account(self, signal: str, report, found: dict) -> None:
        """One request's counts: its items, the rules the scrub applied (its Report), and
        ``found``: {(level, kind): n}."""
        self.items[signal] += report.items_out
        self.batches += 1
        applied = self.applied
        if len(applied) == len(report.redactions):  # the same policy (a reload may race)
            for i, (n, m) in enumerate(zip(report.redactions, report.dropped, strict=True)):
                if n or m:
                    applied[i] += n + m
        for (level, kind), n in found.items():
            key = (signal, level, kind)
            self.totals[key] = self.totals.get(key, 0) + n


def _python_hash(text: str) -> int:
    return hash(text) & MASK64


def kind_counts(combos: dict) -> dict[str, int]:
    """{tuple of kinds: n} -> {kind: n}."""
    out: dict[str, int] = {}
    for kinds, n in combos.items():
        for kind in kinds:
            out[kind] = out.get(kind, 0) + n
    return out


def _with_masks(d: Decision, masks) -> Decision:
    """A nested key's decision with the masks it inherits (the label names them)."""
    return replace(d, masks=tuple(masks)) if masks and d.action is None else d
