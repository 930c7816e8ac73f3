"""Credentials a client sends to the proxy stay at the proxy (forward/grpc.py,
forward/http.py): Authorization, Cookie and Proxy-Authorization headers (gRPC metadata
``authorization``, ``cookie``) never reach upstream, from either receiver to either kind
of upstream, with raw clients and with the SDK exporters' ``headers``. What the operator
configured for upstream (OTEL_EXPORTER_OTLP_HEADERS) is sent, and a client cannot
replace it with its own.
"""

from __future__ import annotations

import grpc
import pytest

from integration_otlp import MARK, build_request, check_sdk_arrival
from integration_support import grpc_export, sdk_export

SECRET = f"client-secret-{MARK}"
CREDENTIALS = {
    "authorization": f"Bearer {SECRET}",
    "cookie": f"session={SECRET}; theme=dark",
    "proxy-authorization": f"Basic {SECRET}",
}


def assert_no_client_credentials(received) -> None:
    assert received, "nothing reached upstream"
    for r in received:
        assert not set(r.headers) & {"cookie", "proxy-authorization"}, r.headers
        assert SECRET not in repr(r.headers), f"a client credential was forwarded: {r.headers}"


@pytest.mark.parametrize("client", ["grpc", "http"])
def test_client_credential_headers_are_not_forwarded(routed, http_export, client):
    proxy, upstream = routed
    if client == "grpc":
        result = grpc_export(proxy, "traces", build_request("traces"), metadata=tuple(CREDENTIALS.items()))
        assert result.code is grpc.StatusCode.OK, result.details
    else:
        assert http_export(proxy, "traces", build_request("traces"), headers=CREDENTIALS).status == 200
    assert_no_client_credentials(upstream.received)
    assert "authorization" not in upstream.received[0].headers


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_sdk_exporter_headers_are_not_forwarded(routed, transport):
    proxy, upstream = routed
    data, ok = sdk_export("logs", transport, proxy, headers=dict(CREDENTIALS))
    assert ok
    check_sdk_arrival("logs", data, upstream.received)
    assert_no_client_credentials(upstream.received)


@pytest.mark.parametrize("kind", ["grpc", "http"])
def test_upstream_gets_the_operators_credential_not_the_clients(own_proxies, grpc_upstream, http_upstream,
                                                                http_export, kind):
    upstream = grpc_upstream if kind == "grpc" else http_upstream
    proxy = own_proxies(upstream.target, name=f"upstream-token-{kind}",
                        env={"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20operator-token"})
    assert grpc_export(proxy, "traces", build_request("traces"),
                       metadata=tuple(CREDENTIALS.items())).code is grpc.StatusCode.OK
    assert http_export(proxy, "traces", build_request("traces"), headers=CREDENTIALS).status == 200
    assert_no_client_credentials(upstream.received)
    assert [r.headers.get("authorization") for r in upstream.received] == ["Bearer operator-token"] * 2
