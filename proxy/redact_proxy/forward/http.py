"""Forward to an OTLP/HTTP upstream (``http://``, ``https://``): POST to /v1/<signal>.

One aiohttp session (keep-alive pool) for the life of the process. The body keeps the
client's encoding — OTLP-JSON in stays OTLP-JSON out — and is gzipped when
OTEL_EXPORTER_OTLP_COMPRESSION=gzip. Statuses map per the OTLP/HTTP spec: 429 is a
throttle, 502/503/504 are retryable, other failures are upstream's verdict passed on.
"""

from __future__ import annotations

import asyncio
import email.utils
import ssl
import time

import aiohttp
import grpc
from google.protobuf.message import Message

from redact_proxy import codec
from redact_proxy.codec import Batch
from redact_proxy.errors import (
    HTTP_TO_GRPC, RETRYABLE_HTTP_STATUSES, MalformedRequest, UpstreamRejected,
    UpstreamThrottled, UpstreamUnavailable,
)
from redact_proxy.settings import Settings


class HttpForwarder:
    def __init__(self, settings: Settings):
        up = settings.upstream
        self.base = up.target
        self.timeout = aiohttp.ClientTimeout(total=settings.upstream_timeout)
        self.headers = dict(up.headers)
        self.gzip = up.compression == "gzip"
        self.settings = settings
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        # Loaded here, not in __init__: start-up failures are reported as one clear line.
        tls = upstream_ssl_context(self.settings) if self.settings.upstream.tls else True
        connector = aiohttp.TCPConnector(limit=256, ssl=tls, enable_cleanup_closed=True)
        self.session = aiohttp.ClientSession(connector=connector, timeout=self.timeout, auto_decompress=True)

    async def forward(self, batch: Batch) -> Message:
        fmt = batch.fmt
        body = batch.to_bytes(fmt)
        headers = {**self.headers, "Content-Type": fmt.content_type}
        if self.gzip:
            body = codec.gzip(body)
            headers["Content-Encoding"] = "gzip"
        url = self.base + batch.signal.http_path
        try:
            async with self.session.post(url, data=body, headers=headers) as resp:
                payload = await resp.read()
                status = resp.status
                retry_after = _retry_after(resp.headers.get("Retry-After"))
                content_type = resp.headers.get("Content-Type")
        except asyncio.TimeoutError as exc:
            raise UpstreamUnavailable("upstream did not answer within --upstream-timeout", code="timeout") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"upstream unreachable ({exc.__class__.__name__})", code="connect") from exc
        if 200 <= status < 300:
            return _response(batch, payload, content_type)
        message = f"upstream answered HTTP {status}"
        if status == 429:
            raise UpstreamThrottled(message, retry_after, code="429")
        if status in RETRYABLE_HTTP_STATUSES:
            raise UpstreamUnavailable(message, retry_after, code=str(status))
        raise UpstreamRejected(message, HTTP_TO_GRPC.get(status, grpc.StatusCode.INTERNAL), status, str(status))

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()


def upstream_ssl_context(s: Settings) -> ssl.SSLContext:
    """TLS towards upstream (https://, and checked for grpcs:// too): the system's trust
    store, or --upstream-ca; a client certificate with --upstream-cert/--upstream-key.
    An unusable file is a ValueError naming it."""
    try:
        ctx = ssl.create_default_context(cafile=str(s.upstream_ca) if s.upstream_ca else None)
    except OSError as exc:  # ssl.SSLError included
        raise ValueError(f"--upstream-ca {s.upstream_ca}: not a usable PEM CA bundle ({_ssl_reason(exc)})") from exc
    if s.upstream_cert:
        try:
            ctx.load_cert_chain(str(s.upstream_cert), str(s.upstream_key))
        except OSError as exc:
            raise ValueError(f"--upstream-cert {s.upstream_cert} / --upstream-key {s.upstream_key}: not a usable "
                             f"PEM certificate and matching key ({_ssl_reason(exc)})") from exc
    return ctx


def _ssl_reason(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLError) and not exc.reason:
        return "no PEM data of that kind in it"  # OpenSSL's "PEM lib"
    return getattr(exc, "reason", None) or exc.strerror or exc.__class__.__name__


def _response(batch: Batch, payload: bytes, content_type: str | None) -> Message:
    if not payload:
        return batch.signal.response()
    try:
        fmt = codec.format_for(content_type)
        return codec.decode_response(batch.signal, payload, fmt)
    except (MalformedRequest, ValueError, TypeError):
        # Accepted (2xx), but the answer is unreadable: no partial success to pass on.
        return batch.signal.response()


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
