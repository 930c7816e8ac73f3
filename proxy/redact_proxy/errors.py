"""Every error the proxy raises, and the one table that maps it to an OTLP answer.

Strategy: an exception names *what* went wrong; ``OUTCOMES`` decides what the client is
told (gRPC code, HTTP status, whether a retry can help), following the OTLP specification
(opentelemetry-proto, docs/specification.md, "Failures" for OTLP/gRPC and OTLP/HTTP).
Messages are written by this package and never quote telemetry content: an exception
message may reach a log line or a client, so it carries codes, sizes and names of *our*
options only.

Lower-library exceptions are mapped at the boundary that catches them
(``raise X(...) from exc``); nothing else in the package inspects grpc or aiohttp errors.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc


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


# --- per request: the client gets the answer of OUTCOMES[type(exc)] -----------------


class RequestError(ProxyError):
    """Base of errors answered to one request. ``retry_after`` is in seconds."""

    retry_after: float | None = None

    def outcome(self) -> Outcome:
        return OUTCOMES[type(self)]


class MalformedRequest(RequestError):
    """Body is not valid OTLP protobuf / OTLP-JSON, or its compression is corrupt."""


class RequestTooLarge(RequestError):
    """Body exceeds --max-request-bytes once decompressed."""


class UnsupportedMediaType(RequestError):
    """Content-Type or Content-Encoding the proxy does not speak (HTTP only)."""


class Unauthenticated(RequestError):
    """Missing or wrong bearer token."""


class Overloaded(RequestError):
    """--max-inflight reached: shed load instead of queueing without bound."""

    def __init__(self, message: str, retry_after: float = 1.0):
        super().__init__(message)
        self.retry_after = retry_after


class QueueFull(Overloaded):
    """--queue-dir: the batches not yet delivered already total --queue-max-bytes. Shed
    load until the sender has drained some; the client's retry brings the batch back."""


class RedactionFailed(RequestError):
    """Scrubbing raised. Fail closed: the batch is refused, never forwarded as it was."""


class UpstreamError(RequestError):
    """Upstream did not accept the batch. Subclasses decide what the client is told."""


class UpstreamUnavailable(UpstreamError):
    """Connection refused/reset, deadline passed, or upstream answered with a retryable
    code (OTLP: UNAVAILABLE and friends, HTTP 502/503/504). The client should retry."""

    def __init__(self, message: str, retry_after: float | None = None, code: str = "unavailable"):
        super().__init__(message)
        self.retry_after = retry_after if retry_after is not None else 1.0
        self.code = code  # label for redact_proxy_upstream_errors_total


class UpstreamThrottled(UpstreamError):
    """Upstream answered RESOURCE_EXHAUSTED / 429: passed on, with its delay hint."""

    def __init__(self, message: str, retry_after: float | None = None, code: str = "throttled"):
        super().__init__(message)
        self.retry_after = retry_after if retry_after is not None else 1.0
        self.code = code


class UpstreamRejected(UpstreamError):
    """Upstream refused the data as invalid. Passed on as such and not retried: the same
    bytes would be refused again."""

    def __init__(self, message: str, grpc_code: grpc.StatusCode, http_status: int, code: str):
        super().__init__(message)
        self._outcome = Outcome(grpc_code, http_status, retryable=False)
        self.code = code

    def outcome(self) -> Outcome:
        return self._outcome


# The one table. Rows follow SPEC section 5; the OTLP spec fixes the retryable set:
# gRPC UNAVAILABLE/RESOURCE_EXHAUSTED(with RetryInfo) and HTTP 429/502/503/504 retry,
# INVALID_ARGUMENT/400 never does.
OUTCOMES: dict[type[RequestError], Outcome] = {
    MalformedRequest: Outcome(grpc.StatusCode.INVALID_ARGUMENT, 400, retryable=False),
    RequestTooLarge: Outcome(grpc.StatusCode.RESOURCE_EXHAUSTED, 413, retryable=False),
    UnsupportedMediaType: Outcome(grpc.StatusCode.UNIMPLEMENTED, 415, retryable=False),
    Unauthenticated: Outcome(grpc.StatusCode.UNAUTHENTICATED, 401, retryable=False),
    Overloaded: Outcome(grpc.StatusCode.UNAVAILABLE, 503, retryable=True),
    QueueFull: Outcome(grpc.StatusCode.UNAVAILABLE, 503, retryable=True),
    UpstreamUnavailable: Outcome(grpc.StatusCode.UNAVAILABLE, 503, retryable=True),
    UpstreamThrottled: Outcome(grpc.StatusCode.RESOURCE_EXHAUSTED, 429, retryable=True),
    RedactionFailed: Outcome(grpc.StatusCode.INTERNAL, 500, retryable=False),
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
