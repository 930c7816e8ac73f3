"""OTLP receivers: each speaks its wire protocol and hands bodies to the Pipeline.

Strategy: what both receivers share lives here: the bearer check, the google.rpc.Status
of error answers, TLS, and the two request endings that are the client's doing rather
than an error of ours, each with the answer it is counted as (SPEC section 7 counts
``requests_total`` by gRPC code name or HTTP status):

- ``ClientGone``: the client closed the connection or cancelled the call before its
  answer. Counted as gRPC CANCELLED / HTTP 499 (nginx's "client closed request"); 500 is
  reserved for redaction failures, and nothing can be answered anyway.
- ``ReadTimeout``: the body (HTTP) or request message (gRPC) did not arrive whole within
  --body-timeout. Answered HTTP 408 (then the connection is closed) / DEADLINE_EXCEEDED.
"""

from __future__ import annotations

import hmac
import ssl

# Not `import grpc`: the submodule receivers.grpc would shadow that name in this package.
from grpc import StatusCode
from google.rpc import error_details_pb2, status_pb2

from redact_proxy.errors import Outcome, RequestError, Unauthenticated
from redact_proxy.settings import Settings

CLIENT_CLOSED_REQUEST = 499  # nginx's status for "the client went away first"


class ClientGone(RequestError):
    """The client went away before its answer: a client cancel, not a failure of ours."""

    def outcome(self) -> Outcome:
        return Outcome(StatusCode.CANCELLED, CLIENT_CLOSED_REQUEST, retryable=False)


class ReadTimeout(RequestError):
    """The request body / message did not arrive whole within --body-timeout."""

    def outcome(self) -> Outcome:
        return Outcome(StatusCode.DEADLINE_EXCEEDED, 408, retryable=False)


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
        raise ValueError(f"--tls-cert {s.tls_cert} / --tls-key {s.tls_key}: not a usable PEM certificate "
                         f"and matching key ({_ssl_reason(exc)})") from exc
    if s.tls_client_ca:
        try:
            ctx.load_verify_locations(cafile=str(s.tls_client_ca))
        except OSError as exc:
            raise ValueError(f"--tls-client-ca {s.tls_client_ca}: not a usable PEM CA bundle ({_ssl_reason(exc)})") from exc
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _ssl_reason(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLError) and not exc.reason:
        return "no PEM data of that kind in it"  # OpenSSL's "PEM lib"
    return getattr(exc, "reason", None) or exc.strerror or exc.__class__.__name__
