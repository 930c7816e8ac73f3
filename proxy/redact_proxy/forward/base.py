"""What every forwarder is (the ``Forwarder`` protocol), apart from the package that
builds them, so a wrapping forwarder (queue.py) needs no import of its builder."""

from __future__ import annotations

from typing import Protocol

from google.protobuf.message import Message

from redact_proxy.codec import Batch, Format


class Forwarder(Protocol):
    async def start(self) -> None: ...

    def wire_format(self, fmt: Format) -> Format:
        """The encoding a batch whose client sent ``fmt`` goes upstream in."""
        ...

    async def forward(self, batch: Batch) -> Message: ...

    async def close(self) -> None: ...
