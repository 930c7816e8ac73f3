"""tools/import_cycles.py finds a cycle however it is closed (module level, inside a
function, through a package's __init__), and the policy package has none: its two readers
share the model and the YAML helpers, never each other (issue 13)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("import_cycles", ROOT / "tools" / "import_cycles.py")
assert _spec is not None and _spec.loader is not None
tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tool)


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_cycle_closed_inside_a_function_is_found(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg.b import thing\n",
        "pkg/b.py": "def thing():\n    from pkg import a  # lazy, still a cycle\n",
        "pkg/c.py": "import pkg.a\n",
    })
    assert tool.cycles(tool.graph(tmp_path, "pkg")) == [["pkg.a", "pkg.b"]]


def test_relative_imports_and_package_inits_are_edges(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/sub/__init__.py": "from .impl import Thing\n",
        "pkg/sub/impl.py": "from pkg.sub import Protocol_\n",
    })
    assert tool.cycles(tool.graph(tmp_path, "pkg")) == [["pkg.sub", "pkg.sub.impl"]]


def test_no_cycle_no_component(tmp_path):
    _write(tmp_path, {"pkg/__init__.py": "", "pkg/a.py": "import pkg.b\n", "pkg/b.py": "import os\n"})
    assert tool.cycles(tool.graph(tmp_path, "pkg")) == []


def test_the_package_has_no_import_cycle():
    """None at all since the Forwarder protocol left forward/__init__.py (issue 13)."""
    assert tool.cycles(tool.graph(ROOT / "proxy", "redact_proxy")) == []
