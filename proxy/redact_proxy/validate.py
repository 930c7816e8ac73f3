"""Refuse a protobuf export request the collector would refuse, before anything reads it.

Strategy: a protobuf body the collector's pdata would refuse is refused here, with
MalformedRequest: a trace id that is not 16 bytes or a span id that is not 8 (empty is
allowed) -- in spans, links, parent span ids, log records and exemplars -- or a known
field sent with a wire type its decoder does not take. ``check_wire(signal, body)``
refuses bad ids from the bytes and says what else it proved (``Wire``); what it could
not prove, ``check_decoded`` on the message decoded from that body (unknown fields not
yet discarded) decides, exactly.

Why these: the collector's pdata refuses both (``data.TraceID.Unmarshal``: "invalid
length"; its generated unmarshalers: "wrong wireType for field ..."), while upb accepts
ids of any length and keeps a field of the wrong wire type as an unknown field, which
the codec then drops: a logs request POSTed to /v1/traces decodes as spans whose names
are log bodies. Such a request fails one of the two checks (a log record's timestamp,
fixed64, sits where a span wants its trace id, length-delimited), and so does metrics
sent as spans (a metric name, where the trace id goes, is rarely 16 bytes long; a sum,
length-delimited, sits where a span's start time, fixed64, goes). OTLP-JSON ids are checked by the codec while it
converts them from hex, against ``ID_LENGTHS``.

How, cheaply: the native walk (``redact_proxy._native.scan``, built for triage) takes its
schema from Python. One walk with every field of the signal's messages, its wire types,
and one id field per message declared a "key" (the walk returns each distinct key)
proves the structure and collects those ids; each further id field of a message costs
one more walk, down the path to the ids only (stepping over attributes). A wrong wire
type makes the walk refuse, as do a singular field twice, an overlong varint and nesting
beyond its depth; then the decoded message is walked in Python down to its ids, and,
only when it holds unknown fields, through all of it. Error messages name fields of the
schema, never content.
"""

from __future__ import annotations

import enum

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet
from redact_proxy._native import Schema, scan

from redact_proxy.errors import MalformedRequest
from redact_proxy.fields import FIELDS, Treatment
from redact_proxy.signals import ALL, Signal

# The lengths pdata accepts, by field name (OTLP: "16-byte array", "8-byte array"); an
# empty id is the zero id, which pdata also reads.
_LENGTH_BY_NAME = {"trace_id": 16, "span_id": 8, "parent_span_id": 8}

# (message full name, field name) -> the one non-empty length the collector accepts.
ID_LENGTHS: dict[tuple[str, str], int] = {
    pair: _LENGTH_BY_NAME[pair[1]] for pair, f in FIELDS.items() if f.treatment is Treatment.IDENTIFIER
}

# Native schema kinds and flags (native/core/src/walk.rs).
_PLAIN, _MESSAGE, _KEY = 0, 1, 2
_ITEM, _REPEATED = 1, 4
_MAX_FIELD = 1024  # the walk's own ceiling on field numbers (walk.rs MAX_FIELD)
_ANY_WIRE = 0b10_0111  # varint, fixed64, length-delimited, fixed32 (groups: none)

_T = FieldDescriptor
_VARINT = {
    _T.TYPE_INT32,
    _T.TYPE_INT64,
    _T.TYPE_UINT32,
    _T.TYPE_UINT64,
    _T.TYPE_SINT32,
    _T.TYPE_SINT64,
    _T.TYPE_BOOL,
    _T.TYPE_ENUM,
}
_FIXED64 = {_T.TYPE_FIXED64, _T.TYPE_SFIXED64, _T.TYPE_DOUBLE}
_FIXED32 = {_T.TYPE_FIXED32, _T.TYPE_SFIXED32, _T.TYPE_FLOAT}


def wire_types(f: FieldDescriptor) -> tuple[int, int]:
    """(accepted wire types as a bit mask, packed element size). A repeated number is
    accepted packed and unpacked, by upb and by pdata alike."""
    for types, wire, size in ((_VARINT, 0, 1), (_FIXED64, 1, 8), (_FIXED32, 5, 4)):
        if f.type in types:
            return (1 << wire) | (1 << 2 if f.is_repeated else 0), size if f.is_repeated else 0
    return 1 << 2, 0


def _messages(root: Descriptor) -> list[Descriptor]:
    order: list[Descriptor] = []
    stack = [root]
    while stack:
        d = stack.pop()
        if d not in order:
            order.append(d)
            stack.extend(f.message_type for f in reversed(d.fields) if f.message_type is not None)
    return order


def _ancestors(order: list[Descriptor], targets: set[str]) -> set[str]:
    """Messages from which one of ``targets`` can be reached (the targets included)."""
    found = set(targets)
    grew = True
    while grew:
        grew = False
        for d in order:
            if d.full_name not in found and any(
                f.message_type is not None and f.message_type.full_name in found for f in d.fields
            ):
                found.add(d.full_name)
                grew = True
    return found


class _Scan:
    """One native walk: the schema, and the length the ids it collects must have.

    Every walk also declares each field number a message lacks (up to the walk's
    ceiling) as an item taking any wire type: a field this OTLP version does not know is
    then counted, not refused (it is legal, and dropped after decoding), while a known
    number keeps exactly its own wire types."""

    __slots__ = ("schema", "length")

    def __init__(self, order: list[Descriptor], keys: set[tuple[str, str]], length: int, structure: bool):
        index = {d.full_name: i for i, d in enumerate(order)}
        descend = {d.full_name for d in order} if structure else _ancestors(order, {m for m, _ in keys})
        tables = []
        for d in order:
            fields = []
            for f in d.fields:
                wires, packed = wire_types(f)
                kind, target = _PLAIN, 0
                if f.message_type is not None and f.message_type.full_name in descend:
                    kind, target = _MESSAGE, index[f.message_type.full_name]
                elif (d.full_name, f.name) in keys:
                    kind = _KEY  # the walk collects each distinct value of a key
                fields.append((f.number, kind, target, wires, packed, 0, _REPEATED if f.is_repeated else 0))
            fields += [
                (n, _PLAIN, 0, _ANY_WIRE, 0, 0, _ITEM | _REPEATED)
                for n in range(1, _MAX_FIELD + 1)
                if n not in d.fields_by_number
            ]
            tables.append(fields)
        self.schema = Schema(tables, 0)
        self.length = length


def _scans(root: Descriptor) -> tuple[_Scan, ...]:
    """The walks that check every id field reachable from ``root``: a walk collects one
    key per message (the last key field it met), so a message with two ids of one
    length needs two walks. The first walk also proves the structure."""
    order = _messages(root)
    names = {d.full_name for d in order}
    groups: list[tuple[int, set[tuple[str, str]]]] = []
    for pair, length in sorted(ID_LENGTHS.items(), key=lambda item: -item[1]):
        if pair[0] not in names:
            continue
        group = next((g for g in groups if g[0] == length and all(m != pair[0] for m, _ in g[1])), None)
        if group is None:
            groups.append((length, {pair}))
        else:
            group[1].add(pair)
    return tuple(_Scan(order, keys, length, structure=i == 0) for i, (length, keys) in enumerate(groups))


_SCANS: dict[str, tuple[_Scan, ...]] = {s.name: _scans(s.request.DESCRIPTOR) for s in ALL}  # type: ignore[arg-type]  # the stubs type DESCRIPTOR as a union with upb's; both are Descriptors


def _id_error(length: int) -> MalformedRequest:
    kind = "trace" if length == 16 else "span"
    return MalformedRequest(f"a {kind} id is neither {length} bytes nor empty")


def _wire_error(message: Descriptor, number: int) -> MalformedRequest:
    field = message.fields_by_number[number].name
    return MalformedRequest(
        f"{message.name}.{field} has the wrong wire type (is the body for another signal's endpoint?)"
    )


class Wire(enum.Enum):
    """What ``check_wire`` proved of a body it did not refuse."""

    KNOWN_ONLY = "every field known, with its wire type: nothing to discard"
    UNKNOWN_FIELDS = "fields this OTLP version lacks (legal; discard them after decoding)"
    UNPROVEN = "the walk could not vouch: run check_decoded on the decoded message"


def check_wire(signal: Signal, body: bytes) -> Wire:
    """Raise MalformedRequest for an id of the wrong length; otherwise say what the walk
    proved (``Wire``). A known field with the wrong wire type is UNPROVEN (the walk
    cannot say why it refused): ``check_decoded`` finds it."""
    verdict = Wire.KNOWN_ONLY
    for walk in _SCANS[signal.name]:
        found = scan(body, walk.schema)
        if found is None:
            return Wire.UNPROVEN  # (only the structure walk, first, ever refuses)
        lengths = set(map(len, found[0]))
        lengths.discard(0)
        lengths.discard(walk.length)
        if lengths:
            raise _id_error(walk.length)
        if found[3]:  # items: the unknown fields met
            verdict = Wire.UNKNOWN_FIELDS
    return verdict


class _Shape:
    """Per message type, what ``check_decoded`` reads: its id fields, and its fields on
    the way to a message that has some."""

    __slots__ = ("descriptor", "ids", "path")

    def __init__(self, d: Descriptor, on_path: set[str]):
        self.descriptor = d
        self.ids = tuple(
            (f.name, ID_LENGTHS[(d.full_name, f.name)]) for f in d.fields if (d.full_name, f.name) in ID_LENGTHS
        )
        self.path = tuple(
            (f.name, f.is_repeated)
            for f in d.fields
            if f.message_type is not None and f.message_type.full_name in on_path
        )


def _shapes() -> dict[str, _Shape]:
    shapes: dict[str, _Shape] = {}
    for s in ALL:
        order = _messages(s.request.DESCRIPTOR)  # type: ignore[arg-type]  # the stubs type DESCRIPTOR as a union with upb's; both are Descriptors
        on_path = _ancestors(order, {m for m, _ in ID_LENGTHS if m in {d.full_name for d in order}})
        shapes.update((d.full_name, _Shape(d, on_path)) for d in order)
    return shapes


_SHAPES: dict[str, _Shape] = _shapes()


def check_decoded(message: Message) -> None:
    """Exact, on a decoded export request whose unknown fields are still there: raise
    MalformedRequest for an id of the wrong length, or an unknown field whose number is
    a known field's (upb keeps a field of the wrong wire type as such). Costs a walk
    down to the ids, a copy of the message to learn whether it holds any unknown field,
    and only if so a walk of every message in it."""
    _check_ids(message)
    copy = type(message)()
    copy.CopyFrom(message)
    size = copy.ByteSize()
    copy.DiscardUnknownFields()
    if copy.ByteSize() != size:
        _check_unknown_fields(message)


def _check_ids(message: Message) -> None:
    stack = [message]
    while stack:
        msg = stack.pop()
        shape = _SHAPES[msg.DESCRIPTOR.full_name]
        for name, length in shape.ids:
            if len(getattr(msg, name)) not in (0, length):
                raise _id_error(length)
        for name, repeated in shape.path:
            if repeated:
                stack.extend(getattr(msg, name))
            elif msg.HasField(name):
                stack.append(getattr(msg, name))


def _check_unknown_fields(message: Message) -> None:
    """Iterative: no recursion limit to meet on deep kvlists. Depth-first, each message
    before what it holds: a request for another signal shows at its first item."""
    stack = [message]
    while stack:
        msg = stack.pop()
        descriptor = msg.DESCRIPTOR
        known = descriptor.fields_by_number
        for field in UnknownFieldSet(msg):  # type: ignore[attr-defined]  # iterable at run time; the stubs lack __iter__
            if field.field_number in known:
                raise _wire_error(descriptor, field.field_number)  # type: ignore[arg-type]  # the stubs type DESCRIPTOR as a union with upb's; both are Descriptors
        for f, value in msg.ListFields():
            if f.message_type is not None:
                if f.is_repeated:
                    stack.extend(value)
                else:
                    stack.append(value)
