"""OTLP/HTTP receiver: ``POST /v1/traces|metrics|logs``, protobuf or OTLP-JSON.

Strategy: aiohttp's own request-body decompression is switched off (``auto_decompress=
False``), so the body is read exactly once as sent and inflated exactly once, by the
codec, with the size ceiling. The compressed body is read with a ceiling of its own:
a body larger than the limit cannot inflate to less than the limit (deflate and zstd never
shrink by more than their framing), so nothing larger is ever buffered. The answer uses
the request's content type; errors carry a google.rpc.Status body and, when retryable, a
Retry-After header (OTLP/HTTP "Failures" and "Throttling"). Under overload a request is
refused before its body is read (the pipeline admits it again, by its decompressed size).

A request aiohttp cannot parse never reaches a handler: aiohttp answers it itself, with a
page built from the parser's exception, which quotes the offending request bytes. Both
HTTP ports therefore run on ``FixedErrorRunner``, whose connections answer such a request
(and any handler crash) with the status line's own words only.
"""

from __future__ import annotations

import logging
import math
import time
from http import HTTPStatus

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler

from redact_proxy import codec
from redact_proxy.codec import Format
from redact_proxy.errors import RedactionFailed, RequestError, RequestTooLarge, UnsupportedMediaType
from redact_proxy.pipeline import Pipeline
from redact_proxy.receivers import check_token, server_ssl_context, status_message
from redact_proxy.settings import Settings
from redact_proxy.signals import ALL, Signal
from redact_proxy.workers import is_worker

log = logging.getLogger("redact_proxy")

_READ_CHUNK = 64 * 1024


class HttpReceiver:
    def __init__(self, settings: Settings, pipeline: Pipeline):
        self.settings = settings
        self.pipeline = pipeline
        self.runner: web.AppRunner | None = None
        # Compressed bodies may be slightly larger than what they inflate to (framing).
        self.wire_limit = settings.max_request_bytes + settings.max_request_bytes // 64 + 1024

    def app(self) -> web.Application:
        app = web.Application()
        for signal in ALL:
            app.router.add_post(signal.http_path, self._handler(signal))
        return app

    async def start(self) -> None:
        s = self.settings
        # shutdown_timeout: aiohttp's own default (60 s) would outlast --shutdown-grace;
        # in-flight requests get the grace, then are cut, as on the gRPC receiver.
        self.runner = FixedErrorRunner(
            self.app(), auto_decompress=False, access_log=None, handle_signals=False,
            shutdown_timeout=s.shutdown_grace,
        )
        await self.runner.setup()
        site = web.TCPSite(
            self.runner, s.http_listen.host, s.http_listen.port,
            ssl_context=server_ssl_context(s), reuse_port=is_worker(), backlog=1024,
        )
        await site.start()

    async def stop(self, grace: float) -> None:
        if self.runner is not None:
            await self.runner.shutdown()
            await self.runner.cleanup()

    async def _read(self, request: web.Request) -> bytes:
        declared = request.content_length
        if declared is not None and declared > self.wire_limit:
            raise RequestTooLarge(f"request body exceeds --max-request-bytes ({self.settings.max_request_bytes})")
        body = bytearray()
        async for chunk in request.content.iter_chunked(_READ_CHUNK):
            body += chunk
            if len(body) > self.wire_limit:
                raise RequestTooLarge(f"request body exceeds --max-request-bytes ({self.settings.max_request_bytes})")
        return bytes(body)

    def _handler(self, signal: Signal):
        pipeline = self.pipeline
        telemetry = pipeline.telemetry
        handles = telemetry.signal(signal.name, "http")
        token = self.settings.auth_token
        limit = self.settings.max_request_bytes

        async def export(request: web.Request) -> web.Response:
            started = time.perf_counter()
            content_type = request.headers.get("Content-Type") or ""
            # The answer's format, before the request's is validated: an error answers
            # a JSON client in JSON.
            fmt = Format.JSON if "json" in content_type.lower() else Format.PROTOBUF
            try:
                # Authentication first: a client without the token learns nothing else.
                check_token(token, request.headers.get("Authorization"))
                fmt = codec.format_for(content_type)
                encoding = request.headers.get("Content-Encoding")
                if (encoding or "identity").strip().lower() not in codec.SUPPORTED_ENCODINGS + ("x-gzip",):
                    raise UnsupportedMediaType(
                        f"unsupported Content-Encoding; supported: {', '.join(codec.SUPPORTED_ENCODINGS)}")
                # Overloaded now: refuse before reading, so shed load costs no body.
                pipeline.admit(request.content_length or 0)
                body = codec.decompress(await self._read(request), encoding, limit)
                response = await pipeline.export(signal, "http", body, fmt)
                answer = web.Response(body=codec.encode(response, fmt), content_type=fmt.content_type)
            except RequestError as exc:
                answer = _error_response(exc, fmt)
            except Exception as exc:  # a bug must not leave the client hanging
                log.error("unexpected error handling a %s export (%s)", signal.name, exc.__class__.__name__)
                answer = _error_response(RedactionFailed("internal error; the batch was not forwarded"), fmt)
            telemetry.request_answered(signal.name, "http", str(answer.status))
            handles.request_duration.observe(time.perf_counter() - started)
            return answer

        return export


def _error_response(exc: RequestError, fmt: Format) -> web.Response:
    outcome = exc.outcome()
    headers = {}
    if outcome.retryable and exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    body = codec.encode(status_message(exc, outcome), fmt)
    return web.Response(status=outcome.http_status, body=body, content_type=fmt.content_type, headers=headers)


# --- aiohttp's own answers ----------------------------------------------------------------

# The status of an answer to a request aiohttp's parser refused, along the class hierarchy
# (first match wins). LineTooLong does not say whether the request line or a header
# overflowed; a header is the usual culprit (tracestate, baggage, cookies), hence 431.
_PARSER_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (LineTooLong, HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE),
    (HttpProcessingError, HTTPStatus.BAD_REQUEST),
)


class _FixedErrorHandler(RequestHandler):
    """aiohttp's connection protocol, answering errors with fixed text. aiohttp's own
    ``handle_error`` puts the parser's exception text (which quotes the request line or
    header it choked on) in the 400 page, and a traceback in the 500 page when asyncio
    debug is on; its HTTP exceptions may quote the request too ("Unknown Expect: <the
    header>", raised before routing, so no route option or middleware can catch it).
    Log lines keep the exception's class only."""

    __slots__ = ()

    async def finish_response(self, request: web.BaseRequest, resp: web.StreamResponse,
                              start_time: float | None) -> tuple[web.StreamResponse, bool]:
        # An HTTPError here is aiohttp's own (404, 405, 417, ...): our handlers return
        # their error answers, they never raise them.
        if isinstance(resp, web.HTTPError):
            allow = resp.headers.get("Allow")  # 405: the methods the route takes, no content
            resp = web.Response(status=resp.status, text=_fixed_text(resp.status),
                                headers={"Allow": allow} if allow is not None else None)
        return await super().finish_response(request, resp, start_time)

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
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
    def __call__(self) -> RequestHandler:
        return _FixedErrorHandler(self, loop=self._loop, **self._kwargs)


class FixedErrorRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer errors with fixed text (aiohttp has no
    public hook for the answer to a request its parser refuses: aio-libs/aiohttp#3287)."""

    async def _make_server(self) -> web.Server:
        # aiohttp's own server first (it runs the app's startup and applies handler_args),
        # then the same one with our protocol. This leans on aiohttp internals that no
        # public API replaces; tests/integration/test_no_echo.py fails if they change.
        server = await super()._make_server()
        return _FixedErrorServer(server.request_handler, request_factory=server.request_factory,
                                 handler_cancellation=server.handler_cancellation, **server._kwargs)
