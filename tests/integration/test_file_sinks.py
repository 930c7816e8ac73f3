"""``file:PATH`` and ``debug`` upstreams (forward/files.py): one OTLP-JSON export request
per line, redacted, with hex ids; readable by the collector's otlpjsonfile receiver."""

from __future__ import annotations

import json

from integration_otlp import (
    GONE, HEALTH_SPAN, MARK, assert_redacted, attrs, build_request, check_sdk_arrival, items_of,
    parse_otlp_json, Received, to_otlp_json,
)
from integration_support import grpc_export, sdk_export

TOP = {"resourceSpans": "traces", "resourceMetrics": "metrics", "resourceLogs": "logs"}


def read_lines(text: str) -> list[Received]:
    """Each non-empty line -> a Received, parsed strictly as OTLP-JSON."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        tree = json.loads(line)
        [key] = [k for k in tree if k in TOP]
        out.append(Received(TOP[key], parse_otlp_json(TOP[key], line.encode()), line.encode(), {}))
    return out


def drive(proxy, http_export) -> tuple:
    """SDK traces over gRPC, SDK metrics over HTTP, hand-built logs as OTLP-JSON."""
    spans, ok = sdk_export("traces", "grpc", proxy)
    assert ok
    metrics, ok = sdk_export("metrics", "http", proxy)
    assert ok
    logs = build_request("logs", items=2)
    result = http_export(proxy, "logs", json.dumps(to_otlp_json(logs)).encode(), content_type="application/json")
    assert result.status == 200
    return spans, metrics, logs


def check_lines(lines: list[Received], spans, metrics, logs) -> None:
    assert [r.signal for r in lines] == ["traces", "metrics", "logs"]
    check_sdk_arrival("traces", spans, lines[:1])
    check_sdk_arrival("metrics", metrics, lines[1:2])
    records = items_of("logs", lines[2].message)
    assert len(records) == 2
    for sent, got in zip(items_of("logs", logs), records):
        assert (got.trace_id, got.span_id) == (sent.trace_id, sent.span_id)
        assert_redacted(attrs(got.attributes))
    for line in lines:
        assert GONE.encode() not in line.raw
    span_json = json.loads(lines[0].raw)["resourceSpans"][0]["scopeSpans"][0]["spans"]
    sdk_ids = {format(s.context.span_id, "016x") for s in spans if s.name != HEALTH_SPAN}
    assert {s["spanId"] for s in span_json} == sdk_ids, "span ids are hex in OTLP-JSON"


def test_file_upstream_writes_redacted_otlp_json_lines(own_proxies, tmp_path, http_export):
    out = tmp_path / "redacted.jsonl"
    proxy = own_proxies(f"file:{out}", name="file-sink")
    spans, metrics, logs = drive(proxy, http_export)
    check_lines(read_lines(out.read_text()), spans, metrics, logs)
    assert proxy.stop() == 0
    assert MARK not in proxy.stdout(), "the file sink writes to its file, not stdout"


def test_debug_upstream_prints_redacted_otlp_json_lines(own_proxies, http_export):
    proxy = own_proxies("debug", name="debug-sink")
    spans, metrics, logs = drive(proxy, http_export)
    assert proxy.stop() == 0, proxy.stderr()
    check_lines(read_lines(proxy.stdout()), spans, metrics, logs)
    assert MARK not in proxy.stderr()
    assert GONE not in proxy.stdout()


def test_file_upstream_appends_and_nothing_is_written_for_refused_requests(own_proxies, tmp_path, http_export):
    out = tmp_path / "appended.jsonl"
    out.write_text("")
    proxy = own_proxies(f"file:{out}", name="file-sink-append")
    assert grpc_export(proxy, "traces", build_request("traces")).code.name == "OK"
    bad = http_export(proxy, "traces", b"\x0a\xff" + GONE.encode())
    assert bad.status == 400
    assert grpc_export(proxy, "metrics", build_request("metrics")).code.name == "OK"
    lines = read_lines(out.read_text())
    assert [r.signal for r in lines] == ["traces", "metrics"]
    assert GONE not in out.read_text()
