"""`drop` rules: remove whole spans, data points or log records by their attributes.

Strategy: an item is dropped when, among its *original* attributes (before any key rule
ran), one matches a drop rule's ``when``. The first matching rule is credited. Removal is
back to front in the repeated field; the caller prunes containers this leaves empty.
"""

from __future__ import annotations

from redact_proxy.policy.compile import DropRule
from redact_proxy.scrub.attributes import Tally, text_of


def drop_items(items, rules: tuple[DropRule, ...], tally: Tally) -> int:
    """Remove the items of a repeated field that a drop rule matches; returns how many."""
    doomed = []
    for i, item in enumerate(items):
        rule = _matching_rule(item.attributes, rules)
        if rule is not None:
            doomed.append(i)
            tally.dropped[rule.index] += 1
    for i in reversed(doomed):
        del items[i]
    if doomed:
        tally.changed = True
    return len(doomed)


def _matching_rule(attrs, rules: tuple[DropRule, ...]) -> DropRule | None:
    for rule in rules:
        for kv in attrs:
            if kv.key == rule.key:
                text = text_of(kv.value)
                if text is not None and rule.test(text):
                    return rule
    return None


def prune_empty(containers, child: str) -> None:
    """Delete the containers whose ``child`` repeated field is now empty."""
    for i in range(len(containers) - 1, -1, -1):
        if not getattr(containers[i], child):
            del containers[i]
