"""TLS and mTLS on both receivers (--tls-cert/--tls-key/--tls-client-ca) and towards
upstream (grpcs://, https:// with --upstream-ca, --upstream-cert/--upstream-key), with
certificates made in the test run (integration_faults.make_pki): the real OTel SDK
exporters succeed with the right CA (and client certificate); a client trusting another
CA, a client without a certificate and one with a certificate from another CA are refused,
and nothing they sent reaches upstream; an upstream whose certificate is not trusted, or
that wants a client certificate the proxy does not have, is UNAVAILABLE / 503 and gets
nothing.
"""

from __future__ import annotations

import aiohttp
import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter

from integration_faults import (
    GrpcCaptureAt, HttpCaptureAt, client_credentials, client_ssl_context, grpc_call_tls, grpc_server_credentials,
    https_post, make_pki, server_ssl_context,
)
from integration_otlp import SIGNALS, build_request, check_sdk_arrival, sdk_spans
from integration_support import CALL_TIMEOUT, grpc_export

TRACES = SIGNALS["traces"]
TRANSPORTS = ["grpc", "http"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(autouse=True)
def _sdk_uses_the_ca_it_is_given(monkeypatch):
    """requests (under the SDK's HTTP exporter) lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE
    override the exporter's certificate_file; machines that set them (this one does) would
    make every HTTPS export fail verification against the system store instead."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


@pytest.fixture(scope="module")
def tls_proxy(proxies, grpc_upstream, pki):
    return proxies(grpc_upstream.target, "--tls-cert", str(pki.server.cert), "--tls-key", str(pki.server.key),
                   name="tls")


@pytest.fixture(scope="module")
def mtls_proxy(proxies, grpc_upstream, pki):
    return proxies(grpc_upstream.target, "--tls-cert", str(pki.server.cert), "--tls-key", str(pki.server.key),
                   "--tls-client-ca", str(pki.ca), name="mtls")


def sdk_export_tls(transport: str, proxy, pki, *, identity=None) -> tuple[object, bool]:
    """Spans through the SDK's OTLP exporter over TLS, trusting the PKI's CA, presenting
    ``identity`` as client certificate when given."""
    spans = sdk_spans()
    if transport == "grpc":
        exporter = GrpcSpanExporter(endpoint=proxy.grpc_target, credentials=client_credentials(pki, identity=identity),
                                    timeout=CALL_TIMEOUT)
    else:
        kw = dict(client_certificate_file=str(identity.cert), client_key_file=str(identity.key)) if identity else {}
        exporter = HttpSpanExporter(endpoint=f"https://127.0.0.1:{proxy.http_port}{TRACES.http_path}",
                                    certificate_file=str(pki.ca), timeout=CALL_TIMEOUT, **kw)
    try:
        return spans, exporter.export(spans).name == "SUCCESS"
    finally:
        exporter.shutdown()


def refused(transport: str, proxy, pki, *, ca=None, identity=None) -> None:
    """A raw client with this trust / client certificate gets no answer from the proxy."""
    body = build_request("traces").SerializeToString()
    if transport == "grpc":
        result = grpc_call_tls(proxy.grpc_target, TRACES.grpc_method, body,
                               client_credentials(pki, ca=ca, identity=identity))
        assert result.code is grpc.StatusCode.UNAVAILABLE, result
        return
    with pytest.raises(OSError):  # ssl.SSLError, or the connection reset by the server's alert
        https_post(proxy.http_port, TRACES.http_path, body, client_ssl_context(pki, ca=ca, identity=identity))


# --- receivers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_sdk_exporter_over_tls(tls_proxy, grpc_upstream, pki, transport):
    data, ok = sdk_export_tls(transport, tls_proxy, pki)
    assert ok
    check_sdk_arrival("traces", data, grpc_upstream.received)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_client_trusting_another_ca_is_refused(tls_proxy, grpc_upstream, pki, transport):
    refused(transport, tls_proxy, pki, ca=pki.wrong_ca)
    assert grpc_upstream.received == []


def test_plaintext_client_gets_nothing_from_a_tls_receiver(tls_proxy, grpc_upstream, http_export):
    assert grpc_export(tls_proxy, "traces", build_request("traces"), timeout=5).code is grpc.StatusCode.UNAVAILABLE
    with pytest.raises(aiohttp.ClientError):  # the handshake fails; the connection is closed
        http_export(tls_proxy, "traces", build_request("traces"))
    assert grpc_upstream.received == []


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_sdk_exporter_with_a_client_certificate_over_mtls(mtls_proxy, grpc_upstream, pki, transport):
    data, ok = sdk_export_tls(transport, mtls_proxy, pki, identity=pki.client)
    assert ok
    check_sdk_arrival("traces", data, grpc_upstream.received)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("certificate", ["none", "from-another-ca"])
def test_mtls_refuses_clients_without_a_certificate_of_its_ca(mtls_proxy, grpc_upstream, pki, transport,
                                                              certificate):
    identity = None if certificate == "none" else pki.wrong_client
    refused(transport, mtls_proxy, pki, identity=identity)
    assert grpc_upstream.received == []


# --- towards upstream ---------------------------------------------------------------------------


def tls_capture(kind: str, pki, *, client_ca=None, identity=None):
    if kind == "grpc":
        return GrpcCaptureAt(credentials=grpc_server_credentials(pki, client_ca=client_ca, identity=identity))
    return HttpCaptureAt(ssl_context=server_ssl_context(pki, client_ca=client_ca, identity=identity))


@pytest.fixture
def served(loop_thread):
    started = []

    def start(server):
        loop_thread.run(server.start())
        started.append(server)
        return server

    yield start
    for server in started:
        loop_thread.run(server.stop())


@pytest.mark.parametrize("mtls", [False, True], ids=["tls", "mtls"])
@pytest.mark.parametrize("kind", ["grpc", "http"], ids=["grpcs", "https"])
def test_upstream_over_tls(own_proxies, served, pki, kind, mtls):
    upstream = served(tls_capture(kind, pki, client_ca=pki.ca if mtls else None))
    extra = ["--upstream-ca", str(pki.ca)]
    if mtls:
        extra += ["--upstream-cert", str(pki.client.cert), "--upstream-key", str(pki.client.key)]
    proxy = own_proxies(upstream.target, *extra, name=f"to-{upstream.target.split(':')[0]}-{'mtls' if mtls else 'tls'}")
    spans = sdk_spans()
    exporter = GrpcSpanExporter(endpoint=proxy.grpc_target, insecure=True, timeout=CALL_TIMEOUT)
    try:
        assert exporter.export(spans).name == "SUCCESS"
    finally:
        exporter.shutdown()
    check_sdk_arrival("traces", spans, upstream.received)


@pytest.mark.parametrize("fault", ["untrusted-upstream-certificate", "no-client-certificate"])
@pytest.mark.parametrize("kind", ["grpc", "http"], ids=["grpcs", "https"])
def test_upstream_tls_failure_is_unavailable_and_sends_nothing(own_proxies, served, pki, http_export, kind, fault):
    if fault == "untrusted-upstream-certificate":
        upstream = served(tls_capture(kind, pki, identity=pki.wrong_server))
    else:  # the upstream wants a client certificate; the proxy is given none
        upstream = served(tls_capture(kind, pki, client_ca=pki.ca))
    proxy = own_proxies(upstream.target, "--upstream-ca", str(pki.ca), "--upstream-timeout", "5s",
                        name=f"tls-fault-{kind}")
    result = grpc_export(proxy, "traces", build_request("traces"))
    assert result.code is grpc.StatusCode.UNAVAILABLE, result.details
    assert result.retry_delay() is not None
    assert http_export(proxy, "traces", build_request("traces")).status == 503
    assert upstream.received == []

