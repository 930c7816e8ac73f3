"""Shell scripts of the deploy kit: shellcheck, and the Alertmanager template renderer's
contract (placeholders, defaults, quoting, refusal on a missing variable)."""

from __future__ import annotations

import os

import pytest
import yaml

from deploy_helpers import DEPLOY, REPO, run, run_ok, tool

SCRIPTS = [DEPLOY / "start.sh", DEPLOY / "stop.sh", DEPLOY / "alertmanager/render-config.sh",
           REPO / "tests/e2e/setup.sh"]
RENDER = DEPLOY / "alertmanager/render-config.sh"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(REPO)))
def test_shellcheck(script):
    run_ok([tool("shellcheck"), "-x", str(script)], cwd=REPO)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(REPO)))
def test_scripts_are_executable(script):
    assert os.access(script, os.X_OK), f"chmod +x {script}"


def render(tmp_path, template: str, env: dict[str, str]):
    src = tmp_path / "in.yml"
    src.write_text(template)
    out = tmp_path / "out.yml"
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL")}
    proc = run(["sh", str(RENDER), str(src), str(out)], env={**base, **env})
    return proc, out


@pytest.mark.parametrize("value", [
    "plain", 'quo"te', "back\\slash", "https://hooks.example/a?b=1&c=2", "#chan", "$NOT_A_VAR", "ünïcode",
])
def test_render_round_trips_values_through_yaml(tmp_path, value):
    proc, out = render(tmp_path, 'a: "${V}"\nb: "x-${V}-y"\n', {"V": value})
    assert proc.returncode == 0, proc.stdout
    assert yaml.safe_load(out.read_text()) == {"a": value, "b": f"x-{value}-y"}


def test_render_defaults_comments_and_missing(tmp_path):
    template = ('# ${DOC_ONLY} stays\na: "${SET}"\nb: "${UNSET:-fallback}"\nc: ${EMPTY:-true}\n'
                'd: "{{ .Status }}"\ne: "${EMPTY}"\n')
    proc, out = render(tmp_path, template, {"SET": "v", "EMPTY": ""})
    assert proc.returncode == 0, proc.stdout
    text = out.read_text()
    assert text.splitlines()[0] == "# ${DOC_ONLY} stays"
    assert yaml.safe_load(text) == {"a": "v", "b": "fallback", "c": True, "d": "{{ .Status }}", "e": ""}

    out.unlink()
    proc, out = render(tmp_path, 'a: "${MISSING_ONE}"\nb: "${MISSING_TWO}"\n', {})
    assert proc.returncode != 0
    assert "MISSING_ONE" in proc.stdout and "MISSING_TWO" in proc.stdout, proc.stdout
    assert not out.exists(), "a half-rendered config was left behind"
