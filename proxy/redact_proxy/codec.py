"""OTLP bodies in and out: compression, protobuf, OTLP-JSON, with size limits.

Strategy: a request body becomes a ``Batch`` (the decoded export request plus the bytes it
came from) and a ``Batch`` becomes bytes again in whichever encoding the upstream speaks.
An unchanged batch is sent as its original bytes; a changed one is encoded once per
encoding asked for.

Limits: decompression is incremental with a ceiling of ``limit + 1`` output bytes, so a
decompression bomb costs at most ``limit`` bytes of memory before it is refused. OTLP-JSON
is the protobuf JSON mapping with one exception the OTLP spec makes: trace and span ids are
hex, not base64 (opentelemetry-proto docs/specification.md, "JSON Protobuf Encoding").
Error messages name the problem, never the content.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import zlib

import zstandard
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from redact_proxy.errors import MalformedRequest, RequestTooLarge, UnsupportedMediaType
from redact_proxy.signals import Signal


class Format(enum.Enum):
    PROTOBUF = "application/x-protobuf"
    JSON = "application/json"

    @property
    def content_type(self) -> str:
        return self.value


def format_for(content_type: str | None) -> Format:
    """Pick the body format from a Content-Type header (parameters ignored)."""
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime in ("application/x-protobuf", "application/protobuf"):
        return Format.PROTOBUF
    if mime == "application/json":
        return Format.JSON
    raise UnsupportedMediaType(
        "unsupported Content-Type; OTLP/HTTP takes application/x-protobuf or application/json"
    )


# --- compression ----------------------------------------------------------------------

_CHUNK = 64 * 1024
SUPPORTED_ENCODINGS = ("gzip", "deflate", "zstd", "identity")


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo one Content-Encoding, refusing output larger than ``limit`` bytes."""
    enc = (encoding or "identity").strip().lower()
    if enc in ("", "identity"):
        if len(body) > limit:
            raise RequestTooLarge(f"request body exceeds --max-request-bytes ({limit})")
        return body
    if enc in ("gzip", "x-gzip"):
        return _inflate(body, zlib.MAX_WBITS | 16, limit, "gzip")
    if enc == "deflate":
        # RFC 9110 "deflate" is the zlib format; 32 also accepts a gzip header, which
        # some clients send under this name.
        return _inflate(body, zlib.MAX_WBITS | 32, limit, "deflate")
    if enc == "zstd":
        return _unzstd(body, limit)
    raise UnsupportedMediaType(
        f"unsupported Content-Encoding; supported: {', '.join(SUPPORTED_ENCODINGS)}"
    )


def _inflate(body: bytes, wbits: int, limit: int, name: str) -> bytes:
    out = bytearray()
    data = body
    try:
        while True:  # one round per gzip member (RFC 1952 allows several)
            d = zlib.decompressobj(wbits)
            while data:
                out += d.decompress(data, limit + 1 - len(out))
                if len(out) > limit:
                    raise RequestTooLarge(
                        f"decompressed body exceeds --max-request-bytes ({limit})"
                    )
                data = d.unconsumed_tail
            if not d.eof:
                raise MalformedRequest(f"truncated {name} body")
            data = d.unused_data
            if not data:
                return bytes(out)
    except zlib.error as exc:
        raise MalformedRequest(f"corrupt {name} body") from exc


def _unzstd(body: bytes, limit: int) -> bytes:
    try:
        # Pass 1, bounded: how much does it inflate to? (stops at limit + 1 bytes)
        reader = zstandard.ZstdDecompressor().stream_reader(body, read_across_frames=True)
        size = 0
        while size <= limit:
            chunk = reader.read(min(_CHUNK, limit + 1 - size))
            if not chunk:
                break
            size += len(chunk)
        else:
            raise RequestTooLarge(f"decompressed body exceeds --max-request-bytes ({limit})")
        # Pass 2, known to fit: frame by frame, so a cut frame is an error (the stream
        # reader silently returns the prefix it could decode).
        out = bytearray()
        data = body
        while data:
            d = zstandard.ZstdDecompressor().decompressobj()
            out += d.decompress(data)
            if not d.eof:
                raise MalformedRequest("truncated zstd body")
            data = d.unused_data
        return bytes(out)
    except zstandard.ZstdError as exc:
        raise MalformedRequest("corrupt zstd body") from exc


def gzip(data: bytes) -> bytes:
    """gzip for upstream requests (level 6: the collector's and SDKs' default)."""
    c = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    return c.compress(data) + c.flush()


# --- protobuf and OTLP-JSON -------------------------------------------------------------

# JSON member names (both spellings the protobuf JSON mapping accepts) whose value is a
# trace or span id. In OTLP these names occur only as fields of Span, Span.Link,
# LogRecord and Exemplar; attribute keys sit in {"key": ..., "value": ...} objects and
# are never JSON member names, so a walk over every object is exact.
_ID_MEMBERS = frozenset(
    {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}
)


def _convert_ids(tree: object, convert) -> None:
    """Apply ``convert`` to every id member in a JSON tree, iteratively (no recursion
    limit to trip over on hostile nesting)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for name, value in node.items():
                if name in _ID_MEMBERS and isinstance(value, str):
                    node[name] = convert(value)
                elif isinstance(value, (dict, list)):
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, (dict, list)))


def _hex_to_b64(value: str) -> str:
    try:
        return base64.b64encode(binascii.unhexlify(value)).decode("ascii")
    except (binascii.Error, ValueError) as exc:
        raise MalformedRequest("trace/span id is not a hex string") from exc


def _b64_to_hex(value: str) -> str:
    return base64.b64decode(value).hex()


def decode(signal: Signal, data: bytes, fmt: Format) -> Message:
    """An export request from its body. Raises MalformedRequest."""
    return _decode_into(signal.request(), data, fmt)


def decode_response(signal: Signal, data: bytes, fmt: Format) -> Message:
    """An upstream's export response (which may carry partial_success)."""
    return _decode_into(signal.response(), data, fmt)


def _decode_into(msg: Message, data: bytes, fmt: Format) -> Message:
    name = msg.DESCRIPTOR.name
    if fmt is Format.PROTOBUF:
        try:
            msg.ParseFromString(data)
        except (DecodeError, RecursionError, ValueError) as exc:
            raise MalformedRequest(
                f"body is not a valid protobuf {name}"
            ) from exc
        return msg
    try:
        tree = json.loads(data)
    except json.JSONDecodeError as exc:
        raise MalformedRequest(
            f"body is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc
    except (RecursionError, UnicodeDecodeError, ValueError) as exc:
        raise MalformedRequest("body is not valid JSON") from exc
    if not isinstance(tree, dict):
        raise MalformedRequest("OTLP-JSON body must be a JSON object")
    _convert_ids(tree, _hex_to_b64)
    try:
        # Unknown members are ignored, as the OTLP spec asks of receivers.
        json_format.ParseDict(tree, msg, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError, ValueError, TypeError) as exc:
        # ParseError text can quote the offending value: keep it out of the message.
        raise MalformedRequest(
            f"body is not valid OTLP-JSON for {name}"
        ) from exc
    return msg


def encode(msg: Message, fmt: Format) -> bytes:
    if fmt is Format.PROTOBUF:
        return msg.SerializeToString()
    tree = json_format.MessageToDict(msg, use_integers_for_enums=True)
    _convert_ids(tree, _b64_to_hex)
    return json.dumps(tree, separators=(",", ":")).encode()


class Batch:
    """One export request on its way through: the decoded message, and the bytes and
    format it arrived in. Whoever changes ``message`` calls ``modified()``."""

    __slots__ = ("signal", "_message", "original", "fmt", "changed", "_encoded")

    def __init__(self, signal: Signal, message: Message | None, original: bytes, fmt: Format):
        self.signal = signal
        self._message = message
        self.original = original
        self.fmt = fmt
        self.changed = False
        self._encoded: dict[Format, bytes] = {}

    @classmethod
    def verbatim(cls, signal: Signal, data: bytes) -> "Batch":
        """A protobuf body proven to be exactly what the decoder accepts, with no unknown
        field (triage.py): forwarded as these bytes; decoded only if another encoding
        is asked for."""
        batch = cls(signal, None, data, Format.PROTOBUF)
        batch._encoded[Format.PROTOBUF] = data
        return batch

    @property
    def message(self) -> Message:
        if self._message is None:
            self._message = decode(self.signal, self.original, self.fmt)
            # Fields this proxy's OTLP version does not know were never scrubbed: they
            # must not reach upstream (a newer collector could read them as attributes).
            self._message.DiscardUnknownFields()
        return self._message

    @classmethod
    def from_bytes(cls, signal: Signal, data: bytes, fmt: Format) -> "Batch":
        """Decoded now: a malformed body raises MalformedRequest here."""
        batch = cls(signal, None, data, fmt)
        batch.message  # noqa: B018 -- decodes
        return batch

    def modified(self) -> None:
        """Call after changing ``message``: encodings made before are stale."""
        self.changed = True
        self._encoded.clear()

    def to_bytes(self, fmt: Format) -> bytes:
        """The batch in ``fmt``, encoded once and kept. An unchanged protobuf batch is
        its original bytes -- but only when they are exactly what the decoded,
        known-fields-only message encodes to (true of every canonical OTLP encoder's
        output that carried no unknown field). The one serialization that proves it is
        the encoding used when it fails, so the proof costs nothing extra."""
        data = self._encoded.get(fmt)
        if data is None:
            # OTLP-JSON is always re-encoded: members the parser ignored as unknown must
            # not reach upstream unscanned.
            data = encode(self.message, fmt)
            if fmt is self.fmt is Format.PROTOBUF and not self.changed and data == self.original:
                data = self.original
            self._encoded[fmt] = data
        return data
