"""Service wiring (service.py, settings.py, workers.py): graceful SIGTERM with requests
in flight, configuration from the environment, upstream headers/compression from the OTel
variables, policy reload (SIGHUP, file change) keeping the old policy when the new one is
broken, and --workers (SPEC sections 3, 6, 7, 9)."""

from __future__ import annotations

import concurrent.futures
import os
import signal
from pathlib import Path

import grpc
import pytest

from integration_otlp import assert_redacted, attrs, build_request, check_sdk_arrival, items_of
from integration_support import POLICY, Answer, grpc_export, sdk_export, wait_for

RELOAD_WAIT = 8.0  # seconds; bounded wait for a reload to show in /metrics



@pytest.mark.parametrize("client", ["grpc", "http"])
def test_sigterm_drains_in_flight_requests_and_exits_0(own_proxies, grpc_upstream, http, http_export, client):
    proxy = own_proxies(grpc_upstream.target, "--shutdown-grace", "10s", name=f"drain-{client}")
    grpc_upstream.answer = Answer(hold=True)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        if client == "grpc":
            future = pool.submit(grpc_export, proxy, "traces", build_request("traces"))
        else:
            future = pool.submit(http_export, proxy, "traces", build_request("traces"))
        wait_for(lambda: grpc_upstream.received, 20, "the request to reach upstream")
        proxy.proc.send_signal(signal.SIGTERM)
        # Unready first, so load balancers stop routing, while the request is in flight.
        wait_for(lambda: proxy.get("/readyz")[0] == 503, 20, "/readyz to turn 503 while draining")
        assert not future.done() and proxy.proc.poll() is None, "the in-flight request was not waited for"
        grpc_upstream.release()
        result = future.result(30)
    if client == "grpc":
        assert result.code is grpc.StatusCode.OK, result.details
    else:
        assert result.status == 200
    assert proxy.wait_exit() == 0, proxy.stderr()
    assert "draining: 1 request(s) in flight" in proxy.stderr()
    assert len(grpc_upstream.received) == 1


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_both_event_loops_serve_both_transports(own_proxies, grpc_upstream, http_export, loop):
    proxy = own_proxies(grpc_upstream.target, "--event-loop", loop, name=f"loop-{loop}")
    assert grpc_export(proxy, "traces", build_request("traces")).code is grpc.StatusCode.OK
    assert http_export(proxy, "traces", build_request("traces")).status == 200
    assert len(grpc_upstream.received) == 2
    for received in grpc_upstream.received:
        assert_redacted(attrs(items_of("traces", received.message)[0].attributes))


def test_serve_is_the_default_command_and_env_configures_it(own_proxies, grpc_upstream):
    proxy = own_proxies(None, subcommand=False, env={"REDACT_PROXY_UPSTREAM": grpc_upstream.target},
                        name="implicit-serve")
    assert grpc_export(proxy, "logs", build_request("logs")).code is grpc.StatusCode.OK
    [received] = grpc_upstream.received
    assert_redacted(attrs(items_of("logs", received.message)[0].attributes))


@pytest.mark.parametrize("kind", ["grpc", "http"])
def test_upstream_defaults_to_otel_exporter_otlp_endpoint(own_proxies, grpc_upstream, http_upstream, kind):
    # As the SDKs read them: an http:// endpoint is OTLP/HTTP unless OTEL_EXPORTER_OTLP_PROTOCOL=grpc.
    upstream = grpc_upstream if kind == "grpc" else http_upstream
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{upstream.port}"}
    if kind == "grpc":
        env["OTEL_EXPORTER_OTLP_PROTOCOL"] = "grpc"
    proxy = own_proxies(None, env=env, name=f"otel-endpoint-{kind}")
    assert grpc_export(proxy, "metrics", build_request("metrics")).code is grpc.StatusCode.OK
    [received] = upstream.received
    assert received.parse_error is None
    assert_redacted(attrs(items_of("metrics", received.message)[0].attributes), extra={"n": 0})


@pytest.mark.parametrize("kind", ["grpc", "http"])
def test_upstream_headers_and_compression_follow_otel_env(own_proxies, grpc_upstream, http_upstream, kind):
    upstream = grpc_upstream if kind == "grpc" else http_upstream
    proxy = own_proxies(upstream.target, name=f"otel-env-{kind}", env={
        "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=acme,x-scope=a%20b",
        "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
    })
    data, ok = sdk_export("traces", "http", proxy)
    assert ok
    check_sdk_arrival("traces", data, upstream.received)
    [received] = upstream.received
    assert received.headers.get("x-tenant") == "acme"
    assert received.headers.get("x-scope") == "a b"
    if kind == "http":
        # The capture gunzips by this header; check_sdk_arrival proved the body matched it.
        assert received.headers.get("content-encoding") == "gzip"


def write_atomically(path: Path, text: str) -> None:
    """As operators and Kubernetes replace files: never half-written when read."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _policy_with_route_deleted() -> str:
    text = POLICY.read_text()
    assert "keys: [user.email]" in text
    return text.replace("keys: [user.email]", "keys: [user.email, http.route]")


def _route_of(upstream) -> str | None:
    [received] = upstream.received
    upstream.reset()
    return attrs(items_of("traces", received.message)[0].attributes).get("http.route")


def test_sighup_reloads_the_policy_and_keeps_it_when_the_new_one_is_broken(own_proxies, grpc_upstream, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.read_text())
    proxy = own_proxies(grpc_upstream.target, policy=policy, name="sighup")
    first_sha = proxy.metrics().labelsets("redact_proxy_policy_info")[0]["sha256"]
    assert grpc_export(proxy, "traces", build_request("traces")).code is grpc.StatusCode.OK
    assert _route_of(grpc_upstream) == "/checkout"

    write_atomically(policy, _policy_with_route_deleted())
    proxy.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: proxy.metrics().value("redact_proxy_policy_reloads_total", result="success") >= 1,
             RELOAD_WAIT, "a successful reload")
    assert proxy.metrics().labelsets("redact_proxy_policy_info")[0]["sha256"] != first_sha
    assert grpc_export(proxy, "traces", build_request("traces")).code is grpc.StatusCode.OK
    assert _route_of(grpc_upstream) is None

    write_atomically(policy, "version: 1\nrules:\n  - name: shredder\n    action: shred\n")
    proxy.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: proxy.metrics().value("redact_proxy_policy_reloads_total", result="failure") >= 1,
             RELOAD_WAIT, "a refused reload")
    assert grpc_export(proxy, "traces", build_request("traces")).code is grpc.StatusCode.OK
    assert _route_of(grpc_upstream) is None, "the previous policy stays in force"
    assert proxy.get("/readyz")[0] == 200
    assert "policy reload refused" in proxy.stderr()


def test_policy_file_change_is_picked_up_without_a_signal(own_proxies, grpc_upstream, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.read_text())
    proxy = own_proxies(grpc_upstream.target, policy=policy, name="file-watch")
    write_atomically(policy, _policy_with_route_deleted())
    wait_for(lambda: proxy.metrics().value("redact_proxy_policy_reloads_total", result="success") >= 1,
             RELOAD_WAIT, "the policy file change to be reloaded (SPEC 6: 'and when the file changes')")
    assert grpc_export(proxy, "traces", build_request("traces")).code is grpc.StatusCode.OK
    assert _route_of(grpc_upstream) is None


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_workers_share_the_ports_sum_their_metrics_and_are_restarted(own_proxies, grpc_upstream, http_export):
    proxy = own_proxies(grpc_upstream.target, "--workers", "2", name="workers")
    workers = wait_for(lambda: len(_children(proxy.pid)) == 2 and _children(proxy.pid), 20, "two workers")
    for _ in range(10):  # a new connection each: the kernel spreads them over the workers
        assert grpc_export(proxy, "traces", build_request("traces")).code is grpc.StatusCode.OK
        assert http_export(proxy, "logs", build_request("logs")).status == 200
    assert len(grpc_upstream.received) == 20
    for r in grpc_upstream.received:
        for item in items_of(r.signal, r.message):
            assert_redacted(attrs(item.attributes))

    def totals():
        m = proxy.metrics()
        return (m.value("redact_proxy_received_items_total", signal="traces"),
                m.value("redact_proxy_received_items_total", signal="logs"),
                m.value("redact_proxy_requests_total"))

    assert totals() == (10, 10, 20)
    # A worker that dies is replaced, and what it counted still shows in the sum.
    os.kill(workers[0], signal.SIGKILL)
    wait_for(lambda: workers[0] not in _children(proxy.pid) and len(_children(proxy.pid)) == 2, 30,
             "the dead worker to be replaced")
    wait_for(lambda: proxy.metrics().value("redact_proxy_worker_restarts_total") >= 1, 20, "the restart to be counted")
    assert totals() == (10, 10, 20)
    wait_for(lambda: grpc_export(proxy, "traces", build_request("traces")).code is grpc.StatusCode.OK, 20,
             "the group to serve again")
    assert proxy.stop() == 0, proxy.stderr()
    assert not any(_running(pid) for pid in workers[1:]), "a worker outlived the supervisor"
