"""OTLP/gRPC receiver: the three Export services, on raw bytes.

Strategy: a generic handler with no deserializer hands the request bytes straight to the
pipeline (one decode, in the codec), and the answer goes back as bytes the codec made.
gRPC itself enforces --max-request-bytes on the message as sent (RESOURCE_EXHAUSTED), the
codec on it decompressed, and grpc answers UNIMPLEMENTED for unknown methods.

Hostile clients: the Export methods are registered as client-streaming, though clients
call them unary (the wire is the same), so the handler runs when the call's headers
arrive, not when (if ever) its message does. It is admitted then, before grpc reads the
message, for the largest message (grpc shows no size before the message is whole; the
admission slot is resized to the decompressed size once it is), and reads exactly one
message within --body-timeout: a call that ends with no message, or with two, is
INVALID_ARGUMENT; one whose message stalls is DEADLINE_EXCEEDED and cancelled, which frees
what grpc buffered of it. (grpc's unary path would never answer a call without a message
and would buffer a stalled one for ever.) Per connection, HTTP/2 limits the rest:
--max-concurrent-streams (more are refused with REFUSED_STREAM, which gRPC clients see as
UNAVAILABLE and retry), --idle-timeout (GOAWAY to a connection with no call),
--max-connections, keepalive ping enforcement (a ping flood is answered GOAWAY
ENHANCE_YOUR_CALM). A client that cancels is counted CANCELLED. Errors become a status
with google.rpc.Status details (RetryInfo for retryable ones) in
``grpc-status-details-bin``, as OTLP/gRPC specifies; retryable ones repeat the RetryInfo
in ``google.rpc.retryinfo-bin``, where the OTel Python SDK looks for it. Status details
are the RequestError's message, which quotes nothing of the request (errors.py); grpc's
own answers (unknown method, size limit) are fixed text too.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import NoReturn

import grpc
from google.rpc.error_details_pb2 import RetryInfo

from redact_proxy import codec
from redact_proxy.codec import Format
from redact_proxy.errors import OUTCOMES, ClientGone, MalformedRequest, ReadTimeout, RequestError, StartupError
from redact_proxy.pipeline import Pipeline
from redact_proxy.receivers import answerable, check_token, receive, server_ssl_context, status_message
from redact_proxy.settings import Settings
from redact_proxy.signals import ALL, Signal, Transport

log = logging.getLogger("redact_proxy")

RETRY_INFO_KEY = "google.rpc.retryinfo-bin"
CANCELLED = OUTCOMES[ClientGone].grpc_code.name  # the code a cancelled call is counted as


class GrpcReceiver:
    def __init__(self, settings: Settings, pipeline: Pipeline):
        self.settings = settings
        self.pipeline = pipeline
        self.server: grpc.aio.Server | None = None
        self.port: int | None = None
        self._inflate_thread = ThreadPoolExecutor(1, thread_name_prefix="redact-inflate-grpc")

    async def start(self) -> None:
        s = self.settings
        self.server = grpc.aio.server(options=server_options(s))
        services: dict[str, dict] = {}
        for signal in ALL:
            service, _, method = signal.grpc_method.strip("/").partition("/")
            services.setdefault(service, {})[method] = grpc.stream_unary_rpc_method_handler(
                self._handler(signal), request_deserializer=None, response_serializer=None
            )
        self.server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler(name, methods) for name, methods in services.items()]
        )
        listen = s.grpc_listen
        assert listen is not None, "the service starts this receiver only with --grpc-listen"
        address = str(listen)
        _probe_bind(listen.host, listen.port, address, s.reuse_port)
        try:
            if server_ssl_context(s) is not None:  # checks the files first: one clear error if unusable
                assert s.tls_key is not None and s.tls_cert is not None, "settings require both"
                creds = grpc.ssl_server_credentials(
                    [(s.tls_key.read_bytes(), s.tls_cert.read_bytes())],
                    root_certificates=s.tls_client_ca.read_bytes() if s.tls_client_ca else None,
                    require_client_auth=s.tls_client_ca is not None,
                )
                self.port = self.server.add_secure_port(address, creds)
            else:
                self.port = self.server.add_insecure_port(address)
            await self.server.start()
        except OSError as exc:  # a TLS file gone since it was checked
            raise StartupError.from_os(exc) from exc
        except RuntimeError as exc:  # grpc's own "Failed to bind", past the probe
            raise StartupError(f"--grpc-listen {address}: {exc}") from exc

    async def stop(self, grace: float) -> None:
        if self.server is not None:
            await self.server.stop(grace)
        self._inflate_thread.shutdown(wait=False, cancel_futures=True)

    def _handler(self, signal: Signal):
        pipeline = self.pipeline
        telemetry = pipeline.telemetry
        handles = telemetry.signal(signal, Transport.GRPC)
        token = self.settings.auth_token
        # The largest message, its size unknown until grpc has it whole.
        reserve = (self.settings.max_request_bytes, False)
        body_timeout = self.settings.body_timeout
        # Not ``self``: the server holds this handler, and a handler holding the receiver
        # (which holds the server) is a cycle that outlives the loop when start-up fails.
        inflate_thread = self._inflate_thread

        async def export(_requests, context: grpc.aio.ServicerContext) -> bytes:
            started = time.perf_counter()
            # Unless an answer is made, the client cancelled (or went away) or shutdown cut
            # the call (asyncio.CancelledError): nobody hears one; counted, not logged.
            code = CANCELLED
            try:
                if token is not None:
                    check_token(token, dict(context.invocation_metadata() or ()).get("authorization"))
                response = await receive(
                    pipeline,
                    signal,
                    Transport.GRPC,
                    codec.GRPC_MESSAGE,
                    reserve,
                    lambda: _one_message(context, body_timeout),
                    reserve[0],
                    inflate_thread,
                )
                answer = codec.encode(response, Format.PROTOBUF)
                code = "OK"
                return answer
            except Exception as exc:
                error = answerable(exc, signal)
                code = error.outcome().grpc_code.name
            finally:
                telemetry.request_answered(signal, Transport.GRPC, code)
                handles.request_duration.observe(time.perf_counter() - started)
            await _abort(context, error)

        return export


async def _abort(context: grpc.aio.ServicerContext, error: RequestError) -> NoReturn:
    """End the call with the error's status, its google.rpc.Status in the trailers."""
    outcome = error.outcome()
    status = status_message(error, outcome)
    trailing = [("grpc-status-details-bin", codec.encode(status, Format.PROTOBUF))]
    # The same RetryInfo again under the key the OTel Python SDK's exporter reads
    # (it ignores the status details): without it that client backs off blindly.
    trailing += [(RETRY_INFO_KEY, d.value) for d in status.details if d.Is(RetryInfo.DESCRIPTOR)]
    await context.abort(outcome.grpc_code, str(error), trailing_metadata=tuple(trailing))
    raise AssertionError("context.abort returned")  # it raises: the call ends there


def server_options(s: Settings) -> list[tuple[str, int]]:
    """grpc core's channel arguments for the receiver: its per-connection limits."""
    return [
        ("grpc.max_receive_message_length", s.max_request_bytes),
        ("grpc.max_send_message_length", 16 * 1024 * 1024),
        # Messages reach the handler as sent; codec.decompress_grpc inflates them with the
        # size ceiling, so a bomb is RESOURCE_EXHAUSTED and a corrupt stream
        # INVALID_ARGUMENT (grpc's own decompression answers both INTERNAL).
        ("grpc.per_message_decompression", 0),
        # SETTINGS_MAX_CONCURRENT_STREAMS: streams past it are refused by the transport
        # (REFUSED_STREAM, retried by clients) before any handler runs, and a rapid-reset
        # client can keep no more than this many handlers busy per connection.
        ("grpc.max_concurrent_streams", s.max_concurrent_streams),
        ("grpc.max_allowed_incoming_connections", s.max_connections),
        # GOAWAY to connections without a call for this long (OTLP clients reconnect).
        ("grpc.max_connection_idle_ms", int(s.idle_timeout * 1000)),
        # Keepalive enforcement: a client may ping at most every 10 s while it has no
        # call in flight; two strikes and it gets GOAWAY (ENHANCE_YOUR_CALM). The SDKs'
        # keepalive settings (30 s and up, or off) stay well inside it.
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_ping_strikes", 2),
        ("grpc.keepalive_permit_without_calls", 0),
        # Check half-open connections of silent clients every minute (20 s to answer).
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 20_000),
        # On only for --workers (the kernel spreads connections over the workers); off
        # otherwise, so a second proxy on the same port fails instead of sharing it.
        ("grpc.so_reuseport", 1 if s.reuse_port else 0),
    ]


async def _one_message(context: grpc.aio.ServicerContext, timeout: float) -> bytes:
    """The call's one request message, then its end: a unary call, whatever the client
    claims. MalformedRequest for none or more than one, ReadTimeout past ``timeout``."""
    try:
        async with asyncio.timeout(timeout):
            message = await context.read()
            if message is grpc.aio.EOF:
                raise MalformedRequest("the call ended without a request message")
            if await context.read() is not grpc.aio.EOF:
                raise MalformedRequest("more than one request message in a unary call")
    except TimeoutError as exc:
        raise ReadTimeout(f"request message not received within --body-timeout ({timeout:g}s)") from exc
    return message


def _probe_bind(host: str, port: int, address: str, reuse_port: bool) -> None:
    """Bind the address once with a plain socket, so a taken port is one clear
    StartupError naming it (grpc's own failure is a bare RuntimeError plus a C-core log
    line)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as grpc does: TIME_WAIT is no conflict
        if reuse_port:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise StartupError.from_os(OSError(exc.errno, f"--grpc-listen {address}: {exc.strerror}")) from exc
