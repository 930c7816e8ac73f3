"""The workloads every benchmark sends: OTLP export requests built from a seed.

Strategy: one generator, shared by the load generator (loadgen.py, and so compare.py,
overload.py and hostile.py) and the in-process engine benchmark (engine.py), so that the
bytes one benchmark measures are the bytes the others send and the two cannot drift.
Every item has ``attrs`` attributes, ``n_sensitive`` of them with keys that the doctrine
policy deletes or hashes (``SENSITIVE_KEYS``), the rest with keys it keeps
(``BENIGN_KEYS``); values are random strings of ``size`` characters, ints or bools. The
same arguments and seed give the same bytes on every run.

Options a workload adds on top: ``exemplars`` (metrics: histogram points carry an
exemplar with attributes of its own), ``structured_body`` (logs: a kvlist body holding a
sensitive key, instead of a line of words); ``values_body`` builds the traces whose
spans each carry a free-text attribute and a SQL statement (the mask and sanitize cost).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

# Keys the doctrine policy (policies/doctrine.yaml) deletes or hashes, and keys it keeps.
# compare.py checks both lists against the policy before it measures anything. Only delete
# and hash keys are used, so that the collector's attributes processor can do the same work.
SENSITIVE_KEYS = (
    "user.id", "enduser.id", "session.id",                          # hashed
    "user.email", "client.address", "http.request.header.authorization", "message.content",
    "net.peer.ip", "exception.message", "device.id", "user_agent.original", "app.push_token",
)
BENIGN_KEYS = (
    "http.route", "http.request.method", "http.response.status_code", "server.address",
    "server.port", "rpc.system", "room.count", "message.size", "peer.count", "url.scheme",
    "network.protocol.version", "component", "thread.id", "deployment.environment",
    "cache.hit", "retry.count", "queue.depth", "feature.flag", "build.version", "shard.index",
    "region.zone", "app.tier", "job.kind", "worker.index", "instance.role", "pool.size",
    "replica.index", "http.status_class", "span.role", "batch.index",
)
RESOURCE = (("service.name", "railgun-api"), ("host.name", "api-1"), ("telemetry.sdk.language", "python"))
_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
_WORDS = ("room", "message", "sent", "retry", "after", "joined", "left", "call", "connection",
          "dropped", "peer", "fallback", "activated", "session", "timeout", "flushed", "queue")
POINTS_PER_METRIC = 20


def _value(kv, rng: random.Random, size: int) -> None:
    kind = rng.random()
    if kind < 0.7:
        kv.value.string_value = "".join(rng.choices(_ALNUM, k=size))
    elif kind < 0.9:
        kv.value.int_value = rng.randrange(1 << 40)
    else:
        kv.value.bool_value = rng.random() < 0.5


def _attrs(target, rng: random.Random, n: int, n_sensitive: int, size: int) -> None:
    keys = rng.sample(SENSITIVE_KEYS, n_sensitive) + rng.sample(BENIGN_KEYS, n - n_sensitive)
    rng.shuffle(keys)
    for key in keys:
        _value(target.add(key=key), rng, size)


def _resource(resource_msg) -> None:
    for key, value in RESOURCE:
        resource_msg.attributes.add(key=key).value.string_value = value


def _span_scope(req: ExportTraceServiceRequest):
    """The one resource and scope of a traces request: where its spans go."""
    rs = req.resource_spans.add()
    _resource(rs.resource)
    ss = rs.scope_spans.add()
    ss.scope.name = "railgun.api"
    return ss


def build_body(signal: str, rng: random.Random, batch: int, attrs: int, n_sensitive: int, size: int, *,
               exemplars: bool = False, structured_body: bool = False) -> bytes:
    """One serialized Export*ServiceRequest with ``batch`` items."""
    t0 = 1_700_000_000_000_000_000
    if signal == "traces":
        req = ExportTraceServiceRequest()
        ss = _span_scope(req)
        for _ in range(batch):
            span = ss.spans.add(name="POST /rooms/{id}/messages", trace_id=rng.randbytes(16),
                                span_id=rng.randbytes(8), parent_span_id=rng.randbytes(8), kind=2,
                                start_time_unix_nano=t0, end_time_unix_nano=t0 + 50_000_000)
            _attrs(span.attributes, rng, attrs, n_sensitive, size)
    elif signal == "metrics":
        req = ExportMetricsServiceRequest()
        rm = req.resource_metrics.add()
        _resource(rm.resource)
        sm = rm.scope_metrics.add()
        sm.scope.name = "railgun.api"
        left, m = batch, 0
        while left > 0:
            metric = sm.metrics.add(name=f"railgun.metric.{m}", unit="1")
            kind = m % 3
            points = (metric.gauge if kind == 0 else metric.sum if kind == 1 else metric.histogram).data_points
            if kind == 1:
                metric.sum.aggregation_temporality = 2
                metric.sum.is_monotonic = True
            for _ in range(min(POINTS_PER_METRIC, left)):
                p = points.add(start_time_unix_nano=t0, time_unix_nano=t0 + 10_000_000_000)
                _attrs(p.attributes, rng, attrs, n_sensitive, size)
                if kind == 2:
                    p.count = 3
                    p.sum = 1.6
                    p.bucket_counts.extend([1, 1, 1])
                    p.explicit_bounds.extend([0.1, 1.0])
                    if exemplars:
                        ex = p.exemplars.add(as_double=0.5, trace_id=rng.randbytes(16), span_id=rng.randbytes(8))
                        _attrs(ex.filtered_attributes, rng, 2, min(1, n_sensitive), size)
                elif kind == 1:
                    p.as_int = rng.randrange(1000)
                else:
                    p.as_double = rng.random()
                left -= 1
            m += 1
    elif signal == "logs":
        req = ExportLogsServiceRequest()
        rl = req.resource_logs.add()
        _resource(rl.resource)
        sl = rl.scope_logs.add()
        sl.scope.name = "railgun.api"
        for _ in range(batch):
            rec = sl.log_records.add(time_unix_nano=t0, observed_time_unix_nano=t0, severity_number=9,
                                     severity_text="INFO", trace_id=rng.randbytes(16), span_id=rng.randbytes(8))
            if structured_body:
                body = rec.body.kvlist_value.values
                body.add(key="event").value.string_value = "message.sent"
                body.add(key="user.email").value.string_value = "someone@example.com"
            else:
                rec.body.string_value = " ".join(rng.choices(_WORDS, k=6))
            _attrs(rec.attributes, rng, attrs, n_sensitive, size)
    else:
        raise ValueError(f"unknown signal {signal!r}")
    return req.SerializeToString()


_SQL = ("SELECT m.id, m.body FROM messages m WHERE m.room_id = {n} AND m.created_at > '2026-11-{d:02d}' "
        "AND m.sender IN ({n}, {m}, {k}) ORDER BY m.created_at DESC LIMIT 50")


def free_text(rng: random.Random, size: int = 200) -> str:
    """Prose of ``size`` characters with an e-mail address or an IP address now and then."""
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < size:
        r = rng.random()
        words.append("ada@example.com" if r < 0.03 else "203.0.113.7" if r < 0.05 else rng.choice(_WORDS))
    return " ".join(words)[:size]


def sql_statement(rng: random.Random) -> str:
    return _SQL.format(n=rng.randrange(10**6), m=rng.randrange(10**6), k=rng.randrange(10**6),
                       d=rng.randrange(1, 28))


def values_body(rng: random.Random, batch: int, attrs: int, size: int) -> bytes:
    """Traces whose every span has ``attrs`` benign attributes, a 200-byte free-text one
    and a SQL statement: what mask rules and sanitize_sql cost."""
    req = ExportTraceServiceRequest()
    ss = _span_scope(req)
    for _ in range(batch):
        span = ss.spans.add(name="SELECT messages", trace_id=rng.randbytes(16), span_id=rng.randbytes(8), kind=3)
        _attrs(span.attributes, rng, attrs, 0, size)
        span.attributes.add(key="event.detail").value.string_value = free_text(rng)
        span.attributes.add(key="db.statement").value.string_value = sql_statement(rng)
    return req.SerializeToString()


def build_pool(signal: str, pool: int, batch: int, attrs: int, sensitive: float, size: int,
               seed: int, cache_dir: str | None = None) -> list[bytes]:
    """``pool`` request bodies, the same for the same arguments. With ``cache_dir`` they
    are kept there (one file per argument set) so repeated runs skip the generation."""
    n_sensitive = min(round(attrs * sensitive), attrs)
    if n_sensitive > len(SENSITIVE_KEYS) or attrs - n_sensitive > len(BENIGN_KEYS):
        raise SystemExit(f"--attrs {attrs} with --sensitive {sensitive}: at most {len(SENSITIVE_KEYS)} sensitive "
                         f"and {len(BENIGN_KEYS)} benign keys per item")
    cache = None
    if cache_dir:
        name = f"{signal}-p{pool}-b{batch}-a{attrs}-s{n_sensitive}-v{size}-seed{seed}.pool"
        cache = Path(cache_dir) / name
        if cache.exists():
            data, bodies = cache.read_bytes(), []
            while data:
                n = int.from_bytes(data[:4], "big")
                bodies.append(data[4:4 + n])
                data = data[4 + n:]
            return bodies
    rng = random.Random(seed)
    bodies = [build_body(signal, rng, batch, attrs, n_sensitive, size) for _ in range(pool)]
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(b"".join(len(b).to_bytes(4, "big") + b for b in bodies))
        tmp.replace(cache)
    return bodies
