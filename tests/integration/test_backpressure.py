"""--max-inflight-bytes (pipeline.py, settings.py, both receivers): a budget of decompressed
request bytes in progress. A request that would go over it is refused as overload —
UNAVAILABLE + RetryInfo / 503 + Retry-After, never forwarded — while smaller requests that
still fit are served: it is a byte budget, not a count. (The count, --max-inflight, is in
test_request_limits.py; the load test is benchmarks/overload.py.)
"""

from __future__ import annotations

import concurrent.futures
import subprocess
import time

import grpc

from integration_otlp import build_request
from integration_support import POLICY, Answer, free_port, grpc_export, http_status, proxy_env, serve_command

BUDGET = 300_000  # bytes


def test_request_over_the_byte_budget_is_refused_as_overload_and_smaller_ones_still_fit(
        own_proxies, grpc_upstream, http_export):
    proxy = own_proxies(grpc_upstream.target, "--max-inflight", "64", "--max-inflight-bytes", str(BUDGET),
                        "--max-request-bytes", str(BUDGET), name="byte-budget")
    big, small = build_request("traces", items=300), build_request("logs", items=2)
    assert BUDGET / 2 < big.ByteSize() < BUDGET and small.ByteSize() < BUDGET - big.ByteSize()
    grpc_upstream.answer = Answer(hold=True)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(grpc_export, proxy, "traces", big)
        deadline = time.monotonic() + 20
        while not grpc_upstream.received and time.monotonic() < deadline:
            time.sleep(0.02)
        assert grpc_upstream.received, "the first request never reached upstream"
        refused_grpc = grpc_export(proxy, "traces", big)
        refused_http = http_export(proxy, "traces", big)
        fits = pool.submit(grpc_export, proxy, "logs", small)
        deadline = time.monotonic() + 20
        while len(grpc_upstream.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        grpc_upstream.release()
        assert first.result(30).code is grpc.StatusCode.OK
        assert fits.result(30).code is grpc.StatusCode.OK
    assert refused_grpc.code is grpc.StatusCode.UNAVAILABLE
    assert "--max-inflight-bytes" in refused_grpc.details
    assert refused_grpc.retry_delay() is not None
    assert refused_http.status == 503
    assert int(refused_http.headers["retry-after"]) >= 1
    assert "--max-inflight-bytes" in http_status(refused_http).message
    assert sorted(r.signal for r in grpc_upstream.received) == ["logs", "traces"], "a refused request was forwarded"
    grpc_upstream.answer = Answer()
    assert grpc_export(proxy, "traces", big).code is grpc.StatusCode.OK, "the budget is given back"


def test_byte_budget_smaller_than_one_request_is_a_config_error():
    args = serve_command("--policy", str(POLICY), "--grpc-listen", f"127.0.0.1:{free_port()}",
                         "--http-listen", f"127.0.0.1:{free_port()}", "--admin-listen", f"127.0.0.1:{free_port()}",
                         "--upstream", "debug", "--max-inflight-bytes", "1000")
    result = subprocess.run(args, capture_output=True, text=True, env=proxy_env(), timeout=60)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--max-inflight-bytes" in lines[0] and "--max-request-bytes" in lines[0], result.stderr
