"""Live policy reload while traffic flows (service.py reload and file poll, pipeline.py's
atomic (policy, counters) swap; SPEC section 6: "reloads on SIGHUP and when the file
changes, atomically, without dropping requests"; issue 5 item 6).

One proxy, one client thread sending continuously (raw OTLP over gRPC and OTLP/HTTP, and
the OpenTelemetry SDK's gRPC and HTTP exporters, in turn), while the test replaces the
policy file A -> B (picked up by the file poll), B -> an invalid file (refused by the
poll, then by SIGHUP), and back to A with a SIGHUP. Every request carries its sequence
number in a span attribute, so each forwarded batch is matched to the moment it was sent:

- no request fails, and the proxy answered nothing but OK / 200;
- every forwarded batch is scrubbed entirely by A or entirely by B (never half of each);
- a batch sent after a reload showed in /metrics is scrubbed by the new policy, and while
  the invalid file is in place B keeps working;
- the refusal is logged naming FILE:LINE, and /metrics counts reloads by result and shows
  the policy in force by its sha256.

No duration is asserted: "after" means after the test observed the switch in /metrics.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import threading
from pathlib import Path

import grpc

from integration_otlp import (
    DELETED_KEYS, MARK, attrs, build_request, hmac_hex, kvs, sdk_resource, sensitive_attributes,
)
import integration_support
from integration_support import POLICY, grpc_export, sdk_exporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

WAIT = 20.0  # seconds; bounded wait for a reload to show, or for traffic to pass a point
PER_PHASE = 8  # requests that must complete after each observed switch
MAX_REQUESTS = 1500  # the client thread's bound, whatever happens

POLICY_A = POLICY.read_text()
# B deletes http.route and hashes keep.*: both visible at every level of every batch.
POLICY_B = POLICY_A.replace("keys: [user.email]", "keys: [user.email, http.route]").replace(
    "keys: [user.id, session.id]", "keys: [user.id, session.id]\n    patterns: ['keep\\..*']")
BROKEN_LINE = "    patterns: ['secret\\..*']"
POLICY_BROKEN = POLICY_A.replace(BROKEN_LINE, "    patterns: ['secret\\.(']")
KEEP_KEY = f"keep.{MARK}"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def write_atomically(path: Path, text: str) -> None:
    """As operators and Kubernetes replace files: never half-written when read."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def wait_for(predicate, what: str, timeout: float = WAIT):
    return integration_support.wait_for(predicate, timeout, what)


# --- the client ----------------------------------------------------------------------------------


class Traffic(threading.Thread):
    """Sends one traces export after another until stopped (or MAX_REQUESTS), rotating
    over four clients. ``results[seq]`` is (client, ok, detail)."""

    CLIENTS = ("raw-grpc", "raw-http", "sdk-grpc", "sdk-http")

    def __init__(self, proxy, http_export):
        super().__init__(name="reload-traffic", daemon=True)
        self.proxy = proxy
        self.http_export = http_export
        self.stopping = threading.Event()
        self.results: dict[int, tuple[str, bool, str]] = {}
        self.next_seq = 0  # the seq of the next request to be *started*
        self.error: BaseException | None = None
        self.memory = InMemorySpanExporter()
        provider = TracerProvider(resource=sdk_resource())
        provider.add_span_processor(SimpleSpanProcessor(self.memory))
        self.tracer = provider.get_tracer("reload.traffic")
        self.provider = provider
        self.exporters = {t: sdk_exporter("traces", t, proxy) for t in ("grpc", "http")}

    def completed_from(self, seq: int) -> int:
        return sum(1 for s in list(self.results) if s >= seq)

    def run(self) -> None:
        try:
            while not self.stopping.is_set() and self.next_seq < MAX_REQUESTS:
                seq = self.next_seq
                self.next_seq += 1
                client = self.CLIENTS[seq % 4]
                self.results[seq] = (client, *self._send(client, seq))
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _send(self, client: str, seq: int) -> tuple[bool, str]:
        if client.startswith("raw"):
            request = build_request("traces", items=2)
            for span in request.resource_spans[0].scope_spans[0].spans:
                span.attributes.extend(kvs({"seq": seq}))
            if client == "raw-grpc":
                result = grpc_export(self.proxy, "traces", request)
                return result.code is grpc.StatusCode.OK, f"{result.code} {result.details}"
            result = self.http_export(self.proxy, "traces", request)
            return result.status == 200, f"HTTP {result.status}"
        with self.tracer.start_as_current_span(f"reload {seq}", attributes={**sensitive_attributes(), "seq": seq}) as span:
            span.add_event("step", attributes=sensitive_attributes())
        spans = self.memory.get_finished_spans()
        self.memory.clear()
        outcome = self.exporters[client.split("-")[1]].export(spans)
        return outcome.name == "SUCCESS", outcome.name

    def finish(self) -> None:
        self.stopping.set()
        self.join(60)
        for exporter in self.exporters.values():
            exporter.shutdown()
        self.provider.shutdown()
        assert not self.is_alive(), "the client thread did not stop"
        assert self.error is None, f"the client thread crashed: {self.error!r}"


# --- what arrived -----------------------------------------------------------------------------


def form_of(message) -> str:
    """'A' or 'B': which policy scrubbed this batch. Every attribute list at every level
    must agree, and what both policies do must be done."""
    forms = set()
    lists = []
    for rs in message.resource_spans:
        lists.append(attrs(rs.resource.attributes))
        for ss in rs.scope_spans:
            for span in ss.spans:
                lists.append(attrs(span.attributes))
                lists.extend(attrs(e.attributes) for e in span.events)
    assert lists
    for got in lists:
        for key in DELETED_KEYS:
            assert key not in got, f"{key} reached upstream"
        assert got["user.id"] == hmac_hex(f"{MARK}-user-42")
        assert got["session.id"] == hmac_hex(b"4242")
        if got.get("http.route") == "/checkout" and got[KEEP_KEY] == f"{MARK}-kept":
            forms.add("A")
        elif "http.route" not in got and got[KEEP_KEY] == hmac_hex(f"{MARK}-kept"):
            forms.add("B")
        else:
            raise AssertionError(f"scrubbed by neither policy: {got}")
    assert len(forms) == 1, f"a batch half scrubbed by each policy: {lists}"
    return forms.pop()


def seq_of(message) -> int:
    seqs = {kv.value.int_value for rs in message.resource_spans for ss in rs.scope_spans
            for span in ss.spans for kv in span.attributes if kv.key == "seq"}
    assert len(seqs) == 1, seqs
    return seqs.pop()


# --- the test -----------------------------------------------------------------------------------


def test_reload_under_traffic(own_proxies, grpc_upstream, http_export, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY_A)
    proxy = own_proxies(grpc_upstream.target, policy=policy, name="reload-traffic")

    def info() -> list[dict]:
        return [s.labels for s in proxy.metrics().samples if s.name == "redact_proxy_policy_info" and s.value == 1]

    def reloads(result: str) -> float:
        return proxy.metrics().value("redact_proxy_policy_reloads_total", result=result)

    assert info() == [{"sha256": sha256(POLICY_A)}]
    traffic = Traffic(proxy, http_export)
    traffic.start()
    try:
        wait_for(lambda: traffic.completed_from(0) >= PER_PHASE, "traffic to flow")

        # 1. A -> B, picked up by the file poll.
        write_atomically(policy, POLICY_B)
        wait_for(lambda: info() == [{"sha256": sha256(POLICY_B)}], "policy_info to switch to B")
        assert reloads("success") == 1
        b_from = traffic.next_seq
        wait_for(lambda: traffic.completed_from(b_from) >= PER_PHASE, "traffic after the switch to B")

        # 2. B -> an invalid file: refused, B stays; then SIGHUP re-reads it: refused again.
        write_atomically(policy, POLICY_BROKEN)
        wait_for(lambda: reloads("failure") == 1, "the invalid file to be refused")
        proxy.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: reloads("failure") == 2, "SIGHUP to refuse the invalid file too")
        assert info() == [{"sha256": sha256(POLICY_B)}]
        assert reloads("success") == 1
        broken_from = traffic.next_seq
        wait_for(lambda: traffic.completed_from(broken_from) >= PER_PHASE, "traffic with the invalid file in place")

        # 3. Back to A, with a SIGHUP (the poll may reload it as well). Requests answered
        #    before this point were all scrubbed while B was in force.
        answered_under_b = set(traffic.results)
        write_atomically(policy, POLICY_A)
        proxy.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: info() == [{"sha256": sha256(POLICY_A)}], "policy_info to switch back to A")
        a_from = traffic.next_seq
        wait_for(lambda: traffic.completed_from(a_from) >= PER_PHASE, "traffic after the switch back to A")
    finally:
        traffic.finish()

    # Nothing failed, nothing was refused (the SDK exporters retry: count the proxy's answers).
    failed = {seq: r for seq, r in traffic.results.items() if not r[1]}
    assert not failed, f"requests failed during reloads: {failed}"
    metrics = proxy.metrics()
    codes = {s.labels["code"] for s in metrics.samples if s.name == "redact_proxy_requests_total" and s.value}
    assert codes <= {"OK", "200"}, f"the proxy answered {codes}"
    assert metrics.value("redact_proxy_requests_total") == len(traffic.results)
    assert metrics.value("redact_proxy_policy_reloads_total", result="failure") == 2
    assert metrics.value("redact_proxy_policy_reloads_total", result="success") in (2, 3)

    # Each request was forwarded exactly once, scrubbed wholly by one policy.
    forms: dict[int, str] = {}
    for received in grpc_upstream.received:
        assert received.parse_error is None
        seq = seq_of(received.message)
        assert seq not in forms, f"request {seq} forwarded twice"
        forms[seq] = form_of(received.message)
    assert sorted(forms) == sorted(traffic.results)
    for seq, form in forms.items():
        if seq >= b_from and seq in answered_under_b:
            assert form == "B", f"request {seq} sent after the switch to B was scrubbed by A"
        elif seq >= a_from:
            assert form == "A", f"request {seq} sent after the switch back to A was scrubbed by B"
    assert forms[0] == "A"
    clients = {traffic.results[s][0] for s in forms if s >= b_from}
    assert clients == set(Traffic.CLIENTS), "every client sent after the switch"

    # The refusal names the file and the line of the bad regex; nothing from telemetry.
    line = POLICY_A.splitlines().index(BROKEN_LINE) + 1
    refused = [ln for ln in proxy.stderr().splitlines() if "policy reload refused" in ln]
    assert len(refused) == 2, proxy.stderr()
    for ln in refused:
        assert re.search(rf"{re.escape(str(policy))}:{line}:\d+: rules\[1\]\.patterns\[0\]: invalid RE2 regex", ln), ln
