"""The persistent queue's files: checksummed records in append-only segments, and a cursor.

Strategy: a queue directory holds numbered segment files that are only ever appended to,
and one small ``cursor`` file naming the first byte not yet delivered. A record is durable
once ``append`` returns (write, then fdatasync of the segment, and an fsync of the
directory when the append created the segment). The cursor is replaced atomically (temp
file, fsync, rename, fsync of the directory), so after a crash it holds its old or its
new position, never a torn one. Recovery trusts only what it can check: a record counts
if its magic, length and CRC-32 agree; an unreadable stretch is skipped up to the next
record that checks out, and an unreadable tail of the newest segment (a write the crash
cut short: its client was never answered) is truncated.

Every method does blocking I/O and is meant for ``asyncio.to_thread``. The writer side
(``room``, ``append``) and the reader side (``read``, ``commit``, ``delete``) touch
separate file descriptors and may run in two threads at once; the caller keeps the sizes
it was told (``append``'s answer) and reads only below them.

Directory layout::

    lock                       flock(LOCK_EX) by the one process that owns the directory
    cursor                     b"RPQC" | u64 segment | u64 offset | u32 CRC-32 of the 20 bytes before
    00000000000000000001.seg   records back to back; numbered in the order they were started

Record layout, little-endian::

    0   4 bytes  magic b"RPQ1" (format version 1)
    4   4 bytes  payload length N
    8   4 bytes  CRC-32 (zlib) over bytes 4..8 and 12..14+N: length, signal, encoding, payload
    12  1 byte   signal: 1 traces, 2 metrics, 3 logs
    13  1 byte   encoding the client used: 1 protobuf, 2 OTLP-JSON
    14  N bytes  payload: the export request, already redacted, as protobuf

Only redacted batches ever reach a forwarder, so nothing unredacted is written here.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import logging
import os
import re
import struct
import threading
import zlib
from pathlib import Path

from redact_proxy.errors import StartupError

log = logging.getLogger("redact_proxy")

MAGIC = b"RPQ1"
_HEADER = struct.Struct("<4sIIBB")
HEADER_BYTES = _HEADER.size  # 14
_CHECKED = struct.Struct("<IBB")  # the header fields the CRC covers, with the payload
_CURSOR = struct.Struct("<4sQQ")
_CURSOR_MAGIC = b"RPQC"
CURSOR_BYTES = _CURSOR.size + 4
_SEGMENT_RE = re.compile(r"^(\d{20})\.seg$")
_fdatasync = getattr(os, "fdatasync", os.fsync)  # data and size; no need to flush mtime


@dataclasses.dataclass(frozen=True)
class Record:
    signal: int
    encoding: int
    payload: bytes
    end: int  # offset just past the record: where the next one starts


@dataclasses.dataclass(frozen=True)
class Skipped:
    """An unreadable stretch (bad magic, length or checksum) up to ``end``."""

    end: int


@dataclasses.dataclass(frozen=True)
class Recovered:
    """What ``open`` found: segments (number -> size, oldest first), where delivery
    resumes, and what is still to deliver."""

    segments: dict[int, int]
    position: tuple[int, int]
    records: int
    backlog_bytes: int
    torn: int  # torn tails truncated (0 or 1)


class QueueInUse(StartupError):
    """Another process holds the directory's lock."""


def encode(signal: int, encoding: int, payload: bytes) -> bytes:
    crc = zlib.crc32(payload, zlib.crc32(_CHECKED.pack(len(payload), signal, encoding)))
    return _HEADER.pack(MAGIC, len(payload), crc, signal, encoding) + payload


def _parse(buf, p: int, limit: int) -> Record | None:
    """The record at ``buf[p:]`` if it is whole (within ``limit``) and checks out."""
    if limit - p < HEADER_BYTES:
        return None
    magic, n, crc, signal, encoding = _HEADER.unpack_from(buf, p)
    end = p + HEADER_BYTES + n
    if magic != MAGIC or end > limit:
        return None
    payload = memoryview(buf)[p + HEADER_BYTES : end]
    if zlib.crc32(payload, zlib.crc32(_CHECKED.pack(n, signal, encoding))) != crc:
        return None
    return Record(signal, encoding, bytes(payload), end)


def _resync(buf: bytes, p: int, limit: int) -> int | None:
    """The offset of the first whole, valid record after ``p``, if there is one."""
    q = buf.find(MAGIC, p + 1, limit)
    while q != -1:
        if _parse(buf, q, limit) is not None:
            return q
        q = buf.find(MAGIC, q + 1, limit)
    return None


def _pread_all(fd: int, n: int, offset: int) -> bytes:
    chunks = []
    while n > 0:
        chunk = os.pread(fd, n, offset)
        if not chunk:
            break
        chunks.append(chunk)
        n -= len(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class SegmentStore:
    def __init__(self, directory: Path, segment_bytes: int):
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self._lock_fd: int | None = None
        self._next_seq = 1
        # writer side
        self._wfd: int | None = None
        self._wseq = 0
        self._wsize = 0
        # reader side
        self._rfds: dict[int, int] = {}
        self._cursor_lock = threading.Lock()

    def path(self, seq: int) -> Path:
        return self.directory / f"{seq:020d}.seg"

    # --- start ----------------------------------------------------------------------------

    def open(self) -> Recovered:
        """Lock the directory (creating it), check what a previous run left, and say where
        delivery resumes. Raises QueueInUse, or OSError when the directory is unusable."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock()
        (self.directory / "cursor.tmp").unlink(missing_ok=True)
        seqs = sorted(int(m.group(1)) for m in map(_SEGMENT_RE.match, os.listdir(self.directory)) if m)
        cursor = self._read_cursor()
        seq, offset = cursor if cursor is not None else ((seqs[0] if seqs else 0), 0)
        for old in (s for s in seqs if s < seq):  # delivered; the crash came before the unlink
            self.path(old).unlink(missing_ok=True)
        seqs = [s for s in seqs if s >= seq]
        if not seqs or seqs[0] != seq:  # the cursor's segment is gone: it was delivered whole
            seq, offset = (seqs[0] if seqs else seq), 0
        segments = {s: os.path.getsize(self.path(s)) for s in seqs}
        torn = 0
        if seqs:
            last = seqs[-1]
            end = self._valid_end(last)
            if end < segments[last]:
                log.warning(
                    "queue: segment %s ended in an incomplete or corrupt record (%d bytes); "
                    "truncated (no client was told it was stored)",
                    self.path(last).name,
                    segments[last] - end,
                )
                self._truncate(last, end)
                segments[last] = end
                torn = 1
        offset = min(offset, segments.get(seq, 0))
        records = sum(self._count(s, offset if s == seq else 0, size) for s, size in segments.items())
        self._next_seq = max(seqs[-1] if seqs else 0, seq) + 1
        return Recovered(segments, (seq, offset), records, sum(segments.values()) - offset, torn)

    def _lock(self) -> None:
        fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise QueueInUse(f"--queue-dir: {self.directory} is in use by another redact-proxy process") from exc
            raise
        self._lock_fd = fd

    def _read_cursor(self) -> tuple[int, int] | None:
        try:
            data = (self.directory / "cursor").read_bytes()
        except FileNotFoundError:
            return None
        if len(data) == CURSOR_BYTES and zlib.crc32(data[:-4]) == int.from_bytes(data[-4:], "little"):
            magic, seq, offset = _CURSOR.unpack_from(data)
            if magic == _CURSOR_MAGIC:
                return seq, offset
        log.warning("queue: cursor file unreadable; delivering from the oldest segment (duplicates possible)")
        return None

    def _valid_end(self, seq: int) -> int:
        """Where the segment's last valid record ends; corrupt stretches followed by valid
        records are left for ``read`` to skip."""
        data = self.path(seq).read_bytes()
        p, end = 0, 0
        while p < len(data):
            record = _parse(data, p, len(data))
            if record is not None:
                p = end = record.end
                continue
            nxt = _resync(data, p, len(data))
            if nxt is None:
                break
            p = nxt
        return end

    def _truncate(self, seq: int, size: int) -> None:
        fd = os.open(self.path(seq), os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _count(self, seq: int, offset: int, size: int) -> int:
        """Records from ``offset``, walking headers only (an estimate past corruption)."""
        count = 0
        with open(self.path(seq), "rb") as f:
            while offset + HEADER_BYTES <= size:
                head = os.pread(f.fileno(), HEADER_BYTES, offset)
                magic, n = _HEADER.unpack_from(head)[:2] if len(head) == HEADER_BYTES else (b"", 0)
                if magic != MAGIC or offset + HEADER_BYTES + n > size:
                    return count + 1  # the reader will skip this stretch as one
                count += 1
                offset += HEADER_BYTES + n
        return count

    # --- writer side ----------------------------------------------------------------------

    def room(self) -> int:
        """Bytes the active segment takes before the next append starts a new one."""
        return self.segment_bytes - self._wsize if self._wfd is not None else self.segment_bytes

    def append(self, records: list[bytes]) -> tuple[int, int]:
        """Write ``records`` durably to one segment; returns (segment, its size now). A new
        segment is started when the active one has no room (a record larger than a segment
        gets one of its own). On OSError nothing of this call counts as written."""
        data = b"".join(records)
        fd = self._wfd
        if fd is None or (self._wsize and self._wsize + len(data) > self.segment_bytes):
            fd = self._roll()
        try:
            _write_all(fd, data)
            _fdatasync(fd)
        except OSError:
            self._abandon()
            raise
        self._wsize += len(data)
        return self._wseq, self._wsize

    def _roll(self) -> int:
        """Start the next segment; returns its descriptor, now the active one."""
        if self._wfd is not None:
            os.close(self._wfd)  # its data is already synced
            self._wfd = None
        seq = self._next_seq
        self._next_seq += 1
        fd = os.open(self.path(seq), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            self._sync_directory()  # the new name survives a crash
        except OSError:
            os.close(fd)
            raise
        self._wfd, self._wseq, self._wsize = fd, seq, 0
        return fd

    def _abandon(self) -> None:
        """After a failed write: cut the segment back to what was acknowledged, and make the
        next append start a fresh segment in case the cut failed too."""
        fd = self._wfd
        assert fd is not None, "called after a write to the active segment"
        try:
            os.ftruncate(fd, self._wsize)
            _fdatasync(fd)
        except OSError:
            pass
        os.close(fd)
        self._wfd = None

    # --- reader side ----------------------------------------------------------------------

    def read(self, seq: int, offset: int, size: int) -> Record | Skipped:
        """The record at ``offset`` of segment ``seq`` (durable up to ``size``), or the
        stretch to skip when it does not check out."""
        fd = self._rfds.get(seq)
        if fd is None:
            fd = self._rfds[seq] = os.open(self.path(seq), os.O_RDONLY | os.O_CLOEXEC)
        head = os.pread(fd, HEADER_BYTES, offset)
        if len(head) == HEADER_BYTES:
            n = _HEADER.unpack_from(head)[1]
            if offset + HEADER_BYTES + n <= size:
                data = head + _pread_all(fd, n, offset + HEADER_BYTES)
                record = _parse(data, 0, len(data))
                if record is not None:
                    return Record(record.signal, record.encoding, record.payload, offset + record.end)
        rest = _pread_all(fd, size - offset, offset)
        nxt = _resync(rest, 0, len(rest))
        return Skipped(offset + nxt if nxt is not None else size)

    def commit(self, seq: int, offset: int) -> None:
        """Make (seq, offset) the durable delivery position."""
        head = _CURSOR.pack(_CURSOR_MAGIC, seq, offset)
        data = head + zlib.crc32(head).to_bytes(4, "little")
        tmp, final = self.directory / "cursor.tmp", self.directory / "cursor"
        with self._cursor_lock:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, final)
            self._sync_directory()

    def delete(self, seq: int) -> None:
        """Remove a delivered segment (the cursor is already past it)."""
        fd = self._rfds.pop(seq, None)
        if fd is not None:
            os.close(fd)
        self.path(seq).unlink(missing_ok=True)

    # --- end ------------------------------------------------------------------------------

    def close(self) -> None:
        for fd in [self._wfd, *self._rfds.values(), self._lock_fd]:
            if fd is not None:
                try:
                    os.close(fd)  # closing the lock's descriptor releases the flock
                except OSError:
                    pass
        self._wfd, self._rfds, self._lock_fd = None, {}, None

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
