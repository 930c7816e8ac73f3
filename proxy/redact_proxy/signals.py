"""The three OTLP signals and every name they go by on the wire; the two transports.

Strategy: one frozen record per signal, looked up by name, gRPC method or HTTP path, and
one enum member per transport. Everything else in the package refers to a ``Signal`` and a
``Transport`` rather than to strings; what needs the names (metric labels, the CLI's
choices, the queue's record codes) derives them from ``ALL`` and ``Transport``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import cast

from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2


@dataclass(frozen=True, eq=False)
class Signal:
    name: str  # "traces" | "metrics" | "logs": policy files, metric labels, file sinks
    request: type[Message]
    response: type[Message]
    grpc_method: str  # full method path, as a gRPC client calls it
    http_path: str  # OTLP/HTTP default path

    def __repr__(self) -> str:
        return f"Signal({self.name})"


def descriptor(message: Message | type[Message]) -> Descriptor:
    """``message.DESCRIPTOR``, typed: types-protobuf types it as Descriptor | the upb
    class, while at runtime it is the one descriptor object, with Descriptor's API."""
    return cast(Descriptor, message.DESCRIPTOR)


TRACES = Signal(
    "traces",
    trace_service_pb2.ExportTraceServiceRequest,
    trace_service_pb2.ExportTraceServiceResponse,
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "/v1/traces",
)
METRICS = Signal(
    "metrics",
    metrics_service_pb2.ExportMetricsServiceRequest,
    metrics_service_pb2.ExportMetricsServiceResponse,
    "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "/v1/metrics",
)
LOGS = Signal(
    "logs",
    logs_service_pb2.ExportLogsServiceRequest,
    logs_service_pb2.ExportLogsServiceResponse,
    "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    "/v1/logs",
)

ALL: tuple[Signal, ...] = (TRACES, METRICS, LOGS)
BY_NAME: dict[str, Signal] = {s.name: s for s in ALL}
NAMES: tuple[str, ...] = tuple(s.name for s in ALL)
# The member an OTLP-JSON export request opens with, in both spellings the JSON mapping
# accepts (lowerCamelCase and the proto field name), and its signal.
JSON_ROOTS: dict[str, str] = {
    "resourceSpans": "traces",
    "resourceMetrics": "metrics",
    "resourceLogs": "logs",
    "resource_spans": "traces",
    "resource_metrics": "metrics",
    "resource_logs": "logs",
}


def json_signal(doc: object) -> str | None:
    """The signal of a decoded OTLP-JSON document; None when no root member names one."""
    if isinstance(doc, dict):
        for key, signal in JSON_ROOTS.items():
            if key in doc:
                return signal
    return None


class Transport(enum.Enum):
    """How a request reached the proxy: the ``transport`` label of the metrics."""

    GRPC = "grpc"
    HTTP = "http"

    def __str__(self) -> str:
        return self.value
