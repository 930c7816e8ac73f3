"""One export request, after its receiver read it: admit, decode, scrub, encode, forward, count.

Strategy: the receivers own their wire protocol and nothing else; this is the single path
every batch takes, in one direction: codec -> scrub -> codec -> forward. The policy in
force is read once per request from an immutable (policy, counters) pair, so a reload swaps
the pair atomically and a request in flight finishes on the policy it started with.

Admission: a request is refused as Overloaded (503 / UNAVAILABLE with a retry hint) when
--max-inflight requests, or --max-inflight-bytes bytes, are already in progress. Shedding
at the door keeps memory bounded under any offered load; the OTLP clients own the
retries, so a refusal loses nothing. Both receivers take one ``Slot`` (``admission``)
*before* they read a body, for the bytes that reading may buffer (an HTTP Content-Length;
the largest request when the size is not known yet: a chunked body, a gRPC message), and
resize it once, to the decompressed body; the slot is released on every exit path by the
``with`` that holds it. One read of unknown size may go over the byte budget (by at most
one largest request): without it, a budget held by requests waiting on upstream would
refuse every gRPC request however small, as none has a known size. So a client that
declares a large body and stalls holds budget, not unbounded memory, and only until the
receiver's body timeout. The decoded batch costs a small multiple of the body.

Every scrub runs on the one scrub thread, never on the event loop: a 1000-span batch
costs tens of milliseconds of CPU, and on the loop that is tens of milliseconds in which
no connection is accepted, no overload answered and /healthz not served. The batch is
encoded for its forwarder (``Forwarder.wire_format``) on that thread too, so a forwarder
only sends bytes the codec made.

Fail closed: any exception while scrubbing becomes RedactionFailed and the batch is not
forwarded. Nothing from the batch is logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from concurrent.futures import ThreadPoolExecutor

from google.protobuf.message import Message

from redact_proxy.codec import Batch, Format
from redact_proxy.engine import Engine
from redact_proxy import otlpjson
from redact_proxy.errors import MalformedRequest, Overloaded, RedactionFailed, UpstreamError
from redact_proxy.forward import Forwarder
from redact_proxy.policy import CompiledPolicy
from redact_proxy.scrub import Report, scrub
from redact_proxy.signals import Signal, Transport
from redact_proxy.telemetry import Telemetry
from redact_proxy.validate import Wire, check_wire

log = logging.getLogger("redact_proxy")


class Pipeline:
    def __init__(
        self,
        policy: CompiledPolicy,
        forwarder: Forwarder,
        telemetry: Telemetry,
        max_inflight: int,
        max_inflight_bytes: int,
        auditor=None,
        scrub_threads: int = 1,
    ):
        self.forwarder = forwarder
        self.auditor = auditor  # audit.Auditor (--audit): fed each scrubbed batch, off the loop
        self.telemetry = telemetry
        self.max_inflight = max_inflight
        self.max_inflight_bytes = max_inflight_bytes
        self.inflight = 0
        self.inflight_bytes = 0  # bytes held by the requests in progress (Slot)
        self.unsized = 0  # slots still charged the largest size, their size unknown
        self.cancelled = 0  # requests cut before they were answered
        self._scrub_thread = ThreadPoolExecutor(scrub_threads, thread_name_prefix="redact-scrub")
        self._active: tuple[CompiledPolicy, dict, Engine]
        self.set_policy(policy)

    def close(self) -> None:
        self._scrub_thread.shutdown(wait=False, cancel_futures=True)

    @property
    def policy(self) -> CompiledPolicy:
        return self._active[0]

    def set_policy(self, policy: CompiledPolicy, engine: Engine | None = None) -> None:
        """Swap the policy (and its engine, compiled here when not given) for requests
        that start from now on: one assignment, so a request in flight keeps its own."""
        self._active = (policy, self.telemetry.rules_for(policy), engine or Engine(policy))
        self.telemetry.set_policy(policy)
        if self.auditor is not None:
            self.auditor.set_policy(policy)

    def admission(self, nbytes: int, *, sized: bool = True) -> "Slot":
        """A share of both budgets for one request, ``nbytes`` of them; raises Overloaded
        if either is spent. Taken before the body is read (refused work costs no reading)
        and held as ``with pipeline.admission(n) as slot:`` until the request is answered.
        ``sized=False``: ``nbytes`` is the largest the body may be, its size unknown
        until it is read (see "Admission")."""
        if self.inflight >= self.max_inflight:
            raise Overloaded(f"more than --max-inflight ({self.max_inflight}) requests in progress")
        if self.inflight_bytes + nbytes > self.max_inflight_bytes and (sized or self.unsized):
            raise Overloaded(f"more than --max-inflight-bytes ({self.max_inflight_bytes}) in progress")
        return Slot(self, nbytes, sized)

    async def export(self, signal: Signal, transport: Transport, body: bytes, fmt: Format) -> Message:
        """Redact and forward one decompressed export request body, admitted by the
        receiver's Slot; returns upstream's response. Raises a RequestError subclass the
        receiver turns into its answer."""
        try:
            return await self._export(signal, transport, body, fmt)
        except asyncio.CancelledError:
            self.cancelled += 1  # cut short: shutdown grace over, or the client went away
            raise

    async def _export(self, signal: Signal, transport: Transport, body: bytes, fmt: Format) -> Message:
        _policy, rule_counters, engine = self._active
        handles = self.telemetry.signal(signal, transport)
        started = time.perf_counter()
        # On a scrub thread, whatever the size: the loop keeps accepting, refusing and
        # answering /healthz meanwhile. --scrub-threads of them (default 1): the native
        # engine and the wire checks run without the GIL, so more threads scrub batches
        # in parallel when cores are idle (compare.py, 2 cores: 1.42x the throughput of
        # one), but lose when the cores are busy (0.75-0.95x with the load generator and
        # sink competing), as a sidecar's are. The hand-off costs ~0.3 ms per request.
        loop = asyncio.get_running_loop()
        if self.auditor is None:
            batch, report = await loop.run_in_executor(self._scrub_thread, _redact, signal, body, fmt, engine)
        else:
            batch, report = await loop.run_in_executor(
                self._scrub_thread, _redact_audited, signal, body, fmt, engine, self.auditor
            )
        handles.redact_duration.observe(time.perf_counter() - started)
        _count(report, handles, *rule_counters[signal])
        self.telemetry.triaged(signal, report.path)
        if report.items_out == 0:
            # Nothing left to send (empty request, or every item dropped): upstream has
            # nothing to accept, the client is told all is well.
            return signal.response()
        wire = self.forwarder.wire_format(batch.fmt)
        if not batch.has(wire):  # a verbatim body in its own format is made already
            await loop.run_in_executor(self._scrub_thread, batch.to_bytes, wire)
        try:
            response = await self.forwarder.forward(batch)
        except UpstreamError as exc:
            self.telemetry.upstream_error(signal, getattr(exc, "code", "error"))
            raise
        handles.forwarded.inc(report.items_out)
        return response


def _count(report: Report, handles, redacted: list, dropped: list) -> None:
    handles.received.inc(report.items_in)
    for i, n in enumerate(report.redactions):
        if n:
            redacted[i].inc(n)
    for i, n in enumerate(report.dropped):
        if n:
            dropped[i].inc(n)


class Slot:
    """One request's share of the in-flight budgets (see "Admission" above)."""

    __slots__ = ("_pipeline", "nbytes", "_held", "_unsized")

    def __init__(self, pipeline: Pipeline, nbytes: int, sized: bool = True):
        self._pipeline = pipeline
        self.nbytes = nbytes
        self._held = True
        self._unsized = not sized
        pipeline.inflight += 1
        pipeline.inflight_bytes += nbytes
        pipeline.unsized += self._unsized
        pipeline.telemetry.inflight.inc()

    def resize(self, nbytes: int) -> None:
        """Hold ``nbytes`` from now on (the size is known); Overloaded if that overspends
        the byte budget by growing, or at all once a slot of unknown size learns its
        size (it was let in over budget: now it must fit as any other). The slot is
        then unchanged. Otherwise shrinking always succeeds."""
        p = self._pipeline
        grow = nbytes - self.nbytes
        if (grow > 0 or self._unsized) and p.inflight_bytes + grow > p.max_inflight_bytes:
            raise Overloaded(f"more than --max-inflight-bytes ({p.max_inflight_bytes}) in progress")
        p.inflight_bytes += grow
        self.nbytes = nbytes
        if self._unsized:
            self._unsized = False
            p.unsized -= 1

    def release(self) -> None:
        if self._held:
            self._held = False
            p = self._pipeline
            p.inflight -= 1
            p.inflight_bytes -= self.nbytes
            p.unsized -= self._unsized
            self._unsized = False
            p.telemetry.inflight.dec()

    def __enter__(self) -> "Slot":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _redact(signal: Signal, body: bytes, fmt: Format, engine: Engine) -> tuple[Batch, Report]:
    """Decode and scrub one body (no I/O). MalformedRequest passes through; any other
    failure is RedactionFailed: the batch is refused, never forwarded as it was.
    A protobuf body is first checked for what the collector would refuse (validate.py),
    then scrubbed by the native engine as bytes; OTLP-JSON is transcoded natively first.
    What the engine does not take (unknown fields, a body triage's walk will not vouch
    for, JSON the transcoder refuses, a body it declines) is decoded and scrubbed by the
    reference scrubber, and the report says why."""
    wire = None
    if fmt is Format.PROTOBUF:
        wire = check_wire(signal, body)
        why = "reference_unknown_fields"
        if wire is Wire.KNOWN_ONLY:
            result, why = _native(signal, body, engine)
            if result is not None:
                out, report = result
                return Batch.verbatim(signal, body if out is None else out), report
    else:
        # OTLP-JSON is transcoded natively (exactly as the codec reads it), scrubbed as
        # protobuf, and stays JSON for an OTLP/HTTP upstream (codec: the batch's client
        # format). A body the transcoder refuses takes the reference path, whose decoder
        # gives the client its answer.
        why = "reference_json_refused"
        try:
            pb = otlpjson.decode(body, signal.name)
        except MalformedRequest:
            pb = None
        if pb is not None:
            result, why = _native(signal, pb, engine)
            if result is not None:
                out, report = result
                return Batch.stored(signal, pb if out is None else out, Format.JSON), report
    batch = Batch.from_bytes(signal, body, fmt, wire)
    report = replace(_fail_closed(signal, scrub, signal.name, batch.message, engine.policy), path=why)
    if report.changed:
        batch.modified()
    return batch, report


def _native(signal: Signal, pb: bytes, engine: Engine) -> tuple[tuple[bytes | None, Report] | None, str]:
    """The engine's (new body or None, report) for protobuf ``pb`` of known fields, or
    None and why the reference must take it. The engine takes what triage's walk vouches
    the decoder accepts exactly. (Triage's policy side is not asked first: proving a clean
    batch untouched costs it more than the engine's pass, 24 vs 5 ms per 1000 spans.)"""
    if not engine.triage.exact(signal, pb):
        return None, "reference_unvouched"
    return _fail_closed(signal, engine.scrub, signal, pb), "reference_declined"


def _fail_closed(signal: Signal, step, *args):
    """Run a scrub step; any exception refuses the batch (RedactionFailed), content-free."""
    try:
        return step(*args)
    except Exception as exc:
        log.error("redaction failed, batch refused (%s, %s)", signal.name, exc.__class__.__name__)
        raise RedactionFailed("redaction failed; the batch was refused, not forwarded") from exc


def _redact_audited(signal: Signal, body: bytes, fmt: Format, engine: Engine, auditor) -> tuple[Batch, Report]:
    """``_redact``, then the shadow audit of what it produced (--audit). The audit only
    reads the batch, as its protobuf bytes (made once and kept: what a protobuf upstream
    is sent); whatever goes wrong in it, the batch goes on as scrubbed."""
    batch, report = _redact(signal, body, fmt, engine)
    if report.items_out:
        try:
            auditor.observe(signal.name, batch.to_bytes(Format.PROTOBUF), report)
        except Exception as exc:  # noqa: BLE001 -- shadow mode never fails a batch
            log.error("audit failed for one batch, batch forwarded (%s)", exc.__class__.__name__)
    return batch, report
