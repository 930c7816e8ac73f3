"""`drop` rules: remove whole spans, data points or log records by their attributes.

Strategy: an item is dropped when, among its *original* attributes (before any key rule
ran), one matches a drop rule's ``when``. The first matching rule is credited. Removal is
back to front in the repeated field; the caller prunes containers this leaves empty.
"""

from __future__ import annotations

from redact_proxy.policy.compile import DropRule
from redact_proxy.scrub.attributes import Tally, text_of


def drop_items(items, rules: dict[str, tuple[DropRule, ...]], tally: Tally) -> int:
    """Remove the items of a repeated field that a drop rule matches; returns how many.
    ``rules`` maps a tested key to its drop rules, in file order."""
    doomed = []
    for i, item in enumerate(items):
        index = _matching_rule(item.attributes, rules)
        if index is not None:
            doomed.append(i)
            tally.dropped[index] += 1
    for i in reversed(doomed):
        del items[i]
    if doomed:
        tally.changed = True
    return len(doomed)


def _matching_rule(attrs, rules: dict[str, tuple[DropRule, ...]]) -> int | None:
    """Index of the first rule (in file order) that some attribute satisfies."""
    first = None
    for kv in attrs:
        candidates = rules.get(kv.key)
        if candidates is None:
            continue
        text = text_of(kv.value)
        if text is None:
            continue
        for rule in candidates:
            if (first is None or rule.index < first) and rule.test(text):
                first = rule.index
                break
    return first


def prune_empty(containers, child: str) -> None:
    """Delete the containers whose ``child`` repeated field is now empty."""
    for i in range(len(containers) - 1, -1, -1):
        if not getattr(containers[i], child):
            del containers[i]
