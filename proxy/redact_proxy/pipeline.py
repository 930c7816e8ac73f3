"""One export request, after its receiver read it: admit, decode, scrub, forward, count.

Strategy: the receivers own their wire protocol and nothing else; this is the single path
every batch takes, in one direction: codec -> scrub -> forward. The policy in force is
read once per request from an immutable (policy, counters) pair, so a reload swaps the
pair atomically and a request in flight finishes on the policy it started with.

Admission: a request is refused as Overloaded (503 / UNAVAILABLE with a retry hint) when
--max-inflight requests, or --max-inflight-bytes decompressed bytes, are already in
progress. Shedding at the door keeps memory bounded under any offered load; the OTLP
clients own the retries, so a refusal loses nothing. The byte figure is the request body
as decompressed; the decoded batch costs a small multiple of it.

Fail closed: any exception while scrubbing becomes RedactionFailed and the batch is not
forwarded. Nothing from the batch is logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from google.protobuf.message import Message

from redact_proxy.codec import Batch, Format
from redact_proxy.errors import Overloaded, RedactionFailed, UpstreamError
from redact_proxy.forward import Forwarder
from redact_proxy.policy import CompiledPolicy
from redact_proxy.scrub import Report, scrub, untouched
from redact_proxy.signals import Signal
from redact_proxy.telemetry import Telemetry
from redact_proxy.triage import Triage

log = logging.getLogger("redact_proxy")

OFFLOAD_BYTES = 256 * 1024  # bodies at least this big are decoded and scrubbed on a thread


class Pipeline:
    def __init__(self, policy: CompiledPolicy, forwarder: Forwarder, telemetry: Telemetry, max_inflight: int,
                 max_inflight_bytes: int):
        self.forwarder = forwarder
        self.telemetry = telemetry
        self.max_inflight = max_inflight
        self.max_inflight_bytes = max_inflight_bytes
        self.inflight = 0
        self.inflight_bytes = 0  # decompressed bodies of the requests in progress
        self.cancelled = 0  # requests cut before they were answered
        self._scrub_thread = ThreadPoolExecutor(1, thread_name_prefix="redact-scrub")
        self._active: tuple[CompiledPolicy, dict, Triage]
        self.set_policy(policy)

    def close(self) -> None:
        self._scrub_thread.shutdown(wait=False, cancel_futures=True)

    @property
    def policy(self) -> CompiledPolicy:
        return self._active[0]

    def set_policy(self, policy: CompiledPolicy) -> None:
        """Swap the policy for requests that start from now on."""
        self._active = (policy, self.telemetry.rules_for(policy), Triage(policy))
        self.telemetry.set_policy(policy)

    def admit(self, nbytes: int) -> None:
        """Raise Overloaded if a request of ``nbytes`` would go over either budget. Also
        called by a receiver before it reads a body, so refused work costs no reading."""
        if self.inflight >= self.max_inflight:
            raise Overloaded(f"more than --max-inflight ({self.max_inflight}) requests in progress")
        if self.inflight_bytes + nbytes > self.max_inflight_bytes:
            raise Overloaded(f"more than --max-inflight-bytes ({self.max_inflight_bytes}) in progress")

    async def export(self, signal: Signal, transport: str, body: bytes, fmt: Format) -> Message:
        """Redact and forward one export request body; returns upstream's response.
        Raises a RequestError subclass the receiver turns into its answer."""
        size = len(body)
        self.admit(size)
        self.inflight += 1
        self.inflight_bytes += size
        self.telemetry.inflight.inc()
        try:
            return await self._export(signal, transport, body, fmt)
        except asyncio.CancelledError:
            self.cancelled += 1  # cut short: shutdown grace over, or the client went away
            raise
        finally:
            self.inflight -= 1
            self.inflight_bytes -= size
            self.telemetry.inflight.dec()

    async def _export(self, signal: Signal, transport: str, body: bytes, fmt: Format) -> Message:
        policy, rule_counters, triage = self._active
        handles = self.telemetry.signal(signal.name, transport)
        started = time.perf_counter()
        if len(body) >= OFFLOAD_BYTES:
            # A big batch takes milliseconds to seconds of CPU: on the scrub thread, the
            # loop keeps answering other requests and /healthz meanwhile (the GIL is handed
            # over every few ms). ONE thread: several would only fight over the GIL and
            # double the CPU per span (measured: 8 in flight on a thread pool, 2x).
            # Small batches are cheaper inline than the hand-off.
            loop = asyncio.get_running_loop()
            batch, report = await loop.run_in_executor(self._scrub_thread, _redact, signal, body, fmt, policy,
                                                       triage)
        else:
            batch, report = _redact(signal, body, fmt, policy, triage)
        handles.redact_duration.observe(time.perf_counter() - started)
        handles.received.inc(report.items_in)
        redacted, dropped = rule_counters[signal.name]
        for i, n in enumerate(report.redactions):
            if n:
                redacted[i].inc(n)
        for i, n in enumerate(report.dropped):
            if n:
                dropped[i].inc(n)
        if report.items_out == 0:
            # Nothing left to send (empty request, or every item dropped): upstream has
            # nothing to accept, the client is told all is well.
            return signal.response()
        try:
            response = await self.forwarder.forward(batch)
        except UpstreamError as exc:
            self.telemetry.upstream_error(signal.name, getattr(exc, "code", "error"))
            raise
        handles.forwarded.inc(report.items_out)
        return response


def _redact(signal: Signal, body: bytes, fmt: Format, policy: CompiledPolicy,
            triage: Triage) -> tuple[Batch, Report]:
    """Decode and scrub one body (no I/O). MalformedRequest passes through; any other
    failure is RedactionFailed: the batch is refused, never forwarded as it was.
    A protobuf body triage proves untouched is forwarded as it came, undecoded."""
    if fmt is Format.PROTOBUF:
        items = triage.untouched(signal, body)
        if items is not None:
            return Batch.verbatim(signal, body), untouched(items, policy)
    batch = Batch.from_bytes(signal, body, fmt)
    try:
        report = scrub(signal.name, batch.message, policy)
    except Exception as exc:
        log.error("redaction failed, batch refused (%s, %s)", signal.name, exc.__class__.__name__)
        raise RedactionFailed("redaction failed; the batch was refused, not forwarded") from exc
    if report.changed:
        batch.modified()
    return batch, report
