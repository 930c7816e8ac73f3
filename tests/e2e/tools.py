"""Where the real programs of the e2e stack are, and which versions they must be.

Strategy: tests/e2e/setup.sh installs everything (apt, Go builds, npm, pip); this
module only finds the results and fails with the fix when something is missing.
Nothing here downloads or builds.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
E2E = Path(__file__).resolve().parent
BIN = REPO / ".cache/bin"
SETUP_HINT = "run: bash tests/e2e/setup.sh"


class ToolMissing(RuntimeError):
    """A program of the stack is not installed; the message says how to install it."""


def versions() -> dict[str, str]:
    out = {}
    for line in (E2E / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value.strip('"')
    return out


def _existing(path: Path | str | None, name: str) -> str:
    if path and Path(path).is_file():
        return str(path)
    raise ToolMissing(f"{name} is not installed ({SETUP_HINT})")


def otelcol() -> str:
    return _existing(BIN / "otelcol", "the collector build (.cache/bin/otelcol)")


def jaeger() -> str:
    return _existing(BIN / "jaeger", "the Jaeger build (.cache/bin/jaeger)")


def system(name: str) -> str:
    return _existing(shutil.which(name), name)


def redact_proxy() -> str:
    return _existing(Path(sys.executable).parent / "redact-proxy",
                     "redact-proxy (pip install -e .[test] into the venv running the tests)")


def node() -> str:
    path = _existing(shutil.which("node"), "node")
    if not (E2E / "node/node_modules/@opentelemetry/sdk-node").is_dir():
        raise ToolMissing(f"the OpenTelemetry JS SDK is not installed in tests/e2e/node ({SETUP_HINT})")
    return path
