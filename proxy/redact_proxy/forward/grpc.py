"""Forward to an OTLP/gRPC upstream (``grpc://``, ``grpcs://``) over one reused channel.

Bytes go out as the codec made them (no serializer): an unchanged batch is its original
bytes.
gRPC status codes map per the OTLP spec: retryable codes become UNAVAILABLE for our
client, RESOURCE_EXHAUSTED stays a throttle, anything else is upstream's verdict passed on.
A ``RetryInfo`` delay from upstream is carried through, clamped (errors.retry_hint).

Upstream's answer is not trusted: the channel takes at most MAX_RESPONSE_BYTES of it,
after decompression (gRPC checks the inflated size, so a compressed bomb stops there).
A bigger answer is no usable answer, like one that never came: UNAVAILABLE / 503 with a
retry hint, counted as ``response_too_large``.
"""

from __future__ import annotations

import grpc
from google.protobuf.message import Message

from redact_proxy import codec
from redact_proxy.codec import Batch, Format
from redact_proxy.errors import (
    GRPC_TO_HTTP,
    RETRYABLE_GRPC_CODES,
    StartupError,
    UpstreamRejected,
    UpstreamThrottled,
    UpstreamUnavailable,
)
from redact_proxy.forward.http import MAX_RESPONSE_BYTES, upstream_ssl_context
from redact_proxy.settings import Settings
from redact_proxy.signals import ALL, Signal


class GrpcForwarder:
    def __init__(self, settings: Settings):
        up = settings.upstream
        self.target = up.target
        self.timeout = settings.upstream_timeout
        self.metadata = tuple(up.headers)
        self.compression = grpc.Compression.Gzip if up.compression == "gzip" else grpc.Compression.NoCompression
        self.settings = settings
        # Made by start(), on the running loop.
        self.credentials: grpc.ChannelCredentials | None = None
        self.channel: grpc.aio.Channel | None = None
        self.calls: dict[Signal, grpc.aio.UnaryUnaryMultiCallable] = {}

    async def start(self) -> None:
        s = self.settings
        if s.upstream.tls:
            # grpc takes any bytes here and fails every connection later: the files are
            # checked first, so an unusable one stops the start-up with a clear line.
            upstream_ssl_context(s)
            read = lambda p: p.read_bytes() if p else None  # noqa: E731
            try:
                self.credentials = grpc.ssl_channel_credentials(
                    root_certificates=read(s.upstream_ca),
                    private_key=read(s.upstream_key),
                    certificate_chain=read(s.upstream_cert),
                )
            except OSError as exc:  # a file gone since it was checked
                raise StartupError.from_os(exc) from exc
        # The channel belongs to the running loop, so it is made here and not in __init__.
        options = [
            ("grpc.max_send_message_length", -1),
            ("grpc.max_receive_message_length", MAX_RESPONSE_BYTES),
            # A dead peer is noticed and the channel reconnects on its own.
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            # While upstream is down every forward fails fast (UNAVAILABLE to our client,
            # which retries); once it is back the channel must find out within a second.
            # grpc's default backoff grows to 120 s, i.e. minutes of 503s after the
            # collector restarted.
            ("grpc.initial_reconnect_backoff_ms", 250),
            ("grpc.max_reconnect_backoff_ms", 1_000),
        ]
        if self.credentials is None:
            channel = grpc.aio.insecure_channel(self.target, options=options)
        else:
            channel = grpc.aio.secure_channel(self.target, self.credentials, options=options)
        self.channel = channel
        self.calls = {
            s: channel.unary_unary(s.grpc_method, request_serializer=None, response_deserializer=None) for s in ALL
        }

    def wire_format(self, fmt: Format) -> Format:
        return Format.PROTOBUF

    async def forward(self, batch: Batch) -> Message:
        call = self.calls[batch.signal]
        try:
            raw = await call(
                batch.encoded(Format.PROTOBUF),
                timeout=self.timeout,
                metadata=self.metadata,
                compression=self.compression,
            )
        except grpc.aio.AioRpcError as exc:
            raise _map_error(exc) from exc
        # grpc inflated it within grpc.max_receive_message_length; unreadable: accepted,
        # with no partial success to pass on.
        return codec.read_response(batch.signal, raw, Format.PROTOBUF.content_type, None, MAX_RESPONSE_BYTES)

    async def close(self) -> None:
        if self.channel is not None:
            await self.channel.close()


# grpc's own words when an answer is over grpc.max_receive_message_length (1.85: "Stream
# removed (CLIENT: Received message larger than max (N vs. M))"): the status is made on
# our side of the channel, it is not upstream's throttle.
_TOO_LARGE = "Received message larger than max"
_MAX_DETAILS = 256  # characters of upstream's status message passed on


def _map_error(exc: grpc.aio.AioRpcError) -> Exception:
    code = exc.code()
    details = exc.details() or ""
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED and _TOO_LARGE in details:
        return UpstreamUnavailable(
            f"upstream answered with more than {MAX_RESPONSE_BYTES} bytes", code="response_too_large"
        )
    message = f"upstream answered {code.name}"
    if details:
        message += f": {details[:_MAX_DETAILS]}"
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        delay = _retry_delay(exc)
        if delay is None:  # OTLP: without RetryInfo, RESOURCE_EXHAUSTED is not retryable
            return UpstreamRejected(message, code, 429, code.name)
        return UpstreamThrottled(message, delay, code=code.name)
    if code in RETRYABLE_GRPC_CODES:
        label = "timeout" if code is grpc.StatusCode.DEADLINE_EXCEEDED else code.name
        return UpstreamUnavailable(message, _retry_delay(exc), code=label)
    return UpstreamRejected(message, code, GRPC_TO_HTTP.get(code, 500), code.name)


def _retry_delay(exc: grpc.aio.AioRpcError) -> float | None:
    """Seconds from a google.rpc.RetryInfo in the status details, if upstream sent one."""
    for key, value in exc.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            return codec.retry_delay(value)
    return None
