"""A collector config's ``attributes`` processors, read as a redact-proxy policy.

Strategy: every ``processors: attributes/*`` entry contributes its ``actions`` in file
order, each becoming one rule named ``<processor>.<n>``. Only ``delete`` and ``hash`` with
``key`` or ``pattern`` have a faithful translation; anything else (another action,
``include``/``exclude`` match properties that narrow where a processor applies) is an
error naming it and its line, because migrating it half-way would change what is redacted.
``hash`` keeps the collector's meaning: unkeyed SHA-256 of the collector's own bytes
(strings as UTF-8, ints and doubles as 8 little-endian bytes, bools as one byte, anything
else as the empty string), so hashes already stored in a backend stay comparable. Other processor types (batch, memory_limiter, ...) are ignored.
"""

from __future__ import annotations

import yaml

from redact_proxy.policy.model import Action, Rule
from redact_proxy.policy.yamlnodes import Errors, kind, mapping, string, unknown, where

_ACTIONS = {"delete": Action.DELETE, "hash": Action.HASH}


def rules_from_collector(top: dict, errs: Errors) -> tuple[Rule, ...]:
    _, pnode = top["processors"]
    processors = mapping(pnode, "processors", errs)
    rules: list[Rule] = []
    if processors is None:
        return ()
    for pname, (_, node) in processors.items():
        if pname != "attributes" and not pname.startswith("attributes/"):
            continue
        path = f"processors.{pname}"
        fields = mapping(node, path, errs)
        if fields is None:
            continue
        unknown(fields, {"actions"}, path, errs, "an attributes processor migrated to redact-proxy")
        if "actions" not in fields:
            errs.add(node, f"{path}.actions", "missing")
            continue
        anode = fields["actions"][1]
        if not isinstance(anode, yaml.SequenceNode):
            errs.add(anode, f"{path}.actions", f"expected a list, got {kind(anode)}")
            continue
        for i, item in enumerate(anode.value):
            apath = f"{path}.actions[{i}]"
            act = mapping(item, apath, errs)
            if act is None:
                continue
            raw = string(act["action"][1], f"{apath}.action", errs) if "action" in act else None
            if "action" not in act:
                errs.add(item, f"{apath}.action", "missing")
                continue
            if raw is None:
                continue
            if raw not in _ACTIONS:
                errs.add(
                    act["action"][1],
                    f"{apath}.action",
                    f"collector action {raw!r} has no redact-proxy equivalent; only delete and hash migrate",
                )
                continue
            unknown(act, {"key", "pattern", "action"}, apath, errs, f"collector action {raw}")
            key = string(act["key"][1], f"{apath}.key", errs) if "key" in act else None
            pattern = string(act["pattern"][1], f"{apath}.pattern", errs) if "pattern" in act else None
            if key is None and pattern is None:
                if "key" not in act and "pattern" not in act:
                    errs.add(item, apath, "needs `key:` or `pattern:`")
                continue
            # The collector tests `pattern` with Go's regexp MatchString: a match anywhere
            # in the key. Our patterns are full matches, so the pattern is widened.
            rules.append(
                Rule(
                    index=len(rules),
                    name=f"{pname}.{i}"[:63].replace("/", "."),
                    action=_ACTIONS[raw],
                    keys=(key,) if key else (),
                    patterns=(f".*(?:{pattern}).*",) if pattern else (),
                    collector_hash=True,
                    where=where(item, apath),
                )
            )
    if not rules and not errs.lines:
        errs.add(pnode, "processors", "no attributes/* processor with delete or hash actions found")
    return tuple(rules)
