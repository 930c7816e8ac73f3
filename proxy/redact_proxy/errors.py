"""Every error the proxy raises, and the one table that maps it to an OTLP answer.

Strategy: an exception names *what* went wrong; ``OUTCOMES`` decides what the client is
told (gRPC code, HTTP status, whether a retry can help), following the OTLP specification
(opentelemetry-proto, docs/specification.md, "Failures" for OTLP/gRPC and OTLP/HTTP).
The table is looked up along the class hierarchy (``RequestError.outcome``), so a new
subclass answers as its parent does, never as a generic 500. Messages are written by this
package and never quote telemetry content: an exception message may reach a log line or a
client, so it carries codes, sizes and names of *our* options only.

Lower-library exceptions are mapped at the boundary that catches them
(``raise X(...) from exc``); nothing else in the package inspects grpc or aiohttp errors.

The tree (HTTP status / gRPC code of a request's answer)::

    ProxyError
    ├── ConfigError               invalid options or policy: exit 2
    │   └── PolicyError             FILE:LINE:COL: yaml.path: message, one per problem
    ├── StartupError              could not start (TLS file, taken port, locked queue dir): exit 1
    │   └── QueueInUse              --queue-dir locked by another process (forward/segments.py)
    └── RequestError              one request's answer: OUTCOMES, along the hierarchy
        ├── MalformedRequest        400  INVALID_ARGUMENT
        ├── RequestTooLarge         413  RESOURCE_EXHAUSTED
        ├── UnsupportedMediaType    415  UNIMPLEMENTED
        ├── Unauthenticated         401  UNAUTHENTICATED
        ├── ReadTimeout             408  DEADLINE_EXCEEDED
        ├── ClientGone              499  CANCELLED          (nobody hears it: counted only)
        ├── Overloaded              503  UNAVAILABLE        retry
        │   └── QueueFull           503  UNAVAILABLE        retry
        ├── RedactionFailed         500  INTERNAL
        ├── InternalError           500  INTERNAL           (a bug: the receivers' catch-all)
        └── UpstreamError           502  UNAVAILABLE        retry
            ├── UpstreamUnavailable 503  UNAVAILABLE        retry
            ├── UpstreamThrottled   429  RESOURCE_EXHAUSTED retry
            └── UpstreamRejected    upstream's verdict, passed on (not retried)
"""

from __future__ import annotations

import math
import ssl
from dataclasses import dataclass

import grpc

# Retry hints (seconds) the proxy gives: upstream's own, clamped into [MIN, MAX], or
# DEFAULT when it gave none (or garbage). MAX: an upstream (or anything posing as one)
# must not park every client for a day with `Retry-After: 9223372036854775807` or a date
# in 2999; five minutes is past any real collector restart. MIN: a hint of 0 turns a
# throttle into a retry storm, and Retry-After is whole seconds anyway.
RETRY_AFTER_DEFAULT = 1.0
RETRY_AFTER_MIN = 1.0
RETRY_AFTER_MAX = 300.0
# HTTP statuses that always carry Retry-After (SPEC 5: "503 with Retry-After", "429
# with Retry-After"); OTLP/HTTP retries both, with or without one.
HINTED_HTTP_STATUSES = frozenset({429, 503})


def retry_hint(seconds: float | None) -> float:
    """A delay hint fit to pass on: finite, within [RETRY_AFTER_MIN, RETRY_AFTER_MAX]."""
    if seconds is None or math.isnan(seconds):
        return RETRY_AFTER_DEFAULT
    return min(RETRY_AFTER_MAX, max(RETRY_AFTER_MIN, seconds))


@dataclass(frozen=True)
class Outcome:
    grpc_code: grpc.StatusCode
    http_status: int
    retryable: bool  # True: answer carries a Retry-After / RetryInfo hint


class ProxyError(Exception):
    """Base of everything this package raises on purpose."""


# --- configuration (policy file, options): the process refuses to start -------------


class ConfigError(ProxyError):
    """An option or a policy file is invalid; ``errors`` holds one line per problem."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


class PolicyError(ConfigError):
    """The policy file is invalid. Each line reads ``FILE:LINE:COL: yaml.path: message``."""


# --- start-up (TLS files, ports, queue directory): the process cannot run ------------


class StartupError(ProxyError):
    """Something the service needs at start-up is unusable: a TLS file, a port, the queue
    directory. The message names it (our option and the path or address), and is the
    one line the service logs before it exits 1."""

    @classmethod
    def from_os(cls, exc: OSError, where: str | None = None) -> "StartupError":
        """From the OSError of a bind, an open or a mkdir: its words, and where."""
        if exc.errno is not None:
            place = where or exc.filename
            reason = f"{exc.strerror}: {place}" if place else str(exc.strerror)
            return cls(f"{reason} ({exc.__class__.__name__})")
        return cls(f"{where}: {exc}" if where else str(exc) or exc.__class__.__name__)

    @staticmethod
    def ssl_reason(exc: OSError) -> str:
        """Why OpenSSL would not load a PEM file, in its words (no file content)."""
        if isinstance(exc, ssl.SSLError) and not exc.reason:
            return "no PEM data of that kind in it"  # OpenSSL's "PEM lib"
        return getattr(exc, "reason", None) or exc.strerror or exc.__class__.__name__


# --- per request: the client gets the answer OUTCOMES holds for the error's class ----


CLIENT_CLOSED_REQUEST = 499  # nginx's status for "the client went away first"


class RequestError(ProxyError):
    """Base of errors answered to one request. ``retry_after`` is in seconds."""

    retry_after: float | None = None

    def outcome(self) -> Outcome:
        """The row of the nearest class in OUTCOMES, along the class hierarchy."""
        for cls in type(self).__mro__:
            row = OUTCOMES.get(cls)
            if row is not None:
                return row
        raise AssertionError("RequestError has a row")  # the root's row, below


class MalformedRequest(RequestError):
    """Body is not valid OTLP protobuf / OTLP-JSON, or its compression is corrupt."""


class RequestTooLarge(RequestError):
    """Body exceeds --max-request-bytes once decompressed."""


class UnsupportedMediaType(RequestError):
    """Content-Type or Content-Encoding the proxy does not speak (HTTP only)."""


class Unauthenticated(RequestError):
    """Missing or wrong bearer token."""


class ReadTimeout(RequestError):
    """The request body (HTTP) or message (gRPC) did not arrive whole within
    --body-timeout. HTTP closes the connection after the 408."""


class ClientGone(RequestError):
    """The client closed the connection or cancelled the call before its answer: a client
    cancel, not a failure of ours. Counted as CANCELLED / 499 (nginx's "client closed
    request"); nothing can be answered anyway."""


class Overloaded(RequestError):
    """--max-inflight reached: shed load instead of queueing without bound."""

    def __init__(self, message: str, retry_after: float = RETRY_AFTER_DEFAULT):
        super().__init__(message)
        self.retry_after = retry_hint(retry_after)


class QueueFull(Overloaded):
    """--queue-dir: the batches not yet delivered already total --queue-max-bytes. Shed
    load until the sender has drained some; the client's retry brings the batch back."""


class RedactionFailed(RequestError):
    """Scrubbing raised. Fail closed: the batch is refused, never forwarded as it was."""


class InternalError(RequestError):
    """A bug: an exception no stage maps. The receivers answer it rather than leave the
    client hanging; the batch was not forwarded."""


class UpstreamError(RequestError):
    """Upstream did not accept the batch. Subclasses decide what the client is told."""


class UpstreamUnavailable(UpstreamError):
    """Connection refused/reset, deadline passed, or upstream answered with a retryable
    code (OTLP: UNAVAILABLE and friends, HTTP 502/503/504). The client should retry."""

    def __init__(self, message: str, retry_after: float | None = None, code: str = "unavailable"):
        super().__init__(message)
        self.retry_after = retry_hint(retry_after)
        self.code = code  # label for redact_proxy_upstream_errors_total


class UpstreamThrottled(UpstreamError):
    """Upstream answered RESOURCE_EXHAUSTED / 429: passed on, with its delay hint."""

    def __init__(self, message: str, retry_after: float | None = None, code: str = "throttled"):
        super().__init__(message)
        self.retry_after = retry_hint(retry_after)
        self.code = code


class UpstreamRejected(UpstreamError):
    """Upstream refused the data as invalid. Passed on as such and not retried: the same
    bytes would be refused again.

    One case is both: a gRPC RESOURCE_EXHAUSTED without RetryInfo stays so for a gRPC
    client (OTLP/gRPC: not retryable), but an HTTP client hears 429, which OTLP/HTTP
    always retries; ``retry_after`` is then the default hint its Retry-After carries
    (see ``retry_after_header``)."""

    def __init__(self, message: str, grpc_code: grpc.StatusCode, http_status: int, code: str):
        super().__init__(message)
        self._outcome = Outcome(grpc_code, http_status, retryable=False)
        self.code = code
        if http_status in HINTED_HTTP_STATUSES:
            self.retry_after = RETRY_AFTER_DEFAULT

    def outcome(self) -> Outcome:
        return self._outcome


def retry_after_header(exc: RequestError, outcome: Outcome) -> str | None:
    """The Retry-After value of an HTTP error answer (whole seconds), or None for none.
    Every retryable answer and every 429/503 carries one, whatever raised it."""
    if not (outcome.retryable or outcome.http_status in HINTED_HTTP_STATUSES):
        return None
    return str(math.ceil(retry_hint(exc.retry_after)))


# The one table, read along the class hierarchy (a subclass without a row answers as its
# parent). Rows follow SPEC section 5; the OTLP spec fixes the retryable set: gRPC
# UNAVAILABLE/RESOURCE_EXHAUSTED(with RetryInfo) and HTTP 429/502/503/504 retry,
# INVALID_ARGUMENT/400 never does. UpstreamRejected answers upstream's own verdict.
OUTCOMES: dict[type[RequestError], Outcome] = {
    RequestError: Outcome(grpc.StatusCode.INTERNAL, 500, retryable=False),
    MalformedRequest: Outcome(grpc.StatusCode.INVALID_ARGUMENT, 400, retryable=False),
    RequestTooLarge: Outcome(grpc.StatusCode.RESOURCE_EXHAUSTED, 413, retryable=False),
    UnsupportedMediaType: Outcome(grpc.StatusCode.UNIMPLEMENTED, 415, retryable=False),
    Unauthenticated: Outcome(grpc.StatusCode.UNAUTHENTICATED, 401, retryable=False),
    ReadTimeout: Outcome(grpc.StatusCode.DEADLINE_EXCEEDED, 408, retryable=False),
    ClientGone: Outcome(grpc.StatusCode.CANCELLED, CLIENT_CLOSED_REQUEST, retryable=False),
    Overloaded: Outcome(grpc.StatusCode.UNAVAILABLE, 503, retryable=True),
    RedactionFailed: Outcome(grpc.StatusCode.INTERNAL, 500, retryable=False),
    InternalError: Outcome(grpc.StatusCode.INTERNAL, 500, retryable=False),
    UpstreamError: Outcome(grpc.StatusCode.UNAVAILABLE, 502, retryable=True),
    UpstreamUnavailable: Outcome(grpc.StatusCode.UNAVAILABLE, 503, retryable=True),
    UpstreamThrottled: Outcome(grpc.StatusCode.RESOURCE_EXHAUSTED, 429, retryable=True),
}

# Upstream gRPC codes the OTLP spec lists as retryable. RESOURCE_EXHAUSTED is handled
# apart: it is a throttle, passed on as one.
RETRYABLE_GRPC_CODES = frozenset(
    {
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
# HTTP statuses the OTLP/HTTP spec lists as retryable (429 handled apart as a throttle).
RETRYABLE_HTTP_STATUSES = frozenset({502, 503, 504})

# gRPC <-> HTTP for upstream rejections, so an HTTP client behind a gRPC upstream (and
# the reverse) hears the same verdict.
GRPC_TO_HTTP = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.UNIMPLEMENTED: 404,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNKNOWN: 500,
}
HTTP_TO_GRPC = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.UNIMPLEMENTED,
    405: grpc.StatusCode.UNIMPLEMENTED,
    413: grpc.StatusCode.INVALID_ARGUMENT,
    415: grpc.StatusCode.INVALID_ARGUMENT,
}


# --- the process: what `redact-proxy` exits with (cli.py, service.py) ------------------

EXIT_OK = 0
EXIT_RUNTIME = 1  # could not start or run: port taken, unreadable TLS file, bad input file, ...
EXIT_CONFIG = 2  # invalid options or policy (ConfigError)
EXIT_FINDINGS = 3  # audit --fail-on: a finding of a named kind survived the policy
