"""The leak corpus through a running proxy: no planted value survives anywhere, and
everything that is not personal does.

Strategy: tests/testdata/leak-corpus holds export requests captured from real SDKs and
loggers (its README says how), with every planted personal value listed in planted.yaml.
A real ``redact-proxy serve`` with policies/doctrine.yaml receives every corpus file twice,
over OTLP/HTTP (protobuf or OTLP-JSON, as the file is) and over OTLP/gRPC (protobuf), in
two variants: straight to an OTLP/HTTP capture, and through the persistent queue
(``--queue-dir``) to an OTLP/gRPC capture that holds its first answer, so the queue's files
are read while they hold the backlog. Then every place the data could reach is searched
for every planted value, in every form it could take there (any letter case,
percent-encoded, JSON-escaped, base64 where it travelled in a bytes value, the protobuf
varint of a number planted as an int, and its ``plantNNNN`` token alone, so a half-masked
value counts): each string, bytes and int field of the decoded upstream batches (reported
with its field path), the raw bytes upstream received, the proxy's stdout and stderr, the
admin /metrics text, and every file under the queue directory (records decoded by the
queue's documented layout, and the raw bytes). A failure lists which planted values leaked
and where; the data and the search are deterministic.

This is the acceptance test of the coverage guarantee (SPEC 6, "Coverage"): it is meant to
fail until every field has a treatment. "Everything else survives" is checked separately:
item counts, span ids, non-personal attributes (routes, db.system, token counts, ...),
metric names, plain span names, severities, plain bodies.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import gzip
import json
import re
import struct
import time
from pathlib import Path
from urllib.parse import quote

import grpc
import pytest
import yaml
from google.protobuf.message import Message
from opentelemetry.proto.common.v1 import common_pb2

from integration_otlp import SIGNALS, items_of, parse_otlp_json, py_value, resources_of
from integration_support import Answer, GrpcCapture, HttpCapture, Proxy, grpc_export

TESTS = Path(__file__).resolve().parent.parent
CORPUS = TESTS / "testdata" / "leak-corpus"
DOCTRINE = TESTS.parent / "policies" / "doctrine.yaml"
DELIVERY_TIMEOUT = 60.0  # seconds: bounded wait for queued batches to reach upstream
MAX_LOCATIONS = 8  # per planted value in the report; the rest are counted

TOKEN = re.compile(r"plant(\d{4})", re.IGNORECASE)
# Non-personal keys whose values must arrive unchanged wherever they appear (attributes
# at any depth, structured bodies): matched on the last segment of the dotted path.
CONTEXT_KEYS = frozenset({
    "service.name", "service.version", "deployment.environment.name", "telemetry.sdk.language",
    "k8s.namespace.name", "k8s.pod.name", "http.route", "route", "http.request.method", "http.response.status_code",
    "server.address", "server.port", "db.system", "db.system.name", "db.operation.name", "db.collection.name",
    "db.namespace", "db.query.summary", "db.redis.database_index", "gen_ai.system", "gen_ai.provider.name",
    "gen_ai.operation.name", "gen_ai.request.model", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
    "llm.usage.total_tokens", "llm.request.type", "openinference.span.kind", "llm.model_name", "ai.model.id",
    "ai.operationId", "exception.type", "job.name", "log.file.name", "code.function.name", "mail.template",
    "shop.region", "delivery.attempt", "app.cache.hit", "level", "log.level", "service",
})
# A name or body with none of these characters cannot hold the corpus's personal data, so
# the policy has no reason to touch it: it must arrive as it was sent.
PLAIN = re.compile(r"[A-Za-z ._/{}-]+")
QUEUE_RECORD = struct.Struct("<4sIIBB")  # SPEC 8 / forward/segments.py: magic, length, crc, signal, encoding
QUEUE_SIGNALS = {1: "traces", 2: "metrics", 3: "logs"}


# --- the corpus -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Plant:
    id: str
    kind: str
    value: str
    files: tuple[str, ...]
    encodings: tuple[str, ...]

    def text_needles(self) -> set[str]:
        """Lowercase forms to find in lowercased text: any case variant matches."""
        forms = {self.value, quote(self.value, safe=""), quote(self.value), json.dumps(self.value)[1:-1]}
        return {f.lower() for f in forms}

    def base64_needles(self) -> set[str]:
        """The value's base64 at each of the three alignments it can have inside a longer
        encoded text, standard and URL-safe alphabets, minus the edge characters that
        depend on neighbours (exact case: base64 is case-sensitive)."""
        if "base64" not in self.encodings:
            return set()
        raw, out = self.value.encode(), set()
        for pad in range(3):
            enc = base64.b64encode(b"\0" * pad + raw).decode().rstrip("=")
            core = enc[(pad * 4 + 2) // 3:]
            core = core[: len(core) - (1 if (pad + len(raw)) % 3 else 0)]
            out |= {core, core.replace("+", "-").replace("/", "_")}
        return out

    def varint_needles(self) -> set[bytes]:
        """A number planted as an int: its protobuf encoding as AnyValue.int_value."""
        if not self.value.isdigit():
            return set()
        n, out = int(self.value), bytearray(b"\x18")
        while True:
            out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not n:
                return {bytes(out)}


def load_plants() -> dict[str, Plant]:
    doc = yaml.safe_load((CORPUS / "planted.yaml").read_text())
    return {p["id"]: Plant(p["id"], p["kind"], str(p["value"]), tuple(p["files"]), tuple(p["encodings"]))
            for p in doc["plants"]}


PLANTS = load_plants()


@dataclasses.dataclass(frozen=True)
class CorpusFile:
    path: Path
    signal: str
    message: Message

    @property
    def is_json(self) -> bool:
        return self.path.suffix == ".json"


def load_corpus() -> list[CorpusFile]:
    files = []
    for path in sorted(CORPUS.iterdir()):
        if path.suffix not in (".pb", ".json"):
            continue
        signal = path.name.split(".")[-2]
        data = path.read_bytes()
        message = parse_otlp_json(signal, data) if path.suffix == ".json" else SIGNALS[signal].request.FromString(data)
        files.append(CorpusFile(path, signal, message))
    return files


CORPUS_FILES = load_corpus()


# --- where text can hide in a batch ----------------------------------------------------------


def service_of(resource) -> str:
    for kv in resource.attributes:
        if kv.key == "service.name":
            return kv.value.string_value
    return "?"


def batch_texts(signal: str, message: Message):
    """(field path, text) for every string, bytes and AnyValue int in an export request;
    keys count as text too (path ending in ``<key>``). Paths start at the resource, named
    by its service.name, so they do not depend on request order."""
    field = {"traces": "resource_spans", "metrics": "resource_metrics", "logs": "resource_logs"}[signal]
    for i, rx in enumerate(getattr(message, field)):
        yield from _texts(rx, f"{signal}[{service_of(rx.resource)}].{field}[{i}]")


def _texts(node, path: str):
    if isinstance(node, common_pb2.AnyValue):
        kind = node.WhichOneof("value")
        if kind == "string_value":
            yield path, node.string_value
        elif kind == "bytes_value":
            yield path + "<bytes>", node.bytes_value.decode("utf-8", "replace")
            yield path + "<bytes:base64>", base64.b64encode(node.bytes_value).decode()
        elif kind in ("int_value", "double_value"):
            yield path, str(getattr(node, kind))
        elif kind == "kvlist_value":
            yield from _key_values(node.kvlist_value.values, path)
        elif kind == "array_value":
            for j, v in enumerate(node.array_value.values):
                yield from _texts(v, f"{path}[{j}]")
        return
    for fd, value in node.ListFields():
        sub = f"{path}.{fd.name}"
        if fd.message_type is not None:
            if fd.message_type.full_name == "opentelemetry.proto.common.v1.KeyValue":
                yield from _key_values(value, sub)
            elif fd.is_repeated:
                for j, v in enumerate(value):
                    yield from _texts(v, f"{sub}[{j}]")
            else:
                yield from _texts(value, sub)
        elif fd.type == fd.TYPE_STRING:
            for j, v in enumerate(value) if fd.is_repeated else [(None, value)]:
                yield (sub if j is None else f"{sub}[{j}]"), v
        elif fd.type == fd.TYPE_BYTES:
            yield sub + "<bytes>", value.decode("utf-8", "replace")


def _key_values(kvs, path: str):
    for kv in kvs:
        sub = f"{path}[{json.dumps(kv.key)}]"
        yield sub + "<key>", kv.key
        yield from _texts(kv.value, sub)


def plants_in_text(text: str) -> set[str]:
    """Ids of the planted values ``text`` holds, whole (in any text form) or by token."""
    low = text.lower()
    found = {"p" + m for m in TOKEN.findall(text)} & PLANTS.keys()
    for plant in PLANTS.values():
        if plant.id not in found and (any(n in low for n in plant.text_needles())
                                      or any(n in text for n in plant.base64_needles())):
            found.add(plant.id)
    return found


def plants_in_bytes(data: bytes) -> set[str]:
    found = plants_in_text(data.decode("latin-1"))
    return found | {p.id for p in PLANTS.values() if any(n in data for n in p.varint_needles())}


# --- one run of the corpus through a proxy ------------------------------------------------------


@dataclasses.dataclass
class Run:
    variant: str
    rejected: list[str]  # "file over transport: answer" for every send not accepted
    received: list
    queue_files: dict[str, bytes]  # relative name -> bytes, taken while held and after delivery
    metrics_text: str
    stdout: str
    stderr: str
    returncode: int | None


VARIANTS = {
    "direct-http-upstream": {"upstream": "http", "queue": False},
    "queue-grpc-upstream": {"upstream": "grpc", "queue": True},
}


def expected_items() -> int:
    return 2 * sum(len(items_of(f.signal, f.message)) for f in CORPUS_FILES)  # two transports


def arrived_items(received: list) -> int:
    return sum(len(items_of(r.signal, r.message)) for r in received if r.message is not None)


def snapshot(directory: Path, into: dict[str, bytes], label: str) -> None:
    for p in sorted(directory.rglob("*")):
        if p.is_file():
            try:
                into[f"{label}:{p.relative_to(directory)}"] = p.read_bytes()
            except FileNotFoundError:  # deleted by the sender meanwhile
                pass


def send_corpus(proxy: Proxy, http_export) -> list[str]:
    rejected = []
    for f in CORPUS_FILES:
        body = f.path.read_bytes()
        ctype = "application/json" if f.is_json else "application/x-protobuf"
        result = http_export(proxy, f.signal, body, content_type=ctype)
        if result.status != 200:
            rejected.append(f"{f.path.name} over OTLP/HTTP ({ctype}): HTTP {result.status}")
        answer = grpc_export(proxy, f.signal, f.message.SerializeToString())
        if answer.code != grpc.StatusCode.OK:
            rejected.append(f"{f.path.name} over OTLP/gRPC: {answer.code.name}")
    return rejected


@pytest.fixture(scope="module", params=list(VARIANTS))
def run(request, loop_thread, http_export, tmp_path_factory) -> Run:
    variant = VARIANTS[request.param]
    workdir = tmp_path_factory.mktemp(f"leak-{request.param}")
    capture = GrpcCapture() if variant["upstream"] == "grpc" else HttpCapture()
    loop_thread.run(capture.start())
    queue_dir = workdir / "queue"
    flags = ("--queue-dir", str(queue_dir)) if variant["queue"] else ()
    proxy = Proxy(workdir, capture.target, *flags, "--upstream-timeout", "10s", policy=DOCTRINE,
                  name=f"leak-{request.param}")
    queue_files: dict[str, bytes] = {}
    try:
        proxy.start()
        if variant["queue"]:
            capture.answer = Answer(hold=True)  # the backlog stays on disk while we look
        rejected = send_corpus(proxy, http_export)
        if variant["queue"]:
            snapshot(queue_dir, queue_files, "held")
            capture.release()
        # Bounded, and not itself a failure: a shortfall is reported by the survival test.
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        while (arrived_items(list(capture.received)) < expected_items() and time.monotonic() < deadline
               and proxy.proc.poll() is None):
            time.sleep(0.05)
        if variant["queue"]:
            snapshot(queue_dir, queue_files, "delivered")
        status, metrics_text = proxy.get("/metrics")
        proxy.stop()
        if variant["queue"]:
            snapshot(queue_dir, queue_files, "stopped")
        yield Run(request.param, rejected, list(capture.received), queue_files,
                  metrics_text if status == 200 else "", proxy.stdout(), proxy.stderr(), proxy.returncode)
    finally:
        proxy.stop()
        capture.release()
        loop_thread.run(capture.stop())


# --- the leak search --------------------------------------------------------------------------------


def queue_record_texts(name: str, data: bytes):
    """(location, text) of the batches in a queue segment, read by the documented record
    layout; what does not parse is left to the raw-bytes search."""
    p = 0
    while (p := data.find(b"RPQ1", p)) != -1 and p + QUEUE_RECORD.size <= len(data):
        _magic, n, _crc, signal_code, encoding = QUEUE_RECORD.unpack_from(data, p)
        payload = data[p + QUEUE_RECORD.size: p + QUEUE_RECORD.size + n]
        signal = QUEUE_SIGNALS.get(signal_code)
        p += 4
        if signal is None or len(payload) != n:
            continue
        try:
            message = (parse_otlp_json(signal, payload) if encoding == 2
                       else SIGNALS[signal].request.FromString(payload))
        except Exception:  # not a record after all
            continue
        for path, text in batch_texts(signal, message):
            yield f"queue file {name}: {path}", text


def find_leaks(run: Run) -> dict[str, set[str]]:
    """plant id -> the locations it was found at."""
    leaks: dict[str, set[str]] = collections.defaultdict(set)

    def note(ids, where):
        for pid in ids:
            leaks[pid].add(where)

    for r in run.received:
        located = set()
        if r.message is not None:
            for path, text in batch_texts(r.signal, r.message):
                ids = plants_in_text(text)
                note(ids, f"upstream {path}")
                located |= ids
        raw = r.raw
        if r.headers.get("content-encoding") == "gzip":
            raw = gzip.decompress(raw)
        note(plants_in_bytes(raw) - located, f"upstream {r.signal} request bytes (raw, no decoded field)")
        if r.parse_error:
            note(plants_in_bytes(r.raw), f"upstream {r.signal} request the capture could not parse")
    note(plants_in_text(run.stdout), "proxy stdout")
    note(plants_in_text(run.stderr), "proxy stderr")
    note(plants_in_text(run.metrics_text), "admin /metrics")
    for name, data in run.queue_files.items():
        located = set()
        for where, text in queue_record_texts(name, data):
            ids = plants_in_text(text)
            note(ids, where)
            located |= ids
        note(plants_in_bytes(data) - located, f"queue file {name} (raw bytes)")
    return leaks


def leak_report(run: Run, leaks: dict[str, set[str]]) -> str:
    lines = [f"{len(leaks)} of {len(PLANTS)} planted values leaked ({run.variant}):"]
    for pid in sorted(leaks):
        plant = PLANTS[pid]
        lines.append(f"  {pid} {plant.kind} {plant.value!r} (planted in {', '.join(plant.files)})")
        where = sorted(leaks[pid], key=lambda w: (not w.startswith("upstream "), w))  # upstream first
        lines += [f"      {w}" for w in where[:MAX_LOCATIONS]]
        if len(where) > MAX_LOCATIONS:
            lines.append(f"      ... and {len(where) - MAX_LOCATIONS} more")
    by_field = collections.Counter(re.sub(r"\[\d+\]", "[]", w.split(": ")[-1]).split(".", 1)[-1]
                                   for pid in leaks for w in leaks[pid] if w.startswith("upstream "))
    if by_field:
        lines.append("  upstream leaks by field (indices folded):")
        lines += [f"    {n:3d}  {field}" for field, n in sorted(by_field.items(), key=lambda kv: (-kv[1], kv[0]))]
    return "\n".join(lines)


def test_corpus_is_what_planted_yaml_says():
    """Every planted value is in the files planted.yaml names (the search below is only as
    good as this list), and every corpus file is one export request of its signal."""
    assert CORPUS_FILES and len({f.path.name for f in CORPUS_FILES}) == len(CORPUS_FILES)
    texts = {}
    for f in CORPUS_FILES:
        assert f.path.name.count(".") == 2 and f.signal in SIGNALS, f"{f.path.name}: not <source>.<signal>.<pb|json>"
        assert items_of(f.signal, f.message), f"{f.path.name} holds no items"
        texts[f.path.name] = {pid for _, text in batch_texts(f.signal, f.message) for pid in plants_in_text(text)}
    for plant in PLANTS.values():
        missing = [name for name in plant.files if plant.id not in texts.get(name, set())]
        assert not missing, f"{plant.id} is not in {missing}"
    unlisted = {pid for ids in texts.values() for pid in ids} - PLANTS.keys()
    assert not unlisted


def test_no_planted_value_survives(run):
    assert not run.rejected, "the proxy refused corpus files:\n" + "\n".join(run.rejected)
    leaks = find_leaks(run)
    if leaks:  # the report is the whole message; the fixture's repr would only bury it
        pytest.fail(leak_report(run, leaks), pytrace=False)


# --- everything else survives ------------------------------------------------------------------------


def leaves(value: common_pb2.AnyValue, path: str):
    kind = value.WhichOneof("value")
    if kind == "kvlist_value":
        for kv in value.kvlist_value.values:
            yield from leaves(kv.value, f"{path}.{kv.key}" if path else kv.key)
    elif kind == "array_value":
        for v in value.array_value.values:
            yield from leaves(v, path)
    else:
        yield path, py_value(value)


def context_of(kvs, prefix: str = ""):
    for kv in kvs:
        for path, v in leaves(kv.value, f"{prefix}{kv.key}"):
            key = path.removeprefix("body.")
            if key in CONTEXT_KEYS or key.rsplit(".", 1)[-1] in CONTEXT_KEYS:
                yield path, v


def summary(signal: str, message: Message) -> collections.Counter:
    """What must survive of one export request, as a multiset of facts."""
    facts = collections.Counter()
    field = {"traces": "resource_spans", "metrics": "resource_metrics", "logs": "resource_logs"}[signal]
    for rx in getattr(message, field):
        svc = service_of(rx.resource)
        facts.update((svc, "resource", p, repr(v)) for p, v in context_of(rx.resource.attributes))
        for sx in getattr(rx, field.replace("resource_", "scope_")):
            if PLAIN.fullmatch(sx.scope.name or "-"):
                facts[(svc, "scope", sx.scope.name)] += 1
            if signal == "traces":
                for span in sx.spans:
                    facts[(svc, "span id", span.trace_id.hex(), span.span_id.hex(), span.parent_span_id.hex())] += 1
                    facts.update((svc, "span attr", p, repr(v)) for p, v in context_of(span.attributes))
                    if PLAIN.fullmatch(span.name):
                        facts[(svc, "span name", span.name)] += 1
                    facts[(svc, "span kind/events/links", span.kind, len(span.events), len(span.links),
                           span.status.code)] += 1
            elif signal == "logs":
                for record in sx.log_records:
                    facts[(svc, "log record", record.severity_text, record.severity_number)] += 1
                    facts.update((svc, "log attr", p, repr(v)) for p, v in context_of(record.attributes))
                    body = common_pb2.KeyValue(key="body", value=record.body)
                    facts.update((svc, "log body", p, repr(v)) for p, v in context_of([body]))
                    if record.body.WhichOneof("value") == "string_value" and PLAIN.fullmatch(record.body.string_value):
                        facts[(svc, "plain body", record.body.string_value)] += 1
            else:
                for metric in sx.metrics:
                    kind = metric.WhichOneof("data")
                    facts[(svc, "metric", metric.name, kind)] += 1
                    for point in getattr(metric, kind).data_points:
                        facts[(svc, "data point", metric.name)] += 1
                        facts.update((svc, "point attr", metric.name, p, repr(v))
                                     for p, v in context_of(point.attributes))
    return facts


def test_everything_else_survives(run):
    assert not run.rejected, "the proxy refused corpus files:\n" + "\n".join(run.rejected)
    assert run.returncode == 0, f"the proxy exited {run.returncode} on SIGTERM; stderr:\n{run.stderr}"
    assert all(r.parse_error is None for r in run.received), "upstream could not read what the proxy sent"
    assert arrived_items(run.received) == expected_items(), "every span, data point and log record arrives"
    sent, arrived = collections.Counter(), collections.Counter()
    for f in CORPUS_FILES:
        facts = summary(f.signal, f.message)
        sent.update({k: 2 * n for k, n in facts.items()})  # two transports
    for r in run.received:
        arrived.update(summary(r.signal, r.message))
    missing, extra = sent - arrived, arrived - sent
    # A span name that was a raw URL or statement arrives sanitized, and so plain
    # ("GET /users/{id}/orders"): a new plain name, not lost context.
    extra = collections.Counter({f: n for f, n in extra.items() if f[1] != "span name"})
    if missing or extra:
        pytest.fail("non-personal context changed on the way:\n" + "\n".join(
            [f"  missing {n}x {fact}" for fact, n in sorted(missing.items(), key=repr)]
            + [f"  unexpected {n}x {fact}" for fact, n in sorted(extra.items(), key=repr)]), pytrace=False)

