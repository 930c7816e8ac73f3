"""Masking text, and the free-text fields of OTLP: shared by the attribute walker and the
JSON-text scrubber.

Strategy: every function returns the new text, or None when nothing changed, so callers
write a field only when it changed. Every change is counted in the ``Tally`` against the
rule that made it.
"""

from __future__ import annotations

from redact_proxy.policy.compile import OP_REMOVE, OP_REWRITE, TextOps
from redact_proxy.policy.detectors import DIGIT_MIN_RUN

_SHORT = 10 ** (DIGIT_MIN_RUN - 1)


class Tally:
    """Per-batch counters, indexed by rule."""

    __slots__ = ("redactions", "dropped", "changed")

    def __init__(self, n_rules: int):
        self.redactions = [0] * n_rules
        self.dropped = [0] * n_rules
        self.changed = False


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


def mask_int(number: int, masks, tally: Tally) -> str | None:
    """The masked decimal text of an integer, if a digit detector (card, phone) of
    ``masks`` matches in it; None otherwise. The collector's ``redact_all_types`` is the
    anchor: a matching number is replaced, and becomes a string."""
    if -_SHORT < number < _SHORT:
        return None  # fewer digits than any digit detector matches
    out = None
    for m in masks:
        if m.digits is not None:
            masked = m.digits.mask(str(number) if out is None else out)
            if masked is not None:
                out = masked
                tally.redactions[m.rule] += 1
    if out is not None:
        tally.changed = True
    return out


def scrub_text(text: str, ops: TextOps, tally: Tally, system: str | None = None) -> str | None:
    """A free-text field (span name, status message, ...) after its whole-field rules and
    its masks; None when nothing changed."""
    if not text:
        return None
    out = text
    for r in ops.rules:
        d = r.decision
        if d.op == OP_REWRITE:
            new = d.rewrite(out, system)  # type: ignore[misc]  # OP_REWRITE decisions carry one (compile.py)
            if new != out:
                tally.redactions[d.rule] += 1
                tally.changed = True
                out = new
            continue
        tally.redactions[d.rule] += 1
        tally.changed = True
        return "" if d.op == OP_REMOVE else d.replacement  # gone or replaced: nothing left to mask
    if ops.masks:
        masked = mask_text(out, ops.masks, tally)
        if masked is not None:
            out = masked
    return None if out == text else out
