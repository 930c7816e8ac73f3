"""deploy/prometheus and deploy/alertmanager: promtool check config / check rules /
test rules, amtool check-config and amtool's routing tree, on the rendered template.
Scrape targets are cross-checked against the compose services that serve them."""

from __future__ import annotations

import os
import re

import pytest
import yaml

from deploy_helpers import DEPLOY, compose_model, env_example, run, run_ok, tool

PROMETHEUS = DEPLOY / "prometheus"
ALERTMANAGER = DEPLOY / "alertmanager"

REQUIRED_ALERTS = {
    "APIDown", "DatabaseConnectionPoolExhausted", "APIHighErrorRate", "APIHighLatency",
    "P2PFallbackSustained", "P2PFallbackActivated", "HighCPUUsage",
    "RedactProxyDown", "RedactProxyUpstreamErrors", "RedactProxyRefusing",
    "RedactProxyPolicyReloadFailed", "RedactProxyPersonalDataSurvives",
}
# SPEC section 7; histograms expose _bucket/_sum/_count.
SPEC_METRICS = {
    "redact_proxy_received_items_total", "redact_proxy_requests_total",
    "redact_proxy_redactions_total", "redact_proxy_dropped_items_total",
    "redact_proxy_forwarded_items_total", "redact_proxy_upstream_errors_total",
    "redact_proxy_request_duration_seconds", "redact_proxy_redact_duration_seconds",
    "redact_proxy_inflight_requests", "redact_proxy_policy_reloads_total", "redact_proxy_policy_info",
    "redact_proxy_audit_findings_total",  # serve --audit (README, Audit)
    "redact_proxy_triage_total",  # which path scrubbed each batch (README, Metrics; issue 12)
}


def spec_metric(name: str) -> bool:
    return name in SPEC_METRICS or re.sub(r"_(bucket|sum|count)$", "", name) in SPEC_METRICS


def alert_rules() -> list[dict]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_check_config():
    """Checks prometheus.yml and, through rule_files, alerts.yml."""
    out = run_ok([tool("promtool"), "check", "config", str(PROMETHEUS / "prometheus.yml")])
    assert "alerts.yml" in out and "SUCCESS" in out, out


def test_promtool_check_rules():
    run_ok([tool("promtool"), "check", "rules", str(PROMETHEUS / "alerts.yml")])


def test_promtool_test_rules():
    run_ok([tool("promtool"), "test", "rules", "alerts_test.yml"], cwd=PROMETHEUS)


def test_promtool_test_rules_can_fail(tmp_path):
    """Control: a wrong expectation makes `promtool test rules` fail."""
    (tmp_path / "alerts.yml").write_text((PROMETHEUS / "alerts.yml").read_text())
    tests = (PROMETHEUS / "alerts_test.yml").read_text().replace("severity: critical", "severity: page", 1)
    (tmp_path / "alerts_test.yml").write_text(tests)
    proc = run([tool("promtool"), "test", "rules", "alerts_test.yml"], cwd=tmp_path)
    assert proc.returncode != 0, proc.stdout


def test_required_alerts_exist_with_severity_and_text():
    rules = alert_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names)), "duplicate alert names"
    assert REQUIRED_ALERTS <= set(names), REQUIRED_ALERTS - set(names)
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"].get("summary") and rule["annotations"].get("description"), rule["alert"]
        if rule["alert"].startswith("RedactProxy"):
            assert rule["labels"].get("component") == "redact-proxy", rule["alert"]


def test_every_alert_has_a_firing_unit_test():
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    fired = {case["alertname"] for t in tests for case in t.get("alert_rule_test", []) if case.get("exp_alerts")}
    silent = {case["alertname"] for t in tests for case in t.get("alert_rule_test", []) if not case.get("exp_alerts")}
    names = {r["alert"] for r in alert_rules()}
    assert names <= fired, f"alerts never shown firing: {names - fired}"
    assert names <= silent, f"alerts never shown silent: {names - silent}"


def test_thresholds_from_the_issue():
    rules = {r["alert"]: r["expr"] for r in alert_rules()}
    assert "> 0.05" in rules["APIHighErrorRate"]
    assert "histogram_quantile(0.95" in rules["APIHighLatency"] and "> 0.5" in rules["APIHighLatency"]
    assert "> 80" in rules["HighCPUUsage"]
    assert 'up{job="redact-proxy"} == 0' in rules["RedactProxyDown"]


def test_alert_rules_use_only_spec_metric_names():
    for rule in alert_rules():
        for name in re.findall(r"\bredact_proxy_[a-z_]+", rule["expr"]):
            assert spec_metric(name), f"{rule['alert']}: {name} is not a SPEC section 7 metric"


def test_scrape_targets_are_compose_services():
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    services = compose_model()["services"]

    def container_ports(name: str) -> set[int]:
        svc = services[name]
        ports = {int(p["target"]) for p in svc.get("ports", [])}
        ports |= {int(p) for p in svc.get("expose", [])}
        return ports

    jobs = {}
    for job in config["scrape_configs"]:
        for sc in job.get("static_configs", []):
            for target in sc["targets"]:
                jobs.setdefault(job["job_name"], []).append(target)
    for job, targets in jobs.items():
        for target in targets:
            host, port = target.rsplit(":", 1)
            if host in ("localhost", "host.docker.internal"):
                continue
            assert host in services, f"job {job}: no compose service {host}"
            assert int(port) in container_ports(host), f"job {job}: {host} does not serve :{port}"
    assert jobs["redact-proxy"] == ["redact-proxy:8890"]
    for am in config["alerting"]["alertmanagers"]:
        for target in am["static_configs"][0]["targets"]:
            host, port = target.split(":")
            assert int(port) in container_ports(host)
    assert config["rule_files"] == ["alerts.yml"]


# ---------------------------------------------------------------- Alertmanager

def render(tmp_path, extra_env: dict[str, str] | None = None):
    env = {**os.environ, **env_example(), **(extra_env or {})}
    out = tmp_path / "alertmanager.yml"
    proc = run(["sh", str(ALERTMANAGER / "render-config.sh"), str(ALERTMANAGER / "alertmanager.yml"), str(out)], env=env)
    return proc, out


def test_amtool_check_config(tmp_path):
    proc, out = render(tmp_path)
    assert proc.returncode == 0, proc.stdout
    run_ok([tool("amtool"), "check-config", str(out)])


def test_template_has_no_secrets_and_renders_every_placeholder(tmp_path):
    template = (ALERTMANAGER / "alertmanager.yml").read_text()
    body = "\n".join(line for line in template.splitlines() if not line.lstrip().startswith("#"))
    assert "${SMTP_PASSWORD}" in body and "${SLACK_WEBHOOK_URL}" in body and "${PAGERDUTY_SERVICE_KEY}" in body
    assert "hooks.slack.com" not in body
    proc, out = render(tmp_path)
    assert proc.returncode == 0, proc.stdout
    rendered = out.read_text()
    rendered_body = "\n".join(l for l in rendered.splitlines() if not l.lstrip().startswith("#"))
    assert "${" not in rendered_body
    values = env_example()
    cfg = yaml.safe_load(rendered)
    assert cfg["global"]["smtp_auth_password"] == values["SMTP_PASSWORD"]
    assert cfg["global"]["slack_api_url"] == values["SLACK_WEBHOOK_URL"]
    assert oct(out.stat().st_mode & 0o777) == "0o600", "rendered config holding secrets is readable by others"


@pytest.mark.parametrize("labels,receivers", [
    (["severity=critical", "alertname=APIDown"], ["pagerduty-and-slack"]),
    (["severity=warning", "alertname=APIHighLatency"], ["slack-and-email"]),
    (["severity=info", "alertname=P2PFallbackActivated"], ["slack-info"]),
    (["severity=critical", "component=redact-proxy", "alertname=RedactProxyDown"], ["security-email", "pagerduty-and-slack"]),
    (["severity=warning", "component=redact-proxy", "alertname=RedactProxyRefusing"], ["security-email", "slack-and-email"]),
    (["alertname=Unlabelled"], ["slack"]),
])
def test_routing_by_severity(tmp_path, labels, receivers):
    proc, out = render(tmp_path)
    assert proc.returncode == 0, proc.stdout
    routed = run_ok([tool("amtool"), "config", "routes", "test", f"--config.file={out}", *labels]).strip()
    # amtool prints a warning line first (stderr, merged here); the answer is the last line
    assert routed.splitlines()[-1].split(",") == receivers, routed


def test_every_receiver_takes_its_destination_from_the_environment(tmp_path):
    proc, out = render(tmp_path)
    cfg = yaml.safe_load(out.read_text())
    names = {r["name"] for r in cfg["receivers"]}
    assert {"pagerduty-and-slack", "slack-and-email", "slack-info", "security-email"} <= names
    template = yaml.safe_load((ALERTMANAGER / "alertmanager.yml").read_text())
    for receiver in template["receivers"]:
        for kind, configs in receiver.items():
            if kind == "name":
                continue
            for c in configs:
                dest = c.get("to") or c.get("channel") or c.get("routing_key")
                assert dest and str(dest).startswith("${"), (receiver["name"], kind, dest)
