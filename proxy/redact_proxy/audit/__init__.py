"""The audit: what still looks personal after the policy, shown without showing it.

Strategy: an ``Auditor`` is fed what the scrub produced (``pipeline._redact``'s batch and
Report: the policy applied exactly as ``serve`` applies it) and keeps counts in a bounded
``Ledger``: per signal, level and field path, detector hits by kind, identifier shapes,
cardinality, free text under keys the semantic-convention registry does not know, and
the rule that decided each field. ``redact-proxy audit`` feeds it files (``inputs.py``)
and prints ``report.render``; ``serve --audit`` feeds it live traffic after each scrub,
counts findings in ``redact_proxy_audit_findings_total`` and serves ``snapshot()`` at
``/audit``. Neither ever prints, logs or labels a value: counts, shares, lengths and
keyed hashes only (see ``ledger.py``).
"""

from __future__ import annotations

from collections.abc import Callable

from redact_proxy.audit import report as _report
from redact_proxy.audit.ledger import MAX_FIELDS, Ledger
from redact_proxy.audit.shapes import KIND_GROUPS, KINDS
from redact_proxy.audit.walk import observe as _observe
from redact_proxy.policy import CompiledPolicy

__all__ = ["KINDS", "KIND_GROUPS", "Auditor", "expand_kinds"]

# (signal, {(level, kind): n}) for one scrubbed request's findings.
OnFindings = Callable[[str, dict], None]


class Auditor:
    def __init__(
        self,
        policy: CompiledPolicy,
        on_findings: OnFindings | None = None,
        max_fields: int = MAX_FIELDS,
        policy_key: bool = True,
    ):
        """``policy_key=False``: the policy's hash key is a stand-in (see ``Ledger``)."""
        self.ledger = Ledger(policy, max_fields, policy_key)
        self.on_findings = on_findings

    def set_policy(self, policy: CompiledPolicy) -> None:
        """A new policy: the counts start over (they describe what *this* policy lets through)."""
        self.ledger.reset(policy)

    def observe(self, signal: str, request, report) -> dict:
        """Count one scrubbed export request (``report``: its scrub Report)."""
        found = _observe(self.ledger, signal, request, report)
        if found and self.on_findings is not None:
            self.on_findings(signal, found)
        return found

    def snapshot(self) -> dict:
        """The ledger as JSON-ready data (no value in it; keys that look personal hashed)."""
        with self.ledger.lock():
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
