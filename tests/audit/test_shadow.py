"""``serve --audit``: the same counts for live traffic, on the admin port. A real proxy
subprocess receives the captured-style inputs over OTLP/HTTP; /metrics then carries
``redact_proxy_audit_findings_total{signal,level,kind}`` and /audit the per-field table,
and neither (nor the proxy's logs) holds a planted value or a key name in a label."""

from __future__ import annotations

import asyncio
import gzip
import json

from integration_support import Metrics, Proxy, http_request

from test_audit_cli import DATA, PLANTED, POLICY, assert_no_planted_value


def post(proxy: Proxy, path: str, body: bytes, content_type: str) -> int:
    result = asyncio.run(http_request("POST", proxy.http_url + path, body, {"Content-Type": content_type}))
    return result.status


def test_serve_audit_counts_live_traffic(tmp_path):
    proxy = Proxy(tmp_path, f"file:{tmp_path / 'out.jsonl'}", "--audit", policy=POLICY).start()
    try:
        for line in gzip.decompress((DATA / "traces-leaky.jsonl.gz").read_bytes()).splitlines():
            assert post(proxy, "/v1/traces", line, "application/json") == 200
        assert post(proxy, "/v1/logs", (DATA / "logs-leaky.json").read_bytes(), "application/json") == 200
        assert post(proxy, "/v1/metrics", (DATA / "metrics-leaky.pb").read_bytes(), "application/x-protobuf") == 200
        status, text = proxy.get("/metrics")
        assert status == 200
        metrics = Metrics(text)
        findings = "redact_proxy_audit_findings_total"
        assert metrics.value(findings, signal="traces", level="span", kind="phone") == 1
        assert metrics.value(findings, signal="traces", level="span", kind="uuid") == 64
        assert metrics.value(findings, signal="traces", level="span", kind="high_cardinality") == 2
        assert metrics.value(findings, signal="logs", level="log", kind="credit_card") == 1
        assert metrics.value(findings, signal="metrics", level="datapoint", kind="digits") == 1
        for labels in metrics.labelsets(findings):
            assert set(labels) == {"signal", "level", "kind"}
        status, body = proxy.get("/audit")
        assert status == 200
        report = json.loads(body)
        found = {(f["signal"], f["level"], f["field"], f["kind"]) for f in report["findings"]}
        for leak in PLANTED:
            if leak["field"] is not None:
                assert (leak["signal"], leak["level"], leak["field"], leak["kind"]) in found
        assert any(f["field"].startswith("attributes.#") for f in report["findings"])
        assert_no_planted_value(text, body)
    finally:
        assert proxy.stop() == 0
    assert_no_planted_value(proxy.stderr(), proxy.stdout())


def test_audit_is_off_by_default(tmp_path):
    proxy = Proxy(tmp_path, f"file:{tmp_path / 'out.jsonl'}", policy=POLICY).start()
    try:
        status, _ = proxy.get("/audit")
        assert status == 404
        assert "redact_proxy_audit_findings_total{" not in proxy.get("/metrics")[1]
    finally:
        assert proxy.stop() == 0


def test_the_audit_option():
    import pytest

    from redact_proxy.cli import build_parser, option_values
    from redact_proxy.errors import ConfigError
    from redact_proxy.settings import Settings

    def resolve(*argv: str) -> Settings:
        args = build_parser().parse_args(["serve", "--policy", str(POLICY), *argv])
        return Settings.resolve(option_values(args, environ={}), environ={})

    assert resolve().audit is False
    assert resolve("--audit").audit is True  # bare
    assert resolve("--audit", "off").audit is False
    assert resolve("--audit=on").audit is True
    with pytest.raises(ConfigError) as exc:
        resolve("--audit", "maybe")
    assert "--audit: expected on or off" in exc.value.errors[0]
