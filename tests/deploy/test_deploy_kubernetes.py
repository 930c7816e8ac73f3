"""deploy/k8s: kubernetes-validate --strict on every manifest, plus the contract the
issue sets for the sidecar and the scaled forms (probes, Secret, localhost-only
collector, HPA/PDB), and `otelcol validate` on the collector configs they embed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from deploy_helpers import DEPLOY, compose_model, load_yaml_documents, run, run_ok, tool

K8S = DEPLOY / "k8s"
MANIFESTS = sorted(K8S.rglob("*.yaml"))
SIDECAR = K8S / "sidecar/collector-with-redact-proxy.yaml"
SCALED = [K8S / "scaled/redact-proxy.yaml", K8S / "scaled/collector.yaml"]


def by_kind(paths: list[Path]) -> dict[tuple[str, str], dict]:
    out = {}
    for path in paths:
        for doc in load_yaml_documents(path):
            out[(doc["kind"], doc["metadata"]["name"])] = doc
    return out


def containers(deployment: dict) -> dict[str, dict]:
    return {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}


def test_manifests_exist():
    assert SIDECAR in MANIFESTS and all(p in MANIFESTS for p in SCALED), MANIFESTS


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(K8S)))
def test_kubernetes_validate_strict(path):
    run_ok([tool("kubernetes-validate"), "--strict", "--quiet", str(path)])


def test_kubernetes_validate_rejects_unknown_fields(tmp_path):
    """Control: --strict really fails a manifest with a misspelt field."""
    doc = load_yaml_documents(K8S / "scaled/redact-proxy.yaml")
    deployment = next(d for d in doc if d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(deployment))
    proc = run([tool("kubernetes-validate"), "--strict", "--quiet", str(bad)])
    assert proc.returncode != 0, proc.stdout


def check_proxy_container(container: dict, upstream: str) -> None:
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"otlp-grpc": 4317, "otlp-http": 4318, "admin": 8890}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] in ("admin", 8890)
    env = {e["name"]: e for e in container["env"]}
    key_ref = env["REDACT_PROXY_HASH_KEY"]["valueFrom"]["secretKeyRef"]
    assert key_ref == {"name": "redact-proxy-hash-key", "key": "key"}
    args = container["args"]
    assert args[0] == "serve"
    opts = dict(a.split("=", 1) for a in args[1:])
    assert opts["--upstream"] == upstream
    assert opts["--admin-listen"].endswith(":8890")
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]


def test_sidecar_form():
    objs = by_kind([SIDECAR])
    deployment = objs[("Deployment", "otel-collector")]
    cs = containers(deployment)
    assert set(cs) == {"redact-proxy", "otel-collector"}
    config = yaml.safe_load(objs[("ConfigMap", "otel-collector-sidecar-config")]["data"]["config.yaml"])
    grpc = config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    http = config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert grpc.startswith("127.0.0.1:") and http.startswith("127.0.0.1:"), "collector must listen on localhost only"
    check_proxy_container(cs["redact-proxy"], f"grpc://{grpc}")
    # The Service sends OTLP to the proxy's ports, never to the collector's.
    service = objs[("Service", "otel-collector")]
    targets = {p["name"]: p["targetPort"] for p in service["spec"]["ports"]}
    assert targets["otlp-grpc"] == "otlp-grpc" and targets["otlp-http"] == "otlp-http"
    assert int(grpc.rsplit(":", 1)[1]) not in [p["port"] for p in service["spec"]["ports"]]
    assert ("PodDisruptionBudget", "otel-collector") in objs


def test_scaled_form():
    objs = by_kind(SCALED)
    proxy = objs[("Deployment", "redact-proxy")]
    check_proxy_container(containers(proxy)["redact-proxy"], "grpc://otel-collector.observability.svc:4317")
    selector = proxy["spec"]["selector"]["matchLabels"]
    service = objs[("Service", "redact-proxy")]
    assert service["spec"]["selector"] == selector
    assert {p["port"] for p in service["spec"]["ports"]} == {4317, 4318, 8890}
    hpa = objs[("HorizontalPodAutoscaler", "redact-proxy")]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "redact-proxy"}
    assert hpa["spec"]["minReplicas"] >= 2
    pdb = objs[("PodDisruptionBudget", "redact-proxy")]
    assert pdb["spec"]["selector"]["matchLabels"] == selector
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"], "PDB would block every drain"
    # only the proxies may send OTLP to the collector
    netpol = objs[("NetworkPolicy", "otel-collector-ingress")]
    otlp_rule = next(r for r in netpol["spec"]["ingress"] if {"port": 4317, "protocol": "TCP"} in r["ports"])
    assert otlp_rule["from"] == [{"podSelector": {"matchLabels": selector}}]
    assert objs[("Service", "otel-collector")]["metadata"]["namespace"] == "observability"


def test_images_match_compose():
    services = compose_model()["services"]
    collector_image = services["otel-collector"]["image"]
    for path in [SIDECAR, *SCALED]:
        for doc in load_yaml_documents(path):
            if doc["kind"] != "Deployment":
                continue
            for c in containers(doc).values():
                if c["name"] == "otel-collector":
                    assert c["image"] == collector_image, path
                else:
                    assert c["image"].startswith("redact-proxy:"), path


def embedded_collector_configs() -> list[tuple[str, str]]:
    out = []
    for path in [SIDECAR, *SCALED]:
        for doc in load_yaml_documents(path):
            if doc["kind"] == "ConfigMap" and "config.yaml" in doc.get("data", {}):
                out.append((f"{path.relative_to(K8S)}:{doc['metadata']['name']}", doc["data"]["config.yaml"]))
    return out


@pytest.mark.parametrize("name,text", embedded_collector_configs(), ids=lambda v: v if ":" in str(v) else "")
def test_embedded_collector_config_validates(name, text, tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(text)
    run_ok([tool("otelcol"), "validate", f"--config={cfg}"])


@pytest.mark.parametrize("name,text", embedded_collector_configs(), ids=lambda v: v if ":" in str(v) else "")
def test_embedded_collector_config_matches_compose_pipeline(name, text):
    """Same processors, exporters and pipelines as deploy/otel/config.yaml; only addresses differ."""
    reference = yaml.safe_load((DEPLOY / "otel/config.yaml").read_text())
    embedded = yaml.safe_load(text)

    def shape(cfg: dict) -> dict:
        cfg = yaml.safe_load(yaml.safe_dump(cfg))
        for proto in cfg["receivers"]["otlp"]["protocols"].values():
            proto.pop("endpoint", None)
        for exporter in cfg["exporters"].values():
            if isinstance(exporter, dict) and "jaeger" in str(exporter.get("endpoint", "")):
                exporter.pop("endpoint")
        cfg["service"].get("telemetry", {}).pop("logs", None)
        return cfg

    assert shape(embedded) == shape(reference)
