"""``--queue-dir``: acknowledge a batch once it is on disk; deliver it upstream afterwards.

Strategy: ``QueueForwarder`` wraps the real forwarder. ``forward`` appends the redacted
batch to the segment store (segments.py) and returns as soon as the append is durable, so
a client's OK means "on this proxy's disk" (SPEC section 8). Appends from concurrent
requests go through one writer task, which writes everything waiting in one go and syncs
once (group commit), in a thread so the event loop keeps serving. One sender task reads
the records in order and hands each to the real forwarder; the delivery cursor moves past
a record only after upstream accepted it or refused it for good. Delivery is therefore
at-least-once: after a crash, what was delivered since the last cursor commit (at most
CURSOR_COMMIT_SECONDS of it) is sent again; nothing acknowledged is skipped.

Bounded: the batches not yet delivered may total ``max_bytes`` (--queue-max-bytes); past
that, new batches are refused with QueueFull (UNAVAILABLE / 503 + Retry-After), and the
client's own retry takes over. Disk use is at most that plus one segment of delivered
records awaiting deletion.

Retries (STYLE habit 8): errors of a RETRYABLE type wait an exponential backoff with
jitter, never less than the delay upstream asked for, and shutdown interrupts the wait.
There is no per-batch deadline: the queue's size is the bound, and waiting out an upstream
outage is what the queue is for. A permanent refusal (UpstreamRejected: the same bytes
would be refused again) is dropped and counted, so one bad batch cannot wedge the queue.
Log lines name codes, counts and file names, never content.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import random
import time
from collections import deque
from pathlib import Path

from google.protobuf.message import Message

from redact_proxy.codec import Batch, Format
from redact_proxy.errors import (
    MalformedRequest,
    Overloaded,
    QueueFull,
    RequestTooLarge,
    StartupError,
    UpstreamError,
    UpstreamThrottled,
    UpstreamUnavailable,
)
from redact_proxy.forward.base import Forwarder
from redact_proxy.forward.segments import Record, SegmentStore, Skipped, encode
from redact_proxy.signals import LOGS, METRICS, TRACES, Signal
from redact_proxy.telemetry import Telemetry

log = logging.getLogger("redact_proxy")

MiB = 1024 * 1024
SEGMENT_BYTES = 16 * MiB  # largest segment file (a bigger batch gets a segment of its own)
CURSOR_COMMIT_SECONDS = 0.2  # the delivery position is made durable at least this often
CLOSE_GRACE = 2.0  # seconds close() lets an upstream call in flight finish before cutting it

# Retry of upstream failures: errors of these types (and their subclasses) are retried;
# any other UpstreamError (UpstreamRejected) is permanent.
RETRYABLE: tuple[type[UpstreamError], ...] = (UpstreamUnavailable, UpstreamThrottled)
BACKOFF_INITIAL = 0.5  # seconds: first delay, before jitter
BACKOFF_MAX = 30.0  # seconds: ceiling of the exponential part
BACKOFF_JITTER = 0.5  # a delay is drawn from [1 - J, 1 + J] x the exponential value
RETRY_AFTER_MAX = 300.0  # seconds: upstream's delay hint is honoured up to this

# Record header codes (segments.py stores small integers, not names). On disk: never
# renumbered.
SIGNAL_CODES: dict[Signal, int] = {TRACES: 1, METRICS: 2, LOGS: 3}
ENCODING_CODES = {Format.PROTOBUF: 1, Format.JSON: 2}
_SIGNALS = {code: signal for signal, code in SIGNAL_CODES.items()}
_ENCODINGS = {code: fmt for fmt, code in ENCODING_CODES.items()}


def segment_bytes_for(max_bytes: int) -> int:
    """Segments of at most a quarter of the bound, so delivered-but-undeleted bytes
    (one segment at most) stay small beside it."""
    return max(4096, min(SEGMENT_BYTES, max_bytes // 4))


def backoff(attempt: int, hint: float | None, rng=random.random) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): exponential with
    jitter, and never less than upstream's hint (Retry-After / RetryInfo)."""
    delay = min(BACKOFF_MAX, BACKOFF_INITIAL * 2 ** min(attempt, 32))
    delay *= 1 - BACKOFF_JITTER + 2 * BACKOFF_JITTER * rng()
    if hint:
        delay = max(delay, min(hint, RETRY_AFTER_MAX))
    return delay


class QueueForwarder:
    def __init__(
        self,
        inner: Forwarder,
        directory: str | os.PathLike,
        max_bytes: int,
        *,
        telemetry: Telemetry | None = None,
        segment_bytes: int | None = None,
        workers: int = 1,
        close_grace: float = CLOSE_GRACE,
        rng=random.random,
    ):
        self.inner = inner
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.store = SegmentStore(self.directory, segment_bytes or segment_bytes_for(max_bytes))
        self.workers = workers
        self.close_grace = close_grace
        self._rng = rng
        telemetry = telemetry or Telemetry()
        self._upstream_error = telemetry.upstream_error
        self._gauge_bytes, self._gauge_records, self._dropped = telemetry.queue()
        self._opened = False
        self._segments: dict[int, int] = {}  # segment -> durable size, oldest first
        self._position = (0, 0)  # next record to deliver: (segment, offset)
        self._committed = (0, 0)  # the position the cursor file holds
        self._last_commit = 0.0
        self._delivered_segments: list[int] = []  # behind the position: delete after the next commit
        self._backlog = 0  # bytes accepted and not yet delivered (incl. being written)
        self._records = 0  # records durable and not yet delivered
        self._pending: deque[tuple[bytes, asyncio.Future]] = deque()
        self._writer_wake = asyncio.Event()
        self._sender_wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._writer: asyncio.Task | None = None
        self._sender: asyncio.Task | None = None
        self._upstream_call: asyncio.Future | None = None

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            recovered = await asyncio.to_thread(self.store.open)
        except OSError as exc:  # QueueInUse is a StartupError already
            raise StartupError.from_os(exc) from exc
        self._opened = True
        self._segments = dict(recovered.segments)
        self._position = self._committed = recovered.position
        self._backlog, self._records = recovered.backlog_bytes, recovered.records
        if recovered.torn:
            self._dropped["torn"].inc(recovered.torn)
        self._publish()
        log.info(
            "queue: %s holds %d batch(es), %d bytes, to deliver (bound %d bytes)",
            self.directory,
            self._records,
            self._backlog,
            self.max_bytes,
        )
        self._warn_orphans()
        await self.inner.start()
        self._writer = asyncio.create_task(self._write_loop(), name="queue-writer")
        self._sender = asyncio.create_task(self._send_loop(), name="queue-sender")

    async def close(self) -> None:
        """Finish the appends under way, stop the sender (interrupting a backoff wait at
        once and an upstream call after ``close_grace``), save the cursor. Undelivered
        batches stay on disk for the next start."""
        self._closing.set()
        self._writer_wake.set()
        self._sender_wake.set()
        if self._writer is not None:
            await self._writer
        if self._sender is not None:
            done, _ = await asyncio.wait({self._sender}, timeout=self.close_grace)
            if not done and self._upstream_call is not None:
                self._upstream_call.cancel()  # redelivered after restart: at-least-once
                done, _ = await asyncio.wait({self._sender}, timeout=1.0)
            if not done:
                self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)
        if self._opened:
            try:
                await self._commit()
            except OSError as exc:
                log.error("queue: cannot save the cursor (%s); some batches will be sent again", _errno(exc))
            await asyncio.to_thread(self.store.close)
            self._opened = False
        await self.inner.close()

    # --- the request path ---------------------------------------------------------------------

    def wire_format(self, fmt: Format) -> Format:
        return Format.PROTOBUF  # stored as protobuf, whatever the client sent

    async def forward(self, batch: Batch) -> Message:
        if self._closing.is_set():
            raise Overloaded("shutting down; the persistent queue takes no more batches")
        record = encode(SIGNAL_CODES[batch.signal], ENCODING_CODES[batch.fmt], batch.encoded(Format.PROTOBUF))
        size = len(record)
        if size > self.max_bytes:
            raise RequestTooLarge(f"redacted batch of {size} bytes exceeds --queue-max-bytes ({self.max_bytes})")
        if self._backlog + size > self.max_bytes:
            raise QueueFull(f"persistent queue full (--queue-max-bytes {self.max_bytes}); retry later")
        self._backlog += size
        self._publish()
        stored = asyncio.get_running_loop().create_future()
        stored.add_done_callback(_settled)
        self._pending.append((record, stored))
        self._writer_wake.set()
        # Shielded: a client that goes away does not take its record out of the group.
        await asyncio.shield(stored)
        return batch.signal.response()

    async def _write_loop(self) -> None:
        """Group commit: everything waiting (that fits the active segment) in one write
        and one sync."""
        while True:
            if not self._pending:
                if self._closing.is_set():
                    return
                self._writer_wake.clear()
                await self._writer_wake.wait()
                continue
            group = self._take_group()
            try:
                seq, size = await asyncio.to_thread(self.store.append, [record for record, _ in group])
            except OSError as exc:
                log.error(
                    "queue: cannot write to %s (%s); %d batch(es) refused", self.directory, _errno(exc), len(group)
                )
                self._backlog -= sum(len(record) for record, _ in group)
                self._publish()
                for _, stored in group:
                    if not stored.done():
                        stored.set_exception(Overloaded(f"persistent queue cannot write ({_errno(exc)})"))
                continue
            self._segments[seq] = size
            self._records += len(group)
            self._publish()
            for _, stored in group:
                if not stored.done():
                    stored.set_result(None)
            self._sender_wake.set()

    def _take_group(self) -> list[tuple[bytes, asyncio.Future]]:
        room = self.store.room()
        group: list[tuple[bytes, asyncio.Future]] = []
        size = 0
        while self._pending and (not group or size + len(self._pending[0][0]) <= room):
            group.append(self._pending.popleft())
            size += len(group[-1][0])
        return group

    # --- the sender -----------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        while not self._closing.is_set():
            try:
                item = await self._next()
                if item is None:
                    return
                if isinstance(item, Skipped):
                    self._dropped["corrupt"].inc()
                    log.warning(
                        "queue: skipped %d unreadable bytes in segment %d at offset %d",
                        item.end - self._position[1],
                        *self._position,
                    )
                elif not await self._deliver(item):
                    return  # closing: the record stays for the next start
                self._consume(item.end)
                if self._delivered_segments or time.monotonic() - self._last_commit >= CURSOR_COMMIT_SECONDS:
                    await self._commit()
            except OSError as exc:  # the disk, not upstream: keep the position, try again
                log.error("queue: disk error in %s (%s); the sender retries", self.directory, _errno(exc))
                await self._sleep(1.0)
            except Exception as exc:  # noqa: BLE001 - the sender must outlive a bug; the record stays
                log.error("queue: sender failed (%s); retrying", exc.__class__.__name__)
                await self._sleep(1.0)

    async def _next(self) -> Record | Skipped | None:
        """The next record to deliver, waiting for one; None when closing."""
        while True:
            seq, offset = self._position
            size = self._segments.get(seq)
            if size is not None and offset < size:
                return await asyncio.to_thread(self.store.read, seq, offset, size)
            later = [s for s in self._segments if s > seq]
            if later:  # this segment is complete and delivered: move on
                if size is not None:
                    self._delivered_segments.append(seq)
                self._position = (min(later), 0)
                continue
            self._sender_wake.clear()
            if self._closing.is_set():
                return None
            if self._position != self._committed or self._delivered_segments:
                await self._commit()  # idle: make the position durable now
            await self._sender_wake.wait()

    async def _deliver(self, record: Record) -> bool:
        """Send one record until upstream takes it or refuses it for good (True), or the
        queue closes (False)."""
        batch = await self._batch(record)
        if batch is None:
            self._dropped["corrupt"].inc()
            log.warning("queue: a stored record does not decode; dropped")
            return True
        attempt = 0
        while not self._closing.is_set():
            self._upstream_call = asyncio.ensure_future(self.inner.forward(batch))
            try:
                await self._upstream_call
            except asyncio.CancelledError:
                task = asyncio.current_task()
                assert task is not None, "a coroutine the sender task runs"
                if self._closing.is_set() and not task.cancelling():
                    return False  # close() cut the call short
                raise
            except Exception as exc:  # noqa: BLE001 - e.g. the file: sink's disk; keep the batch
                if not self._failed(batch.signal, exc, attempt):
                    return True  # refused for good: dropped
                hint = exc.retry_after if isinstance(exc, UpstreamError) else None
            else:
                if attempt:
                    log.info("queue: upstream took the batch after %d retries", attempt)
                return True
            finally:
                self._upstream_call = None
            if await self._sleep(backoff(attempt, hint, self._rng)):
                return False
            attempt += 1
        return False

    def _failed(self, signal: Signal, exc: Exception, attempt: int) -> bool:
        """Count and log a failed attempt; whether to retry it (False: dropped)."""
        if not isinstance(exc, UpstreamError):
            log.error("queue: forwarding failed (%s); retrying with backoff", exc.__class__.__name__)
            return True
        code = getattr(exc, "code", "error")
        self._upstream_error(signal, code)
        if not isinstance(exc, RETRYABLE):
            self._dropped["rejected"].inc()
            log.warning("queue: upstream refused a %s batch as invalid (%s); dropped, not retried", signal.name, code)
            return False
        if attempt == 0:
            log.warning(
                "queue: upstream did not take a %s batch (%s); retrying with backoff, %d batch(es) waiting",
                signal.name,
                code,
                self._records,
            )
        return True

    async def _batch(self, record: Record) -> Batch | None:
        """A stored record as the forwarder sends it, or None if it is not one. Its bytes
        as they are for a protobuf upstream; decoded (on a thread) only when the upstream
        needs the client's OTLP-JSON (SPEC section 4)."""
        signal = _SIGNALS.get(record.signal)
        fmt = _ENCODINGS.get(record.encoding)
        if signal is None or fmt is None:
            return None
        batch = Batch.stored(signal, record.payload, fmt)
        wire = self.inner.wire_format(fmt)
        if not batch.has(wire):
            try:
                await asyncio.to_thread(batch.to_bytes, wire)
            except MalformedRequest:
                return None
        return batch

    def _consume(self, end: int) -> None:
        seq, offset = self._position
        self._backlog -= end - offset
        self._records = max(0, self._records - 1)
        self._position = (seq, end)
        self._publish()

    async def _commit(self) -> None:
        """Save the position, then delete the segments wholly behind it."""
        position = self._position
        if position != self._committed:
            await asyncio.to_thread(self.store.commit, *position)
            self._committed = position
        self._last_commit = time.monotonic()
        while self._delivered_segments:
            seq = self._delivered_segments.pop(0)
            await asyncio.to_thread(self.store.delete, seq)
            self._segments.pop(seq, None)

    async def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds``; True (at once) if the queue is closing."""
        try:
            await asyncio.wait_for(self._closing.wait(), seconds)
        except TimeoutError:
            return False
        return True

    # --- odds and ends --------------------------------------------------------------------------

    def _publish(self) -> None:
        self._gauge_bytes.set(self._backlog)
        self._gauge_records.set(self._records)

    def _warn_orphans(self) -> None:
        """With fewer workers than before, a worker-<n> directory may hold batches nobody
        delivers; say so (worker 0 only, once)."""
        if self.directory.name != "worker-0":
            return
        for sibling in sorted(self.directory.parent.glob("worker-*")):
            index = sibling.name.removeprefix("worker-")
            if index.isdigit() and int(index) >= self.workers and any(sibling.glob("*.seg")):
                log.warning(
                    "queue: %s holds batches of worker %s, which does not run with --workers %d; "
                    "they are delivered when it runs again",
                    sibling,
                    index,
                    self.workers,
                )


def _settled(stored: asyncio.Future) -> None:
    """Mark a write failure as seen even when its client went away before it came."""
    if not stored.cancelled():
        stored.exception()


def _errno(exc: OSError) -> str:
    """ENOSPC, EIO, ...: the error's name, without the path (log lines name our directory once)."""
    return errno.errorcode.get(exc.errno, exc.__class__.__name__) if exc.errno else exc.__class__.__name__
