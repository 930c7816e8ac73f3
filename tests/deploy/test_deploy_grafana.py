"""deploy/grafana: provisioning files and the two dashboards.

Grafana itself is not packaged for this machine, so the dashboards are checked
offline: structure, datasource references against the provisioned uids, every
Prometheus query parsed by promtool (after Grafana's variables are substituted),
and redact-proxy metric names against SPEC section 7. The e2e runs the same
queries against the live Prometheus.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml

from deploy_helpers import (
    DEPLOY, compose_model, dashboard_panels, grafana_expr_to_promql, run_ok, tool,
)
from test_deploy_alerting import spec_metric

GRAFANA = DEPLOY / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))


def load(path):
    return json.loads(path.read_text())


def datasources() -> dict[str, dict]:
    cfg = yaml.safe_load((GRAFANA / "provisioning/datasources/datasources.yml").read_text())
    return {ds["uid"]: ds for ds in cfg["datasources"]}


def prometheus_targets(dashboard):
    for panel in dashboard_panels(dashboard):
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield panel, target


def test_two_dashboards():
    assert {p.name for p in DASHBOARDS} == {"railgun-overview.json", "redact-proxy.json"}


def test_datasources_point_at_compose_services():
    services = compose_model()["services"]
    ds = datasources()
    assert {"prometheus", "jaeger"} <= set(ds)
    assert ds["prometheus"]["type"] == "prometheus" and ds["prometheus"]["isDefault"] is True
    assert ds["jaeger"]["type"] == "jaeger"
    for d in ds.values():
        host, port = re.fullmatch(r"http://([a-z-]+):(\d+)", d["url"]).groups()
        svc = services[host]
        ports = {int(p["target"]) for p in svc.get("ports", [])} | {int(p) for p in svc.get("expose", [])}
        assert int(port) in ports, d["url"]


def test_dashboard_provider_path_is_the_mounted_directory():
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/dashboards.yml").read_text())["providers"][0]
    mounts = {v["target"]: v["source"] for v in compose_model()["services"]["grafana"]["volumes"] if v["type"] == "bind"}
    assert mounts[provider["options"]["path"]] == str(GRAFANA / "dashboards")


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_structure(path):
    dashboard = load(path)
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    panels = dashboard_panels(dashboard)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    known = datasources()
    for panel in panels:
        if panel["type"] == "row":
            continue
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        uid = panel["datasource"]["uid"]
        assert uid in known and panel["datasource"]["type"] == known[uid]["type"], panel["title"]
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] in known, panel["title"]
    for var in dashboard["templating"]["list"]:
        assert var["datasource"]["uid"] in known


def test_dashboard_uids_unique():
    uids = [load(p)["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_query_parses(path, tmp_path):
    """promtool parses each query (as a recording rule) after Grafana variables are filled."""
    rules = []
    for i, (panel, target) in enumerate(prometheus_targets(load(path))):
        expr = grafana_expr_to_promql(target["expr"])
        assert not re.search(r"\$(?!\{\d\})", expr), f"{panel['title']}: unsubstituted variable in {expr}"
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    assert rules
    file = tmp_path / "queries.yml"
    file.write_text(yaml.safe_dump({"groups": [{"name": path.stem, "rules": rules}]}))
    run_ok([tool("promtool"), "check", "rules", str(file)])


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_redact_proxy_metric_names_are_from_the_spec(path):
    for panel, target in prometheus_targets(load(path)):
        for name in re.findall(r"\bredact_proxy_[a-z_]+", target["expr"]):
            assert spec_metric(name), f"{panel['title']}: {name}"


def titles(path) -> str:
    return " | ".join(p["title"].lower() for p in dashboard_panels(load(path)))


def test_overview_dashboard_covers_the_service():
    t = titles(GRAFANA / "dashboards/railgun-overview.json")
    for needle in ("success rate", "latency percentiles", "websocket connections", "message throughput",
                   "p2p fallback", "cpu", "memory", "disk"):
        assert needle in t, needle
    exprs = " ".join(tg["expr"] for _, tg in prometheus_targets(load(GRAFANA / "dashboards/railgun-overview.json")))
    for q in ("0.5", "0.9", "0.95", "0.99"):
        assert f"histogram_quantile({q}," in exprs, q


def test_proxy_dashboard_covers_the_proxy():
    path = GRAFANA / "dashboards/redact-proxy.json"
    t = titles(path)
    for needle in ("items in and out", "redactions by rule", "refusals", "upstream errors", "request latency"):
        assert needle in t, needle
    used = {re.sub(r"_(bucket|sum|count)$", "", n)
            for _, tg in prometheus_targets(load(path)) for n in re.findall(r"\bredact_proxy_[a-z_]+", tg["expr"])}
    for metric in ("redact_proxy_received_items_total", "redact_proxy_forwarded_items_total",
                   "redact_proxy_redactions_total", "redact_proxy_requests_total",
                   "redact_proxy_upstream_errors_total", "redact_proxy_request_duration_seconds"):
        assert metric in used, metric


def test_dashboards_are_the_output_of_tools_dashboards():
    """The JSON is generated by tools/dashboards.py (grafana-foundation-sdk): regenerated
    in memory, any difference fails (a hand edit, or a generator change not re-run)."""
    import subprocess
    import sys

    root = GRAFANA.parents[1]
    run = subprocess.run([sys.executable, str(root / "tools" / "dashboards.py"), "--check"],
                         capture_output=True, text=True, timeout=120, cwd=root)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr


def test_dashboard_drift_is_caught(tmp_path):
    import subprocess
    import sys

    root = GRAFANA.parents[1]
    for path in DASHBOARDS:
        (tmp_path / path.name).write_text(path.read_text().replace('"Refusals"', '"Refusals (edited)"'))
    run = subprocess.run([sys.executable, str(root / "tools" / "dashboards.py"), "--check", "--output", str(tmp_path)],
                         capture_output=True, text=True, timeout=120, cwd=root)
    assert run.returncode == 1 and "Refusals (edited)" in run.stdout


def test_proxy_dashboard_has_the_audit_findings_panel():
    path = GRAFANA / "dashboards/redact-proxy.json"
    panels = {p["title"]: p for p in dashboard_panels(load(path))}
    exprs = [t["expr"] for t in panels["Audit findings by kind"]["targets"]]
    assert any("redact_proxy_audit_findings_total" in e and "by (signal, level, kind)" in e for e in exprs)
