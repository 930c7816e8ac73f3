"""OTLP receivers: each speaks its wire protocol and hands bodies to the Pipeline.

Strategy: what both receivers share lives here: the bearer check, the one path from a
request's headers to upstream's response (``receive``: admit, read, open, resize, export),
the mapping of what escapes it to an answerable error, the google.rpc.Status of error
answers and TLS. The two request endings that are the client's doing rather than
an error of ours (``ClientGone``: 499 / CANCELLED, ``ReadTimeout``: 408 /
DEADLINE_EXCEEDED) are in the error tree with the rest (errors.py); SPEC section 7 counts
``requests_total`` by the gRPC code name or HTTP status of that table.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import ssl
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from redact_proxy.codec import Envelope
from redact_proxy.errors import InternalError, Outcome, RequestError, StartupError, Unauthenticated
from redact_proxy.pipeline import Pipeline
from redact_proxy.settings import Settings
from redact_proxy.signals import Signal, Transport

log = logging.getLogger("redact_proxy")


async def receive(
    pipeline: Pipeline,
    signal: Signal,
    transport: Transport,
    envelope: Envelope,
    reserve: tuple[int, bool],
    read: Callable[[], Awaitable[bytes]],
    limit: int,
    thread: ThreadPoolExecutor,
) -> Message:
    """One export request from its checked headers to upstream's response: admitted for
    ``reserve`` (bytes, and whether that is the body's known size) before ``read`` buffers
    the body, opened by the codec (on ``thread`` when that is CPU work), the admission
    resized once to the decompressed size, then the pipeline."""
    nbytes, sized = reserve
    with pipeline.admission(nbytes, sized=sized) as slot:
        wire = await read()
        if envelope.costly(wire):
            body = await asyncio.get_running_loop().run_in_executor(thread, envelope.open, wire, limit)
        else:
            body = envelope.open(wire, limit)
        slot.resize(len(body))
        return await pipeline.export(signal, transport, body, envelope.fmt)


def answerable(exc: Exception, signal: Signal) -> RequestError:
    """What escaped ``receive``, as the error its answer is made of: a RequestError as it
    is, anything else (a bug) an InternalError, logged by class name only (exception texts
    of lower libraries may quote content). A bug must not leave the client hanging."""
    if isinstance(exc, RequestError):
        return exc
    log.error("unexpected error handling a %s export (%s)", signal.name, exc.__class__.__name__)
    return InternalError("internal error; the batch was not forwarded")


def check_token(expected: str | None, header: str | bytes | None) -> None:
    """Bearer auth, compared in constant time (no timing oracle on the token). Any bytes
    at all may arrive: aiohttp hands undecodable header bytes over as surrogate escapes,
    which must be a wrong token (401), not an encoding error (500)."""
    if expected is None:
        return
    if isinstance(header, str):
        header = header.encode("utf-8", "surrogateescape")
    presented = b""
    if header and header[:7].lower() == b"bearer ":
        presented = header[7:].strip()
    if not hmac.compare_digest(presented, expected.encode()):
        raise Unauthenticated("missing or wrong bearer token")


def status_message(exc: RequestError, outcome: Outcome) -> status_pb2.Status:
    """The google.rpc.Status OTLP asks for in error answers, with RetryInfo when the
    client should come back later (OTLP: "Throttling")."""
    status = status_pb2.Status(code=outcome.grpc_code.value[0], message=str(exc))
    if outcome.retryable and exc.retry_after is not None:
        info = error_details_pb2.RetryInfo()
        info.retry_delay.seconds = int(exc.retry_after)
        info.retry_delay.nanos = int((exc.retry_after % 1) * 1e9)
        status.details.add().Pack(info)
    return status


def server_ssl_context(s: Settings) -> ssl.SSLContext | None:
    """TLS (and mTLS) of both receivers. Called by each receiver before it listens, so an
    unusable file is one start-up error naming it (grpc's own is a misleading "Failed to
    bind" after C-core log lines)."""
    if not s.tls_cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(str(s.tls_cert), str(s.tls_key))
    except OSError as exc:  # ssl.SSLError included
        raise StartupError(
            f"--tls-cert {s.tls_cert} / --tls-key {s.tls_key}: not a usable PEM certificate "
            f"and matching key ({StartupError.ssl_reason(exc)})"
        ) from exc
    if s.tls_client_ca:
        try:
            ctx.load_verify_locations(cafile=str(s.tls_client_ca))
        except OSError as exc:
            raise StartupError(
                f"--tls-client-ca {s.tls_client_ca}: not a usable PEM CA bundle ({StartupError.ssl_reason(exc)})"
            ) from exc
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
