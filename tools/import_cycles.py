"""Print the import cycles inside a package: every strongly connected component of its graph.

Strategy: the graph is read from the source with ``ast``, never by importing it, so a
broken or slow module still shows. Each ``import`` and ``from ... import`` of a module of
the package is an edge, at module level or inside a function alike: a function-local
import only hides a cycle until the first call, it does not remove it. ``from pkg import
name`` is an edge to ``pkg.name`` when that is a module of the package, else to ``pkg``
itself (its ``__init__``). A package's ``__init__`` is not given edges to its parents,
as an import system would: that is how Python loads, not what the code depends on.
Components of more than one module (and modules importing themselves) are the cycles;
Tarjan's algorithm finds them in one pass.

Run from the repository root: ``python tools/import_cycles.py [--root proxy] [PACKAGE]``
(default ``redact_proxy``). Prints one line per cycle, with the edges that close it and
their lines, and exits 1 when there is any, so ``make lint`` fails on a new one.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path


def modules(root: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` under ``root``, by dotted name."""
    found: dict[str, Path] = {}
    for path in sorted((root / package.replace(".", "/")).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def edges(name: str, path: Path, known: dict[str, Path]) -> list[tuple[str, int]]:
    """(imported module of the package, line) for every import in one module."""
    is_pkg = path.name == "__init__.py"
    out: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.extend((alias.name, node.lineno) for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in known:
                    out.append((sub, node.lineno))
                elif target in known:
                    out.append((target, node.lineno))
    return out


def graph(root: Path, package: str) -> dict[str, dict[str, int]]:
    """{module: {imported module of the package: first line importing it}}."""
    known = modules(root, package)
    out: dict[str, dict[str, int]] = {name: {} for name in known}
    for name, path in known.items():
        for target, line in edges(name, path, known):
            if target != name or path.name != "__init__.py":  # a package naming its own submodule
                out[name].setdefault(target, line)
    return out


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components that are cycles (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in graph[node]:
                        found.append(sorted(component))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("package", nargs="?", default="redact_proxy")
    parser.add_argument("--root", default="proxy", help="the folder the package is in")
    args = parser.parse_args(argv)
    imports = graph(Path(args.root), args.package)
    found = cycles(imports)
    for component in found:
        members = set(component)
        closing = [f"{a}:{imports[a][b]} -> {b}" for a in component for b in sorted(imports[a]) if b in members]
        print(f"cycle ({len(component)} modules): {', '.join(component)}")
        for edge in closing:
            print(f"  {edge}")
    print(f"{len(found)} import cycle(s) in {args.package} ({len(imports)} modules)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
