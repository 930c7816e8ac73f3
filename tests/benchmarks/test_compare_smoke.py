"""benchmarks/compare.py and benchmarks/loadgen.py keep working.

compare.py: a seconds-long run on tiny batches (``--smoke``), its report written to a
temporary path (never over benchmarks/RESULTS.md). No figure is asserted (they depend on
the machine); what must hold anywhere is that every system was started and measured on
every workload, that the report has its tables, and that every item a system answered OK
for arrived at the sink. loadgen.py over OTLP/HTTP: its accounting of answers (OK, partial
success, refusal) against a small in-test server whose answers are known.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest, ExportTraceServiceResponse,
)

ROOT = Path(__file__).resolve().parents[2]
COMPARE = ROOT / "benchmarks" / "compare.py"
LOADGEN = ROOT / "benchmarks" / "loadgen.py"
OTELCOL = ROOT / ".cache" / "bin" / "otelcol"
SYSTEMS = {"proxy-w1", "proxy-w2", "proxy-t2", "proxy-audit", "collector-attributes", "collector-attributes-keys", "collector-redaction",
           "collector-passthrough"}
TRACES_ONLY = {"proxy-w2", "proxy-t2", "proxy-audit", "collector-attributes-keys"}  # run on `traces` alone
WORKLOADS = {"traces", "metrics", "logs", "traces-clean", "latency"}

# The run takes ~20 s on an idle machine, ~40 s on a busy one; the suite's 120 s default is
# too tight for a loaded CI machine (the fixture's time counts to the first test).
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    if not OTELCOL.exists():
        pytest.fail(f"no collector at {OTELCOL}: run `bash tests/e2e/setup.sh` (make test does)", pytrace=False)
    out = tmp_path_factory.mktemp("compare-smoke")
    results_md, results_json = out / "RESULTS.md", out / "results.json"
    shipped = ROOT / "benchmarks" / "RESULTS.md"
    before = shipped.read_bytes() if shipped.exists() else None
    proc = subprocess.run(
        [sys.executable, str(COMPARE), "--smoke", "--quiet", "--output", str(results_md), "--json", str(results_json),
         "--workdir", str(out / "work")],
        capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"compare.py exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-6000:]}"
    after = shipped.read_bytes() if shipped.exists() else None
    assert before == after, "the smoke run touched benchmarks/RESULTS.md"
    return proc.stdout, results_md.read_text(), json.loads(results_json.read_text())


def test_every_system_ran_every_workload(smoke):
    _, _, report = smoke
    assert set(report["systems_started"]) == SYSTEMS
    measured = {(a["workload"], a["system"]) for a in report["aggregate"] if a["items"] > 0}
    for wl in WORKLOADS - {"latency"}:
        for system in SYSTEMS - TRACES_ONLY:
            assert (wl, system) in measured, f"{system} measured nothing on {wl}"
    for system in TRACES_ONLY:
        assert ("traces", system) in measured, f"{system} measured nothing on traces"
    for system in SYSTEMS - TRACES_ONLY:
        assert ("latency", system) in measured and ("latency", f"direct:{system}") in measured
    for run in report["runs"]:
        assert not run["error"], run
        assert run["report"]["totals"]["failed"] == 0, run
        if not run["system"].startswith("direct"):
            assert run["report"]["watched_cpu_by_pid"], f"no CPU figures for {run['system']}"
            assert run["rss"] and all(v > 0 for v in run["rss"].values()), f"no RSS for {run['system']}"
    # --workers 2: the supervisor and both workers are measured
    w2 = [run for run in report["runs"] if run["system"] == "proxy-w2"]
    assert w2 and all(len(run["rss"]) >= 3 for run in w2)
    assert all(code == 0 for code in report["exit_codes"].values()), report["exit_codes"]


def test_everything_answered_ok_reached_the_sink(smoke):
    _, _, report = smoke
    for run in report["runs"]:
        accepted = run["report"]["totals"]["items_accepted"]
        assert accepted > 0, run["system"]
        assert run["sink_delta"] == accepted, (
            f"{run['workload']}/{run['system']}: sink received {run['sink_delta']}, answered OK {accepted}")


def test_report_has_the_tables(smoke):
    stdout, text, _ = smoke
    for heading in ("## Machine", "## Ratios vs (b)", "## Latency at a fixed rate", "## Scaling", "## Targets",
                    "## Commands", "## Raw figures"):
        assert heading in text, heading
    for system in SYSTEMS:
        assert f" {system} |" in text, system
    assert "| traces | (b) collector-attributes |" in text and "| 1.00× |" in text
    assert "None: every run completed" in text
    assert "## Ratios vs (b)" in stdout  # the table is printed too


# --- loadgen over OTLP/HTTP, against answers known in advance -----------------------------


class _Server:
    """OTLP/HTTP traces endpoint answering, in turn: 200 with nothing rejected, 200 with
    one span rejected (partial success), 503."""

    def __init__(self):
        self.requests = 0
        self.spans = 0
        self.port = None
        self.ready = threading.Event()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        msg = ExportTraceServiceRequest()
        msg.ParseFromString(body)
        turn = self.requests % 3
        self.requests += 1
        self.spans += sum(len(ss.spans) for rs in msg.resource_spans for ss in rs.scope_spans)
        if turn == 2:
            return web.Response(status=503, headers={"Retry-After": "1"})
        answer = ExportTraceServiceResponse()
        if turn == 1:
            answer.partial_success.rejected_spans = 1
        return web.Response(body=answer.SerializeToString(), content_type="application/x-protobuf")

    def run(self):
        import asyncio

        async def main():
            app = web.Application()
            app.router.add_post("/v1/traces", self.handle)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]
            self.ready.set()
            while not self.stop:
                await asyncio.sleep(0.05)
            await runner.cleanup()

        self.stop = False
        asyncio.run(main())


def test_loadgen_http_counts_ok_partial_success_and_refusals(tmp_path):
    server = _Server()
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert server.ready.wait(10)
    try:
        proc = subprocess.run(
            [sys.executable, str(LOADGEN), "--protocol", "http", "--target", f"127.0.0.1:{server.port}",
             "--concurrency", "1", "--requests", "6", "--batch", "10", "--attrs", "4", "--pool", "2",
             "--pool-cache", str(tmp_path), "--json"],
            capture_output=True, text=True, timeout=60)
    finally:
        server.stop = True
        thread.join(10)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    totals, window = report["totals"], report["window"]
    assert server.requests == 6 and server.spans == 60
    assert totals["codes"] == {"OK": 4, "HTTP 503": 2}
    assert totals["items_accepted"] == 4 * 10 - 2  # two partial successes, one span each
    assert totals["items_refused"] == 2 * 10 + 2
    assert window["requests"] == 6 and len(window["latency_ms"]) == 4
    assert report["generator_cpu_seconds"] >= 0
    assert list(tmp_path.glob("*.pool")), "the pool was not cached"
