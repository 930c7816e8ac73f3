"""Graceful lifecycle (service.py, receivers' stop, settings/TLS loading at start-up):
what test_service_lifecycle.py and test_cli_commands.py do not cover yet.

- SIGTERM: from the first moment of the drain /readyz is 503 (Kubernetes stops routing)
  while /healthz stays 200, both receivers stop accepting, and requests already in flight
  on both receivers finish and are answered; exit 0.
- A request still in flight when --shutdown-grace runs out is cut (the client hears a
  retryable failure: UNAVAILABLE, or a dropped connection the SDKs retry) and the proxy
  exits 0 then, not when upstream finally answers.
- Start-up failures exit non-zero with exactly one clear line naming what is wrong: an
  unusable TLS file (receivers or upstream), a missing one, a missing hash key, a bad policy.
"""

from __future__ import annotations

import concurrent.futures
import signal
import socket
import subprocess

import aiohttp
import grpc
import pytest

from integration_faults import make_pki
from integration_otlp import build_request
from integration_support import POLICY, Answer, free_port, grpc_export, proxy_env, serve_command, wait_for

WAIT = 20.0  # seconds; bounded waits



def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return False
    return True


def test_drain_is_unready_at_once_stops_accepting_and_answers_what_is_in_flight(own_proxies, grpc_upstream,
                                                                               http_export):
    proxy = own_proxies(grpc_upstream.target, "--shutdown-grace", "15s", name="drain-both")
    grpc_upstream.answer = Answer(hold=True)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        in_grpc = pool.submit(grpc_export, proxy, "traces", build_request("traces"))
        in_http = pool.submit(http_export, proxy, "logs", build_request("logs"))
        wait_for(lambda: len(grpc_upstream.received) == 2, WAIT, "both requests to reach upstream")
        proxy.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: proxy.get("/readyz")[0] == 503, WAIT, "/readyz to turn 503")
        assert proxy.get("/healthz")[0] == 200, "draining is not dead: liveness stays 200"
        # Stopped accepting: both listeners close promptly, and a new request is refused
        # on both receivers (never forwarded) while the old ones are still in flight.
        for port in (proxy.grpc_port, proxy.http_port):
            wait_for(lambda: not listening(port), 5, f"port {port} to stop accepting")
        late = grpc_export(proxy, "metrics", build_request("metrics"), timeout=5)
        assert late.code is grpc.StatusCode.UNAVAILABLE
        with pytest.raises((aiohttp.ClientError, OSError)):
            http_export(proxy, "metrics", build_request("metrics"))
        assert not in_grpc.done() and not in_http.done(), "in-flight requests were not waited for"
        assert proxy.proc.poll() is None
        grpc_upstream.release()
        assert in_grpc.result(30).code is grpc.StatusCode.OK
        assert in_http.result(30).status == 200
    assert proxy.wait_exit() == 0, proxy.stderr()
    assert sorted(r.signal for r in grpc_upstream.received) == ["logs", "traces"]


@pytest.mark.parametrize("client", ["grpc", "http"])
def test_requests_past_the_grace_are_cut_and_the_proxy_exits_0(own_proxies, grpc_upstream, http_export, client):
    # Upstream would hold the request for 25 s (--upstream-timeout); the grace is 1 s. The
    # proxy must be gone well before upstream's answer: exit within 10 s of SIGTERM.
    proxy = own_proxies(grpc_upstream.target, "--shutdown-grace", "1s", "--upstream-timeout", "25s",
                        name=f"grace-{client}")
    grpc_upstream.answer = Answer(hold=True)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        send = grpc_export if client == "grpc" else http_export
        future = pool.submit(send, proxy, "traces", build_request("traces"))
        wait_for(lambda: grpc_upstream.received, WAIT, "the request to reach upstream")
        proxy.proc.send_signal(signal.SIGTERM)
        try:
            assert proxy.wait_exit(timeout=10) == 0, proxy.stderr()
        finally:
            grpc_upstream.release()
        try:
            result = future.result(30)
        except (aiohttp.ClientError, OSError):
            result = None  # HTTP: the connection was dropped; the SDKs retry that
    if client == "grpc":
        assert result.code is grpc.StatusCode.UNAVAILABLE, "a cut request must be retryable"
    else:
        assert result is None or result.status == 503
    # The operator is told how many were cut (uvicorn's habit).
    assert "1 request(s) cut at the end of the grace period" in proxy.stderr()


# --- start-up failures: non-zero, one clear line --------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad-tls")
    (d / "garbage.pem").write_text("this is not PEM\n")
    return d


def serve(*extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    args = serve_command("--policy", str(POLICY), "--grpc-listen", f"127.0.0.1:{free_port()}",
                         "--http-listen", f"127.0.0.1:{free_port()}", "--admin-listen", f"127.0.0.1:{free_port()}",
                         "--upstream", "debug", *extra)
    return subprocess.run(args, capture_output=True, text=True, env=env or proxy_env(), timeout=60)


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return lines[0]


# name -> (args built from (pki, bad_files dir), exit code, what the line must name)
TLS_FAILURES = {
    "receiver-cert-not-pem": (lambda p, b: ["--tls-cert", b / "garbage.pem", "--tls-key", p.server.key], 1,
                              "garbage.pem"),
    "receiver-key-of-another-cert": (lambda p, b: ["--tls-cert", p.server.cert, "--tls-key", p.client.key], 1,
                                     "client.key"),
    "client-ca-not-pem": (lambda p, b: ["--tls-cert", p.server.cert, "--tls-key", p.server.key,
                                        "--tls-client-ca", b / "garbage.pem"], 1, "garbage.pem"),
    "receiver-cert-missing": (lambda p, b: ["--tls-cert", b / "nope.crt", "--tls-key", p.server.key], 2, "nope.crt"),
    "grpcs-upstream-ca-not-pem": (lambda p, b: ["--upstream", "grpcs://127.0.0.1:9", "--upstream-ca",
                                                b / "garbage.pem"], 1, "garbage.pem"),
    "https-upstream-key-not-pem": (lambda p, b: ["--upstream", "https://127.0.0.1:9", "--upstream-ca", p.ca,
                                                 "--upstream-cert", p.client.cert, "--upstream-key",
                                                 b / "garbage.pem"], 1, "garbage.pem"),
}


@pytest.mark.parametrize("case", TLS_FAILURES)
def test_unusable_tls_file_stops_start_up_with_one_line_naming_it(pki, bad_files, case):
    build, code, named = TLS_FAILURES[case]
    result = serve(*map(str, build(pki, bad_files)))
    assert result.returncode == code, result.stderr
    line = one_line(result)
    assert named in line, f"the line does not name the file: {line}"
    assert "bind" not in line.lower(), f"misleading reason: {line}"


def test_missing_hash_key_is_one_line_naming_the_variable():
    env = proxy_env()
    del env["REDACT_PROXY_HASH_KEY"]
    result = serve(env=env)
    assert result.returncode == 2
    assert "REDACT_PROXY_HASH_KEY" in one_line(result)


def test_bad_policy_is_one_located_line_per_problem(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\nrules:\n  - name: shredder\n    action: shred\n    keys: [a]\n")
    result = serve("--policy", str(policy))
    assert result.returncode == 2
    line = one_line(result)
    assert f"{policy}:4:" in line and "shred" in line
    assert result.stdout == ""
