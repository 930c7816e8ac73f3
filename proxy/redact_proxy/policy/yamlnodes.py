"""YAML nodes with locations: the helpers both policy readers walk a composed file with.

Strategy: a file is composed into PyYAML nodes (which carry line and column marks), never
loaded into plain values first, so every problem can be reported as ``FILE:LINE:COL:
yaml.path: message``. Each helper here checks one node's shape, adds a located line to an
``Errors`` when it is wrong and returns ``None`` (or an empty result), so a reader goes on
and reports every problem of a file at once. Messages name the bad value's kind and what
was expected; ``schema.py`` and ``collector.py`` share these, and neither imports the other
for them.
"""

from __future__ import annotations

import yaml

from redact_proxy.policy.model import Where


class Errors:
    def __init__(self, source: str):
        self.source = source
        self.lines: list[str] = []

    def add(self, node: yaml.Node | None, path: str, message: str) -> None:
        line, col = (node.start_mark.line + 1, node.start_mark.column + 1) if node else (1, 1)
        self.lines.append(f"{self.source}:{line}:{col}: {path}: {message}")


def join(path: str, name: str) -> str:
    """YAML path of a member: top-level members are named bare (``rules``, not ``.rules``)."""
    return name if path in ("", "(root)") else f"{path}.{name}"


def where(node: yaml.Node, path: str) -> Where:
    return Where(node.start_mark.line + 1, node.start_mark.column + 1, path)


def scalar(node: yaml.Node):
    """The Python value of a node (int, bool, str, ... ; mappings and lists deep). A fresh
    constructor each time: a constructor remembers every node it built (its alias memo),
    so a shared one kept every policy ever loaded alive, ~0.5-1 MiB per reload of the
    doctrine. Aliases inside the one node are still built once."""
    return yaml.constructor.SafeConstructor().construct_object(node, deep=True)


def mapping(node, path, errs) -> dict[str, tuple[yaml.Node, yaml.Node]] | None:
    """A mapping node as {key: (key_node, value_node)}, reporting duplicate keys (which
    PyYAML would silently collapse)."""
    if not isinstance(node, yaml.MappingNode):
        errs.add(node, path, f"expected a mapping, got {kind(node)}")
        return None
    out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for knode, vnode in node.value:
        key = scalar(knode) if isinstance(knode, yaml.ScalarNode) else None
        if not isinstance(key, str):
            errs.add(knode, path, "mapping keys must be strings")
            continue
        if key in out:
            errs.add(knode, join(path, key), "duplicate key")
            continue
        out[key] = (knode, vnode)
    return out


def kind(node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    value = scalar(node)
    return "null" if value is None else f"{type(value).__name__} {value!r}"


def unknown(fields, allowed, path, errs, what) -> None:
    for name, (knode, _) in fields.items():
        if name not in allowed:
            errs.add(
                knode,
                join(path, name),
                f"unknown field for {what}; expected one of: {', '.join(sorted(allowed))}",
            )


def string(node, path, errs) -> str | None:
    if isinstance(node, yaml.ScalarNode):
        value = scalar(node)
        if isinstance(value, str) and value:
            return value
    errs.add(node, path, f"expected a non-empty string, got {kind(node)}")
    return None


def string_list(node, path, errs) -> list[tuple[str, yaml.Node]]:
    if not isinstance(node, yaml.SequenceNode):
        errs.add(node, path, f"expected a list of strings, got {kind(node)}")
        return []
    out = []
    for i, item in enumerate(node.value):
        value = string(item, f"{path}[{i}]", errs)
        if value is not None:
            out.append((value, item))
    return out


def choices(node, path, errs, allowed: tuple[str, ...]) -> list[str]:
    out = []
    for j, (value, item) in enumerate(string_list(node, path, errs)):
        if value in allowed:
            out.append(value)
        else:
            errs.add(item, f"{path}[{j}]", f"unknown value {value!r}; expected one of: {', '.join(allowed)}")
    return out


def text_of_scalar(value) -> str:
    """Canonical text of a YAML scalar, matching how attribute values are compared."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)
