"""Metrics: resource, scope, metric name/description/unit and metadata, data point
attributes of every point kind (gauge, sum, histogram, exponential histogram, summary)
and exemplar ``filtered_attributes``; drop rules on data points."""

from __future__ import annotations

from redact_proxy.policy import CompiledPolicy, Level
from redact_proxy.scrub.attributes import Tally, scrub_attributes, scrub_text
from redact_proxy.scrub.common import scrub_resource, scrub_scope
from redact_proxy.scrub.drop import drop_items, prune_empty


def _points(metric):
    kind = metric.WhichOneof("data")
    return getattr(metric, kind).data_points if kind else ()


def count(request) -> int:
    return sum(len(_points(m)) for rm in request.resource_metrics for sm in rm.scope_metrics for m in sm.metrics)


def scrub(request, policy: CompiledPolicy, tally: Tally) -> None:
    resource = policy.decider("metrics", Level.RESOURCE)
    scope = policy.decider("metrics", Level.SCOPE)
    point_d = policy.decider("metrics", Level.DATAPOINT)
    exemplar_d = policy.decider("metrics", Level.EXEMPLAR)
    drops = policy.drops["metrics"]
    hasher = policy.hasher
    metadata = [
        (name, ops)
        for name in ("name", "description", "unit")
        if (ops := policy.text("metrics", Level.DATAPOINT, f"metric_{name}"))
    ]
    dropped_any = False
    for rm in request.resource_metrics:
        scrub_resource(rm, policy, "metrics", resource, tally)
        pruned_scope = False
        for sm in rm.scope_metrics:
            scrub_scope(sm, policy, "metrics", scope, tally)
            pruned_metric = False
            for metric in sm.metrics:
                scrub_attributes(metric.metadata, point_d, tally, hasher)
                for name, ops in metadata:
                    out = scrub_text(getattr(metric, name), ops, tally)
                    if out is not None:
                        setattr(metric, name, out)
                points = _points(metric)
                if drops and points and drop_items(points, drops, tally):
                    pruned_metric = True
                for point in points:
                    scrub_attributes(point.attributes, point_d, tally, hasher)
                    # SummaryDataPoint has no exemplars.
                    for exemplar in getattr(point, "exemplars", ()):
                        scrub_attributes(exemplar.filtered_attributes, exemplar_d, tally, hasher)
            if pruned_metric:
                _prune_metrics(sm.metrics)
                pruned_scope = True
        if pruned_scope:
            prune_empty(rm.scope_metrics, "metrics")
            dropped_any = True
    if dropped_any:
        prune_empty(request.resource_metrics, "scope_metrics")


def _prune_metrics(metrics) -> None:
    for i in range(len(metrics) - 1, -1, -1):
        if not _points(metrics[i]):
            del metrics[i]
