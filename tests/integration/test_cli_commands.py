"""Command line (cli.py, service.py start-up): ``check`` exit codes and its
FILE:LINE:COL lines, ``serve`` refusing to start on a bad policy (exit 2) or a taken
port (exit 1, one clear line)."""

from __future__ import annotations

import re
import socket
import subprocess
import sys

import pytest

from integration_support import POLICY, free_port, proxy_env, serve_command

LOCATED = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<msg>.+)$")


def run(args: list[str], env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, env=env or proxy_env(), timeout=timeout)


def check(policy) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "redact_proxy", "check", "--policy", str(policy)])


def test_check_valid_policy_exits_0_with_a_summary():
    result = check(POLICY)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout
    for name in ("drop-health-checks", "delete-personal", "hash-identifiers"):
        assert name in result.stdout
    assert result.stderr == ""


BROKEN = """\
version: 1
rules:
  - name: ok-rule
    action: delete
    keys: [user.email]
  - name: typo-field
    action: delete
    kyes: [user.phone]
  - name: bad-regex
    action: delete
    patterns: ['user\\.(']
  - name: bad-action
    action: obliterate
    keys: [x]
  - name: ok-rule
    action: hash
    keys: [user.id]
"""


def test_check_invalid_policy_exits_2_with_every_error_located(tmp_path):
    policy = tmp_path / "broken.yaml"
    policy.write_text(BROKEN)
    result = check(policy)
    assert result.returncode == 2
    located = [LOCATED.match(line) for line in result.stderr.splitlines()]
    errors = [m for m in located if m and m["file"] == str(policy)]
    assert {int(m["line"]) for m in errors} >= {8, 11, 13, 15}, result.stderr
    lines = {int(m["line"]): m for m in errors}
    assert "kyes" in lines[8]["msg"]
    assert int(lines[8]["col"]) == 5
    assert "obliterate" in lines[13]["msg"]
    assert "ok-rule" in lines[15]["msg"] or "duplicate" in lines[15]["msg"]
    assert result.stdout == ""


@pytest.mark.parametrize("text, line", [
    ("version: 1\nrules:\n  - name: a\n    action: delete\n    keys: [a\n", 6),  # unclosed flow sequence
    ("version: 2\nrules: []\n", 1),
    ("rules: []\n", 1),
])
def test_check_reports_yaml_and_version_errors_with_location(tmp_path, text, line):
    policy = tmp_path / "p.yaml"
    policy.write_text(text)
    result = check(policy)
    assert result.returncode == 2
    first = LOCATED.match(result.stderr.splitlines()[0])
    assert first and first["file"] == str(policy) and int(first["line"]) == line, result.stderr


def test_check_missing_file_exits_2(tmp_path):
    result = check(tmp_path / "nope.yaml")
    assert result.returncode == 2
    assert LOCATED.match(result.stderr.splitlines()[0])


def _serve(policy, *extra: str, env=None) -> subprocess.CompletedProcess:
    args = serve_command("--policy", str(policy), "--grpc-listen", f"127.0.0.1:{free_port()}",
                         "--http-listen", f"127.0.0.1:{free_port()}", "--admin-listen", f"127.0.0.1:{free_port()}",
                         "--upstream", "debug", *extra)
    return run(args, env=env)  # a flag given twice: the later one (in extra) wins


def test_serve_with_invalid_policy_exits_2(tmp_path):
    policy = tmp_path / "broken.yaml"
    policy.write_text(BROKEN)
    result = _serve(policy)
    assert result.returncode == 2
    assert f"{policy}:8:5" in result.stderr
    assert result.stdout == ""


def test_serve_without_the_hash_key_exits_2():
    env = proxy_env()
    del env["REDACT_PROXY_HASH_KEY"]
    result = _serve(POLICY, env=env)
    assert result.returncode == 2
    assert "REDACT_PROXY_HASH_KEY" in result.stderr


def test_serve_with_a_short_hash_key_exits_2():
    result = _serve(POLICY, env=proxy_env(REDACT_PROXY_HASH_KEY="short"))
    assert result.returncode == 2


@pytest.mark.parametrize("args", [["--upstream", "ftp://x"], ["--max-request-bytes", "lots"],
                                  ["--grpc-listen", "nowhere"], ["--log-format", "xml"]])
def test_serve_with_invalid_options_exits_2(args):
    result = _serve(POLICY, *args)
    assert result.returncode == 2
    assert result.stderr.strip()


@pytest.mark.parametrize("listener", ["--grpc-listen", "--http-listen", "--admin-listen"])
def test_serve_on_a_taken_port_exits_1_with_one_clear_line(listener):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        ports = {"--grpc-listen": free_port(), "--http-listen": free_port(), "--admin-listen": free_port()}
        ports[listener] = port
        args = serve_command("--policy", str(POLICY), "--upstream", "debug",
                             *(x for flag, p in ports.items() for x in (flag, f"127.0.0.1:{p}")))
        result = run(args)
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{result.stderr}"
    assert str(port) in lines[0]
    assert "in use" in lines[0].lower()


def test_serve_with_an_unwritable_file_upstream_exits_1_naming_it(tmp_path):
    target = tmp_path / "no-such-dir" / "out.jsonl"
    result = _serve(POLICY, "--upstream", f"file:{target}")
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert str(target) in lines[0], f"the line does not say which file: {lines[0]}"


def test_serve_warns_of_an_unknown_redact_proxy_variable_and_names_only_it(tmp_path):
    policy = tmp_path / "broken.yaml"
    policy.write_text(BROKEN)  # exits right after start-up's first lines
    result = _serve(policy, env=proxy_env(REDACT_PROXY_UPSTRAEM="grpc://secret-host:4317"))
    assert result.returncode == 2
    warnings = [line for line in result.stderr.splitlines() if "REDACT_PROXY_UPSTRAEM" in line]
    assert len(warnings) == 1 and "typo" in warnings[0], result.stderr
    assert "secret-host" not in result.stderr, "the value of a variable is never logged"
    assert "REDACT_PROXY_HASH_KEY" not in result.stderr, "a variable the proxy reads is no typo"
