"""`pip install .` is the whole install: one wheel holds the package, the Rust module
and the command (issue: the native module used to be a second distribution no index has)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_one_wheel_holds_the_package_the_native_module_and_the_command(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(ROOT)],
                   check=True, timeout=1200)
    [wheel] = tmp_path.glob("redact_proxy-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("redact_proxy/_native") and n.endswith(".so") for n in names)
    assert "redact_proxy/triage.py" in names and "redact_proxy/policy/compile.py" in names
    assert "redact_proxy/py.typed" in names  # PEP 561: type checkers read the package's annotations
    [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert "redact-proxy=redact_proxy.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode().replace(" ", "")
    [metadata] = [n for n in names if n.endswith(".dist-info/METADATA")]
    requires = [line for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
                if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert requires and not any("native" in line for line in requires)  # nothing outside the index
