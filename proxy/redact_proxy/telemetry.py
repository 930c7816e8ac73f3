"""The proxy's own metrics (SPEC section 7), declared once.

Strategy: every series is a row of ``METRICS`` (name, unit, help, labels), declared from
it on a private registry; README's list of metrics is checked against the table
(tests/test_readme.py). Callers get pre-labelled children (``Telemetry.signal(...)``,
``Telemetry.rules_for(...)``) once, at start-up or policy load, so the request path only
calls ``inc``/``observe``. Labels carry signal, transport, gRPC/HTTP codes and
operator-written rule names: never telemetry content.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

from redact_proxy.policy import Action, CompiledPolicy
from redact_proxy.scrub import PATHS
from redact_proxy.signals import ALL, Signal, Transport

# `*_created` series double the exposition and no dashboard or alert here uses them.
disable_created_metrics()

# With --workers > 1 every process writes its values to files in this directory and
# /metrics reads them all back: the figures are sums over workers (SPEC section 7).
MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR" in os.environ

# Request latency spans client -> upstream answer; redact latency only the scrub step.
_REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_REDACT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)

# Why the persistent queue gave a batch up: upstream refused it as invalid; it failed its
# checksum on disk; or its write was cut short by a crash (its client was never answered).
QUEUE_DROP_REASONS = ("rejected", "corrupt", "torn")


@dataclass(frozen=True)
class Metric:
    """One series family. ``name`` as exposed (a counter gains ``_total``); ``unit`` is
    its base unit as Prometheus names it, the name's own suffix ("" for a count of
    things); ``options``: the histogram's buckets, the gauge's multiprocess mode."""

    attr: str  # the Telemetry attribute holding it
    kind: type
    name: str
    unit: str
    help: str
    labels: tuple[str, ...] = ()
    options: tuple[tuple[str, object], ...] = ()


# Every series of SPEC section 7, once. Gauges of a --workers group are summed live
# (livesum) or the latest kept (livemax) across its processes.
METRICS: tuple[Metric, ...] = (
    Metric(
        "received_items",
        Counter,
        "redact_proxy_received_items",
        "",
        "Items (spans, data points, log records) received.",
        ("signal", "transport"),
    ),
    Metric(
        "requests",
        Counter,
        "redact_proxy_requests",
        "",
        "Export requests answered, by answer code (gRPC code name or HTTP status).",
        ("signal", "transport", "code"),
    ),
    Metric(
        "redactions",
        Counter,
        "redact_proxy_redactions",
        "",
        "Attributes changed or removed, by policy rule.",
        ("signal", "rule", "action"),
    ),
    Metric(
        "dropped_items", Counter, "redact_proxy_dropped_items", "", "Items removed by drop rules.", ("signal", "rule")
    ),
    Metric(
        "forwarded_items",
        Counter,
        "redact_proxy_forwarded_items",
        "",
        "Items forwarded upstream and accepted.",
        ("signal",),
    ),
    Metric(
        "upstream_errors",
        Counter,
        "redact_proxy_upstream_errors",
        "",
        "Forwards upstream did not accept.",
        ("signal", "code"),
    ),
    Metric(
        "request_duration",
        Histogram,
        "redact_proxy_request_duration_seconds",
        "seconds",
        "Time from request received to answer sent.",
        ("signal", "transport"),
        (("buckets", _REQUEST_BUCKETS),),
    ),
    Metric(
        "redact_duration",
        Histogram,
        "redact_proxy_redact_duration_seconds",
        "seconds",
        "Time spent decoding and scrubbing one batch.",
        ("signal",),
        (("buckets", _REDACT_BUCKETS),),
    ),
    Metric(
        "inflight",
        Gauge,
        "redact_proxy_inflight_requests",
        "",
        "Export requests being processed.",
        (),
        (("multiprocess_mode", "livesum"),),
    ),
    Metric("policy_reloads", Counter, "redact_proxy_policy_reloads", "", "Policy reload attempts.", ("result",)),
    Metric(
        "policy_info",
        Gauge,
        "redact_proxy_policy_info",
        "",
        "The policy in force (value 1), by SHA-256 of its file.",
        ("sha256",),
        (("multiprocess_mode", "livemax"),),
    ),
    # --queue-dir (forward/queue.py); zero without a queue. Per worker, summed.
    Metric(
        "queue_bytes",
        Gauge,
        "redact_proxy_queue_bytes",
        "bytes",
        "Persistent queue: bytes of batches accepted and not yet delivered upstream.",
        (),
        (("multiprocess_mode", "livesum"),),
    ),
    Metric(
        "queue_records",
        Gauge,
        "redact_proxy_queue_records",
        "",
        "Persistent queue: batches stored and not yet delivered upstream.",
        (),
        (("multiprocess_mode", "livesum"),),
    ),
    Metric(
        "queue_dropped",
        Counter,
        "redact_proxy_queue_dropped",
        "",
        "Persistent queue: batches given up, by reason (rejected, corrupt, torn).",
        ("reason",),
    ),
    Metric(
        "triage",
        Counter,
        "redact_proxy_triage",
        "",
        "Batches by the path that scrubbed them: the native engine (untouched, rewritten) or the reference "
        "scrubber and why (scrub.PATHS).",
        ("signal", "result"),
    ),
    # --audit: what survived the policy, by finding kind (audit/shapes.py KINDS, a closed
    # set); never a key or a value in a label.
    Metric(
        "audit_findings",
        Counter,
        "redact_proxy_audit_findings",
        "",
        "Audit (--audit): values that still look personal after the policy, by signal, level and kind.",
        ("signal", "level", "kind"),
    ),
)
# Counted by the --workers supervisor, outside any Telemetry: only exposed (summed from
# the multiprocess directory) when there is a supervisor.
WORKER_RESTARTS = Metric(
    "worker_restarts", Counter, "redact_proxy_worker_restarts", "", "Worker processes restarted after dying."
)


def declare(metric: Metric, registry: CollectorRegistry | None):
    return metric.kind(
        metric.name, metric.help, list(metric.labels), unit=metric.unit, registry=registry, **dict(metric.options)
    )


worker_restarts = declare(WORKER_RESTARTS, None)


@dataclass(frozen=True)
class SignalHandles:
    """Children for one (signal, transport): what a request touches."""

    received: Counter
    forwarded: Counter
    request_duration: Histogram
    redact_duration: Histogram


class Telemetry:
    # One attribute per row of METRICS (declared there; set in __init__), typed for readers.
    received_items: Counter
    requests: Counter
    redactions: Counter
    dropped_items: Counter
    forwarded_items: Counter
    upstream_errors: Counter
    request_duration: Histogram
    redact_duration: Histogram
    inflight: Gauge
    policy_reloads: Counter
    policy_info: Gauge
    queue_bytes: Gauge
    queue_records: Gauge
    queue_dropped: Counter
    audit_findings: Counter
    triage: Counter

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        for metric in METRICS:
            setattr(self, metric.attr, declare(metric, self.registry))
        self._audit_handles: dict[tuple[str, str, str], Counter] = {}
        self._triage = {(s, path): self.triage.labels(s.name, path) for s in ALL for path in PATHS}
        self._policy_sha: str | None = None
        for result in ("success", "failure"):
            self.policy_reloads.labels(result)
        self._queue_dropped = {reason: self.queue_dropped.labels(reason) for reason in QUEUE_DROP_REASONS}
        self._handles = {
            (s, t): SignalHandles(
                self.received_items.labels(s.name, t.value),
                self.forwarded_items.labels(s.name),
                self.request_duration.labels(s.name, t.value),
                self.redact_duration.labels(s.name),
            )
            for s in ALL
            for t in Transport
        }

    def signal(self, signal: Signal, transport: Transport) -> SignalHandles:
        return self._handles[(signal, transport)]

    def queue(self) -> tuple[Gauge, Gauge, dict[str, Counter]]:
        """The persistent queue's handles: bytes gauge, records gauge, dropped counter per reason."""
        return self.queue_bytes, self.queue_records, self._queue_dropped

    def request_answered(self, signal: Signal, transport: Transport, code: str) -> None:
        self.requests.labels(signal.name, transport.value, code).inc()

    def upstream_error(self, signal: Signal, code: str) -> None:
        self.upstream_errors.labels(signal.name, code).inc()

    def triaged(self, signal: Signal, path: str) -> None:
        self._triage[(signal, path)].inc()

    def audit_found(self, signal: str, found: dict) -> None:
        """One request's audit findings, {(level, kind): n}. Children are made on first
        use: the label space is bounded (signals x levels x kinds) but mostly empty."""
        handles = self._audit_handles
        for (level, kind), n in found.items():
            child = handles.get((signal, level, kind))
            if child is None:
                child = handles[(signal, level, kind)] = self.audit_findings.labels(signal, level, kind)
            child.inc(n)

    def rules_for(self, policy: CompiledPolicy) -> dict[Signal, tuple[list, list]]:
        """Per signal: (redaction counter per rule index, drop counter per rule index);
        None where the rule cannot count that (a drop rule redacts no attribute) or does
        not apply to the signal."""
        out = {}
        for sig in ALL:
            s = sig.name
            applies = [s in rule.signals for rule in policy.rules]
            out[sig] = (
                [
                    self.redactions.labels(s, r.name, r.action.value) if ok and r.action is not Action.DROP else None
                    for r, ok in zip(policy.rules, applies, strict=True)
                ],
                [
                    self.dropped_items.labels(s, r.name) if ok and r.action is Action.DROP else None
                    for r, ok in zip(policy.rules, applies, strict=True)
                ],
            )
        return out

    def set_policy(self, policy: CompiledPolicy) -> None:
        previous, self._policy_sha = self._policy_sha, policy.sha256
        if previous is not None and previous != policy.sha256:
            if MULTIPROCESS:  # values live in files: a series cannot be removed, only zeroed
                self.policy_info.labels(previous).set(0)
            else:
                self.policy_info.remove(previous)
        self.policy_info.labels(policy.sha256).set(1)

    def exposition(self) -> tuple[bytes, str]:
        if MULTIPROCESS:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
