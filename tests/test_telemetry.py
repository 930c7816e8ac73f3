"""telemetry.py: every metric declared once on its own registry; the hot path's handles
pre-labelled; per-rule counters only where a rule applies; the exposition names rules,
signals and codes, never content."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from helpers import inproc
from redact_proxy.signals import ALL, BY_NAME, LOGS, TRACES, Transport
from redact_proxy.scrub import PATHS
from redact_proxy.telemetry import QUEUE_DROP_REASONS, Telemetry

SIGNALS = [s.name for s in ALL]
TRANSPORTS = [t.value for t in Transport]


def _samples(t: Telemetry) -> dict[tuple[str, tuple], float]:
    text = generate_latest(t.registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_two_telemetries_do_not_share_a_registry():
    a, b = Telemetry(), Telemetry()
    a.request_answered(TRACES, Transport.GRPC, "OK")
    assert _samples(a)[("redact_proxy_requests_total", (("code", "OK"), ("signal", "traces"),
                                                         ("transport", "grpc")))] == 1
    assert not any(name == "redact_proxy_requests_total" for name, _ in _samples(b))


def test_every_signal_and_transport_has_its_handles_before_any_request():
    t = Telemetry()
    for s in ALL:
        for tr in Transport:
            h = t.signal(s, tr)
            h.received.inc(3)
    got = _samples(t)
    for s in SIGNALS:
        for tr in TRANSPORTS:
            key = ("redact_proxy_received_items_total", (("signal", s), ("transport", tr)))
            assert got[key] == 3


def test_rule_counters_exist_only_where_the_rule_applies():
    compiled = inproc.policy(b"""
version: 1
hash: {algorithm: sha256}
rules:
  - {name: only-logs, action: delete, keys: [k], signals: [logs]}
  - {name: drop-debug, action: drop, when: {key: level, equals: debug}}
""")
    t = Telemetry()
    counters = t.rules_for(compiled)
    for s in SIGNALS:
        redacted, dropped = counters[BY_NAME[s]]
        assert (redacted[0] is not None) == (BY_NAME[s] is LOGS)
        assert redacted[1] is None and dropped[0] is None and dropped[1] is not None


def test_the_exposition_names_only_rules_signals_and_codes():
    t = Telemetry()
    compiled = inproc.policy()
    t.set_policy(compiled)
    t.rules_for(compiled)[TRACES][0][0].inc()
    t.upstream_error(TRACES, "connect")
    labels = {v for _, pairs in _samples(t) for k, v in pairs if k != "le"}  # le: histogram buckets
    assert labels <= {*SIGNALS, *TRANSPORTS, *QUEUE_DROP_REASONS, *PATHS, "secret", "delete", "connect", compiled.sha256,
                      "success", "failure"}
