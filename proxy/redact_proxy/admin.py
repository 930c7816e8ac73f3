"""Admin HTTP endpoints: ``/healthz`` (process alive), ``/readyz`` (serving and not
draining: Kubernetes routes traffic only while it is 200), ``/metrics`` (Prometheus) and,
with --audit, ``/audit`` (the shadow audit's per-field table as JSON: counts and keyed
hashes, never a value; keys that look personal hashed; this process's own counts).

Strategy: answers are fixed text or the metrics exposition; like the OTLP/HTTP port, the
port runs on ``FixedErrorRunner``, so not even aiohttp's answer to an unparseable request
quotes the request back.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from aiohttp import web

from redact_proxy.receivers.http import ConnectionGuard, FixedErrorRunner, start_site
from redact_proxy.settings import Listen
from redact_proxy.telemetry import Telemetry

if TYPE_CHECKING:  # imported by the service only with --audit
    from redact_proxy.audit import Auditor


ADMIN_MAX_CONNECTIONS = 64


class Admin:
    def __init__(self, telemetry: Telemetry):
        self.telemetry = telemetry
        self.ready = False  # set by the service once receivers listen, cleared on drain
        self.runner: web.AppRunner | None = None
        self.auditor: Auditor | None = None  # with --audit

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/audit", self.audit)
        return app

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(self, request: web.Request) -> web.Response:
        if self.ready:
            return web.Response(text="ready\n")
        return web.Response(status=503, text="not ready\n")

    async def metrics(self, request: web.Request) -> web.Response:
        body, content_type = self.telemetry.exposition()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def audit(self, request: web.Request) -> web.Response:
        if self.auditor is None:
            return web.Response(status=404, text="audit is off (serve --audit)\n")
        body = json.dumps(self.auditor.snapshot(), separators=(",", ":"))
        return web.Response(text=body, content_type="application/json")

    async def start(self, listen: Listen, header_timeout: float | None = None, reuse_port: bool = False) -> None:
        # Scrapers and probes hold a few connections: a small cap and the OTLP port's
        # header timeout keep a slowloris on this port from starving /healthz.
        self.runner = FixedErrorRunner(
            self.app(),
            connections=ConnectionGuard(ADMIN_MAX_CONNECTIONS),
            header_timeout=header_timeout,
            access_log=None,
            handle_signals=False,
        )
        await self.runner.setup()
        await start_site(web.TCPSite(self.runner, listen.host, listen.port, reuse_port=reuse_port))

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
