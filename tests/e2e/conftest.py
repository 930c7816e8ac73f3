"""Fixtures for the end-to-end run: one stack per session, one round of real SDK
traffic per session, and the stack's logs attached to any failing test's report."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest

from . import pii, tools
from .stack import Stack, StackError

SENDER_TIMEOUT = 120  # seconds per SDK run; each sends for a few seconds


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    # Free ports are picked, released, then bound by the processes: on a shared
    # machine another process can take one in between. Such a start is retried
    # once, on new ports; any other failure is reported at once.
    for attempt in (1, 2):
        s = Stack(tmp_path_factory.mktemp("e2e-stack"))
        try:
            s.start()
            break
        except StackError as exc:
            if attempt == 1 and "address already in use" in str(exc).lower():
                continue
            pytest.fail(f"the e2e stack did not start: {exc}", pytrace=False)
        except tools.ToolMissing as exc:
            pytest.fail(f"the e2e stack did not start: {exc}", pytrace=False)
    yield s
    s.stop()


def _run_sender(stack: Stack, name: str, argv: list[str]) -> dict:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=SENDER_TIMEOUT, cwd=stack.workdir)
    (stack.logs / f"sender-{name}.log").write_text(f"$ {' '.join(argv)}\n{proc.stdout}\n{proc.stderr}")
    if proc.returncode != 0:
        pytest.fail(f"{name} SDK sender exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}\n\n"
                    f"{stack.log_tails(20)}", pytrace=False)
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def sent(stack):
    """Runs the Python SDK sender (gRPC + HTTP/protobuf) and the Node.js SDK sender
    (HTTP/JSON) through redact-proxy once; returns their reports by service name."""
    run = uuid.uuid4().hex[:12]
    pii_file = stack.workdir / "pii.json"
    pii_file.write_text(pii.as_json())
    reports = {}
    python = _run_sender(stack, "python", [
        sys.executable, str(tools.E2E / "senders/python_sender.py"), "--grpc", stack.addr("proxy_grpc"),
        "--http", stack.url("proxy_http"), "--run", run, "--pii", str(pii_file)])
    reports[python["service"]] = python
    node = _run_sender(stack, "node", [
        tools.node(), str(tools.E2E / "node/send.js"), "--http", stack.url("proxy_http"),
        "--run", run, "--pii", str(pii_file)])
    reports[node["service"]] = node
    return reports


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.when in ("setup", "call"):
        s = item.funcargs.get("stack") if hasattr(item, "funcargs") else None
        if isinstance(s, Stack):
            report.sections.append(("e2e stack logs (tails)", s.log_tails()))
