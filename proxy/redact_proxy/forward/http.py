"""Forward to an OTLP/HTTP upstream (``http://``, ``https://``): POST to /v1/<signal>.

One aiohttp session (keep-alive pool) for the life of the process. The body keeps the
client's encoding — OTLP-JSON in stays OTLP-JSON out — and is gzipped when
OTEL_EXPORTER_OTLP_COMPRESSION=gzip. Statuses map per the OTLP/HTTP spec: 429 is a
throttle, 502/503/504 are retryable, other failures are upstream's verdict passed on.

Strategy for upstream's answer: it is not trusted. An ExportResponse is a few bytes (a
partial_success with a short message), so at most MAX_RESPONSE_BYTES of it is read, and
the same bound applies once it is inflated: aiohttp's own response decompression is off
(it inflates without a bound) and the codec's capped one (``codec.read_response``) is
used instead. A success whose
answer is over the bound is no usable answer, like one that never came: UNAVAILABLE /
503 with a retry hint, counted as ``response_too_large`` (SPEC 5, "upstream ... timing
out"). An error answer's body is never used: its status and Retry-After decide.
Retry-After is read as delta-seconds or an HTTP-date; garbage gives the default hint and
every hint is clamped (errors.retry_hint).
"""

from __future__ import annotations

import email.utils
import math
import ssl
import time

import aiohttp
import grpc
from google.protobuf.message import Message

from redact_proxy import codec
from redact_proxy.codec import Batch, Format
from redact_proxy.errors import (
    HTTP_TO_GRPC,
    RETRYABLE_HTTP_STATUSES,
    RequestTooLarge,
    StartupError,
    UpstreamRejected,
    UpstreamThrottled,
    UpstreamUnavailable,
)
from redact_proxy.settings import Settings

# Bytes of upstream's answer read (and, compressed, inflated to) at most. The collector's
# own OTLP/HTTP exporter reads 64 KiB of an answer (exporter/otlphttpexporter).
MAX_RESPONSE_BYTES = 64 * 1024


class HttpForwarder:
    def __init__(self, settings: Settings):
        up = settings.upstream
        self.base = up.target
        self.timeout = aiohttp.ClientTimeout(total=settings.upstream_timeout)
        # An answer needs no compression; asked for none, a compressed one is still
        # inflated (with the bound) rather than refused.
        self.headers = {**dict(up.headers), "Accept-Encoding": "identity"}
        self.gzip = up.compression == "gzip"
        self.settings = settings
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        # Loaded here, not in __init__: start-up failures are reported as one clear line.
        tls = upstream_ssl_context(self.settings) if self.settings.upstream.tls else True
        connector = aiohttp.TCPConnector(limit=256, ssl=tls, enable_cleanup_closed=True)
        self.session = aiohttp.ClientSession(
            connector=connector, timeout=self.timeout, auto_decompress=False, read_bufsize=MAX_RESPONSE_BYTES
        )

    def wire_format(self, fmt: Format) -> Format:
        return fmt  # the client's: OTLP-JSON in stays OTLP-JSON out (SPEC section 4)

    async def forward(self, batch: Batch) -> Message:
        fmt = batch.fmt
        body = batch.encoded(fmt)
        headers = {**self.headers, "Content-Type": fmt.content_type}
        if self.gzip:
            body = codec.gzip(body)
            headers["Content-Encoding"] = "gzip"
        url = self.base + batch.signal.http_path
        session = self.session
        assert session is not None, "forward() before start()"
        try:
            async with session.post(url, data=body, headers=headers) as resp:
                status = resp.status
                payload = await _read_capped(resp, MAX_RESPONSE_BYTES)
                retry_after = _retry_after(resp.headers.get("Retry-After"))
                content_type = resp.headers.get("Content-Type")
                encoding = resp.headers.get("Content-Encoding")
        except TimeoutError as exc:
            raise UpstreamUnavailable("upstream did not answer within --upstream-timeout", code="timeout") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"upstream unreachable ({exc.__class__.__name__})", code="connect") from exc
        if 200 <= status < 300:
            if payload is not None:  # None: over the bound as sent
                try:
                    return codec.read_response(batch.signal, payload, content_type, encoding, MAX_RESPONSE_BYTES)
                except RequestTooLarge:
                    pass  # over the bound once inflated
            raise UpstreamUnavailable(
                f"upstream answered HTTP {status} with more than {MAX_RESPONSE_BYTES} bytes", code="response_too_large"
            )
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
    An unusable file is a StartupError naming it."""
    try:
        ctx = ssl.create_default_context(cafile=str(s.upstream_ca) if s.upstream_ca else None)
    except OSError as exc:  # ssl.SSLError included
        raise StartupError(
            f"--upstream-ca {s.upstream_ca}: not a usable PEM CA bundle ({StartupError.ssl_reason(exc)})"
        ) from exc
    if s.upstream_cert:
        try:
            ctx.load_cert_chain(str(s.upstream_cert), str(s.upstream_key))
        except OSError as exc:
            raise StartupError(
                f"--upstream-cert {s.upstream_cert} / --upstream-key {s.upstream_key}: not a usable "
                f"PEM certificate and matching key ({StartupError.ssl_reason(exc)})"
            ) from exc
    return ctx


async def _read_capped(resp: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The body, or None once it is over ``limit`` bytes (then the connection is closed,
    not drained: the rest is never read)."""
    if resp.content_length is not None and resp.content_length > limit:
        resp.close()
        return None
    data = bytearray()
    while chunk := await resp.content.read(limit + 1 - len(data)):
        data += chunk
        if len(data) > limit:
            resp.close()
            return None
    return bytes(data)


_MAX_DELTA_DIGITS = 9  # ~31 years: longer is past any hint, and float() of 5000 digits raises


def _retry_after(value: str | None) -> float | None:
    """Retry-After as delta-seconds or an HTTP-date (RFC 9110 10.2.3), in seconds from now;
    None when absent or unreadable, for the default hint. Not clamped here: the error
    classes clamp every hint (errors.retry_hint)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value) if len(value) <= _MAX_DELTA_DIGITS else math.inf
    try:
        when = email.utils.parsedate_to_datetime(value)
        return when.timestamp() - time.time()
    except (TypeError, ValueError, OverflowError, OSError, IndexError):
        return None
