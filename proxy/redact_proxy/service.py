"""Wiring and lifecycle: load, start in order, serve, reload (SIGHUP or the policy file
changed), drain on SIGTERM.

Strategy: start from the inside out — policy, forwarder, admin, then receivers — so
nothing is accepted before it can be redacted and forwarded; mark ready last. Stop from
the outside in: unready first (so load balancers stop routing), stop accepting, let
in-flight requests finish within --shutdown-grace, then close the forwarder.
A start-up failure (StartupError: a TLS file, a taken port, a locked queue directory) is
one clear log line and exit 1; every stage maps its own lower-library errors to it.

A reload reads, checks and compiles the policy on a thread of its own (a policy near the
size bound takes seconds of YAML parsing; on the loop that stalled every request and
/healthz) and swaps it in on the loop, between requests. One reload runs at a time;
signals and file changes arriving meanwhile coalesce into one more run after it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import resource
import signal
import time
from typing import TYPE_CHECKING

from redact_proxy import __version__
from redact_proxy.admin import Admin
from redact_proxy.engine import Engine
from redact_proxy.errors import EXIT_CONFIG, EXIT_OK, EXIT_RUNTIME, ConfigError, StartupError
from redact_proxy.forward import build as build_forwarder
from redact_proxy.logconfig import configure_logging
from redact_proxy.pipeline import Pipeline
from redact_proxy.policy import load as load_policy
from redact_proxy.receivers.grpc import GrpcReceiver
from redact_proxy.receivers.http import HttpReceiver
from redact_proxy.settings import Settings
from redact_proxy.telemetry import Telemetry

if TYPE_CHECKING:  # imported at start-up only with --audit
    from redact_proxy.audit import Auditor
    from redact_proxy.forward.base import Forwarder

log = logging.getLogger("redact_proxy")

POLICY_POLL_SECONDS = 1.0  # how often the policy file is checked for changes


class Service:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.telemetry = Telemetry()
        self.admin = Admin(self.telemetry)
        self.stopping = asyncio.Event()
        # Made by _start(); run() reloads and drains only after it succeeded.
        self.pipeline: Pipeline | None = None
        self.receivers: list = []
        self.forwarder: Forwarder | None = None
        self._reload_thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="policy-reload")
        self._reloading: asyncio.Task | None = None
        self._reload_again = False

    async def run(self) -> int:
        s = self.settings
        try:
            policy = load_policy(s.policy)
        except ConfigError as exc:
            for line in exc.errors:
                log.error("policy: %s", line)
            return EXIT_CONFIG
        raise_fd_limit(s)
        try:
            await self._start(policy)
        except StartupError as exc:
            log.error("cannot start: %s", exc)
            await self._close()
            return EXIT_RUNTIME
        self._install_signals()
        watcher = asyncio.create_task(self._watch_policy())
        self.admin.ready = True
        log.info(
            "redact-proxy %s serving: grpc=%s http=%s admin=%s upstream=%s policy=%s (%s, sha256 %s)",
            __version__,
            s.grpc_listen or "off",
            s.http_listen or "off",
            s.admin_listen or "off",
            s.upstream.describe(),
            s.policy,
            policy.summary(),
            policy.sha256[:12],
        )
        await self.stopping.wait()
        watcher.cancel()
        if self._reloading is not None:
            self._reloading.cancel()
        await self._drain()
        return EXIT_OK

    async def _start(self, policy) -> None:
        """Inside out: forwarder, pipeline, admin, receivers. StartupError names what
        could not start; the parts started before it are closed by the caller."""
        s = self.settings
        forwarder = self.forwarder = build_forwarder(s, self.telemetry)
        await forwarder.start()
        auditor: Auditor | None = None
        if s.audit:
            from redact_proxy.audit import Auditor

            auditor = self.admin.auditor = Auditor(policy, self.telemetry.audit_found)
        pipeline = self.pipeline = Pipeline(
            policy, forwarder, self.telemetry, s.max_inflight, s.max_inflight_bytes, auditor, s.scrub_threads
        )
        if s.admin_listen:
            await self.admin.start(s.admin_listen, s.header_timeout, s.reuse_port)
        if s.grpc_listen:
            self.receivers.append(GrpcReceiver(s, pipeline))
        if s.http_listen:
            self.receivers.append(HttpReceiver(s, pipeline))
        for receiver in self.receivers:
            await receiver.start()

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload)

    def reload(self) -> None:
        """Reload the policy file in the background (SIGHUP, the file changed). While one
        reload runs, further calls ask for one more run after it, not one each."""
        if self._reloading is not None and not self._reloading.done():
            self._reload_again = True
            return
        self._reloading = asyncio.get_running_loop().create_task(self._reload())

    async def _reload(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._reload_again = False
            log.info("reloading policy %s", self.settings.policy)
            try:
                policy = await loop.run_in_executor(self._reload_thread, load_policy, self.settings.policy)
                # Off the loop too: compiling the engine (tables, maskers) takes tens of ms.
                engine = await loop.run_in_executor(self._reload_thread, Engine, policy)
            except ConfigError as exc:
                for line in exc.errors:
                    log.error("policy reload refused, old policy kept: %s", line)
                self.telemetry.policy_reloads.labels("failure").inc()
            except Exception as exc:  # e.g. RecursionError on absurd nesting: still keep the old one
                log.error("policy reload failed, old policy kept (%s)", exc.__class__.__name__)
                self.telemetry.policy_reloads.labels("failure").inc()
            else:
                assert self.pipeline is not None, "reloads start once the service is serving"
                self.pipeline.set_policy(policy, engine)
                self.telemetry.policy_reloads.labels("success").inc()
                log.info("policy reloaded: %s (sha256 %s)", policy.summary(), policy.sha256[:12])
            if not self._reload_again:
                return

    async def _watch_policy(self) -> None:
        """Reload when the policy file changes. Polling a stat (which follows symlinks,
        so a Kubernetes ConfigMap's atomic symlink swap counts) needs no extra dependency
        and costs one syscall a second."""
        path = self.settings.policy
        last = _file_identity(path)
        while True:
            await asyncio.sleep(POLICY_POLL_SECONDS)
            current = _file_identity(path)
            if current != last and current is not None:
                last = current
                log.info("policy file changed, reloading")
                self.reload()

    async def _drain(self) -> None:
        grace = self.settings.shutdown_grace
        pipeline = self.pipeline
        assert pipeline is not None, "drained only after a successful start"
        self.admin.ready = False
        log.info("draining: %d request(s) in flight, up to %.1fs", pipeline.inflight, grace)
        cut_before = pipeline.cancelled
        await asyncio.gather(*(r.stop(grace) for r in self.receivers), return_exceptions=True)
        deadline = time.monotonic() + grace
        while pipeline.inflight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        cut = pipeline.cancelled - cut_before + pipeline.inflight
        if cut:
            log.warning("shutdown: %d request(s) cut at the end of the grace period", cut)
        await self._close()
        log.info("stopped")

    async def _close(self) -> None:
        self._reload_thread.shutdown(wait=False, cancel_futures=True)
        if self.pipeline is not None:
            self.pipeline.close()
        if self.forwarder is not None:
            await self.forwarder.close()
        await self.admin.stop()


FD_RESERVE = 256  # descriptors beyond the receivers' connections: upstream, admin, files, grpc's own


def raise_fd_limit(s: Settings) -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (no privilege needed): a container's
    soft limit is often 1024, which a connection flood fills before --max-connections
    does, and then /healthz and the upstream cannot get a socket either. Warns when even
    the hard limit is short of what the connection caps allow. Returns the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass  # kept as it was: the warning below says what that means
    receivers = (s.grpc_listen is not None) + (s.http_listen is not None)
    needed = receivers * s.max_connections + FD_RESERVE
    if soft < needed:
        log.warning(
            "open-file limit %d is below %d (--max-connections %d per receiver + %d): a connection "
            "flood can exhaust it; raise the container's nofile limit or lower --max-connections",
            soft,
            needed,
            s.max_connections,
            FD_RESERVE,
        )
    return soft


def _file_identity(path) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None  # mid-replace or removed: keep the policy in force, look again later
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def serve(settings: Settings) -> int:
    configure_logging(settings.log_format, settings.log_level)
    if not settings.worker_index:  # a process on its own, or worker 0 of a group: once
        for name in settings.unknown_env:
            log.warning("environment variable %s is no redact-proxy option (a typo?); ignored", name)
    if settings.event_loop == "asyncio":
        return asyncio.run(Service(settings).run())
    import uvloop

    return uvloop.run(Service(settings).run())
