"""Integration suite machinery: the proxy as a subprocess, capturing upstreams, clients.

Strategy: every test talks to a real ``redact-proxy serve`` process over loopback sockets
and looks at what arrived at a capturing upstream. The capturing upstreams (one OTLP/gRPC
server on raw bytes, one OTLP/HTTP aiohttp server) are the only hand-written fakes; they
record every request, parsed, and answer as the test programs them (OK, partial success,
an error with or without a retry hint, a delay, a hold until released). They run on one
event loop in a background thread, so tests stay plain synchronous functions and the
OpenTelemetry SDK exporters (which block) are called directly.

When a proxy stops, its captured stdout/stderr must not contain ``MARK``: the proxy's
logs never carry telemetry content (SPEC section 3). The debug sink prints redacted
batches on stdout by design, so there only ``GONE`` (deleted values) is forbidden.

All waits are bounded and fail with the proxy's stderr; no test asserts a duration.
Fixtures wiring these together are in conftest.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip as gzip_module
import os
import signal as signal_module
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import grpc
from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from prometheus_client.parser import text_string_to_metric_families

from integration_otlp import (
    GONE, HASH_KEY, MARK, SIGNALS, Received, parse_otlp_json, sdk_logs, sdk_metrics, sdk_spans,
)

TESTS = Path(__file__).resolve().parent.parent
POLICY = TESTS / "testdata" / "integration-policy.yaml"
MAX_REQUEST_BYTES = 2 * 1024 * 1024  # of the shared proxies
READY_TIMEOUT = 30.0  # seconds; bounded wait for /readyz, generous for a loaded 2-core box
CALL_TIMEOUT = 20.0  # seconds; any single client call


# --- the capturing upstreams -----------------------------------------------------------


@dataclasses.dataclass
class Answer:
    """What a capturing upstream answers. Defaults: plain OK."""

    grpc_code: grpc.StatusCode | None = None  # None: OK
    http_status: int = 200
    message: str = ""
    retry_after: float | None = None  # RetryInfo (gRPC) / Retry-After (HTTP), seconds
    rejected: int = 0  # partial_success: rejected items (0 = no partial success)
    error_message: str = ""  # partial_success.error_message
    delay: float = 0.0  # seconds before answering
    hold: bool = False  # answer only once the test calls Capture.release() (bounded: HOLD_LIMIT)


def _response_for(signal: str, answer: Answer) -> Message:
    sig = SIGNALS[signal]
    response = sig.response()
    if answer.rejected or answer.error_message:
        setattr(response.partial_success, sig.rejected_field, answer.rejected)
        response.partial_success.error_message = answer.error_message
    return response


def _error_status(code: int, answer: Answer) -> status_pb2.Status:
    status = status_pb2.Status(code=code, message=answer.message)
    if answer.retry_after is not None:
        info = error_details_pb2.RetryInfo()
        info.retry_delay.seconds = int(answer.retry_after)
        status.details.add().Pack(info)
    return status


HOLD_LIMIT = 30.0  # seconds a held answer waits for release() at most


class Capture:
    def __init__(self):
        self.received: list[Received] = []
        self.answer = Answer()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._released = asyncio.Event()

    def reset(self) -> None:
        self.release()  # nothing stays held across tests
        self.received = []
        self.answer = Answer()
        self._released = asyncio.Event()

    def release(self) -> None:
        """Let held answers go (called from the test's thread)."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._released.set)

    async def _before_answer(self, answer: Answer) -> None:
        if answer.hold:
            released = self._released
            try:
                await asyncio.wait_for(released.wait(), HOLD_LIMIT)
            except asyncio.TimeoutError:
                pass
        if answer.delay:
            await asyncio.sleep(answer.delay)

    def of(self, signal: str) -> list[Received]:
        return [r for r in self.received if r.signal == signal]


class GrpcCapture(Capture):
    """OTLP/gRPC upstream: the three Export services on raw bytes. Bound to ``port`` (0:
    any free one; a stopped capture's port: an upstream restart), over TLS when given
    server credentials."""

    def __init__(self, port: int = 0, credentials: grpc.ServerCredentials | None = None):
        super().__init__()
        self.server: grpc.aio.Server | None = None
        self.port = port
        self.credentials = credentials

    async def start(self) -> None:
        self.server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 * 1024 * 1024),
                                               ("grpc.so_reuseport", 0)])
        services: dict[str, dict] = {}
        for sig in SIGNALS.values():
            service, _, method = sig.grpc_method.strip("/").partition("/")
            services.setdefault(service, {})[method] = grpc.unary_unary_rpc_method_handler(
                self._handler(sig.name), request_deserializer=None, response_serializer=None)
        self.server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler(n, m) for n, m in services.items()])
        address = f"127.0.0.1:{self.port}"
        if self.credentials is None:
            self.port = self.server.add_insecure_port(address)
        else:
            self.port = self.server.add_secure_port(address, self.credentials)
        await self.server.start()
        self.loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        await self.server.stop(0)

    @property
    def target(self) -> str:
        return f"{'grpcs' if self.credentials else 'grpc'}://127.0.0.1:{self.port}"

    def _handler(self, signal: str):
        async def export(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            answer = self.answer
            message, error = SIGNALS[signal].request(), None
            try:
                message.ParseFromString(request)
            except Exception as exc:  # recorded, the test decides
                message, error = None, repr(exc)
            headers = {k.lower(): v for k, v in (context.invocation_metadata() or ())}
            self.received.append(Received(signal, message, request, headers, "application/grpc", error))
            await self._before_answer(answer)
            if answer.grpc_code is not None:
                details = _error_status(answer.grpc_code.value[0], answer).SerializeToString()
                await context.abort(answer.grpc_code, answer.message,
                                    trailing_metadata=(("grpc-status-details-bin", details),))
            return _response_for(signal, answer).SerializeToString()

        return export


class HttpCapture(Capture):
    """OTLP/HTTP upstream: ``POST /v1/<signal>``, protobuf or OTLP-JSON. Bound to ``port``
    (0: any free one), over TLS when given an SSL context."""

    def __init__(self, port: int = 0, ssl_context: ssl.SSLContext | None = None):
        super().__init__()
        self.runner: web.AppRunner | None = None
        self.port = port
        self.ssl_context = ssl_context

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for sig in SIGNALS.values():
            app.router.add_post(sig.http_path, self._handler(sig.name))
        # Bodies are read raw: the capture sees exactly what the proxy sent.
        self.runner = web.AppRunner(app, auto_decompress=False, access_log=None, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port, ssl_context=self.ssl_context)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self.loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        await self.runner.cleanup()

    @property
    def target(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{self.port}"

    def _handler(self, signal: str):
        async def export(request: web.Request) -> web.Response:
            answer = self.answer
            raw = await request.read()
            headers = {k.lower(): v for k, v in request.headers.items()}
            ctype = (headers.get("content-type") or "").split(";")[0].strip()
            message, error = None, None
            try:
                body = raw
                encoding = headers.get("content-encoding", "identity")
                if encoding == "gzip":
                    body = gzip_module.decompress(raw)
                elif encoding != "identity":
                    raise ValueError(f"unexpected Content-Encoding {encoding!r}")
                if ctype == "application/json":
                    message = parse_otlp_json(signal, body)
                elif ctype == "application/x-protobuf":
                    message = SIGNALS[signal].request()
                    message.ParseFromString(body)
                else:
                    raise ValueError(f"unexpected Content-Type {ctype!r}")
            except Exception as exc:  # recorded, the test decides
                message, error = None, repr(exc)
            self.received.append(Received(signal, message, raw, headers, ctype, error))
            await self._before_answer(answer)
            json_out = ctype == "application/json"
            out_headers = {}
            if answer.http_status >= 300:
                if answer.retry_after is not None:
                    out_headers["Retry-After"] = str(int(answer.retry_after))
                payload = _error_status(2, answer)
            else:
                payload = _response_for(signal, answer)
            body = json_format.MessageToJson(payload).encode() if json_out else payload.SerializeToString()
            return web.Response(status=answer.http_status, body=body, headers=out_headers,
                                content_type="application/json" if json_out else "application/x-protobuf")

        return export


class LoopThread:
    """An asyncio loop in a daemon thread: the capturing upstreams and aiohttp clients."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="itest-loop", daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = CALL_TIMEOUT):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

# --- the proxy under test ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proxy_env(**extra: str) -> dict:
    """The environment of a proxy: ours, minus anything that would configure it behind the
    test's back, plus the hash key."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("REDACT_PROXY_", "OTEL_", "GRPC_"))}
    env["REDACT_PROXY_HASH_KEY"] = HASH_KEY
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def serve_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "redact_proxy", "serve", *args]


class Proxy:
    """One ``redact-proxy serve`` subprocess on free loopback ports."""

    def __init__(self, workdir: Path, upstream: str | None, *extra: str, policy: Path = POLICY,
                 env: dict | None = None, name: str = "proxy", debug_sink: bool = False,
                 subcommand: bool = True):
        """``upstream`` None: no --upstream flag (the environment decides);
        ``subcommand`` False: `redact-proxy --policy P ...` without the word serve."""
        self.subcommand = subcommand
        self.workdir = workdir
        self.upstream = upstream
        self.extra = extra
        self.policy = policy
        self.env = proxy_env(**(env or {}))
        self.name = name
        self.debug_sink = debug_sink or upstream == "debug"
        self.proc: subprocess.Popen | None = None
        self.stdout_path = workdir / f"{name}.stdout"
        self.stderr_path = workdir / f"{name}.stderr"
        self.returncode: int | None = None

    # addresses
    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self) -> "Proxy":
        for _attempt in range(3):  # a free port can be taken by someone else meanwhile
            self.grpc_port, self.http_port, self.admin_port = free_port(), free_port(), free_port()
            args = serve_command(
                "--policy", str(self.policy), "--grpc-listen", self.grpc_target,
                "--http-listen", f"127.0.0.1:{self.http_port}", "--admin-listen", f"127.0.0.1:{self.admin_port}",
                *(("--upstream", self.upstream) if self.upstream is not None else ()), *self.extra)
            if not self.subcommand:
                args.remove("serve")
            with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
                self.proc = subprocess.Popen(args, stdout=out, stderr=err, env=self.env, cwd=self.workdir)
            if self._wait_ready():
                return self
            if "in use" not in self.stderr():
                break
        raise AssertionError(
            f"{self.name} did not become ready (exit code {self.proc.poll()}); stderr:\n{self.stderr()}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(self.admin_url + "/readyz", timeout=2) as resp:
                    if resp.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait(10)
        return False

    def stop(self) -> int:
        """SIGTERM, bounded wait; returns the exit code."""
        if self.proc is None or self.returncode is not None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal_module.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise AssertionError(f"{self.name} did not exit within 30s of SIGTERM; stderr:\n{self.stderr()}")
        self.returncode = self.proc.returncode
        return self.returncode

    def wait_exit(self, timeout: float = 30) -> int:
        """Wait (bounded) for the proxy to exit on its own, e.g. after a test's SIGTERM."""
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} still running after {timeout}s; stderr:\n{self.stderr()}") from None
        return self.returncode

    def stdout(self) -> str:
        return self.stdout_path.read_bytes().decode("utf-8", "replace") if self.stdout_path.exists() else ""

    def stderr(self) -> str:
        return self.stderr_path.read_bytes().decode("utf-8", "replace") if self.stderr_path.exists() else ""

    def assert_logs_clean(self) -> None:
        """No telemetry content in what the proxy printed (SPEC 3: logs never carry
        attribute values, bodies or names). The debug sink prints redacted batches on
        stdout by design; even there nothing deleted may appear."""
        err = self.stderr()
        assert MARK not in err, f"telemetry content in {self.name}'s stderr:\n{err}"
        out = self.stdout()
        if self.debug_sink:
            assert GONE not in out, f"deleted content in {self.name}'s debug output"
        else:
            assert MARK not in out, f"telemetry content in {self.name}'s stdout:\n{out}"

    def close(self) -> None:
        """Teardown: stop, exit code 0, clean logs."""
        code = self.stop()
        assert code == 0, f"{self.name} exited {code} on SIGTERM; stderr:\n{self.stderr()}"
        self.assert_logs_clean()

    # admin
    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.admin_url + path, timeout=CALL_TIMEOUT) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def metrics(self) -> "Metrics":
        status, text = self.get("/metrics")
        assert status == 200
        return Metrics(text)

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS in /proc/PID/status")


class Metrics:
    """A /metrics scrape: ``value(name, **labels)`` sums the samples whose labels include
    the given ones (0 when there is none)."""

    def __init__(self, text: str):
        self.text = text
        self.samples = [s for fam in text_string_to_metric_families(text) for s in fam.samples]

    def value(self, name: str, **labels: str) -> float:
        return sum(s.value for s in self.samples
                   if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))

    def labelsets(self, name: str) -> list[dict]:
        return [s.labels for s in self.samples if s.name == name]


# --- clients ------------------------------------------------------------------------------


@dataclasses.dataclass
class GrpcResult:
    code: grpc.StatusCode
    body: bytes | None
    details: str | None
    trailing: tuple

    def status(self) -> status_pb2.Status | None:
        for key, value in self.trailing or ():
            if key == "grpc-status-details-bin":
                return status_pb2.Status.FromString(value)
        return None

    def retry_delay(self) -> float | None:
        status = self.status()
        for detail in status.details if status else ():
            info = error_details_pb2.RetryInfo()
            if detail.Unpack(info):
                return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
        return None


def grpc_call(target: str, method: str, body: bytes, *, metadata=(), compression=None,
              timeout: float = CALL_TIMEOUT) -> GrpcResult:
    """One unary call with the real grpc client, on raw bytes."""
    with grpc.insecure_channel(target, options=[("grpc.max_send_message_length", -1)]) as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        try:
            response, info = call.with_call(body, timeout=timeout, metadata=metadata, compression=compression)
        except grpc.RpcError as exc:
            return GrpcResult(exc.code(), None, exc.details(), tuple(exc.trailing_metadata() or ()))
        return GrpcResult(grpc.StatusCode.OK, response, None, tuple(info.trailing_metadata() or ()))


def grpc_export(proxy: Proxy, signal: str, body: bytes | Message, **kw) -> GrpcResult:
    if isinstance(body, Message):
        body = body.SerializeToString()
    return grpc_call(proxy.grpc_target, SIGNALS[signal].grpc_method, body, **kw)


@dataclasses.dataclass
class HttpResult:
    status: int
    headers: dict  # lowercased names
    body: bytes

    @property
    def content_type(self) -> str:
        return (self.headers.get("content-type") or "").split(";")[0].strip()


async def http_request(method: str, url: str, body, headers: dict) -> HttpResult:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        async with session.request(method, url, data=body, headers=headers,
                                   skip_auto_headers=("Content-Type",)) as resp:
            payload = await resp.read()
            return HttpResult(resp.status, {k.lower(): v for k, v in resp.headers.items()}, payload)


def http_status(result: HttpResult) -> status_pb2.Status:
    """The google.rpc.Status body of an HTTP error answer, in the request's encoding."""
    if result.content_type == "application/json":
        return json_format.Parse(result.body, status_pb2.Status(), ignore_unknown_fields=True)
    return status_pb2.Status.FromString(result.body)


def sdk_exporter(signal: str, transport: str, proxy: "Proxy", **kw):
    """The real OTLP exporter of ``signal`` over ``transport`` aimed at ``proxy``."""
    if transport == "grpc":
        cls = {"traces": GrpcSpanExporter, "metrics": GrpcMetricExporter, "logs": GrpcLogExporter}[signal]
        return cls(endpoint=proxy.grpc_target, insecure=True, timeout=CALL_TIMEOUT, **kw)
    cls = {"traces": HttpSpanExporter, "metrics": HttpMetricExporter, "logs": HttpLogExporter}[signal]
    return cls(endpoint=proxy.http_url + SIGNALS[signal].http_path, timeout=CALL_TIMEOUT, **kw)


def sdk_export(signal: str, transport: str, proxy: "Proxy", data=None, **kw):
    """Export SDK data of ``signal`` through ``proxy``; returns (data, ok)."""
    data = data if data is not None else {"traces": sdk_spans, "metrics": sdk_metrics, "logs": sdk_logs}[signal]()
    exporter = sdk_exporter(signal, transport, proxy, **kw)
    try:
        result = exporter.export(data)
    finally:
        exporter.shutdown()
    return data, result.name == "SUCCESS"


def wait_for(predicate, timeout: float, what: str):
    """Poll ``predicate`` until it returns something truthy (returned), or fail naming
    ``what`` after ``timeout`` seconds: the suite's only kind of wait."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
