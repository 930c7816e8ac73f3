#!/usr/bin/env python3
"""Generate deploy/grafana/dashboards/*.json with Grafana's grafana-foundation-sdk.

Strategy: each dashboard is a table of rows and panels below (kind, title, description,
size, unit, Prometheus queries with their legends, thresholds); ``build`` turns a table
into the SDK's typed builders (panels, datasources and queries are its classes, not
hand-kept JSON), lays the panels out left to right in rows of 24 columns, and the JSON
in deploy/grafana/dashboards is the SDK's output. ``--check`` regenerates in memory and
exits 1 when a committed file differs (tests/deploy/test_deploy_grafana.py runs it), so
a hand edit of the JSON cannot land: edit this file and run it.

Datasources: the uids provisioned in deploy/grafana/provisioning/datasources
(``prometheus``, ``jaeger``).

Run from the repository root: ``.venv/bin/python tools/dashboards.py [--check]``.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders.common import (
    ReduceDataOptions,
    StackingConfig,
    VizLegendOptions,
    VizTooltipOptions,
)
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import prometheus as prometheus_model

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "deploy" / "grafana" / "dashboards"
PROXY_TITLE = "redact-proxy"
PROMETHEUS = model.DataSourceRef(type_val="prometheus", uid="prometheus")
JAEGER = model.DataSourceRef(type_val="jaeger", uid="jaeger")
COLUMNS = 24


@dataclass(frozen=True)
class Row:
    title: str


@dataclass(frozen=True)
class Panel:
    kind: str  # stat | timeseries | table
    title: str
    description: str
    w: int
    h: int
    unit: str | None = None
    queries: list[tuple[str, str | None]] = field(default_factory=list)  # (PromQL, legend)
    thresholds: list[float] | None = None  # steps above the base, with ``colors`` (base first)
    colors: list[str] | None = None
    decimals: int | None = None
    stacked: bool = False
    jaeger_service: str | None = None  # a table of Jaeger's trace search for this service
    as_table: bool = False  # an instant query shown as a table of its labels


class JaegerSearch(cogvariants.Dataquery):
    """Jaeger's trace search: the SDK has no builder for the Jaeger datasource."""

    def __init__(self, service: str, limit: int = 20):
        self.service, self.limit = service, limit

    def to_json(self) -> dict:
        return {
            "refId": "A",
            "datasource": JAEGER.to_json(),
            "queryType": "search",
            "service": self.service,
            "limit": self.limit,
        }


class JaegerSearchBuilder(cogbuilder.Builder[cogvariants.Dataquery]):
    def __init__(self, service: str):
        self._query = JaegerSearch(service)

    def build(self) -> JaegerSearch:
        return self._query


def _query(expr: str, legend: str | None, ref: str, instant: bool) -> prometheus.Dataquery:
    q = prometheus.Dataquery().expr(expr).ref_id(ref).datasource(PROMETHEUS)
    if legend:
        q = q.legend_format(legend)
    return q.instant() if instant else q.range()


def _thresholds(p: Panel) -> db.ThresholdsConfig:
    steps = [model.Threshold(value=None, color=p.colors[0])]
    steps += [model.Threshold(value=v, color=c) for v, c in zip(p.thresholds, p.colors[1:], strict=True)]
    return db.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE).steps(steps)


def _panel(p: Panel, pid: int, grid: model.GridPos):
    if p.kind == "stat":
        b = (
            stat.Panel()
            .color_mode(common.BigValueColorMode.VALUE)
            .graph_mode(common.BigValueGraphMode.AREA)
            .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False))
        )
    elif p.kind == "timeseries":
        b = (
            timeseries.Panel()
            .fill_opacity(10)
            .line_width(1)
            .stacking(
                StackingConfig().mode(common.StackingMode.NORMAL if p.stacked else common.StackingMode.NONE).group("A")
            )
            .legend(
                VizLegendOptions()
                .display_mode(common.LegendDisplayMode.LIST)
                .placement(common.LegendPlacement.BOTTOM)
                .show_legend(True)
            )
            .tooltip(VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI).sort(common.SortOrder.DESCENDING))
        )
    else:
        b = table.Panel().show_header(True)
    b = b.id(pid).title(p.title).description(p.description).grid_pos(grid)
    b = b.datasource(JAEGER if p.jaeger_service else PROMETHEUS)
    if p.unit:
        b = b.unit(p.unit)
    if p.decimals is not None:
        b = b.decimals(p.decimals)
    if p.thresholds is not None:
        b = b.thresholds(_thresholds(p))
    if p.jaeger_service:
        b = b.with_target(JaegerSearchBuilder(p.jaeger_service))
    for i, (expr, legend) in enumerate(p.queries):
        q = _query(expr, legend, chr(ord("A") + i), instant=p.kind != "timeseries")
        if p.as_table:
            q = q.format(prometheus_model.PromQueryFormat.TABLE)
        b = b.with_target(q)
    if p.as_table:
        b = b.with_transformation(
            model.DataTransformerConfig(
                id_val="organize", options={"excludeByName": {"Time": True, "Value": True, "__name__": True}}
            )
        )
    return b


def build(
    uid: str, title: str, description: str, tags: list[str], variable: db.QueryVariable, layout: list[Row | Panel]
) -> model.Dashboard:
    d = (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(tags)
        .readonly()
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .with_variable(variable)
    )
    x = y = line = 0
    for pid, item in enumerate(layout, 1):
        if isinstance(item, Row):
            y += line
            d = d.with_row(db.Row(item.title).id(pid).grid_pos(model.GridPos(h=1, w=COLUMNS, x=0, y=y)))
            x, y, line = 0, y + 1, 0
            continue
        if x + item.w > COLUMNS:
            x, y, line = 0, y + line, 0
        d = d.with_panel(_panel(item, pid, model.GridPos(h=item.h, w=item.w, x=x, y=y)))
        x, line = x + item.w, max(line, item.h)
    return d.build()


def _variable(name: str, label: str, query: str, *, multi: bool, current: str) -> db.QueryVariable:
    v = (
        db.QueryVariable(name)
        .label(label)
        .datasource(PROMETHEUS)
        .query(query)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
    )
    if multi:
        return (
            v.multi(True)
            .include_all(True)
            .all_value(".*")
            .current(model.VariableOption(selected=True, text=["All"], value=["$__all"]))
        )
    return v.multi(False).include_all(False).current(model.VariableOption(selected=True, text=current, value=current))


OVERVIEW = [
    Row("API"),
    Panel(
        "stat",
        "Success rate",
        "Share of API requests not answered 5xx (APIHighErrorRate fires above 5% errors).",
        w=6,
        h=6,
        unit="percentunit",
        queries=[
            (
                'sum(rate(http_server_request_duration_seconds_count{job="$job", http_response_status_code!~"5.."}[$__rate_interval])) / sum(rate(http_server_request_duration_seconds_count{job="$job"}[$__rate_interval]))',
                None,
            )
        ],
        thresholds=[0.95, 0.99],
        decimals=2,
        colors=["red", "orange", "green"],
    ),
    Panel(
        "stat",
        "Requests / s",
        "All API requests per second.",
        w=6,
        h=6,
        unit="reqps",
        queries=[('sum(rate(http_server_request_duration_seconds_count{job="$job"}[$__rate_interval]))', None)],
        thresholds=[],
        colors=["green"],
    ),
    Panel(
        "stat",
        "P95 latency",
        "95th percentile of API request duration (APIHighLatency fires above 500ms).",
        w=6,
        h=6,
        unit="s",
        queries=[
            (
                'histogram_quantile(0.95, sum by (le) (rate(http_server_request_duration_seconds_bucket{job="$job"}[$__rate_interval])))',
                None,
            )
        ],
        thresholds=[0.3, 0.5],
        colors=["green", "orange", "red"],
    ),
    Panel(
        "stat",
        "API servers up",
        "Liveness of the API servers as Prometheus sees them (APIDown).",
        w=6,
        h=6,
        unit="none",
        queries=[('sum(up{job="railgun-api"})', None)],
        thresholds=[1],
        colors=["red", "green"],
    ),
    Panel(
        "timeseries",
        "Latency percentiles",
        "P50 / P90 / P95 / P99 of API request duration.",
        w=12,
        h=8,
        unit="s",
        queries=[
            (
                'histogram_quantile(0.5, sum by (le) (rate(http_server_request_duration_seconds_bucket{job="$job"}[$__rate_interval])))',
                "P50",
            ),
            (
                'histogram_quantile(0.9, sum by (le) (rate(http_server_request_duration_seconds_bucket{job="$job"}[$__rate_interval])))',
                "P90",
            ),
            (
                'histogram_quantile(0.95, sum by (le) (rate(http_server_request_duration_seconds_bucket{job="$job"}[$__rate_interval])))',
                "P95",
            ),
            (
                'histogram_quantile(0.99, sum by (le) (rate(http_server_request_duration_seconds_bucket{job="$job"}[$__rate_interval])))',
                "P99",
            ),
        ],
    ),
    Panel(
        "timeseries",
        "Requests by status class",
        "Requests per second by HTTP status class.",
        w=12,
        h=8,
        unit="reqps",
        queries=[
            (
                'sum by (status_class) (label_replace(rate(http_server_request_duration_seconds_count{job="$job"}[$__rate_interval]), "status_class", "${1}xx", "http_response_status_code", "([0-9]).."))',
                "{{status_class}}",
            )
        ],
        stacked=True,
    ),
    Panel(
        "timeseries",
        "Requests by route",
        "Requests per second by route template (routes, never raw paths).",
        w=12,
        h=8,
        unit="reqps",
        queries=[
            (
                'sum by (http_route) (rate(http_server_request_duration_seconds_count{job="$job"}[$__rate_interval]))',
                "{{http_route}}",
            )
        ],
    ),
    Panel(
        "timeseries",
        "Error rate",
        "Share of requests answered 5xx.",
        w=12,
        h=8,
        unit="percentunit",
        queries=[
            (
                'sum(rate(http_server_request_duration_seconds_count{job="$job", http_response_status_code=~"5.."}[$__rate_interval])) / sum(rate(http_server_request_duration_seconds_count{job="$job"}[$__rate_interval]))',
                "5xx share",
            )
        ],
    ),
    Row("Connections and throughput"),
    Panel(
        "timeseries",
        "Active WebSocket connections",
        "Open WebSocket connections (capacity planning).",
        w=8,
        h=8,
        unit="short",
        queries=[('sum(railgun_websocket_connections{job="$job"})', "connections")],
    ),
    Panel(
        "timeseries",
        "Active rooms",
        "Rooms with at least one member.",
        w=8,
        h=8,
        unit="short",
        queries=[('sum(railgun_rooms_active{job="$job"})', "rooms")],
    ),
    Panel(
        "timeseries",
        "Message throughput",
        "Messages per minute.",
        w=8,
        h=8,
        unit="short",
        queries=[('sum(rate(railgun_messages_total{job="$job"}[$__rate_interval])) * 60', "messages / min")],
    ),
    Panel(
        "timeseries",
        "Message sizes",
        "Message size distribution (bytes on the wire, never content).",
        w=12,
        h=8,
        unit="bytes",
        queries=[
            (
                'histogram_quantile(0.5, sum by (le) (rate(railgun_message_size_bytes_bucket{job="$job"}[$__rate_interval])))',
                "P50",
            ),
            (
                'histogram_quantile(0.95, sum by (le) (rate(railgun_message_size_bytes_bucket{job="$job"}[$__rate_interval])))',
                "P95",
            ),
            (
                'histogram_quantile(0.99, sum by (le) (rate(railgun_message_size_bytes_bucket{job="$job"}[$__rate_interval])))',
                "P99",
            ),
        ],
    ),
    Panel(
        "timeseries",
        "Database connection pool usage",
        "Used connections / pool size per pool (DatabaseConnectionPoolExhausted at 100%).",
        w=12,
        h=8,
        unit="percentunit",
        queries=[
            (
                'sum by (db_client_connection_pool_name) (db_client_connection_count{job="$job", db_client_connection_state="used"}) / sum by (db_client_connection_pool_name) (db_client_connection_max{job="$job"})',
                "{{db_client_connection_pool_name}}",
            )
        ],
    ),
    Row("P2P fallback"),
    Panel(
        "timeseries",
        "P2P fallback activations",
        "Activations per 5 minutes (P2PFallbackActivated on any, P2PFallbackSustained above 3 in 15m).",
        w=12,
        h=8,
        unit="short",
        queries=[('sum(increase(railgun_p2p_fallback_activations_total{job="$job"}[5m]))', "activations / 5m")],
    ),
    Panel(
        "timeseries",
        "P2P peers",
        "Clients currently connected peer-to-peer.",
        w=12,
        h=8,
        unit="short",
        queries=[('sum(railgun_p2p_peers{job="$job"})', "peers")],
    ),
    Row("Infrastructure"),
    Panel(
        "timeseries",
        "CPU usage",
        "Busy share of all CPUs per host (HighCPUUsage above 80%).",
        w=8,
        h=8,
        unit="percent",
        queries=[
            (
                '100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[$__rate_interval])))',
                "{{instance}}",
            )
        ],
    ),
    Panel(
        "timeseries",
        "Memory usage",
        "Used share of memory per host.",
        w=8,
        h=8,
        unit="percent",
        queries=[("100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)", "{{instance}}")],
    ),
    Panel(
        "timeseries",
        "Disk usage",
        "Used share of each real filesystem.",
        w=8,
        h=8,
        unit="percent",
        queries=[
            (
                '100 * (1 - node_filesystem_avail_bytes{fstype!~"tmpfs|overlay|squashfs"} / node_filesystem_size_bytes{fstype!~"tmpfs|overlay|squashfs"})',
                "{{instance}} {{mountpoint}}",
            )
        ],
    ),
    Panel(
        "timeseries",
        "Scrape targets up",
        "Targets up per job.",
        w=12,
        h=8,
        unit="short",
        queries=[("sum by (job) (up)", "{{job}}")],
    ),
    Panel(
        "table",
        "Recent API traces",
        "Latest traces of the selected service in Jaeger (already redacted by redact-proxy).",
        w=12,
        h=8,
        unit=None,
        queries=[],
        jaeger_service="$job",
    ),
]

_PROXY = 'job="redact-proxy", instance=~"$instance"'
PROXY = [
    Row("Health"),
    Panel(
        "stat",
        "Proxies up",
        "redact-proxy processes answering on the admin port (RedactProxyDown).",
        w=6,
        h=5,
        unit="none",
        queries=[('sum(up{job="redact-proxy", instance=~"$instance"})', None)],
        thresholds=[1],
        colors=["red", "green"],
    ),
    Panel(
        "stat",
        "Items in / s",
        "Spans, data points and log records received.",
        w=6,
        h=5,
        unit="short",
        queries=[
            (
                'sum(rate(redact_proxy_received_items_total{job="redact-proxy", instance=~"$instance"}[$__rate_interval]))',
                None,
            )
        ],
        thresholds=[],
        colors=["green"],
    ),
    Panel(
        "stat",
        "In-flight requests",
        "Requests being redacted or forwarded right now.",
        w=6,
        h=5,
        unit="short",
        queries=[('sum(redact_proxy_inflight_requests{job="redact-proxy", instance=~"$instance"})', None)],
        thresholds=[],
        colors=["green"],
    ),
    Panel(
        "stat",
        "Policy reloads failed (1h)",
        "Rejected policy reloads; the previous policy stays in force (RedactProxyPolicyReloadFailed).",
        w=6,
        h=5,
        unit="short",
        queries=[
            (
                'sum(increase(redact_proxy_policy_reloads_total{job="redact-proxy", instance=~"$instance", result="failure"}[1h])) or vector(0)',
                None,
            )
        ],
        thresholds=[1],
        colors=["green", "red"],
    ),
    Row("Items"),
    Panel(
        "timeseries",
        "Items in and out",
        "Items received vs forwarded upstream, per signal. The gap is dropped items and refused requests.",
        w=12,
        h=8,
        unit="short",
        queries=[
            (
                'sum by (signal) (rate(redact_proxy_received_items_total{job="redact-proxy", instance=~"$instance"}[$__rate_interval]))',
                "in {{signal}}",
            ),
            (
                'sum by (signal) (rate(redact_proxy_forwarded_items_total{job="redact-proxy", instance=~"$instance"}[$__rate_interval]))',
                "out {{signal}}",
            ),
        ],
    ),
    Panel(
        "timeseries",
        "Dropped items by rule",
        "Items removed whole by drop rules (e.g. health checks).",
        w=12,
        h=8,
        unit="short",
        queries=[
            (
                'sum by (signal, rule) (rate(redact_proxy_dropped_items_total{job="redact-proxy", instance=~"$instance"}[$__rate_interval]))',
                "{{signal}} {{rule}}",
            )
        ],
        stacked=True,
    ),
    Panel(
        "timeseries",
        "Redactions by rule",
        "Values deleted, hashed, masked or sanitized per second, by rule and action.",
        w=24,
        h=8,
        unit="short",
        queries=[
            (
                'sum by (rule, action) (rate(redact_proxy_redactions_total{job="redact-proxy", instance=~"$instance"}[$__rate_interval]))',
                "{{rule}} ({{action}})",
            )
        ],
        stacked=True,
    ),
    Row("Requests"),
    Panel(
        "timeseries",
        "Requests by outcome",
        "Requests per second by answer code (gRPC status or HTTP status).",
        w=12,
        h=8,
        unit="reqps",
        queries=[
            (
                'sum by (transport, code) (rate(redact_proxy_requests_total{job="redact-proxy", instance=~"$instance"}[$__rate_interval]))',
                "{{transport}} {{code}}",
            )
        ],
        stacked=True,
    ),
    Panel(
        "timeseries",
        "Refusals",
        "Requests refused: overload / upstream unavailable, too large, throttled (RedactProxyRefusing), and redaction failures (fail closed).",
        w=12,
        h=8,
        unit="reqps",
        queries=[
            (
                'sum by (code) (rate(redact_proxy_requests_total{job="redact-proxy", instance=~"$instance", code=~"UNAVAILABLE|RESOURCE_EXHAUSTED|503|429|413"}[$__rate_interval]))',
                "{{code}}",
            ),
            (
                'sum by (code) (rate(redact_proxy_requests_total{job="redact-proxy", instance=~"$instance", code=~"INTERNAL|500"}[$__rate_interval]))',
                "redaction failed {{code}}",
            ),
        ],
        stacked=True,
    ),
    Panel(
        "timeseries",
        "Upstream errors",
        "Failed forwards to the collector by signal and code (RedactProxyUpstreamErrors).",
        w=12,
        h=8,
        unit="short",
        queries=[
            (
                'sum by (signal, code) (rate(redact_proxy_upstream_errors_total{job="redact-proxy", instance=~"$instance"}[$__rate_interval]))',
                "{{signal}} {{code}}",
            )
        ],
        stacked=True,
    ),
    Panel(
        "timeseries",
        "Collector accepted / refused",
        "What the collector behind the proxy accepted and refused (its own telemetry; counter names with or without _total, depending on the collector release).",
        w=12,
        h=8,
        unit="short",
        queries=[
            (
                'sum(rate({__name__=~"otelcol_receiver_accepted_spans(_total)?", job="otel-collector"}[$__rate_interval]))',
                "spans accepted",
            ),
            (
                'sum(rate({__name__=~"otelcol_receiver_accepted_metric_points(_total)?", job="otel-collector"}[$__rate_interval]))',
                "points accepted",
            ),
            (
                'sum(rate({__name__=~"otelcol_receiver_accepted_log_records(_total)?", job="otel-collector"}[$__rate_interval]))',
                "logs accepted",
            ),
            (
                'sum(rate({__name__=~"otelcol_receiver_refused_spans(_total)?", job="otel-collector"}[$__rate_interval]))',
                "spans refused",
            ),
        ],
    ),
    Row("Latency"),
    Panel(
        "timeseries",
        "Request latency",
        "End-to-end request duration in the proxy (decode, redact, forward, answer).",
        w=12,
        h=8,
        unit="s",
        queries=[
            (
                'histogram_quantile(0.5, sum by (le) (rate(redact_proxy_request_duration_seconds_bucket{job="redact-proxy", instance=~"$instance"}[$__rate_interval])))',
                "P50",
            ),
            (
                'histogram_quantile(0.95, sum by (le) (rate(redact_proxy_request_duration_seconds_bucket{job="redact-proxy", instance=~"$instance"}[$__rate_interval])))',
                "P95",
            ),
            (
                'histogram_quantile(0.99, sum by (le) (rate(redact_proxy_request_duration_seconds_bucket{job="redact-proxy", instance=~"$instance"}[$__rate_interval])))',
                "P99",
            ),
        ],
    ),
    Panel(
        "timeseries",
        "Redaction latency (P95)",
        "Time spent applying the policy to a batch, per signal.",
        w=12,
        h=8,
        unit="s",
        queries=[
            (
                'histogram_quantile(0.95, sum by (signal, le) (rate(redact_proxy_redact_duration_seconds_bucket{job="redact-proxy", instance=~"$instance"}[$__rate_interval])))',
                "{{signal}}",
            )
        ],
    ),
    Row("Policy"),
    Panel(
        "table",
        "Policy in force",
        "SHA-256 of the policy each proxy enforces; replicas should agree.",
        w=12,
        h=6,
        unit=None,
        queries=[('redact_proxy_policy_info{job="redact-proxy", instance=~"$instance"}', None)],
        as_table=True,
    ),
    Panel(
        "timeseries",
        "Policy reloads",
        "Policy reloads per hour by result.",
        w=12,
        h=6,
        unit="short",
        queries=[
            (
                'sum by (result) (increase(redact_proxy_policy_reloads_total{job="redact-proxy", instance=~"$instance"}[1h]))',
                "{{result}}",
            )
        ],
    ),
    Row("Audit (serve --audit)"),
    Panel(
        "timeseries",
        "Audit findings by kind",
        "Values that still look personal after the policy, per second, by signal, level and kind "
        "(redact_proxy_audit_findings_total; the fields are at /audit on the admin port). "
        "RedactProxyPersonalDataSurvives fires on sustained detector findings.",
        w=16,
        h=8,
        unit="short",
        # `or on() vector(0)`: one zero series while nothing is found (or --audit is off).
        queries=[
            (
                f"sum by (signal, level, kind) (rate(redact_proxy_audit_findings_total{{{_PROXY}}}[$__rate_interval]))"
                " or on() vector(0)",
                "{{signal}} {{level}} {{kind}}",
            )
        ],
        stacked=True,
    ),
    Panel(
        "stat",
        "Audit findings (1h)",
        "Findings of the last hour, every kind (0 without --audit).",
        w=8,
        h=8,
        unit="short",
        queries=[(f"sum(increase(redact_proxy_audit_findings_total{{{_PROXY}}}[1h])) or vector(0)", None)],
        thresholds=[1],
        colors=["green", "orange"],
    ),
]


def dashboards() -> dict[str, model.Dashboard]:
    return {
        "railgun-overview.json": build(
            "railgun-overview",
            "Railgun Overview",
            "API success rate and latency, connections, throughput, P2P fallback and infrastructure. "
            "Application metrics arrive via OTLP through redact-proxy.",
            ["railgun", "overview"],
            _variable(
                "job",
                "Service",
                "label_values(http_server_request_duration_seconds_count, job)",
                multi=False,
                current="railgun-api",
            ),
            OVERVIEW,
        ),
        "redact-proxy.json": build(
            "redact-proxy",
            PROXY_TITLE,
            "Items in and out, redactions by rule, refusals, upstream errors and latency of redact-proxy "
            "(SPEC section 7 metrics), and with serve --audit what still looks personal after the policy.",
            ["railgun", "redact-proxy", "privacy"],
            _variable(
                "instance", "Instance", 'label_values(up{job="redact-proxy"}, instance)', multi=True, current="All"
            ),
            PROXY,
        ),
    }


def render(d: model.Dashboard) -> str:
    return json.dumps(d, cls=JSONEncoder, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed dashboard differs")
    parser.add_argument("--output", type=Path, default=OUT)
    args = parser.parse_args(argv)
    stale = 0
    for name, d in dashboards().items():
        text, path = render(d), args.output / name
        if args.check:
            old = path.read_text(encoding="utf-8") if path.exists() else ""
            if old != text:
                stale += 1
                sys.stdout.writelines(
                    difflib.unified_diff(
                        old.splitlines(True), text.splitlines(True), f"{path} (committed)", f"{path} (generated)", n=2
                    )
                )
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"{stale} dashboard(s) differ from tools/dashboards.py; run it and commit the output", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
