"""errors.py: every request error has one answer, and the table keeps the OTLP rules
(opentelemetry-proto docs/specification.md, "Failures"): what retries is exactly
UNAVAILABLE / RESOURCE_EXHAUSTED-with-a-hint and HTTP 429/502/503/504, and every 429/503
answer carries a Retry-After in whole seconds within the clamp."""

from __future__ import annotations

import grpc
import pytest

from redact_proxy import errors
from redact_proxy.errors import (
    OUTCOMES, RETRY_AFTER_DEFAULT, RETRY_AFTER_MAX, RETRY_AFTER_MIN, ClientGone, InternalError, MalformedRequest,
    Overloaded, QueueFull, ReadTimeout, RedactionFailed, RequestError, RequestTooLarge, Unauthenticated,
    UnsupportedMediaType, UpstreamRejected, UpstreamThrottled, UpstreamUnavailable, retry_after_header, retry_hint,
)


def _leaves(cls: type) -> set[type]:
    subs = set(cls.__subclasses__())
    return subs | {s for sub in subs for s in _leaves(sub)}


# One instance of every request error the package defines, built as the code raises it.
INSTANCES = [
    MalformedRequest("m"), RequestTooLarge("m"), UnsupportedMediaType("m"), Unauthenticated("m"), ReadTimeout("m"),
    ClientGone("m"), Overloaded("m"), QueueFull("m"), RedactionFailed("m"), InternalError("m"),
    UpstreamUnavailable("m"), UpstreamThrottled("m"),
    UpstreamRejected("m", grpc.StatusCode.INVALID_ARGUMENT, 400, "400"),
]


def test_every_request_error_of_the_package_has_an_outcome():
    # Classes a test module defines are not the package's.
    defined = {c for c in _leaves(RequestError) if c.__module__.partition(".")[0] == "redact_proxy"}
    built = {type(e) for e in INSTANCES}
    # UpstreamError is abstract (a subclass decides); any other class must be built above.
    assert defined - built <= {errors.UpstreamError}, "a new error class needs a row and a case here"
    # The abstract ones answer too: a subclass without a row answers as they do.
    for exc in [*INSTANCES, RequestError("m"), errors.UpstreamError("m")]:
        outcome = exc.outcome()
        assert isinstance(outcome.grpc_code, grpc.StatusCode) and outcome.grpc_code is not grpc.StatusCode.OK
        assert 400 <= outcome.http_status < 600


@pytest.mark.parametrize("exc", INSTANCES, ids=lambda e: type(e).__name__)
def test_retryable_answers_are_the_ones_otlp_retries(exc):
    outcome = exc.outcome()
    assert outcome.retryable == (outcome.http_status in {429, 502, 503, 504})
    if outcome.retryable:
        assert outcome.grpc_code in {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}


@pytest.mark.parametrize("exc", INSTANCES, ids=lambda e: type(e).__name__)
def test_every_429_and_503_carries_a_whole_second_hint(exc):
    outcome = exc.outcome()
    header = retry_after_header(exc, outcome)
    if outcome.http_status in {429, 503} or outcome.retryable:
        assert header is not None and header.isdigit()
        assert RETRY_AFTER_MIN <= int(header) <= RETRY_AFTER_MAX
    else:
        assert header is None


def test_a_rejection_keeps_upstreams_verdict_and_is_never_retryable():
    exc = UpstreamRejected("m", grpc.StatusCode.RESOURCE_EXHAUSTED, 429, "429")
    assert exc.outcome() == errors.Outcome(grpc.StatusCode.RESOURCE_EXHAUSTED, 429, retryable=False)
    assert retry_after_header(exc, exc.outcome()) == str(int(RETRY_AFTER_DEFAULT))  # 429: still hinted


@pytest.mark.parametrize("given, hint", [
    (None, RETRY_AFTER_DEFAULT), (float("nan"), RETRY_AFTER_DEFAULT), (0.0, RETRY_AFTER_MIN),
    (-5.0, RETRY_AFTER_MIN), (2.5, 2.5), (float("inf"), RETRY_AFTER_MAX), (9.2e18, RETRY_AFTER_MAX),
])
def test_retry_hints_are_clamped(given, hint):
    assert retry_hint(given) == hint
    assert UpstreamThrottled("m", given).retry_after == hint


def test_the_table_has_no_row_for_an_abstract_or_foreign_class():
    assert all(issubclass(cls, RequestError) and cls.__module__ == errors.__name__ for cls in OUTCOMES)
