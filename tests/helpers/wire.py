"""Protobuf wire-format builders for tests that hand-craft bodies the generated classes
cannot express: unknown fields, wrong wire types, fields repeated, lengths that lie.

Strategy: the three encodings a test needs (varint, tag, length-delimited field), each
minimal as the protobuf encoder writes it, so a body built here differs from
``SerializeToString``'s only where the test says so."""

from __future__ import annotations

VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5  # wire types


def varint(n: int) -> bytes:
    """``n`` (non-negative) as a minimal base-128 varint."""
    if n < 0:
        raise ValueError("negative varints are 10 bytes of two's complement; write them by hand")
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    """The key of a field: its number and wire type."""
    return varint(number << 3 | wire_type)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (a string, bytes or a submessage)."""
    return tag(number, LEN) + varint(len(payload)) + payload
