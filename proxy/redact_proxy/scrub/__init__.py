"""Scrubbing: a pure function from a decoded export request to its redacted form.

Strategy: ``scrub`` takes ownership of the request, rewrites it in place (no copy of a
batch that is about to be discarded anyway) and returns a ``Report`` of what it did. It
does no I/O and reads only the CompiledPolicy. Order, per SPEC section 6: drop rules (on
original attributes), then key rules and keep_only per attribute at every level.
"""

from __future__ import annotations

from dataclasses import dataclass

from redact_proxy.policy import CompiledPolicy
from redact_proxy.scrub import logs, metrics, traces
from redact_proxy.scrub.attributes import Tally

_BY_SIGNAL = {"traces": traces, "metrics": metrics, "logs": logs}


# What redact_proxy_triage_total counts, a closed set: the engine left the batch as it
# came, or rewrote it; or the reference scrubber took it, and why: a field this OTLP
# version does not know (it must be dropped, which the engine does not do), a body
# triage's walk would not vouch the decoder accepts exactly (also NUL in a text, or
# nesting past its bound), OTLP-JSON the transcoder refused, or the engine declined
# (a body it could not read, or questions that did not settle).
PATHS: tuple[str, ...] = (
    "untouched",
    "rewritten",
    "reference_unknown_fields",
    "reference_unvouched",
    "reference_json_refused",
    "reference_declined",
)


@dataclass(frozen=True)
class Report:
    items_in: int
    items_out: int
    changed: bool
    redactions: list[int]  # per rule index
    dropped: list[int]  # per rule index
    # Which path scrubbed the batch (PATHS): the native engine ("untouched", "rewritten")
    # or the reference scrubber, and why (the pipeline says; "reference" elsewhere).
    path: str = "reference"


def count(signal: str, request) -> int:
    """Items in a decoded request: spans, data points or log records."""
    return _BY_SIGNAL[signal].count(request)


def scrub(signal: str, request, policy: CompiledPolicy) -> Report:
    module = _BY_SIGNAL[signal]
    items_in = module.count(request)
    tally = Tally(len(policy.rules))
    module.scrub(request, policy, tally)
    items_out = items_in - sum(tally.dropped)
    return Report(items_in, items_out, tally.changed, tally.redactions, tally.dropped)


def untouched(items: int, policy: CompiledPolicy) -> Report:
    """The Report of a batch of ``items`` triage proved the policy leaves alone."""
    zeros = [0] * len(policy.rules)
    return Report(items, items, False, zeros, zeros)
