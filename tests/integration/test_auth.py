"""--auth-token-file (settings.py, receivers/__init__.py): both receivers require
``Authorization: Bearer <token>`` (gRPC metadata ``authorization``); a refused request is
never forwarded."""

from __future__ import annotations

import grpc
import pytest

from integration_otlp import MARK, SIGNAL_NAMES, build_request, check_sdk_arrival
from integration_support import grpc_export, http_status, sdk_export

TOKEN = "s3cr3t-" + MARK[-6:] + "-token"
WRONG = [None, "", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", TOKEN, f"Basic {TOKEN}", "Bearer "]


@pytest.fixture(scope="session")
def auth_proxy(proxies, grpc_upstream, tmp_path_factory):
    token_file = tmp_path_factory.mktemp("auth") / "token"
    token_file.write_text(TOKEN + "\n")  # a trailing newline, as `echo` writes it
    return proxies(grpc_upstream.target, "--auth-token-file", str(token_file), name="auth")


@pytest.mark.parametrize("header", WRONG, ids=["missing", "empty", "longer", "shorter", "no-scheme", "basic",
                                               "bearer-nothing"])
def test_grpc_without_the_right_token_is_unauthenticated(auth_proxy, grpc_upstream, header):
    metadata = () if header is None else (("authorization", header),)
    result = grpc_export(auth_proxy, "traces", build_request("traces"), metadata=metadata)
    assert result.code is grpc.StatusCode.UNAUTHENTICATED
    assert TOKEN not in (result.details or "")
    assert grpc_upstream.received == []


@pytest.mark.parametrize("header", WRONG, ids=["missing", "empty", "longer", "shorter", "no-scheme", "basic",
                                               "bearer-nothing"])
def test_http_without_the_right_token_is_401(auth_proxy, grpc_upstream, http_export, header):
    headers = {} if header is None else {"Authorization": header}
    result = http_export(auth_proxy, "logs", build_request("logs"), headers=headers)
    assert result.status == 401
    assert http_status(result).code == grpc.StatusCode.UNAUTHENTICATED.value[0]
    assert grpc_upstream.received == []


def test_the_right_token_is_accepted_on_both_receivers(auth_proxy, grpc_upstream, http_export):
    assert grpc_export(auth_proxy, "traces", build_request("traces"),
                       metadata=(("authorization", f"Bearer {TOKEN}"),)).code is grpc.StatusCode.OK
    assert http_export(auth_proxy, "logs", build_request("logs"),
                       headers={"Authorization": f"Bearer {TOKEN}"}).status == 200
    assert [r.signal for r in grpc_upstream.received] == ["traces", "logs"]
    # The client's credential is for the proxy, not passed on upstream.
    assert all(TOKEN not in str(r.headers) for r in grpc_upstream.received)


@pytest.mark.parametrize("transport", ["grpc", "http"])
@pytest.mark.parametrize("signal", SIGNAL_NAMES)
def test_sdk_exporters_with_the_token_header(auth_proxy, grpc_upstream, transport, signal):
    headers = {"authorization": f"Bearer {TOKEN}"}
    data, ok = sdk_export(signal, transport, auth_proxy, headers=headers)
    assert ok
    check_sdk_arrival(signal, data, grpc_upstream.received)
