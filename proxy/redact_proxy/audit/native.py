"""The audit's native path: a scrubbed body's bytes walked and counted in Rust
(``native/core/src/audit``), with every decision still made here, by the ledger.

Strategy: as with the engine (``engine.py``), the native side holds numbers only. A
field's tallies live there (values, lengths, the sketch, findings by kinds); what a field
*is* -- its path, the rule that decided it, whether the registry knows its key -- stays
in the ledger's ``Field``, and each ``Plan`` the ledger makes is registered as a tuple of
numbers. The walk asks for what it has not seen: a key (answered with ``Ledger.key_plan``,
through the ledger's own memos, in the walk's order, so fields are made in the order the
reference walk makes them) and JSON text in a value (answered with a *program*: the
reference walk's ``_json`` run over a ``Recorder``, whose value operations the native
side memoises and replays). A body the native walk refuses (or whose questions do not
settle in ``ROUNDS`` calls) is recorded the same way, whole, from the decoded message:
the tallies never split. ``sync`` copies the tallies into the ledger's fields before a
snapshot, so ``report.py`` reads one structure whichever walk ran.
"""

from __future__ import annotations

from google.protobuf.message import Message

from redact_proxy._native import Audit as _NativeAudit
from redact_proxy.audit import walk
from redact_proxy.audit.ledger import OTHER_FIELDS, Field, Ledger, Plan
from redact_proxy.audit.shapes import DETECTOR_KINDS, FIELD_KINDS, SHAPE_KINDS, estimate
from redact_proxy.audit.table import LEVELS, SPACE_LIST, TABLES
from redact_proxy.engine import _layout
from redact_proxy.policy import Level
from redact_proxy.signals import ALL, BY_NAME

ROUNDS = 8  # calls per body before it is recorded from the decoded message instead
MAX_PLANS = 16384  # plans and learnt keys before they are all dropped and learnt anew
# A kind set travels as bits, in this order (native/core/src/audit/mod.rs: shapes 0-2,
# detectors from 3, then high_cardinality and free_text): the order the ledger's tuples have.
BIT_KINDS: tuple[str, ...] = SHAPE_KINDS + DETECTOR_KINDS + FIELD_KINDS
_BIT = {k: 1 << i for i, k in enumerate(BIT_KINDS)}
_SIGNAL_INDEX = {sig.name: i for i, sig in enumerate(ALL)}
_LEVEL_INDEX = {lv.value: i for i, lv in enumerate(LEVELS)}
_TABLE_SPEC = [
    [[(e.number, e.role, e.target, e.flags, e.extra) for e in m] for m in TABLES[sig.name].messages] for sig in ALL
]
_Q_KEY = 0


def bits(kinds: tuple[str, ...]) -> int:
    out = 0
    for k in kinds:
        out |= _BIT[k]
    return out


class NativeTally:
    """The native tallies of one ledger (one policy: made anew on reset)."""

    def __init__(self, ledger: Ledger):
        self.ledger = ledger
        self.native = _NativeAudit(list(_layout()), _TABLE_SPEC, len(SPACE_LIST), list(DETECTOR_KINDS))
        self.generation = 0
        self.plans: list[Plan] = []  # by native id, this generation
        self.fields: list[Field] = []  # by native id
        self.sets: dict[frozenset, int] = {}
        self.texts_set: set[int] = set()  # signals whose free-text plans are registered
        self._tuples: dict[int, tuple[str, ...]] = {}

    def hash64(self, text: str) -> int:
        return self.native.hash64(text.encode("utf-8", "surrogatepass"))

    # --- registering what the ledger decided --------------------------------------------

    def plan_id(self, plan: Plan) -> int:
        if plan.native is not None and plan.native[0] == self.generation:
            return plan.native[1]
        f = plan.field
        if f.native is None:
            f.native = self.native.add_field(f.shapes, f.path == OTHER_FIELDS)
            self.fields.append(f)
        else:
            self.native.set_field_shapes(f.native, f.shapes)
        detectors = None
        if plan.remaining:
            detectors = self.sets.get(plan.remaining)
            if detectors is None:
                names = [k for k in DETECTOR_KINDS if k in plan.remaining]
                detectors = self.sets[plan.remaining] = self.native.add_detectors(names)
        spec = (f.native, _LEVEL_INDEX[plan.level], plan.skip, plan.shapes, plan.prose, detectors, bits(plan.key_kinds))
        pid = self.native.add_plan(spec)
        plan.native = (self.generation, pid)
        self.plans.append(plan)
        return pid

    def _reset(self) -> None:
        self.native.reset_plans()
        self.generation += 1
        self.plans.clear()
        self.texts_set.clear()

    # --- one request --------------------------------------------------------------------

    def observe(self, signal: str, body: bytes) -> dict[tuple[str, str], int]:
        """Count one scrubbed body (the ledger's lock held); its findings by (level, kind)."""
        index = _SIGNAL_INDEX[signal]
        for _ in range(ROUNDS):
            if index not in self.texts_set:
                plans = walk.text_plans(self.ledger, signal)
                self.native.set_texts(index, [self.plan_id(p) for p in plans])
                self.texts_set.add(index)
            result = self.native.observe(index, body)
            if result[0] == "done":
                return self._done(result)
            if result[0] == "refused":
                break
            self._answer(signal, result[1])
        return self.record(signal, BY_NAME[signal].request.FromString(body))

    def record(self, signal: str, request: Message) -> dict[tuple[str, str], int]:
        """Count a decoded request through the reference walk, replayed natively."""
        recorder = Recorder(self)
        walk._message(recorder, signal, 0, request, walk.text_plans(recorder, signal), {})
        return self._done(self.native.run(recorder.ops))

    def _answer(self, signal: str, questions) -> None:
        if self.native.plan_count() + 2 * len(questions) > MAX_PLANS:
            self._reset()  # the next round asks again, of fresh memos
            return
        ledger, keys = self.ledger, []
        for kind, space, plan_or_parent, path, text in questions:
            _, level, space_name = SPACE_LIST[space]
            if kind == _Q_KEY:
                if plan_or_parent is None:  # walk._attrs
                    memo = ledger.plan_memo(signal, level.value, "attributes")
                    plan = memo.get(text)
                    if plan is None:
                        plan = memo[text] = ledger.key_plan(signal, level, None, "attributes", text, ())
                else:
                    parent = self.plans[plan_or_parent]
                    plan = walk._nested(ledger, signal, level, parent, path, text, space_name)
                keys.append((space, plan_or_parent, path, text, self.plan_id(plan)))
            else:
                recorder = Recorder(self)
                walk._json(recorder, signal, level, self.plans[plan_or_parent], text, path, {}, 0, space_name)
                self.native.learn_program(plan_or_parent, text, recorder.ops)
        if keys:
            self.native.learn_keys(keys)

    def _done(self, result) -> dict[tuple[str, str], int]:
        _, found_bits, samples = result
        for field_id, data in samples:
            f = self.fields[field_id]
            if f.sample is None:
                f.sample = self.ledger.hash16(data)
        found: dict[tuple[str, str], int] = {}
        for level, mask, n in found_bits:
            name = LEVELS[level].value
            for kind in self._kinds(mask):
                found[(name, kind)] = found.get((name, kind), 0) + n
        return found

    def _kinds(self, mask: int) -> tuple[str, ...]:
        kinds = self._tuples.get(mask)
        if kinds is None:
            kinds = self._tuples[mask] = tuple(k for k in BIT_KINDS if mask & _BIT[k])
        return kinds

    def sync(self) -> None:
        """Copy the native tallies into the ledger's fields (before a snapshot)."""
        for f, (values, chars, longest, n, largest, flagged, kinds) in zip(
            self.fields, self.native.fields(), strict=True
        ):
            f.values, f.chars, f.longest, f.flagged = values, chars, longest, flagged
            f.kinds = {self._kinds(mask): count for mask, count in kinds}
            f.native_distinct = estimate(n, largest)


class Recorder:
    """A stand-in ledger for the reference walk: plans come from the real ledger, value
    operations are recorded (with the kinds the ledger computes) for the native side."""

    def __init__(self, tally: NativeTally):
        self.tally = tally
        self.ledger = tally.ledger
        self.ops: list[tuple[int, int, bytes, int, int]] = []

    def plan_memo(self, signal: str, level: str, space: str) -> dict:
        return self.ledger.plan_memo(signal, level, space)

    def key_plan(self, signal: str, level: Level, parent: str | None, shown_parent: str, key: str, masks) -> Plan:
        return self.ledger.key_plan(signal, level, parent, shown_parent, key, masks)

    def text_plan(self, signal: str, level: Level, target: str) -> Plan:
        return self.ledger.text_plan(signal, level, target)

    def text(self, plan: Plan, text: str, found: dict) -> None:
        kinds = () if plan.skip or not text else self.ledger.classify(plan, text)
        self.ops.append((0, self.tally.plan_id(plan), text.encode("utf-8", "surrogatepass"), len(text), bits(kinds)))

    def digits(self, plan: Plan, number: int, found: dict) -> None:
        kinds = self.ledger.digit_kinds(plan, number)
        self.ops.append((1, self.tally.plan_id(plan), str(number).encode(), 0, bits(kinds)))

    def other(self, plan: Plan) -> None:
        self.ops.append((2, self.tally.plan_id(plan), b"", 0, 0))

    def key(self, plan: Plan, key: str, found: dict) -> None:
        self.ops.append((3, self.tally.plan_id(plan), key.encode("utf-8", "surrogatepass"), 0, 0))
