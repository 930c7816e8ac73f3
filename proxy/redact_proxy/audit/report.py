"""The ledger as data (``snapshot``: the ``--json`` output and ``/audit``) and as a table.

Strategy: ``snapshot`` is the one view; the table is drawn from it, so the two never
disagree. Everything in it is a count, a share, a length, a rule name from the policy, a
key the registry-or-shape test let through as printable, or a keyed hash: the ledger
holds nothing else to print.
"""

from __future__ import annotations

import time
from typing import Any

from redact_proxy.audit.ledger import (
    HIGH_CARDINALITY_MIN,
    HIGH_CARDINALITY_SHARE,
    OTHER_FIELDS,
    Ledger,
    kind_counts,
)
from redact_proxy.audit.shapes import KINDS

_KIND_ORDER = {k: i for i, k in enumerate(KINDS)}


def snapshot(ledger: Ledger) -> dict:
    # Rows are JSON objects of mixed value types (counts, names, nested objects).
    findings: list[dict[str, Any]] = []
    fields: list[dict[str, Any]] = []
    unmatched: list[dict[str, Any]] = []
    totals: dict[str, int] = {}
    pooled = 0
    for f in ledger.fields.values():
        if not f.values:
            continue  # a free-text field no item had
        distinct = f.distinct()
        kinds = kind_counts(f.kinds)
        if f.high_cardinality():
            kinds["high_cardinality"] = distinct
        mean = round(f.chars / f.values, 1) if f.values else 0
        row: dict[str, Any] = {
            "signal": f.signal,
            "level": f.level,
            "field": f.path,
            "values": f.values,
            "distinct": distinct,
            "decided_by": f.decided,
            "key_rule": f.key_rule,
            "registry": f.registry,
            "findings": {k: kinds[k] for k in sorted(kinds, key=_KIND_ORDER.__getitem__)},
        }
        if f.names is not None:
            row["fields_pooled"] = f.names.estimate()
            pooled += row["fields_pooled"]
        fields.append(row)
        if f.key_rule is False and f.path != OTHER_FIELDS:
            unmatched.append({k: row[k] for k in ("signal", "level", "field", "values", "decided_by", "registry")})
        for kind, n in kinds.items():
            totals[kind] = totals.get(kind, 0) + (1 if kind == "high_cardinality" else n)
            findings.append(
                {
                    "signal": f.signal,
                    "level": f.level,
                    "field": f.path,
                    "kind": kind,
                    "count": f.values if kind == "high_cardinality" else n,
                    "share": round((distinct if kind == "high_cardinality" else n) / f.values, 4) if f.values else 0,
                    "distinct": distinct,
                    "value_length": {"mean": mean, "max": f.longest},
                    "decided_by": f.decided,
                    "registry": f.registry,
                    "sample_hash": f.sample,
                }
            )
    order = lambda r: (r["signal"], r["level"], r["field"])  # noqa: E731
    findings.sort(key=lambda r: (*order(r), _KIND_ORDER[r["kind"]]))
    fields.sort(key=order)
    unmatched.sort(key=order)
    policy = ledger.policy
    return {
        "policy": {"source": policy.source, "sha256": policy.sha256},
        "hash_key": ledger.hash_key,
        "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ledger.since)),
        "batches": ledger.batches,
        "items": dict(ledger.items),
        "totals": {k: totals[k] for k in sorted(totals, key=_KIND_ORDER.__getitem__)},
        "findings": findings,
        "unmatched_keys": unmatched,
        "rules": [
            {"name": r.name, "action": r.action.value, "applied": n}
            for r, n in zip(policy.rules, ledger.applied, strict=True)
        ],
        "fields": fields,
        "limits": {
            "max_fields": ledger.max_fields,
            "fields_tracked": len(ledger.fields),
            "fields_pooled": pooled,
            "high_cardinality": {"min_values": HIGH_CARDINALITY_MIN, "share": HIGH_CARDINALITY_SHARE},
        },
    }


def failing(snap: dict, kinds: frozenset[str]) -> dict[str, int]:
    """The totals of ``kinds`` that were found (empty: the gate passes)."""
    return {k: n for k, n in snap["totals"].items() if k in kinds and n}


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()  # noqa: E731
    return [line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows]


def render(snap: dict, inputs: str = "") -> str:
    items = ", ".join(f"{s} {n}" for s, n in snap["items"].items() if n) or "none"
    out = [
        f"redact-proxy audit: {snap['policy']['source']} (sha256 {snap['policy']['sha256'][:12]}); "
        f"{snap['batches']} export request(s){inputs}; items after the policy: {items}"
    ]
    if snap["hash_key"] == "ephemeral":
        out.append(
            "hashes: keyed with a random key of this run, the policy's hash key not being available "
            "(they compare within this run only)"
        )
    out.append("")
    findings = snap["findings"]
    if findings:
        out.append(f"WHAT SURVIVED THE POLICY ({len(findings)} finding(s); values never shown)")
        rows = [
            [
                r["signal"],
                r["level"],
                r["field"],
                r["kind"],
                str(r["count"]),
                f"{r['share']:.0%}",
                f"{r['value_length']['mean']:g}/{r['value_length']['max']}",
                r["decided_by"],
                r["sample_hash"] or "-",
            ]
            for r in findings
        ]
        out += _table(
            ["signal", "level", "field", "kind", "count", "share", "len avg/max", "decided by", "sample hash"], rows
        )
    else:
        out.append("WHAT SURVIVED THE POLICY: no findings")
    out.append("")
    unmatched = snap["unmatched_keys"]
    out.append(f"KEYS NO KEY RULE MATCHED ({len(unmatched)})")
    if unmatched:
        rows = [
            [r["signal"], r["level"], r["field"], str(r["values"]), "yes" if r["registry"] else "no", r["decided_by"]]
            for r in unmatched
        ]
        out += _table(["signal", "level", "field", "values", "registry", "decided by"], rows)
    out.append("")
    idle = [r for r in snap["rules"] if not r["applied"]]
    out.append(f"RULES ({len(snap['rules'])}; {len(idle)} never applied to this input)")
    rows = [[r["name"], r["action"], str(r["applied"])] for r in snap["rules"]]
    if rows:
        out += _table(["rule", "action", "applied"], rows)
    if snap["limits"]["fields_pooled"]:
        out.append("")
        out.append(
            f"note: more than {snap['limits']['max_fields']} fields; about "
            f"{snap['limits']['fields_pooled']} more are pooled as '(other fields)'"
        )
    if snap["totals"]:
        out.append("")
        out.append("totals: " + ", ".join(f"{k} {n}" for k, n in snap["totals"].items()))
    return "\n".join(out) + "\n"
