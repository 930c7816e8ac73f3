"""Forwarders: send a redacted Batch upstream and return upstream's export response.

Strategy: one class per kind of upstream (gRPC, OTLP/HTTP, file, debug), all with the same
four methods. ``wire_format`` says which encoding the forwarder sends a batch in, so the
pipeline has the codec make those bytes off the event loop; ``forward`` only sends them (a
forwarder decodes no batch and encodes none) and reads upstream's answer through the codec.
``forward`` is synchronous in the OTLP sense: it returns only after
upstream answered, so the client's answer means what it says. Upstream failures are
raised as the ``Upstream*`` errors of ``errors.py``; nothing is retried here — the client
(an OTel SDK) owns retries, and the proxy holds no data it could lose.

The one exception is ``--queue-dir`` (queue.py): it wraps the upstream forwarder, answers
once the batch is stored on disk, and owns the retries of its deliveries.
"""

from __future__ import annotations

from redact_proxy.forward.base import Forwarder
from redact_proxy.settings import Settings

__all__ = ["Forwarder", "build"]


def build(settings: Settings, telemetry=None) -> Forwarder:
    upstream = _upstream(settings)
    if settings.queue_dir is None:
        return upstream
    from redact_proxy.forward.queue import QueueForwarder

    return QueueForwarder(
        upstream, settings.queue_dir, settings.queue_max_bytes, telemetry=telemetry, workers=settings.workers
    )


def _upstream(settings: Settings) -> Forwarder:
    kind = settings.upstream.kind
    if kind == "grpc":
        from redact_proxy.forward.grpc import GrpcForwarder

        return GrpcForwarder(settings)
    if kind == "http":
        from redact_proxy.forward.http import HttpForwarder

        return HttpForwarder(settings)
    from redact_proxy.forward.files import DebugForwarder, FileForwarder

    return FileForwarder(settings.upstream.target) if kind == "file" else DebugForwarder()
