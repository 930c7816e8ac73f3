"""What the scrub tests share: the hash key and its HMAC, and Python values <-> AnyValue."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from google.protobuf.descriptor import FieldDescriptor
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList

POLICIES = Path(__file__).resolve().parents[1] / "testdata" / "policies"
KEY = b"0123456789abcdef-test-key"
ENV = {"REDACT_PROXY_HASH_KEY": KEY.decode()}


def H(data: str | bytes) -> str:
    """The policy's keyed hash: lowercase hex HMAC-SHA256 (SPEC 6)."""
    return hmac.new(KEY, data.encode() if isinstance(data, str) else data, hashlib.sha256).hexdigest()


def av(v) -> AnyValue:
    """A Python value as an AnyValue: None is the empty value, list an array, dict a kvlist."""
    if isinstance(v, AnyValue):
        return v
    if v is None:
        return AnyValue()
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, str):
        return AnyValue(string_value=v)
    if isinstance(v, bytes):
        return AnyValue(bytes_value=v)
    if isinstance(v, list):
        return AnyValue(array_value=ArrayValue(values=[av(x) for x in v]))
    if isinstance(v, dict):
        return AnyValue(kvlist_value=KeyValueList(values=kvs(v)))
    raise TypeError(type(v))


def kvs(d: dict | list) -> list[KeyValue]:
    items = d.items() if isinstance(d, dict) else d
    return [KeyValue(key=k, value=av(v)) for k, v in items]


def pairs(attrs) -> dict:
    """Scalar attributes as {key: value}."""
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in attrs}


def otlp_paths(root, limit: int = 12):
    """Every path from ``root`` to a string/bytes field, visiting no message type twice
    on one path (so AnyValue is reached under every attribute list and the log body, and
    once more inside a kvlist and an array)."""
    out = []

    def walk(d, path, on_path):
        for f in d.fields:
            if f.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
                out.append(path + [f])
            elif f.message_type is not None and len(path) < limit:
                name = f.message_type.full_name
                # One trip through the recursive value types, to plant at depth too.
                if on_path.count(name) < (2 if name.endswith("AnyValue") else 1):
                    walk(f.message_type, path + [f], on_path + [name])

    walk(root.DESCRIPTOR, [], [root.DESCRIPTOR.full_name])
    return out
