"""OTLP bodies in and out: compression, protobuf, OTLP-JSON, with size limits.

Strategy: this module is the codec stage, and its only owner: receivers, the pipeline,
every forwarder and the queue call it and decode or encode nothing themselves. What a
body's headers say (content type, encoding) is an ``Envelope``, checked before the body is
read; ``Envelope.open`` undoes its compression within a limit. A request body becomes a
``Batch`` (the decoded export request plus the bytes it came from) and a ``Batch`` becomes
bytes again in whichever encoding the upstream speaks (``Batch.to_bytes``, called by the
pipeline off the event loop, so a forwarder only reads what was made). An unchanged batch
is sent as its original bytes; a changed one is encoded once per encoding asked for; a
stored one (``Batch.stored``, the queue's records) is its protobuf bytes and is decoded only
for an upstream that needs OTLP-JSON. Answers go out through ``encode`` and upstream's
come back through ``read_response`` (an error's RetryInfo through ``retry_delay``). A ``Batch`` only exists for a body the collector would accept: what
its pdata refuses (ids of the wrong length, a wire type a field does not take, OTLP-JSON
of the wrong shape or for another signal) is MalformedRequest, never a quiet drop.

Limits: decompression is incremental with a ceiling of ``limit + 1`` output bytes, so a
decompression bomb costs at most ``limit`` bytes of memory before it is refused, and
linear in the body's size: no member's tail is copied per member, and more than
MAX_MEMBERS gzip members or zstd frames are refused. It is plain CPU work the receivers
run off the event loop. OTLP-JSON is the protobuf JSON mapping with one exception the
OTLP spec makes: trace and span ids are hex, not base64 (opentelemetry-proto
docs/specification.md, "JSON Protobuf Encoding"). Error messages name the problem, never
the content.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import zlib
from dataclasses import dataclass
from typing import Any

import zstandard
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2

from redact_proxy import otlpjson, validate
from redact_proxy.errors import MalformedRequest, RequestError, RequestTooLarge, UnsupportedMediaType
from redact_proxy.signals import ALL, Signal, descriptor
from redact_proxy.validate import ID_LENGTHS, Wire


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
    raise UnsupportedMediaType("unsupported Content-Type; OTLP/HTTP takes application/x-protobuf or application/json")


def answer_format(content_type: str | None) -> Format:
    """The format of the answer to a request with this Content-Type, decided before the
    request's own is checked: an error still answers a JSON client in JSON."""
    return Format.JSON if "json" in (content_type or "").lower() else Format.PROTOBUF


# --- compression ----------------------------------------------------------------------

_CHUNK = 64 * 1024
SUPPORTED_ENCODINGS = ("gzip", "deflate", "zstd", "identity")

# gzip members / zstd frames per body. Real clients send one; each member costs a
# decompressor set-up whatever its size, so a body of empty members (20 bytes each) is all
# set-up and no output. The cap keeps such a body's cost to a few milliseconds.
MAX_MEMBERS = 1024
# First input slice fed for a member, doubled up to _CHUNK while the member lasts. The
# decompressor copies what it was fed past the member's end (``unused_data``), so that
# copy is at most twice the member's own compressed size (or this much): linear overall.
_FIRST_FEED = 256


# Bodies below this are inflated where they are: a small one takes microseconds, less than
# the hand-off to a thread.
INLINE_BYTES = 64 * 1024
_GRPC = "grpc"  # a gRPC message: its compression is read from its first bytes


def _encoding(encoding: str | None) -> str:
    """A Content-Encoding, normalised; UnsupportedMediaType for one we do not undo."""
    enc = (encoding or "identity").strip().lower()
    if enc in ("", "identity"):
        return "identity"
    if enc in ("gzip", "x-gzip"):
        return "gzip"
    if enc in ("deflate", "zstd"):
        return enc
    raise UnsupportedMediaType(f"unsupported Content-Encoding; supported: {', '.join(SUPPORTED_ENCODINGS)}")


@dataclass(frozen=True)
class Envelope:
    """What a body's headers say of it: its format and its compression. Built from the
    headers (``of``: UnsupportedMediaType for what the proxy does not speak) before the
    body is read; ``open`` then turns the body as sent into the body to decode."""

    fmt: Format
    encoding: str  # "identity", "gzip", "deflate", "zstd", or _GRPC

    @classmethod
    def of(cls, content_type: str | None, encoding: str | None) -> "Envelope":
        return cls(format_for(content_type), _encoding(encoding))

    def costly(self, data: bytes) -> bool:
        """Whether opening ``data`` is CPU work worth a thread (linear in its size)."""
        return self.encoding != "identity" and len(data) >= INLINE_BYTES

    def open(self, data: bytes, limit: int) -> bytes:
        """The body decompressed, refusing more than ``limit`` bytes of it (RequestTooLarge);
        MalformedRequest if its compression is corrupt."""
        if self.encoding == _GRPC:
            return decompress_grpc(data, limit)
        return decompress(data, self.encoding, limit)


GRPC_MESSAGE = Envelope(Format.PROTOBUF, _GRPC)


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo one Content-Encoding, refusing output larger than ``limit`` bytes.

    CPU-bound and linear in ``len(body)`` plus the output (at most ``limit``): a receiver
    runs it off the event loop for any body that is not small. Raises RequestTooLarge,
    MalformedRequest (corrupt, truncated, more than MAX_MEMBERS members) or
    UnsupportedMediaType."""
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
    raise UnsupportedMediaType(f"unsupported Content-Encoding; supported: {', '.join(SUPPORTED_ENCODINGS)}")


def decompress_grpc(message: bytes, limit: int) -> bytes:
    """A gRPC request message as the receiver got it with grpc's own decompression off
    (``grpc.per_message_decompression`` 0), decompressed here so that a bomb is
    RequestTooLarge and a corrupt stream MalformedRequest, as SPEC section 5 asks (grpc's
    C core answers both INTERNAL, and refuses several gzip members outright).

    grpc does not show the handler the message's compressed flag or grpc-encoding, so
    the format is read from the first bytes: a gzip magic, or a zlib header (gRPC
    "deflate"). Neither can start an OTLP export request: 0x1f is a tag of wire type 7,
    which does not exist, and 0x78 is field 15, which no export request has."""
    if message[:2] == b"\x1f\x8b":
        return _inflate(message, zlib.MAX_WBITS | 16, limit, "gzip")
    if len(message) >= 2 and message[0] == 0x78 and (message[0] << 8 | message[1]) % 31 == 0:
        return _inflate(message, zlib.MAX_WBITS, limit, "deflate")
    if len(message) > limit:
        raise RequestTooLarge(f"request body exceeds --max-request-bytes ({limit})")
    return message


def _too_many(name: str) -> MalformedRequest:
    unit = "frames" if name == "zstd" else "members"
    return MalformedRequest(f"{name} body has more than {MAX_MEMBERS} {unit}")


def _inflate(body: bytes, wbits: int, limit: int, name: str) -> bytes:
    view = memoryview(body)
    end = len(view)
    out = bytearray()
    pos = 0
    try:
        for _member in range(MAX_MEMBERS):  # RFC 1952 allows several members
            d = zlib.decompressobj(wbits)
            feed = _FIRST_FEED
            while not d.eof:
                if pos >= end:
                    raise MalformedRequest(f"truncated {name} body")
                piece = view[pos : pos + feed]
                # The ceiling is never 0 (which would mean none): out is <= limit here.
                out += d.decompress(piece, limit + 1 - len(out))
                if len(out) > limit:
                    raise RequestTooLarge(f"decompressed body exceeds --max-request-bytes ({limit})")
                # Below the ceiling zlib takes all it was fed; past the member's end it
                # hands back the rest (at most ``feed`` bytes) as unused_data.
                pos += len(piece) - (len(d.unused_data) if d.eof else 0)
                feed = min(feed * 2, _CHUNK)
            if pos >= end:
                return bytes(out)
        raise _too_many(name)
    except zlib.error as exc:
        raise MalformedRequest(f"corrupt {name} body") from exc


_ZSTD_MAGIC = 0xFD2FB528
_ZSTD_SKIPPABLE = 0x184D2A50  # 0x184D2A50..5F: skippable frames (RFC 8878 3.1.2)
_ZSTD_DICT_ID_BYTES = (0, 1, 2, 4)
_ZSTD_FCS_BYTES = (0, 2, 4, 8)  # FCS flag 0 with Single_Segment set: 1 byte
# Blocks in a body, all frames together. An encoder's blocks hold up to 128 KiB each (a
# streaming one flushing often, less): this is gigabytes of them. Empty blocks, 3 bytes
# each, would otherwise make the header walk a second per couple of megabytes.
_ZSTD_MAX_BLOCKS = 65536


def _zstd_frames_end(view: memoryview) -> None:
    """Walk the frame and block headers of a zstd body (RFC 8878 3.1) without
    decompressing: MalformedRequest unless it is whole frames, at most MAX_MEMBERS of
    them. What this proves the decoder cannot tell us: the stream reader returns the
    prefix it could decode from a cut frame without an error."""
    pos, end = 0, len(view)
    blocks = 0
    for _frame in range(MAX_MEMBERS):
        if end - pos < 8:
            raise MalformedRequest("truncated zstd body")
        magic = int.from_bytes(view[pos : pos + 4], "little")
        if magic & 0xFFFFFFF0 == _ZSTD_SKIPPABLE:
            pos += 8 + int.from_bytes(view[pos + 4 : pos + 8], "little")
        elif magic == _ZSTD_MAGIC:
            fhd = view[pos + 4]
            single_segment = fhd >> 5 & 1
            fcs = _ZSTD_FCS_BYTES[fhd >> 6] or single_segment
            pos += 5 + (1 - single_segment) + _ZSTD_DICT_ID_BYTES[fhd & 3] + fcs
            last = 0
            while not last:
                if end - pos < 3:
                    raise MalformedRequest("truncated zstd body")
                header = int.from_bytes(view[pos : pos + 3], "little")
                last, kind, size = header & 1, header >> 1 & 3, header >> 3
                if kind == 3:
                    raise MalformedRequest("corrupt zstd body")
                blocks += 1
                if blocks > _ZSTD_MAX_BLOCKS:
                    raise MalformedRequest(f"zstd body has more than {_ZSTD_MAX_BLOCKS} blocks")
                pos += 3 + (1 if kind == 1 else size)  # RLE blocks carry one byte
            pos += 4 * (fhd >> 2 & 1)  # content checksum
        else:
            raise MalformedRequest("corrupt zstd body")
        if pos > end:
            raise MalformedRequest("truncated zstd body")
        if pos == end:
            return
    raise _too_many("zstd")


def _unzstd(body: bytes, limit: int) -> bytes:
    _zstd_frames_end(memoryview(body))
    out = bytearray()
    try:
        # Whole frames, known from their headers: one streaming pass with a bounded read.
        reader = zstandard.ZstdDecompressor().stream_reader(body, read_across_frames=True)
        while True:
            chunk = reader.read(min(_CHUNK, limit + 1 - len(out)))
            if not chunk:
                return bytes(out)
            out += chunk
            if len(out) > limit:
                raise RequestTooLarge(f"decompressed body exceeds --max-request-bytes ({limit})")
    except zstandard.ZstdError as exc:
        raise MalformedRequest("corrupt zstd body") from exc


def gzip(data: bytes) -> bytes:
    """gzip for upstream requests (level 6: the collector's and SDKs' default)."""
    c = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    return c.compress(data) + c.flush()


# --- protobuf and OTLP-JSON -------------------------------------------------------------

# JSON member names (both spellings the protobuf JSON mapping accepts) whose value is a
# trace or span id, for encoding. In OTLP these names occur only as fields of Span,
# Span.Link, LogRecord and Exemplar; attribute keys sit in {"key": ..., "value": ...}
# objects and are never JSON member names, so a walk over every object is exact.
_ID_MEMBERS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})


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


# What the JSON walk reads of a message field: a submessage, a list of them, an id, an
# enum.
_OBJECT, _OBJECTS, _ID, _ENUM = range(4)


class _JsonShape:
    """Per message type: its members (both spellings) the walk before ParseDict checks."""

    __slots__ = ("name", "members")

    def __init__(self, d: Descriptor):
        self.name = d.name
        # (kind, field name, what the kind needs): an id's byte length, a message's full
        # name, an enum's names -- typed Any, as only the kind tells which it is.
        self.members: dict[str, tuple[int, str, Any]] = {}
        for f in d.fields:
            spec: tuple[int, str, Any]
            length = ID_LENGTHS.get((d.full_name, f.name))
            if length is not None:
                spec = (_ID, f.name, length)
            elif f.message_type is not None:
                spec = (_OBJECTS if f.is_repeated else _OBJECT, f.name, f.message_type.full_name)
            elif f.enum_type is not None and not f.is_repeated:
                spec = (_ENUM, f.name, frozenset(f.enum_type.values_by_name))
            else:
                continue  # other scalars and lists: json_format checks their types
            self.members[f.name] = self.members[f.json_name] = spec


def _json_shapes() -> dict[str, _JsonShape]:
    """Every message type an export request or response can hold, by full name."""
    shapes: dict[str, _JsonShape] = {}
    stack = [descriptor(t) for s in ALL for t in (s.request, s.response)]
    while stack:
        d = stack.pop()
        if d.full_name not in shapes:
            shapes[d.full_name] = _JsonShape(d)
            stack.extend(f.message_type for f in d.fields if f.message_type is not None)
    return shapes


_JSON_SHAPES = _json_shapes()


def _prepare_json(tree: dict, root: Descriptor) -> None:
    """Check the object/array shape of an OTLP-JSON tree against the schema and turn
    its hex ids into the base64 ParseDict reads, iteratively (no recursion limit to trip
    over on hostile nesting). json_format reads a string or a list where a message
    belongs as an object whose members are all unknown -- ``"resource": "abc"`` would
    pass, as an empty resource -- so that is refused here. Unknown members are not
    entered: ParseDict ignores them, as the OTLP spec asks of receivers."""
    stack = [(tree, _JSON_SHAPES[root.full_name])]
    while stack:
        node, shape = stack.pop()
        members = shape.members
        for name, value in node.items():
            spec = members.get(name)
            if spec is None or value is None:  # unknown, or null: the field's default
                continue
            kind, field, target = spec
            if kind == _ID:
                if isinstance(value, str):  # anything else ParseDict refuses
                    node[name] = _hex_to_b64(value, target)
            elif kind == _ENUM:
                # OTLP-JSON enums are integers (names accepted, as pdata does); ParseDict
                # with ignore_unknown_fields would drop an unknown name and read 1.5 as 1.
                named = isinstance(value, str) and value in target
                if isinstance(value, bool) or not (isinstance(value, int) or named):
                    raise _json_shape_error(shape, field, "an enum number")
            elif kind == _OBJECT:
                if not isinstance(value, dict):
                    raise _json_shape_error(shape, field, "an object")
                stack.append((value, _JSON_SHAPES[target]))
            else:
                if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                    raise _json_shape_error(shape, field, "an array of objects")
                sub = _JSON_SHAPES[target]
                stack.extend((v, sub) for v in value)


def _json_shape_error(shape: _JsonShape, field: str, expected: str) -> MalformedRequest:
    return MalformedRequest(f"body is not valid OTLP-JSON: {shape.name}.{field} must be {expected}")


def _hex_to_b64(value: str, length: int) -> str:
    try:
        raw = binascii.unhexlify(value)
    except (binascii.Error, ValueError) as exc:
        raise MalformedRequest("trace/span id is not a hex string") from exc
    if len(raw) not in (0, length):
        kind = "trace" if length == 16 else "span"
        raise MalformedRequest(f"a {kind} id is neither {length} bytes nor empty")
    return base64.b64encode(raw).decode("ascii")


# The root members of each signal's export request (both spellings), to tell a request
# sent to another signal's endpoint: ParseDict would ignore them as unknown members and
# answer 200 for an empty request.
_ROOT_MEMBERS = {
    s.request.DESCRIPTOR.full_name: (
        s.name,
        frozenset(n for f in s.request.DESCRIPTOR.fields for n in (f.name, f.json_name)),
    )
    for s in ALL
}


def _foreign_signal(tree: dict, full_name: str) -> str | None:
    ours = _ROOT_MEMBERS.get(full_name)
    if ours is None:
        return None
    for other, names in _ROOT_MEMBERS.values():
        if other != ours[0] and not names.isdisjoint(tree):
            return other
    return None


def _b64_to_hex(value: str) -> str:
    return base64.b64decode(value).hex()


def decode(signal: Signal, data: bytes, fmt: Format) -> Message:
    """An export request from its body. Raises MalformedRequest."""
    return _decode_into(signal.request(), data, fmt)


def decode_response(signal: Signal, data: bytes, fmt: Format) -> Message:
    """An upstream's export response (which may carry partial_success)."""
    return _decode_into(signal.response(), data, fmt)


def read_response(signal: Signal, data: bytes, content_type: str | None, encoding: str | None, limit: int) -> Message:
    """Upstream's answer to an accepted export: its partial_success, if it is readable.
    RequestTooLarge when it inflates past ``limit``; an answer that is empty, of another
    content type, corruptly compressed or not an export response is none (the batch was
    accepted: there is no partial success to pass on)."""
    if not data:
        return signal.response()
    try:
        envelope = Envelope.of(content_type, encoding)
        return decode_response(signal, envelope.open(data, limit), envelope.fmt)
    except RequestTooLarge:
        raise
    except (RequestError, ValueError, TypeError):
        return signal.response()


def _decode_into(msg: Message, data: bytes, fmt: Format) -> Message:
    name = msg.DESCRIPTOR.name
    if fmt is Format.PROTOBUF:
        try:
            msg.ParseFromString(data)
        except (DecodeError, RecursionError, ValueError) as exc:
            raise MalformedRequest(f"body is not a valid protobuf {name}") from exc
        return msg
    try:
        tree = json.loads(data)
    except json.JSONDecodeError as exc:
        raise MalformedRequest(f"body is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc
    except (RecursionError, UnicodeDecodeError, ValueError) as exc:
        raise MalformedRequest("body is not valid JSON") from exc
    if not isinstance(tree, dict):
        raise MalformedRequest("OTLP-JSON body must be a JSON object")
    other = _foreign_signal(tree, msg.DESCRIPTOR.full_name)
    if other is not None:
        raise MalformedRequest(f"OTLP-JSON body is an export request for {other}, not for this endpoint")
    _prepare_json(tree, descriptor(msg))
    try:
        # Unknown members are ignored, as the OTLP spec asks of receivers.
        json_format.ParseDict(tree, msg, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError, ValueError, TypeError, OverflowError, SystemError) as exc:
        # ParseError text can quote the offending value: keep it out of the message.
        # (OverflowError: an integer too large for a double; SystemError: a member name
        # with a lone surrogate, found by tests/test_otlpjson.py.)
        raise MalformedRequest(f"body is not valid OTLP-JSON for {name}") from exc
    return msg


def encode(msg: Message, fmt: Format) -> bytes:
    if fmt is Format.PROTOBUF:
        return msg.SerializeToString()
    tree = json_format.MessageToDict(msg, use_integers_for_enums=True)
    _convert_ids(tree, _b64_to_hex)
    return json.dumps(tree, separators=(",", ":")).encode()


def retry_delay(status: bytes) -> float | None:
    """Seconds of the google.rpc.RetryInfo in a serialized google.rpc.Status (an error
    answer's details), or None: no hint, or not a Status."""
    message = status_pb2.Status()
    try:
        message.ParseFromString(status)
    except DecodeError:
        return None
    for detail in message.details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    return None


class Batch:
    """One export request on its way through: the decoded message, the bytes it is known
    by (``original``, in ``source_fmt``) and the client's format (``fmt``: what an
    OTLP/HTTP upstream is sent). Whoever changes ``message`` calls ``modified()``.

    A batch is valid by construction: ``from_bytes`` refuses (MalformedRequest) what the
    collector would refuse (``validate``); ``verbatim`` and ``stored`` are for bodies
    their caller checked."""

    __slots__ = ("signal", "_message", "original", "source_fmt", "fmt", "changed", "_encoded", "_wire")

    def __init__(
        self,
        signal: Signal,
        message: Message | None,
        original: bytes,
        fmt: Format,
        wire: Wire = Wire.UNPROVEN,
        source_fmt: Format | None = None,
    ):
        self.signal = signal
        self._message = message
        self.original = original
        self.fmt = fmt
        self.source_fmt = source_fmt or fmt
        self.changed = False
        self._encoded: dict[Format, bytes] = {}
        self._wire = wire

    @classmethod
    def verbatim(cls, signal: Signal, data: bytes) -> "Batch":
        """A protobuf body proven to be exactly what the decoder accepts, with no unknown
        field (triage.py), and to pass ``validate.check_wire``: forwarded as these
        bytes; decoded only if another encoding is asked for."""
        batch = cls(signal, None, data, Format.PROTOBUF, Wire.KNOWN_ONLY)
        batch._encoded[Format.PROTOBUF] = data
        return batch

    @classmethod
    def stored(cls, signal: Signal, payload: bytes, fmt: Format) -> "Batch":
        """A batch this proxy redacted and encoded itself (the queue's records): protobuf
        of known fields only, forwarded as these bytes. ``fmt`` is its client's format;
        decoded only if an upstream needs OTLP-JSON (then MalformedRequest if the bytes
        are not what was stored)."""
        batch = cls(signal, None, payload, fmt, Wire.KNOWN_ONLY, Format.PROTOBUF)
        batch._encoded[Format.PROTOBUF] = payload
        return batch

    @property
    def message(self) -> Message:
        if self._message is None:
            message = decode(self.signal, self.original, self.source_fmt)
            if self.source_fmt is Format.PROTOBUF and self._wire is not Wire.KNOWN_ONLY:
                if self._wire is Wire.UNPROVEN:
                    validate.check_decoded(message)  # reads the unknown fields: before discarding
                # Fields this proxy's OTLP version does not know were never scrubbed: they
                # must not reach upstream (a newer collector could read them as attributes).
                # (OTLP-JSON has none: ParseDict ignores unknown members.)
                message.DiscardUnknownFields()
            self._message = message
        return self._message

    @classmethod
    def from_bytes(cls, signal: Signal, data: bytes, fmt: Format, wire: Wire | None = None) -> "Batch":
        """Decoded now: a malformed body, or one the collector would refuse, raises
        MalformedRequest here. ``wire``: what ``validate.check_wire`` already said of this
        protobuf body (it is run here otherwise)."""
        if fmt is Format.PROTOBUF and wire is None:
            wire = validate.check_wire(signal, data)
        batch = cls(signal, None, data, fmt, wire or Wire.UNPROVEN)
        batch.message  # noqa: B018 -- decodes
        return batch

    def modified(self) -> None:
        """Call after changing ``message``: encodings made before are stale."""
        self.changed = True
        self._encoded.clear()

    def has(self, fmt: Format) -> bool:
        """Whether ``to_bytes(fmt)`` is already made (costs nothing)."""
        return fmt in self._encoded

    def encoded(self, fmt: Format) -> bytes:
        """The bytes ``to_bytes(fmt)`` made: a forwarder's only way to the batch's bytes,
        so a forwarder never decodes or encodes (the pipeline and the queue have the codec
        make them off the event loop, for the forwarder's ``wire_format``)."""
        data = self._encoded.get(fmt)
        if data is None:
            raise RuntimeError(f"batch not encoded as {fmt.name} before it was forwarded")
        return data

    def to_bytes(self, fmt: Format) -> bytes:
        """The batch in ``fmt``, encoded once and kept. An unchanged protobuf batch is
        its original bytes -- but only when they are exactly what the decoded,
        known-fields-only message encodes to (true of every canonical OTLP encoder's
        output that carried no unknown field). The one serialization that proves it is
        the encoding used when it fails, so the proof costs nothing extra."""
        data = self._encoded.get(fmt)
        if data is None:
            # OTLP-JSON is always re-encoded: members the parser ignored as unknown must
            # not reach upstream unscanned. From protobuf bytes of known fields (the
            # engine's output), natively, byte for byte what `encode` writes.
            pb = self._encoded.get(Format.PROTOBUF)
            if fmt is Format.JSON and pb is not None and self._wire is Wire.KNOWN_ONLY:
                data = otlpjson.encode(pb, self.signal.name)
            else:
                data = encode(self.message, fmt)
            if fmt is self.source_fmt is Format.PROTOBUF and not self.changed and data == self.original:
                data = self.original
            self._encoded[fmt] = data
        return data
