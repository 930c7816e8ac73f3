"""Wraps captured JSON log lines into OTLP log records, the three ways real pipelines do.

Strategy: for each ``LINES_DIR/<logger>.log`` (one JSON object per line, as the logger
wrote it) three export requests are written to OUT_DIR:

``<logger>-filelog.logs.json`` (OTLP-JSON)
    what the collector's filelog receiver emits with no parser operator: the body is the
    line as a string, ``log.file.name`` the only attribute, no timestamp or severity
    (filelog sets only the observed time), an empty scope.
``<logger>-json-parser.logs.pb`` (protobuf)
    the same after a ``json_parser`` operator with ``parse_to: body``: the body is the
    parsed object, nested objects as nested kvlists and arrays as arrays; numbers are
    doubles, as stanza's JSON decoding gives them.
``<logger>-bridge.logs.pb`` (protobuf)
    the shape of the OpenTelemetry log bridges (pino-opentelemetry-transport, the winston
    transport, otelzap, otellogrus, the log4j appender): the message is the body, the
    level the severity, every other field an attribute, nested objects as kvlists,
    integers as ints.

Every request has the resource a collector's ``resource`` processor would add
(``service.name`` = ``<logger>-<shape>``, k8s pod and namespace). Observed times are
fixed, so a re-run changes a file only if the logger's line changed.

usage: python wrap_lines.py LINES_DIR OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.resource.v1 import resource_pb2

OBSERVED = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z, fixed

MESSAGE_KEYS = ("msg", "message", "event")
LEVEL_KEYS = ("level", "log.level")
# Numeric levels of pino and bunyan; names of everything else.
SEVERITY = {10: ("TRACE", 1), 20: ("DEBUG", 5), 30: ("INFO", 9), 40: ("WARN", 13), 50: ("ERROR", 17), 60: ("FATAL", 21),
            "trace": ("TRACE", 1), "debug": ("DEBUG", 5), "info": ("INFO", 9), "warn": ("WARN", 13),
            "warning": ("WARN", 13), "error": ("ERROR", 17), "fatal": ("FATAL", 21)}


def any_value(x, *, ints: bool) -> common_pb2.AnyValue:
    if x is None:
        return common_pb2.AnyValue()
    if isinstance(x, bool):
        return common_pb2.AnyValue(bool_value=x)
    if isinstance(x, int) and ints:
        return common_pb2.AnyValue(int_value=x)
    if isinstance(x, (int, float)):
        return common_pb2.AnyValue(double_value=float(x))
    if isinstance(x, dict):
        return common_pb2.AnyValue(kvlist_value=common_pb2.KeyValueList(values=key_values(x, ints=ints)))
    if isinstance(x, list):
        return common_pb2.AnyValue(array_value=common_pb2.ArrayValue(values=[any_value(i, ints=ints) for i in x]))
    return common_pb2.AnyValue(string_value=str(x))


def key_values(d: dict, *, ints: bool) -> list:
    return [common_pb2.KeyValue(key=k, value=any_value(v, ints=ints)) for k, v in d.items()]


def request(service: str, records: list) -> logs_service_pb2.ExportLogsServiceRequest:
    res = resource_pb2.Resource(attributes=key_values(
        {"service.name": service, "k8s.namespace.name": "shop", "k8s.pod.name": "checkout-7f9c-x2x4q"}, ints=True))
    return logs_service_pb2.ExportLogsServiceRequest(resource_logs=[logs_pb2.ResourceLogs(
        resource=res, scope_logs=[logs_pb2.ScopeLogs(scope=common_pb2.InstrumentationScope(), log_records=records)])])


def filelog(name: str, lines: list[str]) -> list:
    return [logs_pb2.LogRecord(observed_time_unix_nano=OBSERVED + i, body=common_pb2.AnyValue(string_value=line),
                               attributes=key_values({"log.file.name": f"{name}.log"}, ints=True))
            for i, line in enumerate(lines)]


def json_parser(name: str, lines: list[str]) -> list:
    return [logs_pb2.LogRecord(observed_time_unix_nano=OBSERVED + i, body=any_value(json.loads(line), ints=False),
                               attributes=key_values({"log.file.name": f"{name}.log"}, ints=True))
            for i, line in enumerate(lines)]


def bridge(lines: list[str]) -> list:
    records = []
    for i, line in enumerate(lines):
        fields = json.loads(line)
        message = next((fields.pop(k) for k in MESSAGE_KEYS if isinstance(fields.get(k), str)), "")
        level = next((fields.pop(k) for k in LEVEL_KEYS if k in fields), None)
        text, number = SEVERITY.get(level.lower() if isinstance(level, str) else level, ("", 0))
        records.append(logs_pb2.LogRecord(
            observed_time_unix_nano=OBSERVED + i, severity_text=text, severity_number=number,
            body=common_pb2.AnyValue(string_value=message), attributes=key_values(fields, ints=True)))
    return records


def main() -> int:
    lines_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    for path in sorted(lines_dir.glob("*.log")):
        name = path.stem
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        as_json = json_format.MessageToDict(request(f"{name}-filelog", filelog(name, lines)))
        (out / f"{name}-filelog.logs.json").write_text(json.dumps(as_json, indent=1, ensure_ascii=False) + "\n")
        (out / f"{name}-json-parser.logs.pb").write_bytes(
            request(f"{name}-json-parser", json_parser(name, lines)).SerializeToString())
        (out / f"{name}-bridge.logs.pb").write_bytes(request(f"{name}-bridge", bridge(lines)).SerializeToString())
    return 0


if __name__ == "__main__":
    sys.exit(main())
