"""deploy/otel and deploy/jaeger: validated by the real binaries the e2e runs
(`otelcol validate`, `jaeger validate`), at the versions the compose file pins."""

from __future__ import annotations

import yaml

from deploy_helpers import DEPLOY, compose_model, read_versions, run, run_ok, tool


def test_collector_binary_is_the_pinned_release():
    out = run_ok([tool("otelcol"), "--version"])
    assert read_versions()["COLLECTOR_VERSION"] in out, out


def test_otelcol_validate_collector_config():
    run_ok([tool("otelcol"), "validate", f"--config={DEPLOY / 'otel/config.yaml'}"])


def test_otelcol_validate_can_fail(tmp_path):
    """Control: a misspelt component is an error."""
    bad = tmp_path / "config.yaml"
    bad.write_text((DEPLOY / "otel/config.yaml").read_text().replace("otlp_grpc/jaeger", "otlpgrpc/jaeger"))
    proc = run([tool("otelcol"), "validate", f"--config={bad}"])
    assert proc.returncode != 0, proc.stdout


def test_collector_config_has_no_pii_processors_and_routes_signals():
    """The proxy owns redaction; the collector only batches and routes."""
    cfg = yaml.safe_load((DEPLOY / "otel/config.yaml").read_text())
    assert set(cfg["processors"]) == {"batch"}
    pipelines = cfg["service"]["pipelines"]
    assert pipelines["traces"]["exporters"] == ["otlp_grpc/jaeger"]
    assert pipelines["metrics"]["exporters"] == ["prometheus"]
    assert cfg["exporters"]["otlp_grpc/jaeger"]["endpoint"] == "jaeger:4317"
    assert cfg["exporters"]["prometheus"]["endpoint"].endswith(":8889")
    reader = cfg["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]
    assert reader["port"] == 8888


def test_jaeger_binary_is_v2_at_the_pinned_release():
    out = run_ok([tool("jaeger"), "version"])
    assert f"v{read_versions()['JAEGER_VERSION']}" in out, out
    assert "--config" in run_ok([tool("jaeger"), "--help"])


def test_jaeger_validate_config():
    run_ok([tool("jaeger"), "validate", f"--config={DEPLOY / 'jaeger/config.yaml'}"])


def test_jaeger_uses_memory_storage_and_serves_the_query_port():
    cfg = yaml.safe_load((DEPLOY / "jaeger/config.yaml").read_text())
    backends = cfg["extensions"]["jaeger_storage"]["backends"]
    store = cfg["extensions"]["jaeger_query"]["storage"]["traces"]
    assert "memory" in backends[store]
    assert cfg["exporters"]["jaeger_storage_exporter"]["trace_storage"] == store
    assert cfg["extensions"]["jaeger_query"]["http"]["endpoint"].endswith(":16686")
    assert cfg["extensions"]["jaeger_query"]["enable_tracing"] is False, "Jaeger would trace itself to localhost:4317"
    assert cfg["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317")
    assert "--config=/etc/jaeger/config.yaml" in compose_model()["services"]["jaeger"]["command"]
