"""OTLP/HTTP receiver: ``POST /v1/traces|metrics|logs``, protobuf or OTLP-JSON.

Strategy: aiohttp's own request-body decompression is switched off (``auto_decompress=
False``), so the body is read exactly once as sent and inflated exactly once, by the
codec, with the size ceiling. The compressed body is read with a ceiling of its own:
a body larger than the limit cannot inflate to less than the limit (deflate and zstd never
shrink by more than their framing), so nothing larger is ever buffered. The answer uses
the request's content type; errors carry a google.rpc.Status body and, when retryable, a
Retry-After header (OTLP/HTTP "Failures" and "Throttling").

Hostile clients: a request is admitted (pipeline.Slot, via ``receivers.receive``) before
its body is read, for its Content-Length (for the largest body when chunked), so a refused
one costs no reading and stalled uploads hold budget, not memory; the body must arrive
within --body-timeout (else 408 and the connection is closed), the headers within
--header-timeout of their first byte, and a connection with no request in progress lives
--idle-timeout. At most --max-connections are open: a new one replaces the oldest idle one
(a slowloris is always idle: its headers never complete), or is closed at once when all
are busy. Compressed bodies of 64 KiB and more are inflated on a thread of their own. A
client that goes away first is counted 499 (errors.ClientGone), not as a failure of ours.

A request aiohttp cannot parse never reaches a handler: aiohttp answers it itself, with a
page built from the parser's exception, which quotes the offending request bytes. Both
HTTP ports therefore run on ``FixedErrorRunner``, whose connections answer such a request
(and any handler crash) with the status line's own words only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler, _ErrInfo

from redact_proxy import codec
from redact_proxy.codec import Format
from redact_proxy.errors import (
    CLIENT_CLOSED_REQUEST,
    ClientGone,
    MalformedRequest,
    ReadTimeout,
    RequestError,
    RequestTooLarge,
    StartupError,
    retry_after_header,
)
from redact_proxy.pipeline import Pipeline
from redact_proxy.receivers import answerable, check_token, receive, server_ssl_context, status_message
from redact_proxy.settings import Settings
from redact_proxy.signals import ALL, Signal, Transport

log = logging.getLogger("redact_proxy")

_READ_CHUNK = 64 * 1024


class HttpReceiver:
    def __init__(self, settings: Settings, pipeline: Pipeline):
        self.settings = settings
        self.pipeline = pipeline
        self.runner: web.AppRunner | None = None
        # Compressed bodies may be slightly larger than what they inflate to (framing).
        self.wire_limit = settings.max_request_bytes + settings.max_request_bytes // 64 + 1024
        self.body_timeout = settings.body_timeout
        # Inflating is CPU-bound (codec.decompress: linear, up to --max-request-bytes out).
        # One thread: at most one inflated body at a time is not yet admitted by its size.
        self._inflate_thread = ThreadPoolExecutor(1, thread_name_prefix="redact-inflate")

    def app(self) -> web.Application:
        app = web.Application()
        for signal in ALL:
            app.router.add_post(signal.http_path, self._handler(signal))
        return app

    async def start(self) -> None:
        s = self.settings
        # shutdown_timeout: aiohttp's own default (60 s) would outlast --shutdown-grace;
        # in-flight requests get the grace, then are cut, as on the gRPC receiver.
        # keepalive_timeout is aiohttp's idle timer: it closes a connection whose next
        # request has not been parsed that long after the last answer (or the connect).
        self.runner = FixedErrorRunner(
            self.app(),
            auto_decompress=False,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=s.shutdown_grace,
            keepalive_timeout=s.idle_timeout,
            connections=ConnectionGuard(s.max_connections),
            header_timeout=s.header_timeout,
        )
        await self.runner.setup()
        listen = s.http_listen
        assert listen is not None, "the service starts this receiver only with --http-listen"
        site = web.TCPSite(
            self.runner,
            listen.host,
            listen.port,
            ssl_context=server_ssl_context(s),
            reuse_port=s.reuse_port,
            backlog=1024,
        )
        await start_site(site)

    async def stop(self, grace: float) -> None:
        if self.runner is not None:
            await self.runner.shutdown()
            await self.runner.cleanup()
        self._inflate_thread.shutdown(wait=False, cancel_futures=True)

    def _reservation(self, request: web.Request) -> tuple[int, bool]:
        """What admission reserves for this body before it is read: its Content-Length, or
        (chunked) the most it may be, the size unknown until it is read."""
        declared = request.content_length
        if declared is None:
            return self.wire_limit, False
        if declared > self.wire_limit:
            raise RequestTooLarge(f"request body exceeds --max-request-bytes ({self.settings.max_request_bytes})")
        return declared, True

    async def _read(self, request: web.Request) -> bytes:
        body = bytearray()
        try:
            async with asyncio.timeout(self.body_timeout):
                async for chunk in request.content.iter_chunked(_READ_CHUNK):
                    body += chunk
                    if len(body) > self.wire_limit:
                        raise RequestTooLarge(
                            f"request body exceeds --max-request-bytes ({self.settings.max_request_bytes})"
                        )
        except TimeoutError as exc:
            raise ReadTimeout(f"request body not received within --body-timeout ({self.body_timeout:g}s)") from exc
        except ConnectionError as exc:  # aiohttp's "Connection lost", set on the payload
            raise ClientGone("client closed the connection before its request was read") from exc
        except HttpProcessingError as exc:  # e.g. a chunk-size line that is not hex
            raise MalformedRequest("malformed request body framing") from exc
        return bytes(body)

    def _handler(self, signal: Signal):
        pipeline = self.pipeline
        telemetry = pipeline.telemetry
        handles = telemetry.signal(signal, Transport.HTTP)
        token = self.settings.auth_token
        limit = self.settings.max_request_bytes
        inflate_thread = self._inflate_thread

        async def export(request: web.Request) -> web.Response:
            started = time.perf_counter()
            content_type = request.headers.get("Content-Type")
            fmt = codec.answer_format(content_type)
            try:
                # Authentication first: a client without the token learns nothing else.
                check_token(token, request.headers.get("Authorization"))
                envelope = codec.Envelope.of(content_type, request.headers.get("Content-Encoding"))
                response = await receive(
                    pipeline,
                    signal,
                    Transport.HTTP,
                    envelope,
                    self._reservation(request),
                    lambda: self._read(request),
                    limit,
                    inflate_thread,
                )
                answer = web.Response(body=codec.encode(response, fmt), content_type=fmt.content_type)
            except Exception as exc:
                answer = _error_response(answerable(exc, signal), fmt)
            code = str(answer.status)
            if request.transport is None or request.transport.is_closing():
                code = str(CLIENT_CLOSED_REQUEST)  # nobody left to hear it
            telemetry.request_answered(signal, Transport.HTTP, code)
            handles.request_duration.observe(time.perf_counter() - started)
            return answer

        return export


async def start_site(site: web.TCPSite) -> None:
    """Listen; a port that cannot be bound (taken, no permission) is a StartupError in
    the OS's words, which name the address."""
    try:
        await site.start()
    except OSError as exc:
        raise StartupError.from_os(exc) from exc


def _error_response(exc: RequestError, fmt: Format) -> web.Response:
    outcome = exc.outcome()
    headers = {}
    retry_after = retry_after_header(exc, outcome)
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    body = codec.encode(status_message(exc, outcome), fmt)
    answer = web.Response(status=outcome.http_status, body=body, content_type=fmt.content_type, headers=headers)
    if isinstance(exc, (ReadTimeout, ClientGone)) or (
        isinstance(exc, MalformedRequest) and isinstance(exc.__cause__, HttpProcessingError)
    ):
        # The rest of the body is late, gone or unframeable: this connection cannot
        # carry another request.
        answer.force_close()
    return answer


# --- aiohttp's own answers ----------------------------------------------------------------

# The status of an answer to a request aiohttp's parser refused, along the class hierarchy
# (first match wins). LineTooLong does not say whether the request line or a header
# overflowed; a header is the usual culprit (tracestate, baggage, cookies), hence 431.
_PARSER_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (LineTooLong, HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE),
    (HttpProcessingError, HTTPStatus.BAD_REQUEST),
)


class ConnectionGuard:
    """The open connections of one HTTP port, oldest first, at most ``cap`` of them."""

    def __init__(self, cap: int):
        self.cap = cap
        self.open: dict[_FixedErrorHandler, None] = {}  # insertion order: oldest first

    def opened(self, conn: "_FixedErrorHandler") -> bool:
        """Make room for ``conn``; False if there is none (every connection is busy)."""
        if len(self.open) >= self.cap:
            # Evicting an idle connection costs its client a reconnect; refusing the new
            # one would let the slowest clients (a slowloris is idle forever) lock
            # everyone else out.
            victim = next((c for c in self.open if c.idle()), None)
            if victim is None:
                log.warning("HTTP connection refused: --max-connections (%d) open, all busy", self.cap)
                return False
            log.debug("HTTP connection closed to make room: --max-connections (%d) open", self.cap)
            self.closed(victim)
            victim.force_close()
        self.open[conn] = None
        return True

    def closed(self, conn: "_FixedErrorHandler") -> None:
        self.open.pop(conn, None)


class _FixedErrorHandler(RequestHandler):
    """aiohttp's connection protocol, answering errors with fixed text. aiohttp's own
    ``handle_error`` puts the parser's exception text (which quotes the request line or
    header it choked on) in the 400 page, and a traceback in the 500 page when asyncio
    debug is on; its HTTP exceptions may quote the request too ("Unknown Expect: <the
    header>", raised before routing, so no route option or middleware can catch it).
    Log lines keep the exception's class only.

    It also enforces the receiver's connection limits (when its server has them): the
    --max-connections cap (``ConnectionGuard``) and --header-timeout, counted from the
    first byte of a request until its headers are parsed. aiohttp has no header timeout
    of its own: its keep-alive timer (--idle-timeout) runs from the connect or the last
    answer, and a trickle of header bytes would restart nothing but also end nothing."""

    __slots__ = ("_guard", "_header_timeout", "_header_timer")

    def connection_made(self, transport) -> None:
        self._guard: ConnectionGuard | None = getattr(self._manager, "guard", None)
        self._header_timeout: float | None = getattr(self._manager, "header_timeout", None)
        self._header_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        if self._guard is not None and not self._guard.opened(self):
            self._guard = None
            self.force_close()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._guard is not None:
            self._guard.closed(self)
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)

    def idle(self) -> bool:
        """Waiting for a request: between requests, or while one's headers trickle in."""
        return self._waiter is not None and not self._waiter.done()

    def data_received(self, data: bytes) -> None:
        if data and self._header_timer is None and self._header_timeout and self.idle():
            self._header_timer = self._loop.call_later(self._header_timeout, self._header_timed_out)
        current = self._current_request
        super().data_received(data)
        if self._messages:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None
            err = self._messages[-1][0]
            if current is not None and isinstance(err, _ErrInfo):
                # The parser choked on the body of the request being handled (a chunk-size
                # line that is not hex, in a later packet than the headers): aiohttp
                # queues that as the next request's error and leaves this one's body
                # waiting forever. Fail the body read instead: the handler answers 400.
                current._cancel(err.exc)

    def log_exception(self, *args, **kw) -> None:
        # A body the parser refused (see data_received) was answered 400 already; aiohttp
        # meets the same exception again while draining the rest, and would log it as
        # an unhandled error.
        if isinstance(kw.get("exc_info"), HttpProcessingError):
            log.debug("HTTP request body refused by the parser (%s)", kw["exc_info"].__class__.__name__)
            return
        super().log_exception(*args, **kw)

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if self.idle():  # else a request arrived meanwhile: it is the handler's now
            log.debug("HTTP connection closed: headers not received within --header-timeout")
            self.force_close()

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        # An HTTPError here is aiohttp's own (404, 405, 417, ...): our handlers return
        # their error answers, they never raise them.
        if isinstance(resp, web.HTTPError):
            allow = resp.headers.get("Allow")  # 405: the methods the route takes, no content
            resp = web.Response(
                status=resp.status,
                text=_fixed_text(resp.status),
                headers={"Allow": allow} if allow is not None else None,
            )
        return await super().finish_response(request, resp, start_time)

    def handle_error(
        self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        status = next((s for cls, s in _PARSER_STATUS if isinstance(exc, cls)), status)
        reason = exc.__class__.__name__ if exc is not None else "timeout"
        if status >= 500:
            log.error("HTTP request failed outside its handler (%s)", reason)
        else:
            log.debug("HTTP request refused by the parser (%s)", reason)
        if request.writer.output_size > 0:
            # As aiohttp's own: part of an answer is out, no error answer can follow.
            raise ConnectionError("response already started; cannot send an error answer")
        response = web.Response(status=status, text=_fixed_text(status))
        response.force_close()
        return response


def _fixed_text(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}\n"
    except ValueError:  # not a registered status: its number alone
        return f"{status}\n"


class _FixedErrorServer(web.Server):
    guard: ConnectionGuard | None = None
    header_timeout: float | None = None

    def __call__(self) -> RequestHandler:
        return _FixedErrorHandler(self, loop=self._loop, **self._kwargs)


class FixedErrorRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer errors with fixed text (aiohttp has no
    public hook for the answer to a request its parser refuses: aio-libs/aiohttp#3287)
    and, when given them, keep to a connection cap and a header timeout."""

    def __init__(
        self,
        app: web.Application,
        *,
        connections: ConnectionGuard | None = None,
        header_timeout: float | None = None,
        **kwargs,
    ):
        super().__init__(app, **kwargs)
        self._limits = (connections, header_timeout)

    async def _make_server(self) -> web.Server:
        # aiohttp's own server first (it runs the app's startup and applies handler_args),
        # then the same one with our protocol. This leans on aiohttp internals that no
        # public API replaces; tests/integration/test_no_echo.py fails if they change.
        server = await super()._make_server()
        ours = _FixedErrorServer(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            **server._kwargs,
        )
        ours.guard, ours.header_timeout = self._limits
        return ours
