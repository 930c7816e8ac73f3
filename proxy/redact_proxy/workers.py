"""``--workers N``: a supervisor process and N worker processes sharing the ports.

Strategy: the supervisor runs no event loop and handles no request. It starts N copies of
this same command line as child processes marked by ``REDACT_PROXY_WORKER`` (settings.py
reads it as the worker index, which makes each bind its ports with SO_REUSEPORT, so the
kernel spreads connections over them) and points them all at one Prometheus multiprocess
directory, so any worker's ``/metrics`` shows the sum over workers. A worker that dies is
restarted and counted (``redact_proxy_worker_restarts_total``); one that cannot start at
all (port taken, bad policy) stops the whole group with its exit code, so a broken
deployment fails loudly instead of flapping. SIGTERM/SIGINT are passed on and the
supervisor waits for the workers to drain; SIGHUP is passed on (each worker reloads its
policy).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

log = logging.getLogger("redact_proxy")

WORKER_ENV = "REDACT_PROXY_WORKER"  # set in a worker's environment: its index
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
STARTUP_SECONDS = 10.0  # a worker exiting sooner than this after start failed to start
RESTART_BACKOFF = (0.1, 5.0)  # seconds: first delay, ceiling (doubles per quick death)


def supervise(workers: int, grace: float, argv: list[str] | None = None) -> int:
    """Run ``workers`` copies of this command as workers until SIGTERM; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    own_dir = MULTIPROC_ENV not in os.environ
    metrics_dir = os.environ.get(MULTIPROC_ENV) or tempfile.mkdtemp(prefix="redact-proxy-metrics-")
    env = {**os.environ, MULTIPROC_ENV: metrics_dir}
    os.environ[MULTIPROC_ENV] = metrics_dir  # the supervisor's own restart counter goes there too
    from redact_proxy.telemetry import worker_restarts  # after the env var: multiprocess values

    children: dict[int, tuple[subprocess.Popen, float, float]] = {}  # index -> (proc, started, backoff)
    stopping = False

    def start(index: int, backoff: float) -> None:
        proc = subprocess.Popen([sys.executable, "-m", "redact_proxy", *argv], env={**env, WORKER_ENV: str(index)})
        children[index] = (proc, time.monotonic(), backoff)

    def forward(signum, _frame) -> None:
        nonlocal stopping
        if signum in (signal.SIGTERM, signal.SIGINT):
            stopping = True
        for proc, _, _ in children.values():
            if proc.poll() is None:
                proc.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    for i in range(workers):
        start(i, RESTART_BACKOFF[0])
    log.info("supervising %d workers (metrics summed in %s)", workers, metrics_dir)
    code = 0
    kill_at = None  # once stopping: when the stragglers get SIGKILL
    try:
        while children:
            time.sleep(0.1)
            if stopping and kill_at is None:
                kill_at = time.monotonic() + grace + 5
            if kill_at is not None and time.monotonic() > kill_at:
                for proc, _, _ in children.values():
                    if proc.poll() is None:
                        log.warning("worker pid %d did not stop within the grace period; killing it", proc.pid)
                        proc.kill()
            for index, (proc, started, backoff) in list(children.items()):
                rc = proc.poll()
                if rc is None:
                    continue
                _mark_dead(proc.pid)
                del children[index]
                if stopping:
                    code = code or (rc if rc > 0 else 0)
                    continue
                quick = time.monotonic() - started < STARTUP_SECONDS
                if quick and rc in (1, 2):
                    log.error("worker %d could not start (exit %d); stopping all workers", index, rc)
                    code = rc
                    forward(signal.SIGTERM, None)
                    continue
                log.warning("worker %d exited (code %s); restarting it", index, rc)
                worker_restarts.inc()
                delay = min(backoff * 2, RESTART_BACKOFF[1]) if quick else RESTART_BACKOFF[0]
                time.sleep(delay)
                start(index, delay)
    finally:
        for proc, _, _ in children.values():
            if proc.poll() is None:
                proc.kill()
        if own_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return code


def _mark_dead(pid: int) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)
