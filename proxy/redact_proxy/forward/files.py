"""`file:PATH` and `debug` sinks: one OTLP-JSON export request per line.

The line format is the collector's file exporter format, so ``jq`` and the collector's
``otlpjsonfile`` receiver read it. Only redacted batches reach a forwarder, so nothing
unredacted is ever written.
"""

from __future__ import annotations

import sys
from typing import BinaryIO

from google.protobuf.message import Message

from redact_proxy.codec import Batch, Format
from redact_proxy.errors import StartupError


class FileForwarder:
    def __init__(self, path: str):
        self.path = path
        self._file: BinaryIO | None = None  # opened by start()

    async def start(self) -> None:
        # Opened once, appended to, flushed per batch so `tail -f` shows each one.
        try:
            self._file = open(self.path, "ab")  # noqa: SIM115, ASYNC230 - held for the sink's life; a local open
        except OSError as exc:
            raise StartupError.from_os(exc) from exc

    def wire_format(self, fmt: Format) -> Format:
        return Format.JSON

    async def forward(self, batch: Batch) -> Message:
        file = self._file
        assert file is not None, "forward() before start()"
        file.write(batch.encoded(Format.JSON) + b"\n")
        file.flush()
        return batch.signal.response()

    async def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class DebugForwarder:
    """Redacted OTLP-JSON on stdout: what a newcomer sees with no upstream configured."""

    async def start(self) -> None:
        pass

    def wire_format(self, fmt: Format) -> Format:
        return Format.JSON

    async def forward(self, batch: Batch) -> Message:
        out = sys.stdout.buffer
        out.write(batch.encoded(Format.JSON) + b"\n")
        out.flush()
        return batch.signal.response()

    async def close(self) -> None:
        pass
