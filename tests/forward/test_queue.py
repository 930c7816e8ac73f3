"""forward/queue.py and forward/segments.py: the persistent queue (SPEC section 8).

A batch is acknowledged only once it is durable on disk; the sender delivers records in
order, retries what upstream could not take (backoff with jitter, honouring its delay,
interruptible by close), drops and counts what upstream refuses for good; the files
survive a restart, a torn tail or a corrupt record is skipped and counted, and the queue
is bounded. The upstream here is a fake forwarder: what it is given, and when, is the
contract; the real forwarders and a SIGKILLed proxy are covered by
tests/integration/test_queue_crash.py.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from redact_proxy import codec
from redact_proxy.codec import Batch, Format
from redact_proxy.errors import (
    ConfigError, Overloaded, QueueFull, RequestTooLarge, StartupError, UpstreamRejected, UpstreamThrottled,
    UpstreamUnavailable,
)
from redact_proxy.forward import build, queue as queue_module, segments
from redact_proxy.forward.grpc import GrpcForwarder
from redact_proxy.forward.queue import QueueForwarder, backoff
from redact_proxy.forward.segments import HEADER_BYTES, SegmentStore, encode
from redact_proxy.settings import OPTIONS, QUEUE_MAX_BYTES, Settings
from redact_proxy.signals import TRACES
from redact_proxy.telemetry import Telemetry

MARK = "queue-test-content-7c1e"  # in every batch: must never reach a log line
WAIT = 10.0  # seconds: bound of every wait for the sender


class FakeUpstream:
    """A forwarder that records what it is given. ``script``: exceptions to raise on the
    next calls, in order (then it accepts); ``hold``: calls wait until it is set."""

    def __init__(self, script=(), hold: bool = False):
        self.received: list[tuple[bytes, Format]] = []
        self.calls: list[float] = []
        self.script = list(script)
        self.gate = asyncio.Event()
        if not hold:
            self.gate.set()
        self.started = self.closed = False

    async def start(self):
        self.started = True

    def wire_format(self, fmt):
        return fmt  # as an OTLP/HTTP upstream: the client's encoding

    async def forward(self, batch):
        self.calls.append(time.monotonic())
        await self.gate.wait()
        if self.script:
            raise self.script.pop(0)
        self.received.append((batch.to_bytes(Format.PROTOBUF), batch.fmt))
        return batch.signal.response()

    async def close(self):
        self.closed = True

    def span_ids(self) -> list[int]:
        return [span_id(data) for data, _ in self.received]


def request(i: int, pad: int = 0) -> ExportTraceServiceRequest:
    attrs = [KeyValue(key="keep", value=AnyValue(string_value=f"{MARK}-{i}"))]
    if pad:
        attrs.append(KeyValue(key="pad", value=AnyValue(string_value="x" * pad)))
    span = Span(trace_id=b"\x01" * 16, span_id=i.to_bytes(8, "big"), name="op", attributes=attrs)
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])])


def batch(i: int, pad: int = 0, fmt: Format = Format.PROTOBUF) -> Batch:
    message = request(i, pad)
    body = message.SerializeToString() if fmt is Format.PROTOBUF else codec.encode(message, Format.JSON)
    b = Batch.from_bytes(TRACES, body, fmt)
    b.to_bytes(Format.PROTOBUF)  # as the pipeline does, for the queue's wire_format
    return b


def span_id(data: bytes) -> int:
    message = ExportTraceServiceRequest.FromString(data)
    return int.from_bytes(message.resource_spans[0].scope_spans[0].spans[0].span_id, "big")


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


def records_in(path: Path) -> list[tuple[int, int]]:
    """(offset, length) of each record of a segment file, walking the headers."""
    data, out, p = path.read_bytes(), [], 0
    while p + HEADER_BYTES <= len(data):
        n = int.from_bytes(data[p + 4:p + 8], "little")
        out.append((p, HEADER_BYTES + n))
        p += HEADER_BYTES + n
    return out


async def wait_until(predicate, what: str, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


class Harness:
    """Queues on one directory, started and always closed."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.open: list[QueueForwarder] = []

    async def start(self, upstream: FakeUpstream, max_bytes: int = QUEUE_MAX_BYTES, **kw) -> QueueForwarder:
        kw.setdefault("telemetry", Telemetry())
        kw.setdefault("close_grace", 0.2)
        q = QueueForwarder(upstream, self.directory, max_bytes, **kw)
        await q.start()
        self.open.append(q)
        return q

    async def close(self, q: QueueForwarder) -> None:
        await asyncio.wait_for(q.close(), WAIT)
        self.open.remove(q)

    async def crash(self, q: QueueForwarder) -> None:
        """As SIGKILL leaves it: tasks gone mid-step, no cursor saved, files as they are
        (the store buffers nothing: every write is a write(2))."""
        for task in (q._writer, q._sender):
            task.cancel()
        await asyncio.gather(q._writer, q._sender, return_exceptions=True)
        q.store.close()
        self.open.remove(q)


@pytest.fixture
async def queues(tmp_path):
    h = Harness(tmp_path / "queue")
    yield h
    for q in list(h.open):
        await h.close(q)


def metric(telemetry: Telemetry, name: str, **labels) -> float:
    return telemetry.registry.get_sample_value(name, labels or None) or 0.0


# --- append, read, acknowledge ------------------------------------------------------------


async def test_a_batch_is_acknowledged_once_durable_then_delivered_in_order(queues, monkeypatch):
    synced: list[int] = []
    real = segments._fdatasync
    monkeypatch.setattr(segments, "_fdatasync", lambda fd: (real(fd), synced.append(fd)))
    upstream = FakeUpstream(hold=True)
    telemetry = Telemetry()
    q = await queues.start(upstream, telemetry=telemetry)
    for i in range(3):
        before = len(synced)
        response = await q.forward(batch(i))
        assert response == TRACES.response(), "the client hears a plain OK"
        assert len(synced) > before, "acknowledged without an fsync"
        [segment] = segment_files(queues.directory)
        assert len(records_in(segment)) == i + 1, "acknowledged before it was on disk"
    assert metric(telemetry, "redact_proxy_queue_records") == 3
    assert metric(telemetry, "redact_proxy_queue_bytes") == segment.stat().st_size
    assert upstream.received == []
    upstream.gate.set()
    await wait_until(lambda: len(upstream.received) == 3, "delivery")
    assert upstream.span_ids() == [0, 1, 2]
    assert [data for data, _ in upstream.received] == [batch(i).to_bytes(Format.PROTOBUF) for i in range(3)]
    await wait_until(lambda: metric(telemetry, "redact_proxy_queue_records") == 0, "the gauge to drop")
    assert metric(telemetry, "redact_proxy_queue_bytes") == 0
    await wait_until(lambda: (queues.directory / "cursor").exists(), "the cursor")
    assert upstream.started


async def test_json_batches_reach_upstream_as_json(queues):
    upstream = FakeUpstream()
    q = await queues.start(upstream)
    await q.forward(batch(7, fmt=Format.JSON))
    await wait_until(lambda: upstream.received, "delivery")
    [(data, fmt)] = upstream.received
    assert fmt is Format.JSON, "an OTLP/HTTP upstream must get OTLP-JSON for a JSON client"
    assert span_id(data) == 7


async def test_concurrent_appends_share_syncs_and_all_arrive_once(queues, monkeypatch):
    synced: list[int] = []
    real = segments._fdatasync
    monkeypatch.setattr(segments, "_fdatasync", lambda fd: (real(fd), synced.append(fd)))
    upstream = FakeUpstream()
    q = await queues.start(upstream)
    await asyncio.gather(*(q.forward(batch(i)) for i in range(60)))
    assert len(synced) < 60, "group commit: concurrent appends share an fsync"
    await wait_until(lambda: len(upstream.received) == 60, "delivery")
    assert sorted(upstream.span_ids()) == list(range(60))


async def test_segments_roll_over_and_delivered_ones_are_deleted(queues):
    upstream = FakeUpstream(hold=True)
    q = await queues.start(upstream, segment_bytes=4096)
    for i in range(12):
        await q.forward(batch(i, pad=900))
    files = segment_files(queues.directory)
    assert len(files) >= 3
    assert all(f.stat().st_size <= 4096 for f in files)
    upstream.gate.set()
    await wait_until(lambda: len(upstream.received) == 12, "delivery")
    assert upstream.span_ids() == list(range(12)), "order across segments"
    await wait_until(lambda: len(segment_files(queues.directory)) == 1, "delivered segments to be deleted")
    assert segment_files(queues.directory) == files[-1:], "only the segment being written stays"


# --- bounded ------------------------------------------------------------------------------


async def test_full_queue_refuses_with_unavailable_until_drained(queues):
    upstream = FakeUpstream(hold=True)
    q = await queues.start(upstream, max_bytes=64 * 1024)
    accepted = 0
    with pytest.raises(QueueFull) as refused:
        for i in range(200):
            await q.forward(batch(i, pad=1000))
            accepted += 1
    assert 50 <= accepted < 64
    outcome = refused.value.outcome()
    assert (outcome.grpc_code, outcome.http_status, outcome.retryable) == (grpc.StatusCode.UNAVAILABLE, 503, True)
    assert refused.value.retry_after and MARK not in str(refused.value)
    assert sum(f.stat().st_size for f in segment_files(queues.directory)) <= 64 * 1024
    upstream.gate.set()
    await wait_until(lambda: len(upstream.received) == accepted, "delivery")
    await q.forward(batch(999, pad=1000))  # room again
    await wait_until(lambda: len(upstream.received) == accepted + 1, "delivery")


async def test_a_batch_larger_than_the_bound_is_too_large(queues):
    q = await queues.start(FakeUpstream(), max_bytes=64 * 1024)
    with pytest.raises(RequestTooLarge) as refused:
        await q.forward(batch(1, pad=70_000))
    assert refused.value.outcome().http_status == 413


async def test_a_failed_write_refuses_the_batch_and_the_queue_goes_on(queues, monkeypatch):
    upstream = FakeUpstream()
    q = await queues.start(upstream)
    real, failures = segments._fdatasync, [OSError(errno.ENOSPC, "No space left on device")]

    def flaky(fd):
        if failures:
            raise failures.pop()
        real(fd)

    monkeypatch.setattr(segments, "_fdatasync", flaky)
    with pytest.raises(Overloaded) as refused:
        await q.forward(batch(1))
    assert refused.value.outcome().http_status == 503 and "ENOSPC" in str(refused.value)
    await q.forward(batch(2))
    await wait_until(lambda: upstream.received, "delivery")
    await asyncio.sleep(0.1)
    assert upstream.span_ids() == [2], "the refused batch was not delivered, the next one was"
    assert q._backlog == 0


# --- restarts and crashes --------------------------------------------------------------------


async def test_a_restart_delivers_what_was_stored(queues):
    held = FakeUpstream(hold=True)
    q = await queues.start(held)
    for i in range(5):
        await q.forward(batch(i))
    await queues.close(q)  # cuts the held call: that batch counts as not delivered
    assert held.closed and held.received == []
    upstream = FakeUpstream()
    telemetry = Telemetry()
    q = await queues.start(upstream, telemetry=telemetry)
    assert metric(telemetry, "redact_proxy_queue_records") == 5
    await wait_until(lambda: len(upstream.received) == 5, "delivery after restart")
    await asyncio.sleep(0.1)
    assert upstream.span_ids() == [0, 1, 2, 3, 4], "exactly once after a clean stop"


async def test_a_crash_loses_nothing_acknowledged(queues):
    first = FakeUpstream()
    q = await queues.start(first)
    acknowledged = []
    for i in range(40):
        await q.forward(batch(i))
        acknowledged.append(i)
        if i == 25:
            await wait_until(lambda: len(first.received) >= 10, "some deliveries")
    await queues.crash(q)
    second = FakeUpstream()
    await queues.start(second)
    await wait_until(lambda: set(first.span_ids()) | set(second.span_ids()) >= set(acknowledged),
                     "every acknowledged batch to arrive")
    duplicates = len(first.received) + len(second.received) - len(acknowledged)
    assert duplicates >= 0
    assert second.span_ids() == sorted(second.span_ids()), "in order"


async def test_a_torn_tail_is_truncated_and_counted(queues):
    q = await queues.start(FakeUpstream(hold=True))
    for i in range(3):
        await q.forward(batch(i))
    await queues.close(q)
    [segment] = segment_files(queues.directory)
    valid = segment.stat().st_size
    with open(segment, "ab") as f:  # a write the crash cut short
        f.write(encode(1, 1, batch(99).to_bytes(Format.PROTOBUF))[:25])
    upstream, telemetry = FakeUpstream(), Telemetry()
    await queues.start(upstream, telemetry=telemetry)
    assert segment.stat().st_size == valid, "the torn record was truncated"
    assert metric(telemetry, "redact_proxy_queue_dropped_total", reason="torn") == 1
    await wait_until(lambda: len(upstream.received) == 3, "delivery")
    assert upstream.span_ids() == [0, 1, 2]


@pytest.mark.parametrize("where", ["payload", "length", "magic"])
async def test_a_corrupt_record_is_skipped_and_counted(queues, where):
    q = await queues.start(FakeUpstream(hold=True))
    for i in range(3):
        await q.forward(batch(i))
    await queues.close(q)
    [segment] = segment_files(queues.directory)
    offset, length = records_in(segment)[1]
    data = bytearray(segment.read_bytes())
    at = {"payload": offset + length - 3, "length": offset + 5, "magic": offset}[where]
    data[at] ^= 0x5A
    segment.write_bytes(bytes(data))
    upstream, telemetry = FakeUpstream(), Telemetry()
    await queues.start(upstream, telemetry=telemetry)
    await wait_until(lambda: len(upstream.received) == 2, "delivery")
    await wait_until(lambda: metric(telemetry, "redact_proxy_queue_dropped_total", reason="corrupt") == 1,
                     "the skip to be counted")
    assert upstream.span_ids() == [0, 2]
    assert metric(telemetry, "redact_proxy_queue_dropped_total", reason="torn") == 0, "not mistaken for a tail"


async def test_an_unreadable_cursor_means_duplicates_not_losses(queues, caplog):
    first = FakeUpstream()
    q = await queues.start(first)
    for i in range(3):
        await q.forward(batch(i))
    await wait_until(lambda: len(first.received) == 3, "delivery")
    await queues.close(q)
    (queues.directory / "cursor").write_bytes(b"garbage")
    second = FakeUpstream()
    with caplog.at_level(logging.WARNING, "redact_proxy"):
        await queues.start(second)
    await wait_until(lambda: len(second.received) == 3, "redelivery")
    assert second.span_ids() == [0, 1, 2]
    assert "cursor file unreadable" in caplog.text


async def test_a_second_process_cannot_share_the_directory(queues):
    await queues.start(FakeUpstream())
    other = QueueForwarder(FakeUpstream(), queues.directory, QUEUE_MAX_BYTES, telemetry=Telemetry())
    with pytest.raises(StartupError, match="in use by another redact-proxy process"):
        await other.start()
    await other.close()


# --- retries ----------------------------------------------------------------------------------


def test_backoff_is_exponential_with_jitter_capped_and_honours_the_hint():
    middle = [backoff(n, None, rng=lambda: 0.5) for n in range(10)]
    assert middle[:4] == [0.5, 1.0, 2.0, 4.0]
    assert middle[-1] == queue_module.BACKOFF_MAX
    assert backoff(2, None, rng=lambda: 0.0) == 1.0 and backoff(2, None, rng=lambda: 1.0) == 3.0
    assert backoff(0, 7.0, rng=lambda: 0.5) == 7.0, "never sooner than upstream asked"
    assert backoff(0, 10_000.0, rng=lambda: 0.5) == queue_module.RETRY_AFTER_MAX
    assert backoff(10_000, None) <= queue_module.BACKOFF_MAX * 1.5


async def test_a_throttled_batch_is_retried_no_sooner_than_upstream_asked(queues):
    upstream = FakeUpstream(script=[UpstreamThrottled("slow down", retry_after=0.4, code="429")])
    telemetry = Telemetry()
    q = await queues.start(upstream, telemetry=telemetry, rng=lambda: 0.0)  # own backoff: 0.25 s
    await q.forward(batch(1))
    await wait_until(lambda: upstream.received, "delivery")
    assert len(upstream.calls) == 2
    assert upstream.calls[1] - upstream.calls[0] >= 0.4
    assert metric(telemetry, "redact_proxy_upstream_errors_total", signal="traces", code="429") == 1


async def test_an_unavailable_upstream_is_retried_until_it_takes_the_batch(queues, monkeypatch):
    monkeypatch.setattr(queue_module, "BACKOFF_INITIAL", 0.02)
    outage = [UpstreamUnavailable("down", retry_after=0.01, code="connect") for _ in range(3)]
    upstream = FakeUpstream(script=outage)
    q = await queues.start(upstream, rng=lambda: 0.0)
    await q.forward(batch(1))
    await q.forward(batch(2))
    await wait_until(lambda: len(upstream.received) == 2, "delivery after the outage")
    assert upstream.span_ids() == [1, 2], "order kept across retries"
    assert len(upstream.calls) == 5


async def test_a_permanent_rejection_is_dropped_counted_and_not_logged_verbatim(queues, caplog):
    rejection = UpstreamRejected(f"bad attribute {MARK}", grpc.StatusCode.INVALID_ARGUMENT, 400, "INVALID_ARGUMENT")
    upstream = FakeUpstream(script=[rejection])
    telemetry = Telemetry()
    q = await queues.start(upstream, telemetry=telemetry)
    with caplog.at_level(logging.DEBUG, "redact_proxy"):
        await q.forward(batch(1))
        await q.forward(batch(2))
        await wait_until(lambda: upstream.received, "the next batch")
    assert upstream.span_ids() == [2], "the rejected batch is not retried, the queue is not wedged"
    assert len(upstream.calls) == 2
    assert metric(telemetry, "redact_proxy_queue_dropped_total", reason="rejected") == 1
    await wait_until(lambda: metric(telemetry, "redact_proxy_queue_records") == 0, "the gauge to drop")
    assert "INVALID_ARGUMENT" in caplog.text and MARK not in caplog.text


async def test_close_interrupts_a_backoff_wait_and_keeps_the_batch(queues):
    upstream = FakeUpstream(script=[UpstreamUnavailable("down", retry_after=60.0)])
    q = await queues.start(upstream, close_grace=30.0)
    await q.forward(batch(1))
    await wait_until(lambda: upstream.calls, "the first attempt")
    started = time.monotonic()
    await queues.close(q)
    assert time.monotonic() - started < 5.0, "close waited out the 60 s backoff"
    upstream = FakeUpstream()
    await queues.start(upstream)
    await wait_until(lambda: upstream.received, "delivery after restart")


async def test_close_cuts_an_upstream_call_that_hangs(queues):
    upstream = FakeUpstream(hold=True)
    q = await queues.start(upstream, close_grace=0.1)
    await q.forward(batch(1))
    await wait_until(lambda: upstream.calls, "the call")
    await queues.close(q)  # bounded by WAIT
    with pytest.raises(Overloaded):
        await q.forward(batch(2))


# --- wiring -----------------------------------------------------------------------------------


def settings(environ=None, **values) -> Settings:
    raw = {o.dest: o.default for o in OPTIONS}
    raw.update(policy="policy.yaml", upstream="grpc://127.0.0.1:4317", **values)
    return Settings.resolve(raw, environ=environ or {})


def test_queue_dir_is_one_directory_per_worker():
    assert settings().queue_dir is None
    assert settings(queue_dir="/q").queue_dir == Path("/q/worker-0")
    assert settings({"REDACT_PROXY_WORKER": "3"}, queue_dir="/q").queue_dir == Path("/q/worker-3")
    assert settings().queue_max_bytes == QUEUE_MAX_BYTES == 1024 ** 3
    assert settings(queue_max_bytes="65536").queue_max_bytes == 65536


@pytest.mark.parametrize("bad", ["0", "-5", "1k", "65535"])
def test_queue_max_bytes_is_checked(bad):
    with pytest.raises(ConfigError) as info:
        settings(queue_max_bytes=bad)
    assert any(line.startswith("--queue-max-bytes:") for line in info.value.errors)


async def test_build_wraps_the_upstream_forwarder(tmp_path):
    forwarder = build(settings(queue_dir=str(tmp_path)), Telemetry())
    assert isinstance(forwarder, QueueForwarder) and isinstance(forwarder.inner, GrpcForwarder)
    assert forwarder.directory == tmp_path / "worker-0"
    assert isinstance(build(settings(), Telemetry()), GrpcForwarder)


async def test_batches_left_by_a_worker_no_longer_running_are_reported(tmp_path, caplog):
    orphan = tmp_path / "worker-3"
    store = SegmentStore(orphan, 4096)
    store.open()
    store.append([encode(1, 1, batch(1).to_bytes(Format.PROTOBUF))])
    store.close()
    h = Harness(tmp_path / "worker-0")
    with caplog.at_level(logging.WARNING, "redact_proxy"):
        q = await h.start(FakeUpstream(), workers=2)
    await h.close(q)
    assert "worker 3" in caplog.text and "--workers 2" in caplog.text
