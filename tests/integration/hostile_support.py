"""Hostile clients on raw sockets, for tests/integration/test_hostile_clients.py,
test_http2_abuse.py and benchmarks/hostile.py.

Strategy: each attacker is an asyncio coroutine over a plain TCP connection that says
exactly the bytes an attack needs and no more: HTTP/1.1 written by hand (slow headers,
bodies that stop, chunked bodies that never end), HTTP/2 frames written with the ``h2``
package (gRPC calls that stall, end without a message, exceed MAX_CONCURRENT_STREAMS,
or are reset as soon as they start). Every wait is bounded. What the proxy answered is
read back as a short outcome string (``"408"``, ``"grpc 14"``, ``"rst 7"``, ``"closed"``,
``"none"``), so callers count a status mix. Memory comes from /proc/PID/status: VmHWM
(peak, resettable through /proc/PID/clear_refs) and VmRSS.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections import Counter
from pathlib import Path

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions

MiB = 1024 * 1024
TRACES_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


# --- memory -----------------------------------------------------------------------------


def proc_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def rss(pid: int) -> int:
    return proc_kib(pid, "VmRSS") * 1024


def peak(pid: int) -> int:
    return proc_kib(pid, "VmHWM") * 1024


def reset_peak(pid: int) -> None:
    """VmHWM := VmRSS (Linux: "5" in clear_refs resets the peak resident set size)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


# --- /healthz while under attack ----------------------------------------------------------


async def healthz_once(host: str, port: int, timeout: float = 5.0) -> float | None:
    """Seconds one ``GET /healthz`` took on a new connection; None if not answered 200
    within ``timeout``."""
    started = time.perf_counter()
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n")
            status = await reader.readline()
            await reader.read()
        return time.perf_counter() - started if status.split(b" ")[1:2] == [b"200"] else None
    except (OSError, asyncio.TimeoutError, IndexError):
        return None
    finally:
        if writer is not None:
            writer.close()


class HealthProbe:
    """Polls /healthz every ``every`` seconds while the ``async with`` body runs."""

    def __init__(self, host: str, port: int, every: float = 0.25):
        self.host, self.port, self.every = host, port, every
        self.latencies: list[float] = []
        self.failures = 0
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        while True:
            latency = await healthz_once(self.host, self.port)
            if latency is None:
                self.failures += 1
            else:
                self.latencies.append(latency)
            await asyncio.sleep(self.every)

    async def __aenter__(self) -> "HealthProbe":
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc) -> None:
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    def summary(self) -> str:
        if not self.latencies:
            return f"unreachable ({self.failures} probes failed)"
        ordered = sorted(self.latencies)
        p50 = ordered[len(ordered) // 2]
        text = f"p50 {p50 * 1000:.1f} ms, max {ordered[-1] * 1000:.1f} ms"
        return text + (f", {self.failures} probes failed" if self.failures else "")


# --- HTTP/1.1 by hand -----------------------------------------------------------------------


async def _outcome(reader: asyncio.StreamReader, timeout: float) -> str:
    """The status code of the answer on ``reader``, "closed" if the connection ended
    with none, "none" if nothing came within ``timeout``."""
    try:
        async with asyncio.timeout(timeout):
            line = await reader.readline()
    except asyncio.TimeoutError:
        return "none"
    except OSError:
        return "closed"
    parts = line.split(b" ")
    return parts[1].decode() if len(parts) > 1 and parts[0].startswith(b"HTTP/") else "closed"


async def slow_headers(host: str, port: int, seconds: float, every: float = 1.0) -> str:
    """Slowloris: a request line, then one header byte every ``every`` seconds for up to
    ``seconds``. Returns the proxy's answer ("closed" when it hung up on us) or "open"."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return "refused"
    try:
        writer.write(b"POST /v1/traces HTTP/1.1\r\nHost: proxy\r\nX-Slow: ")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            outcome = await _outcome(reader, every)
            if outcome != "none":
                return outcome
            try:
                writer.write(b"a")
                await writer.drain()
            except OSError:
                return "closed"
        return "open"
    finally:
        writer.close()


async def idle_connection(host: str, port: int, seconds: float) -> str:
    """Connects and says nothing. "closed" when the proxy hung up within ``seconds``."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return "refused"
    try:
        outcome = await _outcome(reader, seconds)
        return "open" if outcome == "none" else outcome
    finally:
        writer.close()


async def stalled_upload(host: str, port: int, declared: int, sent: int, seconds: float,
                         chunk: int = 256 * 1024) -> str:
    """POST /v1/traces with ``Content-Length: declared``, send ``sent`` bytes of it, then
    nothing; returns the answer seen within ``seconds`` (or "open")."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return "refused"
    try:
        writer.write(b"POST /v1/traces HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/x-protobuf\r\n"
                     b"Content-Length: %d\r\n\r\n" % declared)
        block = b"\x00" * chunk
        deadline = time.monotonic() + seconds
        left = sent
        try:
            while left > 0:
                n = min(left, chunk)
                writer.write(block[:n])
                left -= n
                async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
                    await writer.drain()
        except (OSError, asyncio.TimeoutError):
            pass  # the proxy stopped reading (refused, or window full): see what it said
        outcome = await _outcome(reader, max(0.1, deadline - time.monotonic()))
        return "open" if outcome == "none" else outcome
    finally:
        writer.close()


async def endless_chunked(host: str, port: int, seconds: float, every: float = 1.0) -> str:
    """A chunked body whose chunks keep coming (one small chunk every ``every`` s) and
    which never ends."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return "refused"
    try:
        writer.write(b"POST /v1/traces HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/x-protobuf\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            outcome = await _outcome(reader, every)
            if outcome != "none":
                return outcome
            try:
                writer.write(b"1\r\n\x00\r\n")
                await writer.drain()
            except OSError:
                return "closed"
        return "open"
    finally:
        writer.close()


async def late_bad_chunk(host: str, port: int, seconds: float) -> str:
    """Headers of a chunked request first; a chunk-size line that is not hex in a later
    packet."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return "refused"
    try:
        writer.write(b"POST /v1/traces HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/x-protobuf\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.write(b"zz-not-hex\r\n\r\n")
        await writer.drain()
        outcome = await _outcome(reader, seconds)
        return "open" if outcome == "none" else outcome
    finally:
        writer.close()


# --- HTTP/2 frames by hand ----------------------------------------------------------------


def grpc_frame(message: bytes, declared: int | None = None) -> bytes:
    """A gRPC length-prefixed message (uncompressed); ``declared`` lies about its length."""
    return struct.pack(">BI", 0, len(message) if declared is None else declared) + message


class _NoStreamLimit(h2.connection.H2Connection):
    """An h2 client that opens streams past the server's MAX_CONCURRENT_STREAMS, as an
    attacker would (h2 itself refuses to)."""

    @property
    def open_outbound_streams(self) -> int:
        return 0


class RawH2:
    """One HTTP/2 connection to a gRPC server, streams driven by hand. ``outcomes``:
    stream id -> "grpc <status>" (trailers), "rst <code>" (the server reset it) or absent
    (no answer yet). ``goaway`` is set once the server sent GOAWAY; ``closed`` once the
    connection ended."""

    def __init__(self, host: str, port: int, *, ignore_stream_limit: bool = False):
        self.host, self.port = host, port
        cls = _NoStreamLimit if ignore_stream_limit else h2.connection.H2Connection
        self.conn = cls(h2.config.H2Configuration(client_side=True, header_encoding=None))
        self.outcomes: dict[int, str] = {}
        self.goaway: int | None = None  # error code of the GOAWAY, when one came
        self.closed = asyncio.Event()
        self._window = asyncio.Event()
        self._changed = asyncio.Event()
        self._reader_task: asyncio.Task | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> "RawH2":
        reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.conn.initiate_connection()
        self.flush()
        self._reader_task = asyncio.create_task(self._read(reader))
        return self

    async def __aexit__(self, *exc) -> None:
        self.close()
        if self._reader_task is not None:
            self._reader_task.cancel()
            try:
                await self._reader_task
            except (asyncio.CancelledError, Exception):
                pass

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self.writer is not None and not self.writer.is_closing():
            self.writer.write(data)

    async def drain(self) -> None:
        self.flush()
        try:
            await self.writer.drain()
        except OSError:
            pass

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                try:
                    events = self.conn.receive_data(data)
                except h2.exceptions.ProtocolError:
                    break
                for event in events:
                    self._on(event)
                self.flush()
                self._changed.set()
        except OSError:
            pass
        finally:
            self.closed.set()
            self._changed.set()
            self._window.set()

    def _on(self, event) -> None:
        if isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
            headers = dict(event.headers)
            status = headers.get(b"grpc-status")
            if status is not None:
                self.outcomes[event.stream_id] = f"grpc {status.decode()}"
        elif isinstance(event, h2.events.StreamReset):
            self.outcomes.setdefault(event.stream_id, f"rst {int(event.error_code)}")
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = int(event.error_code)
        elif isinstance(event, h2.events.DataReceived):
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
            self._window.set()

    def start_call(self, method: str = TRACES_METHOD, *, end_stream: bool = False) -> int:
        """HEADERS of a new gRPC call; returns its stream id."""
        stream_id = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream_id, [
            (b":method", b"POST"), (b":scheme", b"http"), (b":path", method.encode()),
            (b":authority", f"{self.host}:{self.port}".encode()),
            (b"content-type", b"application/grpc"), (b"te", b"trailers"),
        ], end_stream=end_stream)
        return stream_id

    def send(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        """DATA within the frame size (not the flow-control window: for small data)."""
        size = self.conn.max_outbound_frame_size
        for i in range(0, len(data), size):
            last = i + size >= len(data)
            self.conn.send_data(stream_id, data[i:i + size], end_stream=end_stream and last)
        if not data and end_stream:
            self.conn.end_stream(stream_id)

    def reset(self, stream_id: int) -> None:
        self.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)

    async def send_flow(self, stream_id: int, data: bytes, seconds: float) -> int:
        """Send as much of ``data`` as the server's flow-control windows let through
        within ``seconds``; returns the bytes sent."""
        sent = 0
        deadline = time.monotonic() + seconds
        while sent < len(data) and not self.closed.is_set():
            try:
                window = min(self.conn.local_flow_control_window(stream_id), self.conn.max_outbound_frame_size)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, KeyError):
                break
            if window <= 0:
                self._window.clear()
                try:
                    async with asyncio.timeout(max(0.01, deadline - time.monotonic())):
                        await self._window.wait()
                except asyncio.TimeoutError:
                    break
                continue
            piece = data[sent:sent + window]
            try:
                self.conn.send_data(stream_id, piece)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                break  # answered (or reset) meanwhile
            sent += len(piece)
            await self.drain()
        return sent

    async def wait(self, stream_ids, seconds: float) -> None:
        """Until every stream has an outcome, the connection ended, or ``seconds``."""
        deadline = time.monotonic() + seconds
        pending = set(stream_ids)
        while pending and not self.closed.is_set():
            pending = {s for s in pending if s not in self.outcomes}
            if not pending:
                return
            self._changed.clear()
            try:
                async with asyncio.timeout(max(0.01, deadline - time.monotonic())):
                    await self._changed.wait()
            except asyncio.TimeoutError:
                return

    def mix(self, stream_ids) -> Counter:
        return Counter(self.outcomes.get(s, "closed" if self.closed.is_set() else "none") for s in stream_ids)
