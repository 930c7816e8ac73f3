"""--queue-dir end to end (SPEC section 8): a real proxy with a persistent queue, killed
with SIGKILL in the middle of a load, restarted on the same directory: every item whose
request was acknowledged reaches upstream (duplicates allowed and counted, losses not),
and the queue's files never hold a value the policy deletes. An upstream outage is ridden
out (requests acknowledged while it is down, all delivered once it is back); a full queue
answers UNAVAILABLE / 503 with a retry hint; each worker has its own directory.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import grpc
import pytest

from integration_otlp import GONE, MARK
from integration_support import POLICY, Answer, GrpcCapture, HttpCapture, free_port, grpc_export, proxy_env, serve_command
from queue_support import (
    Load, arrived, disk_bytes, numbered_request, span_ids_of,
)

DRAIN_TIMEOUT = 30.0  # seconds: bounded wait for the queue to reach upstream


def wait_for(predicate, timeout: float, what: str, proxy=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                         + (f"; stderr:\n{proxy.stderr()}" if proxy else ""))


def assert_no_unredacted_bytes(directory) -> bytes:
    """The queue's files hold only redacted batches: no value under a deleted key, no
    unhashed identifier."""
    data = disk_bytes(directory)
    assert GONE.encode() not in data, "a value the policy deletes was written to the queue"
    assert f"{MARK}-user-42".encode() not in data, "an identifier the policy hashes was written as it was"
    return data


def queue_records(proxy) -> float:
    return proxy.metrics().value("redact_proxy_queue_records")


def test_sigkill_mid_load_loses_no_acknowledged_item(own_proxies, grpc_upstream, http_export, tmp_path, capsys):
    queue_dir = tmp_path / "queue"
    flags = ("--queue-dir", str(queue_dir), "--upstream-timeout", "5s")
    # A slow upstream (20 ms per batch) while the clients send faster: a backlog builds,
    # so the kill finds acknowledged batches that only the disk holds.
    grpc_upstream.answer = Answer(delay=0.02)
    first = own_proxies(grpc_upstream.target, *flags, name="queue-first")
    load = Load(first, http_export, total=300).start()
    wait_for(lambda: len(load.acknowledged) >= 120, 30, "120 acknowledged requests", first)

    os.kill(first.pid, signal.SIGKILL)
    first.wait_exit()
    acknowledged_at_kill = load.acknowledged_ids()
    arrived_at_kill = arrived(grpc_upstream)
    only_on_disk = acknowledged_at_kill - set(arrived_at_kill)
    assert only_on_disk, "the kill found nothing waiting in the queue: the test proves nothing"
    on_disk = assert_no_unredacted_bytes(queue_dir)
    assert MARK.encode() in on_disk, "the queue held batches (kept values), so the check above could fail"

    grpc_upstream.answer = Answer()
    second = own_proxies(grpc_upstream.target, *flags, name="queue-second")
    load.proxy = second
    load.join(60)
    acknowledged = load.acknowledged_ids()
    wait_for(lambda: acknowledged <= set(arrived(grpc_upstream)), DRAIN_TIMEOUT,
             "every acknowledged item upstream", second)
    wait_for(lambda: queue_records(second) == 0, DRAIN_TIMEOUT, "the queue to drain", second)

    counts = arrived(grpc_upstream)
    lost = acknowledged - set(counts)
    duplicates = sum(c - 1 for c in counts.values() if c > 1)
    with capsys.disabled():
        print(f"\n[queue crash] requests acknowledged {len(load.acknowledged)}/{load.total} "
              f"(attempts {load.attempts}, refused or failed {load.failures}); items acknowledged "
              f"{len(acknowledged)}, acknowledged before the kill {len(acknowledged_at_kill)} of which only on "
              f"disk {len(only_on_disk)}; items received upstream {sum(counts.values())}, unique {len(counts)}, "
              f"duplicates {duplicates}, lost {len(lost)}")
    assert not lost, f"{len(lost)} acknowledged item(s) never reached upstream"
    assert len(load.acknowledged) == load.total, "the clients' retries got every request in eventually"
    for r in grpc_upstream.received:
        assert GONE.encode() not in r.raw
    assert_no_unredacted_bytes(queue_dir)
    recovered = re.search(r"queue: \S+ holds (\d+) batch", second.stderr())
    assert recovered and int(recovered.group(1)) > 0, "the restarted proxy found the backlog on disk"


@pytest.mark.parametrize("kind", ["grpc", "http"])
def test_an_upstream_outage_is_ridden_out(own_proxies, loop_thread, http_export, tmp_path, kind):
    port = free_port()
    capture = GrpcCapture(port) if kind == "grpc" else HttpCapture(port)
    queue_dir = tmp_path / "queue"
    proxy = own_proxies(f"{kind}://127.0.0.1:{port}", "--queue-dir", str(queue_dir), name=f"outage-{kind}")
    for n in range(20):  # upstream is down: acknowledged all the same, once on disk
        if n % 2:
            assert grpc_export(proxy, "traces", numbered_request(n)).code is grpc.StatusCode.OK
        else:
            assert http_export(proxy, "traces", numbered_request(n)).status == 200
    assert queue_records(proxy) == 20
    wait_for(lambda: proxy.metrics().value("redact_proxy_upstream_errors_total") >= 1, 10,
             "the sender to find upstream down", proxy)
    assert_no_unredacted_bytes(queue_dir)
    loop_thread.run(capture.start())
    try:
        expected = {sid for n in range(20) for sid in span_ids_of(n)}
        wait_for(lambda: expected <= set(arrived(capture)), DRAIN_TIMEOUT, "the backlog to reach upstream", proxy)
        wait_for(lambda: queue_records(proxy) == 0, 10, "the queue gauge to drop", proxy)
        assert all(r.parse_error is None and GONE.encode() not in r.raw for r in capture.received)
        assert proxy.metrics().value("redact_proxy_queue_dropped_total") == 0
    finally:
        loop_thread.run(capture.stop())


def test_a_full_queue_answers_unavailable_with_a_retry_hint(own_proxies, http_export, tmp_path):
    proxy = own_proxies(f"grpc://127.0.0.1:{free_port()}", "--queue-dir", str(tmp_path / "queue"),
                        "--queue-max-bytes", "65536", name="queue-full")
    for n in range(200):
        result = http_export(proxy, "traces", numbered_request(n))
        if result.status != 200:
            break
    assert result.status == 503 and int(result.headers["retry-after"]) >= 1, "never refused"
    assert 10 < n < 200
    refused = grpc_export(proxy, "traces", numbered_request(999))
    assert refused.code is grpc.StatusCode.UNAVAILABLE and refused.retry_delay()
    assert proxy.metrics().value("redact_proxy_queue_bytes") <= 65536
    assert proxy.metrics().value("redact_proxy_requests_total", code="503") == 1


def test_each_worker_has_its_own_queue_directory(own_proxies, grpc_upstream, tmp_path):
    queue_dir = tmp_path / "queue"
    proxy = own_proxies(grpc_upstream.target, "--workers", "2", "--queue-dir", str(queue_dir), name="queue-workers")
    wait_for(lambda: sorted(p.name for p in queue_dir.iterdir()) == ["worker-0", "worker-1"], 20,
             "both workers' directories", proxy)
    for n in range(10):  # a new connection each: the kernel spreads them over the workers
        assert grpc_export(proxy, "traces", numbered_request(n)).code is grpc.StatusCode.OK
    expected = {sid for n in range(10) for sid in span_ids_of(n)}
    wait_for(lambda: expected <= set(arrived(grpc_upstream)), DRAIN_TIMEOUT, "delivery", proxy)
    wait_for(lambda: queue_records(proxy) == 0, 10, "both queues to drain", proxy)


def test_a_second_proxy_cannot_use_the_same_queue(own_proxies, grpc_upstream, tmp_path):
    queue_dir = tmp_path / "queue"
    own_proxies(grpc_upstream.target, "--queue-dir", str(queue_dir), name="queue-owner")
    other = subprocess.run(
        serve_command("--policy", str(POLICY), "--upstream", grpc_upstream.target, "--queue-dir", str(queue_dir),
                      "--grpc-listen", f"127.0.0.1:{free_port()}", "--http-listen", f"127.0.0.1:{free_port()}",
                      "--admin-listen", "off"),
        env=proxy_env(), capture_output=True, text=True, timeout=30)
    assert other.returncode == 1, other.stderr
    assert "is in use by another redact-proxy process" in other.stderr
