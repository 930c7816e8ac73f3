"""Captured OTLP files, as export request bodies: what ``redact-proxy audit`` reads.

Strategy: a file is undone layer by layer, each decided by its bytes, not its name:
gzip or zstd (by magic number), then OTLP-JSON (first non-blank byte ``{``: one request,
or one per line as the collector's file exporter writes with ``format: json``) or
protobuf (one export request, or the file exporter's ``format: proto`` stream: each
request after its 4-byte big-endian length). JSON says its signal (its root member);
protobuf does not, so it comes from ``--signal`` or the file name (``traces``/``spans``,
``metrics``, ``logs``). Each body is then handed to the proxy's own decode-and-scrub.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterator

from redact_proxy.codec import Format, decompress
from redact_proxy.errors import ConfigError, MalformedRequest
from redact_proxy.signals import json_signal

MAX_FILE_BYTES = 4 << 30  # a decompressed input larger than this is refused
_NAMED = (
    ("traces", re.compile(r"trace|span", re.I)),
    ("metrics", re.compile(r"metric", re.I)),
    ("logs", re.compile(r"log", re.I)),
)
_GZIP, _ZSTD = b"\x1f\x8b", b"\x28\xb5\x2f\xfd"


@dataclass(frozen=True)
class Body:
    signal: str
    data: bytes
    fmt: Format
    where: str  # "FILE" or "FILE:LINE" / "FILE#N", for error messages (never content)


def read(path: str, data: bytes, signal: str | None) -> Iterator[Body]:
    """Every export request in one input file (``data``: its bytes as read)."""
    if data[:2] == _GZIP:
        data = decompress(data, "gzip", MAX_FILE_BYTES)
    elif data[:4] == _ZSTD:
        data = decompress(data, "zstd", MAX_FILE_BYTES)
    if data.lstrip()[:1] == b"{":
        yield from _json(path, data, signal)
        return
    signal = signal or _signal_from_name(path)
    frames = _frames(data)
    if frames is None:
        yield Body(signal, data, Format.PROTOBUF, path)
    else:
        for n, frame in enumerate(frames, 1):
            yield Body(signal, frame, Format.PROTOBUF, f"{path}#{n}")


def _json(path: str, data: bytes, signal: str | None) -> Iterator[Body]:
    text = data.decode("utf-8", "replace")
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if isinstance(whole, dict):
        yield Body(signal or _json_signal(whole, path), data, Format.JSON, path)
        return
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            doc = json.loads(line)
        except ValueError as exc:
            raise MalformedRequest(f"{where}: not valid JSON") from exc
        yield Body(signal or _json_signal(doc, where), line.encode(), Format.JSON, where)


def _json_signal(doc, where: str) -> str:
    signal = json_signal(doc)
    if signal is not None:
        return signal
    raise MalformedRequest(f"{where}: not an OTLP export request (no resourceSpans/Metrics/Logs)")


def _signal_from_name(path: str) -> str:
    name = Path(path).name
    for signal, pattern in _NAMED:
        if pattern.search(name):
            return signal
    raise ConfigError(
        [f"{path}: protobuf does not say its signal; give --signal traces|metrics|logs (or name the file after it)"]
    )


def _frames(data: bytes) -> list[bytes] | None:
    """The file exporter's length-prefixed requests, if ``data`` is exactly such a stream."""
    frames, pos, size = [], 0, len(data)
    while pos < size:
        if pos + 4 > size:
            return None
        (n,) = struct.unpack_from(">I", data, pos)
        pos += 4
        if pos + n > size:
            return None
        frames.append(data[pos : pos + n])
        pos += n
    # A bare request starts with field 1 (tag 0x0a), which as a length prefix is > 160 MiB:
    # one frame covering the file is a stream only when its length fits exactly, as here.
    return frames or None
