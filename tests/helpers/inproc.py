"""An in-process proxy of real parts for the fast tier: the package's own Settings,
CompiledPolicy, Telemetry and Pipeline, with a recording forwarder in place of an upstream.

Strategy: nothing is faked but the upstream. ``Recorder`` stands where a forwarder does
and keeps what it was sent (or raises what the test tells it to), so a test sees exactly
what would have left the proxy. Settings come from ``Settings.resolve`` over the option
table's defaults, as the command line would give them."""

from __future__ import annotations

import dataclasses
import socket

from google.protobuf.message import Message

from redact_proxy.codec import Batch, Format
from redact_proxy.pipeline import Pipeline
from redact_proxy.policy import CompiledPolicy
from redact_proxy.policy.compile import compile_policy
from redact_proxy.policy.schema import parse
from redact_proxy.settings import OPTIONS, Settings
from redact_proxy.telemetry import Telemetry

# Deletes one key everywhere; enough for a batch to show whether it was scrubbed.
POLICY = b"""
version: 1
hash: {algorithm: sha256}
rules:
  - name: secret
    action: delete
    keys: [secret]
"""


def policy(text: bytes = POLICY) -> CompiledPolicy:
    return compile_policy(parse(text, "test-policy.yaml"), environ={})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settings(**overrides: str | None) -> Settings:
    """Settings as `redact-proxy serve` would resolve them. ``overrides``: option dests
    (text, as on the command line), or resolved fields such as ``auth_token`` that an
    option reads from a file; a name that is neither is an error, not a silent default."""
    values = {o.dest: o.default for o in OPTIONS}
    options = {k: v for k, v in overrides.items() if k in values}
    fields = {k: v for k, v in overrides.items() if k not in values}
    unknown = set(fields) - {f.name for f in dataclasses.fields(Settings)}
    if unknown:
        raise KeyError(f"no such option or setting: {sorted(unknown)}")
    values.update({"policy": "test-policy.yaml", "upstream": "debug", **options})
    return dataclasses.replace(Settings.resolve(values, environ={}), **fields)


class Recorder:
    """A forwarder that keeps the batches it is given and the bytes it sends of each
    (``sent``: in its ``wire_format``, ``wire``, as the pipeline had the codec make them,
    read the one way a real forwarder reads them); raises ``fail`` instead when set."""

    def __init__(self, wire: Format = Format.PROTOBUF) -> None:
        self.wire = wire
        self.batches: list[Batch] = []
        self.sent: list[bytes] = []
        self.fail: Exception | None = None

    async def start(self) -> None:
        pass

    def wire_format(self, fmt: Format) -> Format:
        return self.wire

    async def forward(self, batch: Batch) -> Message:
        if self.fail is not None:
            raise self.fail
        self.sent.append(batch.encoded(self.wire))  # raises if the pipeline did not encode it first
        self.batches.append(batch)
        return batch.signal.response()

    async def close(self) -> None:
        pass


def receiver_parts(node, **listen: str) -> tuple[Settings, Recorder, Pipeline]:
    """What an in-process receiver stands on: its settings (``listen``, then the test's
    ``receiver_options`` mark), a recorder as upstream and the pipeline in between."""
    mark = node.get_closest_marker("receiver_options")
    resolved = settings(**listen, **(mark.kwargs if mark else {}))
    rec = Recorder()
    return resolved, rec, pipeline(rec, max_inflight=resolved.max_inflight)


def sample(telemetry: Telemetry, name: str, **labels: str) -> float:
    """One sample of the exposition, read as /metrics would show it. A sample that is not
    there is an error, not a zero: a misspelt name must not pass for "nothing counted"."""
    value = telemetry.registry.get_sample_value(name, labels)
    if value is None:
        raise LookupError(f"no sample {name}{labels}")
    return value


def pipeline(
    forwarder: Recorder,
    compiled: CompiledPolicy | None = None,
    *,
    max_inflight: int = 8,
    max_inflight_bytes: int = 64 << 20,
) -> Pipeline:
    return Pipeline(compiled or policy(), forwarder, Telemetry(), max_inflight, max_inflight_bytes)
