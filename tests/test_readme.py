"""README.md stays true to the code: its options table lists every serve option with its
environment variable and default, its self-metrics list is the metrics the proxy declares
(names and labels), and its first lines are the two set-up commands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from redact_proxy.settings import OPTIONS
from redact_proxy.telemetry import METRICS, WORKER_RESTARTS, Telemetry

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
ROWS = [line for line in README.splitlines() if line.startswith("| `--")]


@pytest.mark.parametrize("option", OPTIONS, ids=[o.flag for o in OPTIONS])
def test_every_option_is_in_the_readme_table_with_its_env_and_default(option):
    row = next((r for r in ROWS if f"`{option.flag}`" in r.split("|")[1]), None)
    assert row is not None, f"{option.flag} missing from README's options table"
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert f"`{option.env}`" in cells[1]
    if option.default is not None:
        assert f"`{option.default}`" in cells[2], f"{option.flag}: README default {cells[2]!r}"


def test_the_readme_table_lists_no_option_the_code_lacks():
    flags = {o.flag for o in OPTIONS}
    listed = {f for row in ROWS for f in re.findall(r"`(--[a-z-]+)`", row.split("|")[1])}
    assert listed <= flags, listed - flags


def test_the_readme_opens_with_the_run_and_test_commands():
    block = README.split("```", 2)[1]
    assert "make run" in block and "make test" in block
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    assert re.search(r"^run:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make test" in (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()


def _exposed(metric) -> str:
    return metric.name + ("_total" if metric.kind.__name__ == "Counter" else "")


def test_the_readme_lists_every_metric_with_its_labels_and_no_other():
    section = README.split("## Self-metrics", 1)[1].split("\n## ", 1)[0]
    listed = {(name, tuple(filter(None, (labels or "").split(","))))
              for name, labels in re.findall(r"`(redact_proxy_[a-z_]+)(?:\{([a-z0-9_,]*)\})?`", section)}
    declared = {(_exposed(m), m.labels) for m in (*METRICS, WORKER_RESTARTS)}
    assert listed == declared, f"README only: {listed - declared}; code only: {declared - listed}"


def test_the_metric_table_is_what_the_registry_exposes():
    body, _ = Telemetry().exposition()
    families = set(re.findall(r"^# TYPE (\S+) ", body.decode(), re.M))
    assert families == {_exposed(m) for m in METRICS}
    for m in (*METRICS, WORKER_RESTARTS):
        assert not m.unit or m.name.endswith("_" + m.unit), f"{m.name}: the unit is the name's suffix"
