"""Fixtures of the integration suite; the machinery is in integration_support.py.

Scopes: the capturing upstreams and the two shared proxies (one per kind of upstream)
live for the session, because starting a proxy costs a process start; ``_fresh_upstreams``
gives each test empty recordings and plain OK answers. Proxies a test needs for itself
(other flags, or a proxy it stops) come from ``own_proxies``. Every proxy is stopped with
SIGTERM at the end and must exit 0 with no telemetry content in its output.
"""

from __future__ import annotations

import itertools

import pytest
from google.protobuf.message import Message

from integration_otlp import SIGNALS
from integration_support import (
    MAX_REQUEST_BYTES, GrpcCapture, HttpCapture, HttpResult, LoopThread, Proxy, http_request,
)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Remember on the test item whether its body failed (read by ``own_proxies``)."""
    report = yield
    if report.when == "call":
        item.body_failed = report.failed
    return report


@pytest.fixture(scope="session")
def loop_thread():
    lt = LoopThread()
    yield lt
    lt.close()


@pytest.fixture(scope="session")
def http(loop_thread):
    """``http(method, url, body=b"", headers={})``: one request with aiohttp."""

    def request(method: str, url: str, body=b"", headers: dict | None = None) -> HttpResult:
        return loop_thread.run(http_request(method, url, body, dict(headers or {})))

    return request


@pytest.fixture(scope="session")
def http_export(http):
    """POST an export body to a proxy's OTLP/HTTP receiver."""

    def export(proxy: Proxy, signal: str, body: bytes | Message, *, content_type="application/x-protobuf",
               headers: dict | None = None) -> HttpResult:
        if isinstance(body, Message):
            body = body.SerializeToString()
        return http("POST", proxy.http_url + SIGNALS[signal].http_path, body,
                    {"Content-Type": content_type, **(headers or {})})

    return export


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def grpc_upstream(loop_thread):
    capture = GrpcCapture()
    loop_thread.run(capture.start())
    yield capture
    loop_thread.run(capture.stop())


@pytest.fixture(scope="session")
def http_upstream(loop_thread):
    capture = HttpCapture()
    loop_thread.run(capture.start())
    yield capture
    loop_thread.run(capture.stop())


@pytest.fixture(autouse=True)
def _fresh_upstreams(request):
    """Each test starts with empty recordings and plain OK answers."""
    for name in ("grpc_upstream", "http_upstream"):
        if name in request.fixturenames:
            request.getfixturevalue(name).reset()
    yield


@pytest.fixture(scope="session")
def proxies(tmp_path_factory):
    """Start proxies that the fixture closes at the end (exit code 0, clean logs)."""
    started: list[Proxy] = []
    base = tmp_path_factory.mktemp("proxies")
    numbers = itertools.count()

    def start(upstream: str, *extra: str, **kw) -> Proxy:
        name = kw.pop("name", "proxy")
        workdir = base / f"{next(numbers):02d}-{name}"
        workdir.mkdir()
        proxy = Proxy(workdir, upstream, *extra, name=name, **kw).start()
        started.append(proxy)
        return proxy

    yield start
    failures = []
    for proxy in started:
        try:
            proxy.close()
        except AssertionError as exc:
            failures.append(str(exc))
    assert not failures, "\n\n".join(failures)


@pytest.fixture
def own_proxies(tmp_path, request):
    """Start proxies for one test; at its end each still running is closed like the
    session's (SIGTERM, exit 0, clean logs), and a stopped one must have clean logs.
    When the test itself failed, its proxies are only stopped: one failure, one report."""
    started: list[Proxy] = []
    numbers = itertools.count()

    def start(upstream: str, *extra: str, **kw) -> Proxy:
        name = kw.pop("name", "proxy")
        workdir = tmp_path / f"{next(numbers):02d}-{name}"
        workdir.mkdir()
        proxy = Proxy(workdir, upstream, *extra, name=name, **kw).start()
        started.append(proxy)
        return proxy

    yield start
    if getattr(request.node, "body_failed", False):
        for proxy in started:
            proxy.stop()
        return
    for proxy in started:
        if proxy.returncode is None:
            proxy.close()
        else:
            proxy.assert_logs_clean()


LIMITS = ("--max-request-bytes", str(MAX_REQUEST_BYTES), "--upstream-timeout", "10s")


@pytest.fixture(scope="session")
def proxy_to_grpc(proxies, grpc_upstream):
    """The shared proxy forwarding to the gRPC capture."""
    return proxies(grpc_upstream.target, *LIMITS, name="to-grpc")


@pytest.fixture(scope="session")
def proxy_to_http(proxies, http_upstream):
    """The shared proxy forwarding to the OTLP/HTTP capture."""
    return proxies(http_upstream.target, *LIMITS, name="to-http")


@pytest.fixture(params=["grpc", "http"])
def routed(request):
    """(proxy, capture) for each kind of upstream."""
    kind = request.param
    capture = request.getfixturevalue(f"{kind}_upstream")
    capture.reset()
    return request.getfixturevalue(f"proxy_to_{kind}"), capture
