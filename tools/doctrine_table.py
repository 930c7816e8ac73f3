"""Generate policies/doctrine-decisions.tsv: what the doctrine does to every registry key.

Strategy: the OpenTelemetry semantic-conventions registry is the installed
``opentelemetry-semantic-conventions`` package. Every module under
``opentelemetry.semconv.attributes`` (stable) and
``opentelemetry.semconv._incubating.attributes`` (incubating) defines one module-level
``str`` constant per attribute; enum ``*Values`` classes are classes, not module-level
strings, and metric names live in the ``metrics`` packages, which are not read. A
constant named ``<KEY>_TEMPLATE`` is a template (``http.request.header`` stands for
``http.request.header.<key>``) and is decided through the probe key ``<key>.x-example``;
``URL_TEMPLATE`` is the attribute ``url.template``, not a template. Each key is decided at
span level by both shipped policies through the compiled policy's own ``Decider`` and
written as one row, sorted by key. The table is reviewed by a person and committed;
``--check`` regenerates it in memory and exits 1 when the committed file differs, so a
policy edit that changes a decision cannot land unreviewed.

Columns: ``status`` is stable when a stable module defines the key. ``deprecated`` is
``yes`` when its docstring says ``Deprecated:``, ``moved`` when that deprecation only
moved the key to the separate GenAI registry (applications still emit it), else ``no``
(incubating aliases of stable keys say "Deprecated in favor of stable", which is not a
deprecation). ``action`` is ``delete``, ``hash``, ``sanitize_sql`` or ``sanitize_url``
with the deciding rule; a key no key rule removes is ``mask`` (its value is forwarded,
scanned by the named mask rule) or ``keep``. In the strict policy a key no allowlist
admits is ``keep_only``.

Run from the repository root: ``.venv/bin/python tools/doctrine_table.py [--check]``.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import functools
import importlib
import inspect
import itertools
import pkgutil
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCTRINE = ROOT / "policies" / "doctrine.yaml"
STRICT = ROOT / "policies" / "doctrine-strict.yaml"
TABLE = ROOT / "policies" / "doctrine-decisions.tsv"
# A key's decision never depends on the hash key, but a hashing policy needs one to compile.
ENVIRON = {"REDACT_PROXY_HASH_KEY": "doctrine-table-" + "0" * 32}
TEMPLATE_SUFFIX = "x-example"
REGISTRY_PACKAGES = (
    ("stable", "opentelemetry.semconv.attributes"),
    ("incubating", "opentelemetry.semconv._incubating.attributes"),
)
COLUMNS = ("key", "probe", "status", "deprecated", "action", "rule", "strict_action", "strict_rule")

_CONSTANT = re.compile(r"[A-Z][A-Z0-9_]*")
_REPLACED_BY = re.compile(r"Deprecated: (?:Replaced by|Use) `([^`]+)`(?: instead)?\.?")
_DEPRECATION_ORDER = ("no", "moved", "yes")  # a key defined twice takes the stronger one


@dataclass(frozen=True)
class Attribute:
    key: str  # as the registry spells it; a template ends in ".<key>"
    probe: str  # the key actually decided
    status: str  # stable | incubating
    deprecated: str  # no | moved | yes


@dataclass(frozen=True)
class Row:
    attribute: Attribute
    action: str
    rule: str
    strict_action: str
    strict_rule: str

    def cells(self) -> tuple[str, ...]:
        a = self.attribute
        return (a.key, a.probe, a.status, a.deprecated, self.action, self.rule, self.strict_action, self.strict_rule)


# --- the registry ---------------------------------------------------------------------------


def registry() -> list[Attribute]:
    """Every attribute of the installed registry, once, sorted by key."""
    found: dict[str, dict] = {}
    for status, module in _modules():
        docs = _docstrings(module)
        for name, value in vars(module).items():
            if not (isinstance(value, str) and _CONSTANT.fullmatch(name)):
                continue
            entry = found.setdefault(value, {"statuses": set(), "deprecated": "no", "template": False})
            entry["statuses"].add(status)
            entry["deprecated"] = max(
                entry["deprecated"], _deprecation(docs.get(name, "")), key=_DEPRECATION_ORDER.index
            )
            entry["template"] |= name == _constant_of(value) + "_TEMPLATE"
    return sorted(
        (
            Attribute(
                key=f"{value}.<key>" if entry["template"] else value,
                probe=f"{value}.{TEMPLATE_SUFFIX}" if entry["template"] else value,
                status="stable" if "stable" in entry["statuses"] else "incubating",
                deprecated=entry["deprecated"],
            )
            for value, entry in found.items()
        ),
        key=lambda a: a.key,
    )


def replacements() -> dict[str, str]:
    """Deprecated key -> the one key its docstring names as the replacement (``Replaced by
    `x`.``); deprecations with several or conditional replacements are left out."""
    out = {}
    for _, module in _modules():
        docs = _docstrings(module)
        for name, value in vars(module).items():
            match = _REPLACED_BY.fullmatch(docs.get(name, "").split("\n")[0])
            if match and isinstance(value, str):
                out[value] = match.group(1)
    return out


def _modules():
    for status, package_name in REGISTRY_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(package.__path__):
            yield status, importlib.import_module(f"{package_name}.{info.name}")


@functools.cache
def _docstrings(module) -> dict[str, str]:
    """Constant name -> the docstring that follows its assignment in the module source."""
    body = ast.parse(inspect.getsource(module)).body
    docs = {}
    for node, following in itertools.pairwise(body):
        if isinstance(node, ast.AnnAssign):
            target = node.target
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        else:
            continue
        if (
            isinstance(target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[target.id] = following.value.value.strip()
    return docs


def _deprecation(doc: str) -> str:
    if not doc.startswith("Deprecated:"):
        return "no"
    return "moved" if doc.startswith("Deprecated: Moved to") else "yes"


def _constant_of(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", key).upper()


# --- the decisions --------------------------------------------------------------------------


def rows(doctrine: Path = DOCTRINE, strict: Path = STRICT) -> list[Row]:
    from redact_proxy.policy.compile import load

    default, allowlist = load(doctrine, ENVIRON), load(strict, ENVIRON)
    return [Row(a, *_decide(default, a.probe), *_decide(allowlist, a.probe)) for a in registry()]


def _decide(policy, key: str) -> tuple[str, str]:
    from redact_proxy.policy.schema import Action, Level

    d = policy.decider("traces", Level.SPAN).decide(key)
    if d.action is Action.KEEP_ONLY:
        return d.action.value, "-"  # the union of the allowlists decides, not one rule
    if d.action is not None:
        return d.action.value, policy.rules[d.rule].name
    if d.masks:
        return "mask", ",".join(policy.rules[m.rule].name for m in d.masks)
    return "keep", "-"


def render(table: list[Row]) -> str:
    lines = ["\t".join(COLUMNS)] + ["\t".join(r.cells()) for r in table]
    return "\n".join(lines) + "\n"


def read_table(path: Path = TABLE) -> dict[str, dict[str, str]]:
    """The committed table as key -> {column: cell}."""
    lines = path.read_text(encoding="utf-8").splitlines()
    header = tuple(lines[0].split("\t"))
    if header != COLUMNS:
        raise ValueError(f"{path}: header is {header}, expected {COLUMNS}")
    return {cells[0]: dict(zip(COLUMNS, cells, strict=False)) for cells in (line.split("\t") for line in lines[1:])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed table differs")
    parser.add_argument("--output", type=Path, default=TABLE)
    args = parser.parse_args(argv)
    text = render(rows())
    keys = text.count("\n") - 1
    if not args.check:
        args.output.write_text(text, encoding="utf-8")
        print(f"{args.output}: {keys} keys")
        return 0
    current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
    if current == text:
        print(f"{args.output}: up to date ({keys} keys)")
        return 0
    sys.stdout.writelines(
        difflib.unified_diff(
            current.splitlines(keepends=True), text.splitlines(keepends=True), str(args.output), "regenerated", n=0
        )
    )
    print(f"{args.output}: out of date; run tools/doctrine_table.py and review the diff", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
