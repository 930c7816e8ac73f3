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
    os.environ[MULTIPROC_ENV] = metrics_dir  # the supervisor's own restart counter goes there too
    group = _Group(argv, {**os.environ, MULTIPROC_ENV: metrics_dir})
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, group.forward)
    for i in range(workers):
        group.start(i, RESTART_BACKOFF[0])
    log.info("supervising %d workers (metrics summed in %s)", workers, metrics_dir)
    kill_at = None  # once stopping: when the stragglers get SIGKILL
    try:
        while group.children:
            time.sleep(0.1)
            if group.stopping and kill_at is None:
                kill_at = time.monotonic() + grace + 5
            if kill_at is not None and time.monotonic() > kill_at:
                group.kill("worker pid %d did not stop within the grace period; killing it")
            group.reap()
    finally:
        group.kill(None)
        if own_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return group.code


class _Group:
    """The worker processes, by index: started, signalled, reaped and restarted."""

    def __init__(self, argv: list[str], env: dict[str, str]):
        from redact_proxy.telemetry import worker_restarts  # after the env var: multiprocess values

        self.argv, self.env = argv, env
        self.restarts = worker_restarts
        self.children: dict[int, tuple[subprocess.Popen, float, float]] = {}  # index -> (proc, started, backoff)
        self.stopping = False
        self.code = 0

    def start(self, index: int, backoff: float) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-m", "redact_proxy", *self.argv], env={**self.env, WORKER_ENV: str(index)}
        )
        self.children[index] = (proc, time.monotonic(), backoff)

    def forward(self, signum, _frame) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            self.stopping = True
        for proc, _, _ in self.children.values():
            if proc.poll() is None:
                proc.send_signal(signum)

    def kill(self, warning: str | None) -> None:
        for proc, _, _ in self.children.values():
            if proc.poll() is None:
                if warning:
                    log.warning(warning, proc.pid)
                proc.kill()

    def reap(self) -> None:
        """Collect the workers that exited: restart them (with a backoff when they die
        young), or stop the group when one could not start at all."""
        for index, (proc, started, backoff) in list(self.children.items()):
            rc = proc.poll()
            if rc is None:
                continue
            _mark_dead(proc.pid)
            del self.children[index]
            if self.stopping:
                self.code = self.code or (rc if rc > 0 else 0)
                continue
            quick = time.monotonic() - started < STARTUP_SECONDS
            if quick and rc in (1, 2):
                log.error("worker %d could not start (exit %d); stopping all workers", index, rc)
                self.code = rc
                self.forward(signal.SIGTERM, None)
                continue
            log.warning("worker %d exited (code %s); restarting it", index, rc)
            self.restarts.inc()
            delay = min(backoff * 2, RESTART_BACKOFF[1]) if quick else RESTART_BACKOFF[0]
            time.sleep(delay)
            self.start(index, delay)


def _mark_dead(pid: int) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)
