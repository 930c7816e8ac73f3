"""OTLP-JSON request bodies to protobuf and back, in native code.

Strategy: the native transcoder (native/core/src/json, wrapped by
native/python/src/json.rs) reads and writes exactly what ``codec.py`` does for an
export request -- ``json.loads`` + ``_prepare_json`` + ``json_format.ParseDict`` with
unknown members ignored, and ``MessageToDict`` with integer enums + hex ids +
compact ``json.dumps`` back -- without building Python objects. It knows no OTLP field:
this module hands it, once at import, a table made from the protobuf descriptors in use
(every message an export request or response can hold; per field its number, both JSON spellings,
descriptor type, presence, packing, oneof, enum or message target, and the id length
``validate.ID_LENGTHS`` gives trace and span ids), plus each request's root member names
so that a body for another signal is refused as the codec refuses it.

``decode`` returns the protobuf upb would serialize for the message the codec decodes
(canonical: parsing and re-serializing it gives the same bytes), or raises
MalformedRequest where the codec raises it, with a message naming the problem and its
place in the schema, never content. ``encode`` returns the bytes ``codec.encode(msg,
Format.JSON)`` writes for the message upb decodes from ``pb``. ``tests/test_otlpjson.py``
holds the two side by side.

Known differences from the codec, all on hostile input: JSON nested deeper than 512
arrays and objects is refused here, where Python's limit is its recursion limit less
the caller's stack (about 950); an integer too large for a double in a double field is
MalformedRequest here, an OverflowError escaping ParseDict there.
"""

from __future__ import annotations

from typing import cast

from google.protobuf.descriptor import Descriptor
from redact_proxy._native import JsonSchema, json_to_pb, pb_to_json

from redact_proxy.errors import MalformedRequest
from redact_proxy.signals import ALL
from redact_proxy.validate import ID_LENGTHS

# Entry flags of the native table (native/core/src/json/schema.rs).
_REPEATED, _PRESENCE, _PACKED = 1, 2, 4

# The field names codec.encode turns from base64 into hex wherever they occur
# (codec._ID_MEMBERS): the table's ids must be exactly the fields so named.
_ID_NAMES = frozenset({"trace_id", "span_id", "parent_span_id"})


def _messages() -> list[Descriptor]:
    """Every message an export request or response can hold."""
    order: list[Descriptor] = []
    seen: set[str] = set()
    stack = [cast(Descriptor, t.DESCRIPTOR) for s in reversed(ALL) for t in (s.response, s.request)]
    while stack:
        d = stack.pop()
        if d.full_name in seen:
            continue
        seen.add(d.full_name)
        order.append(d)
        stack.extend(reversed([f.message_type for f in d.fields if f.message_type is not None]))
    return order


def _build() -> tuple[JsonSchema, dict[str, int], dict[str, int]]:
    order = _messages()
    index = {d.full_name: i for i, d in enumerate(order)}
    enums: list[list[tuple[str, int]]] = []
    enum_index: dict[str, int] = {}
    tables = []
    for d in order:
        oneofs = {o.full_name: i + 1 for i, o in enumerate(d.oneofs)}
        names = {n for f in d.fields for n in (f.name, f.json_name)}
        clash = names & {o.name for o in d.oneofs}
        if clash:  # ParseDict tracks oneof names among member names: a clash changes its checks
            raise LookupError(f"{d.full_name}: a field is named like a oneof")
        fields = []
        for f in d.fields:
            id_length = ID_LENGTHS.get((d.full_name, f.name), 0)
            if (f.name in _ID_NAMES) != bool(id_length):
                raise LookupError(f"{d.full_name}.{f.name}: ids and id names disagree")
            target = 0
            if f.message_type is not None:
                target = index[f.message_type.full_name]
            elif f.enum_type is not None:
                e = f.enum_type
                if e.full_name not in enum_index:
                    enum_index[e.full_name] = len(enums)
                    enums.append([(v.name, v.number) for v in e.values])
                target = enum_index[e.full_name]
            flags = (
                (_REPEATED if f.is_repeated else 0)
                | (_PRESENCE if f.has_presence else 0)
                | (_PACKED if f.is_repeated and f.is_packed else 0)
            )
            oneof = oneofs[f.containing_oneof.full_name] if f.containing_oneof is not None else 0
            fields.append((f.number, f.name, f.json_name, f.type, flags, target, id_length, oneof))
        tables.append((d.name, fields))
    # A root member of another signal's request marks the body as that request
    # (codec._foreign_signal): ParseDict alone would read an empty request.
    foreign = [
        (index[s.request.DESCRIPTOR.full_name], name, other.name)
        for s in ALL
        for other in ALL
        if other is not s
        for f in other.request.DESCRIPTOR.fields
        for name in dict.fromkeys((f.json_name, f.name))
    ]
    roots = {s.name: index[s.request.DESCRIPTOR.full_name] for s in ALL}
    responses = {s.name: index[s.response.DESCRIPTOR.full_name] for s in ALL}
    return JsonSchema(tables, enums, foreign), roots, responses


_SCHEMA, _ROOTS, _RESPONSES = _build()


def decode(body: bytes, signal_name: str) -> bytes:
    """The protobuf export request of ``signal_name`` ("traces", "metrics", "logs")
    that an OTLP-JSON body holds. Raises MalformedRequest."""
    try:
        return json_to_pb(body, _SCHEMA, _ROOTS[signal_name])
    except ValueError as exc:  # the native message names the problem, never content
        raise MalformedRequest(str(exc)) from None


def encode(pb: bytes, signal_name: str) -> bytes:
    """A protobuf export request of ``signal_name`` as OTLP-JSON (hex ids, 64-bit
    integers as strings, integer enums). Raises MalformedRequest when upb would refuse
    ``pb``."""
    try:
        return pb_to_json(pb, _SCHEMA, _ROOTS[signal_name])
    except ValueError as exc:
        raise MalformedRequest(str(exc)) from None


def decode_response(body: bytes, signal_name: str) -> bytes:
    """An upstream's OTLP-JSON export response (which may carry partial_success) as
    protobuf, as ``codec.decode_response`` reads it. Raises MalformedRequest."""
    try:
        return json_to_pb(body, _SCHEMA, _RESPONSES[signal_name])
    except ValueError as exc:
        raise MalformedRequest(str(exc)) from None
