"""OTLP/gRPC receiver: the three Export services, on raw bytes.

Strategy: a generic handler with no deserializer hands the request bytes straight to the
pipeline (one decode, in the codec), and the answer goes back as bytes. gRPC itself
enforces --max-request-bytes on the decompressed message (RESOURCE_EXHAUSTED) and answers
UNIMPLEMENTED for unknown methods. Errors become a status with google.rpc.Status details
(RetryInfo for retryable ones) in ``grpc-status-details-bin``, as OTLP/gRPC specifies;
retryable ones repeat the RetryInfo in ``google.rpc.retryinfo-bin``, where the OTel Python
SDK looks for it. Status details are the RequestError's message, which quotes nothing of
the request (errors.py); grpc's own answers (unknown method, size limit) are fixed text too.
"""

from __future__ import annotations

import logging
import socket
import time

import grpc
from google.rpc.error_details_pb2 import RetryInfo

from redact_proxy.codec import Format
from redact_proxy.errors import RedactionFailed, RequestError
from redact_proxy.pipeline import Pipeline
from redact_proxy.receivers import check_token, server_ssl_context, status_message
from redact_proxy.settings import Settings
from redact_proxy.signals import ALL, Signal
from redact_proxy.workers import is_worker

log = logging.getLogger("redact_proxy")

RETRY_INFO_KEY = "google.rpc.retryinfo-bin"


class GrpcReceiver:
    def __init__(self, settings: Settings, pipeline: Pipeline):
        self.settings = settings
        self.pipeline = pipeline
        self.server: grpc.aio.Server | None = None
        self.port: int | None = None

    async def start(self) -> None:
        s = self.settings
        self.server = grpc.aio.server(options=[
            ("grpc.max_receive_message_length", s.max_request_bytes),
            ("grpc.max_send_message_length", 16 * 1024 * 1024),
            # On only for --workers (the kernel spreads connections over the workers); off
            # otherwise, so a second proxy on the same port fails instead of sharing it.
            ("grpc.so_reuseport", 1 if is_worker() else 0),
        ])
        services: dict[str, dict] = {}
        for signal in ALL:
            service, _, method = signal.grpc_method.strip("/").partition("/")
            services.setdefault(service, {})[method] = grpc.unary_unary_rpc_method_handler(
                self._handler(signal), request_deserializer=None, response_serializer=None
            )
        self.server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler(name, methods) for name, methods in services.items()]
        )
        address = str(s.grpc_listen)
        _probe_bind(s.grpc_listen.host, s.grpc_listen.port, address)
        if server_ssl_context(s) is not None:  # checks the files first: one clear error if unusable
            creds = grpc.ssl_server_credentials(
                [(s.tls_key.read_bytes(), s.tls_cert.read_bytes())],
                root_certificates=s.tls_client_ca.read_bytes() if s.tls_client_ca else None,
                require_client_auth=s.tls_client_ca is not None,
            )
            self.port = self.server.add_secure_port(address, creds)
        else:
            self.port = self.server.add_insecure_port(address)
        await self.server.start()

    async def stop(self, grace: float) -> None:
        if self.server is not None:
            await self.server.stop(grace)

    def _handler(self, signal: Signal):
        pipeline = self.pipeline
        telemetry = pipeline.telemetry
        handles = telemetry.signal(signal.name, "grpc")
        token = self.settings.auth_token

        async def export(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            started = time.perf_counter()
            try:
                if token is not None:
                    check_token(token, dict(context.invocation_metadata() or ()).get("authorization"))
                response = await pipeline.export(signal, "grpc", request, Format.PROTOBUF)
                answer = response.SerializeToString()
                code = "OK"
            except RequestError as exc:
                error = exc
            except Exception as exc:  # a bug must not leave the client hanging
                # Class name only: exception texts of lower libraries may quote content.
                log.error("unexpected error handling a %s export (%s)", signal.name, exc.__class__.__name__)
                error = RedactionFailed("internal error; the batch was not forwarded")
            else:
                telemetry.request_answered(signal.name, "grpc", code)
                handles.request_duration.observe(time.perf_counter() - started)
                return answer
            outcome = error.outcome()
            telemetry.request_answered(signal.name, "grpc", outcome.grpc_code.name)
            handles.request_duration.observe(time.perf_counter() - started)
            status = status_message(error, outcome)
            trailing = [("grpc-status-details-bin", status.SerializeToString())]
            # The same RetryInfo again under the key the OTel Python SDK's exporter reads
            # (it ignores the status details): without it that client backs off blindly.
            trailing += [(RETRY_INFO_KEY, d.value) for d in status.details if d.Is(RetryInfo.DESCRIPTOR)]
            await context.abort(outcome.grpc_code, str(error), trailing_metadata=tuple(trailing))

        return export


def _probe_bind(host: str, port: int, address: str) -> None:
    """Bind the address once with a plain socket, so a taken port is one clear OSError
    naming it (grpc's own failure is a bare RuntimeError plus a C-core log line)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as grpc does: TIME_WAIT is no conflict
        if is_worker():
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise OSError(exc.errno, f"--grpc-listen {address}: {exc.strerror}") from exc
