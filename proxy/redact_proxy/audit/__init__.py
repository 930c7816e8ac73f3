"""The audit: what still looks personal after the policy, shown without showing it.

Strategy: an ``Auditor`` is fed what the scrub produced (``pipeline._redact``'s batch and
Report: the policy applied exactly as ``serve`` applies it) and keeps counts in a bounded
``Ledger``: per signal, level and field path, detector hits by kind, identifier shapes,
cardinality, free text under keys the semantic-convention registry does not know, and
the rule that decided each field. The walk over a request is native (``native.py``: the
body's bytes counted in Rust, every decision still the ledger's); ``walk.py`` is the
reference it is held to, and the path with ``native=False``. ``redact-proxy audit`` feeds
it files (``inputs.py``)
and prints ``report.render``; ``serve --audit`` feeds it live traffic after each scrub,
counts findings in ``redact_proxy_audit_findings_total`` and serves ``snapshot()`` at
``/audit``. Neither ever prints, logs or labels a value: counts, shares, lengths and
keyed hashes only (see ``ledger.py``).
"""

from __future__ import annotations

from collections.abc import Callable

from google.protobuf.message import Message

from redact_proxy.audit import report as _report
from redact_proxy.audit.ledger import MAX_FIELDS, Ledger
from redact_proxy.audit.shapes import KIND_GROUPS, KINDS
from redact_proxy.audit.native import NativeTally
from redact_proxy.audit.walk import observe as _observe
from redact_proxy.policy import CompiledPolicy
from redact_proxy.signals import BY_NAME

__all__ = ["KINDS", "KIND_GROUPS", "Auditor", "expand_kinds"]

# (signal, {(level, kind): n}) for one scrubbed request's findings.
OnFindings = Callable[[str, dict], None]


class Auditor:
    """``native=False``: the reference walk (decoded messages, in Python) instead of the
    native one; ``hash64``: the sketches' hash (see ``Ledger``)."""

    def __init__(
        self,
        policy: CompiledPolicy,
        on_findings: OnFindings | None = None,
        max_fields: int = MAX_FIELDS,
        policy_key: bool = True,
        native: bool = True,
        hash64=None,
    ):
        """``policy_key=False``: the policy's hash key is a stand-in (see ``Ledger``)."""
        self.ledger = Ledger(policy, max_fields, policy_key, hash64)
        self.on_findings = on_findings
        self.tally = NativeTally(self.ledger) if native else None

    def set_policy(self, policy: CompiledPolicy) -> None:
        """A new policy: the counts start over (they describe what *this* policy lets through)."""
        with self.ledger.lock():
            self.ledger.reset_locked(policy)
            if self.tally is not None:
                self.tally = NativeTally(self.ledger)

    def observe(self, signal: str, request: Message | bytes, report) -> dict:
        """Count one scrubbed export request (a message, or its protobuf bytes; ``report``:
        its scrub Report). Holds the ledger's lock for the whole request, so ``/audit``
        never reads a half-counted batch."""
        with self.ledger.lock():
            if self.tally is not None:
                data = request if isinstance(request, bytes) else request.SerializeToString()
                found = self.tally.observe(signal, data)
            else:
                if isinstance(request, bytes):
                    request = BY_NAME[signal].request.FromString(request)
                found = _observe(self.ledger, signal, request)
            self.ledger.account(signal, report, found)
        if found and self.on_findings is not None:
            self.on_findings(signal, found)
        return found

    def snapshot(self) -> dict:
        """The ledger as JSON-ready data (no value in it; keys that look personal hashed)."""
        with self.ledger.lock():
            if self.tally is not None:
                self.tally.sync()
            return _report.snapshot(self.ledger)


def expand_kinds(names) -> frozenset[str]:
    """Kind names and groups (``--fail-on``) -> kinds; ValueError naming unknown ones."""
    out: set[str] = set()
    unknown = []
    for name in names:
        name = name.strip()
        if name in KIND_GROUPS:
            out.update(KIND_GROUPS[name])
        elif name in KINDS:
            out.add(name)
        elif name:
            unknown.append(name)
    if unknown:
        raise ValueError(
            f"unknown kind(s) {', '.join(unknown)}; kinds: {', '.join(KINDS)}; groups: {', '.join(KIND_GROUPS)}"
        )
    return frozenset(out)
