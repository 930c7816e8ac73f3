"""OTLP receivers: each speaks its wire protocol and hands bodies to the Pipeline."""

from __future__ import annotations

import hmac

from google.rpc import code_pb2, error_details_pb2, status_pb2

from redact_proxy.errors import Outcome, RequestError, Unauthenticated


def check_token(expected: str | None, header: str | None) -> None:
    """Bearer auth, compared in constant time (no timing oracle on the token)."""
    if expected is None:
        return
    presented = b""
    if header and header[:7].lower() == "bearer ":
        presented = header[7:].strip().encode()
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


INTERNAL_CODE = code_pb2.INTERNAL
