"""Forwarders (forward/grpc.py, forward/http.py) and the error table (errors.py): what
the client is told when upstream is down, slow, throttling, refusing, or accepting in
part (SPEC section 5). Each case runs for both client transports against both kinds of
upstream, so the gRPC <-> HTTP translation of every verdict is covered."""

from __future__ import annotations

import json

import grpc
import pytest

from integration_otlp import MARK, SIGNALS, build_request, to_otlp_json
from integration_support import Answer, free_port, grpc_export, http_status

JSON = "application/json"
PROTOBUF = "application/x-protobuf"
CLIENTS = ["grpc", "http-protobuf", "http-json"]


def send(proxy, client: str, http_export, signal: str = "traces", items: int = 2):
    """One export with the given client; returns the grpc or HTTP result."""
    request = build_request(signal, items=items)
    if client == "grpc":
        return grpc_export(proxy, signal, request)
    if client == "http-json":
        return http_export(proxy, signal, json.dumps(to_otlp_json(request)).encode(), content_type=JSON)
    return http_export(proxy, signal, request)


def assert_refused(result, client: str, grpc_code: grpc.StatusCode, http: int, retry_after: float | None):
    """``retry_after``: None = no hint allowed; 0 = some hint required; > 0 = that hint."""
    if client == "grpc":
        assert result.code is grpc_code, result.details
        delay = result.retry_delay()
        assert result.status() is None or result.status().code == grpc_code.value[0]
    else:
        assert result.status == http, result.body
        assert result.content_type == (JSON if client == "http-json" else PROTOBUF)
        assert http_status(result).code == grpc_code.value[0]
        delay = float(result.headers["retry-after"]) if "retry-after" in result.headers else None
    if retry_after is None:
        assert delay is None, "a permanent refusal carries no retry hint"
    elif retry_after == 0:
        assert delay is not None and delay >= 0, "a retryable refusal carries a retry hint"
    else:
        assert delay == retry_after


@pytest.fixture(scope="session")
def proxies_to_nowhere(proxies):
    """Proxies whose upstream port has nothing listening."""
    return {
        "grpc": proxies(f"grpc://127.0.0.1:{free_port()}", "--upstream-timeout", "5s", name="to-nowhere-grpc"),
        "http": proxies(f"http://127.0.0.1:{free_port()}", "--upstream-timeout", "5s", name="to-nowhere-http"),
    }


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("kind", ["grpc", "http"])
def test_upstream_down_is_unavailable_with_retry_hint(proxies_to_nowhere, http_export, kind, client):
    proxy = proxies_to_nowhere[kind]
    result = send(proxy, client, http_export)
    assert_refused(result, client, grpc.StatusCode.UNAVAILABLE, 503, retry_after=0)
    assert proxy.get("/healthz")[0] == 200


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("hint", [None, 3], ids=["no-hint", "hint-3s"])
def test_upstream_unavailable_is_passed_on_as_retryable(routed, http_export, client, hint):
    proxy, upstream = routed
    upstream.answer = Answer(grpc_code=grpc.StatusCode.UNAVAILABLE, http_status=503, retry_after=hint,
                             message="collector overloaded")
    result = send(proxy, client, http_export)
    assert_refused(result, client, grpc.StatusCode.UNAVAILABLE, 503, retry_after=hint or 0)
    assert len(upstream.received) >= 1


@pytest.mark.parametrize("client", CLIENTS)
def test_upstream_throttle_is_passed_on_with_its_delay(routed, http_export, client):
    proxy, upstream = routed
    upstream.answer = Answer(grpc_code=grpc.StatusCode.RESOURCE_EXHAUSTED, http_status=429, retry_after=7,
                             message="slow down")
    result = send(proxy, client, http_export)
    assert_refused(result, client, grpc.StatusCode.RESOURCE_EXHAUSTED, 429, retry_after=7)


@pytest.mark.parametrize("client", CLIENTS)
def test_upstream_invalid_argument_is_passed_on_and_not_retried(routed, http_export, client):
    proxy, upstream = routed
    upstream.answer = Answer(grpc_code=grpc.StatusCode.INVALID_ARGUMENT, http_status=400, message="bad data")
    result = send(proxy, client, http_export)
    assert_refused(result, client, grpc.StatusCode.INVALID_ARGUMENT, 400, retry_after=None)
    assert len(upstream.received) == 1, "a permanent refusal is not retried"


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("signal", ["traces", "metrics", "logs"])
@pytest.mark.parametrize("rejected, message", [(1, "1 item rejected: too old"), (0, "warning: clock skew")],
                         ids=["rejected", "warning-only"])
def test_partial_success_is_passed_through_unchanged(routed, http_export, client, signal, rejected, message):
    # OTLP: partial_success with rejected = 0 and a message is a warning, still passed on.
    proxy, upstream = routed
    upstream.answer = Answer(rejected=rejected, error_message=message)
    result = send(proxy, client, http_export, signal=signal, items=3)
    field = SIGNALS[signal].rejected_field
    if client == "grpc":
        assert result.code is grpc.StatusCode.OK
        partial = SIGNALS[signal].response.FromString(result.body).partial_success
        assert (getattr(partial, field), partial.error_message) == (rejected, message)
    else:
        assert result.status == 200
        if client == "http-json":
            assert result.content_type == JSON
            camel = "".join(w.capitalize() if i else w for i, w in enumerate(field.split("_")))
            partial = json.loads(result.body)["partialSuccess"]
            # int64 as a string or a number, absent when 0: all are OTLP-JSON.
            assert int(partial.get(camel, 0)) == rejected
            assert partial["errorMessage"] == message
        else:
            assert result.content_type == PROTOBUF
            partial = SIGNALS[signal].response.FromString(result.body).partial_success
            assert (getattr(partial, field), partial.error_message) == (rejected, message)
    assert len(upstream.received) == 1


@pytest.mark.parametrize("client", CLIENTS)
def test_full_success_has_no_partial_success(routed, http_export, client):
    proxy, upstream = routed
    result = send(proxy, client, http_export)
    if client == "grpc":
        assert result.code is grpc.StatusCode.OK
        assert not SIGNALS["traces"].response.FromString(result.body).HasField("partial_success")
    else:
        assert result.status == 200
        if client == "http-json":
            assert "partialSuccess" not in json.loads(result.body)
        else:
            assert not SIGNALS["traces"].response.FromString(result.body).HasField("partial_success")


def test_upstream_slower_than_timeout_is_unavailable(own_proxies, grpc_upstream, http_upstream, http_export):
    for kind, upstream in (("grpc", grpc_upstream), ("http", http_upstream)):
        upstream.answer = Answer(delay=1.5)
        proxy = own_proxies(upstream.target, "--upstream-timeout", "500ms", name=f"timeout-{kind}")
        grpc_result = grpc_export(proxy, "traces", build_request("traces"))
        assert grpc_result.code is grpc.StatusCode.UNAVAILABLE
        assert grpc_result.retry_delay() is not None
        http_result = http_export(proxy, "traces", build_request("traces"))
        assert http_result.status == 503
        assert "retry-after" in http_result.headers
        assert MARK not in (grpc_result.details or "")


def test_upstream_resource_exhausted_without_retry_info_stays_without_it(proxy_to_grpc, grpc_upstream):
    # OTLP/gRPC (specification.md, "Failures"): RESOURCE_EXHAUSTED is retryable only when
    # the server says recovery is possible by sending RetryInfo. Without it (e.g. a batch
    # over the collector's message size limit) retrying the same batch cannot succeed, so
    # "as upstream" means: no RetryInfo invented on the way back.
    grpc_upstream.answer = Answer(grpc_code=grpc.StatusCode.RESOURCE_EXHAUSTED, message="message too large")
    result = grpc_export(proxy_to_grpc, "traces", build_request("traces"))
    assert result.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert result.retry_delay() is None, "the proxy made a permanent refusal retryable"
