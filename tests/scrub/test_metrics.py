"""scrub/metrics.py: resource, scope, metric metadata, the data points of every kind
(gauge, sum, histogram, exponential histogram, summary) and exemplar filtered_attributes;
drop rules on data points, with emptied metrics, scopes and resources pruned."""

from __future__ import annotations

import copy

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric

from redact_proxy.policy.compile import load
from redact_proxy.scrub import scrub
from scrub_support import ENV, H, POLICIES, kvs, pairs

KINDS = ("gauge", "sum", "histogram", "exponential_histogram", "summary")


def points(metric: Metric):
    return getattr(metric, metric.WhichOneof("data")).data_points


def metric(kind: str, name: str, point_attrs: list[dict], exemplar_attrs: dict | None = None) -> Metric:
    m = Metric(name=name, description="d", unit="1")
    data = getattr(m, kind)
    data.SetInParent()
    for i, attrs in enumerate(point_attrs):
        p = data.data_points.add(start_time_unix_nano=100 + i, time_unix_nano=200 + i)
        p.attributes.extend(kvs(attrs))
        if kind in ("gauge", "sum"):
            p.as_int = 7
        elif kind == "histogram":
            p.count, p.sum = 2, 3.5
            p.bucket_counts.extend([1, 1])
            p.explicit_bounds.append(1.0)
        elif kind == "exponential_histogram":
            p.count, p.scale = 2, 1
            p.positive.bucket_counts.extend([2])
        else:
            p.count, p.sum = 2, 3.5
            p.quantile_values.add(quantile=0.5, value=1.0)
        if exemplar_attrs is not None and kind != "summary":
            ex = p.exemplars.add(time_unix_nano=150, as_double=1.5,
                                 trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
            ex.filtered_attributes.extend(kvs(exemplar_attrs))
    return m


SENSITIVE = {"secret": "s3cr3t", "uid": 42, "keep": "k"}
SCRUBBED = {"uid": H(b"42"), "keep": "k"}


def request_of(metrics: list[Metric], attrs: dict) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.extend(kvs(attrs))
    sm = rm.scope_metrics.add()
    sm.scope.name = "meter"
    sm.scope.attributes.extend(kvs(attrs))
    sm.metrics.extend(metrics)
    return req


def without_attributes(req: ExportMetricsServiceRequest) -> ExportMetricsServiceRequest:
    req = copy.deepcopy(req)
    for rm in req.resource_metrics:
        del rm.resource.attributes[:]
        for sm in rm.scope_metrics:
            del sm.scope.attributes[:]
            for m in sm.metrics:
                del m.metadata[:]
                for p in points(m):
                    del p.attributes[:]
                    for ex in getattr(p, "exemplars", ()):
                        del ex.filtered_attributes[:]
    return req


def test_every_point_kind_exemplars_and_metadata_are_scrubbed():
    policy = load(POLICIES / "everywhere.yaml", ENV)
    metrics = []
    for kind in KINDS:
        m = metric(kind, kind, [SENSITIVE, SENSITIVE], exemplar_attrs=SENSITIVE)
        m.metadata.extend(kvs(SENSITIVE))
        metrics.append(m)
    req = request_of(metrics, SENSITIVE)
    before = copy.deepcopy(req)
    report = scrub("metrics", req, policy)

    rm = req.resource_metrics[0]
    assert pairs(rm.resource.attributes) == SCRUBBED
    assert pairs(rm.scope_metrics[0].scope.attributes) == SCRUBBED
    assert [m.name for m in rm.scope_metrics[0].metrics] == list(KINDS)
    for m in rm.scope_metrics[0].metrics:
        assert pairs(m.metadata) == SCRUBBED, m.name
        assert len(points(m)) == 2
        for p in points(m):
            assert pairs(p.attributes) == SCRUBBED, m.name
            for ex in getattr(p, "exemplars", ()):
                assert pairs(ex.filtered_attributes) == SCRUBBED, m.name
    assert without_attributes(req) == without_attributes(before)
    # resource + scope + 5 metadata + 10 points + 8 exemplars (summaries have none)
    assert report.redactions == [25, 25]
    assert (report.items_in, report.items_out, report.changed) == (10, 10, True)


def test_levels_restrictions_in_metrics():
    policy = load(POLICIES / "scoped.yaml", {})
    attrs = {"a": "1", "b": "2", "c": "3", "d": "4"}
    m = metric("histogram", "h", [attrs], exemplar_attrs=attrs)
    m.metadata.extend(kvs(attrs))
    req = request_of([m], attrs)
    report = scrub("metrics", req, policy)
    rm = req.resource_metrics[0]
    p = points(rm.scope_metrics[0].metrics[0])[0]
    assert set(pairs(rm.resource.attributes)) == {"a", "c", "d"}  # b: resource only
    assert set(pairs(rm.scope_metrics[0].scope.attributes)) == {"a", "b", "c", "d"}
    assert set(pairs(rm.scope_metrics[0].metrics[0].metadata)) == {"a", "b", "c", "d"}
    assert set(pairs(p.attributes)) == {"a", "b", "c", "d"}  # a: traces spans; c: logs
    assert set(pairs(p.exemplars[0].filtered_attributes)) == {"a", "b", "c"}  # d: exemplars
    assert report.redactions == [0, 1, 0, 1]


def test_drop_data_points_and_prune_what_is_left_empty():
    policy = load(POLICIES / "drop.yaml", {})
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.extend(kvs({"service.name": "a"}))
    sm = rm.scope_metrics.add()
    sm.scope.name = "kept-scope"
    sm.metrics.extend([
        # one of two points dropped: the metric stays
        metric("gauge", "g", [{"peer": "internal-7"}, {"peer": "external-7", "url.path": "/x"}]),
        # its only point dropped: the metric goes
        metric("sum", "s", [{"url.path": "/healthz"}]),
        metric("summary", "q", [{"peer": "internal-12x"}]),  # full match only: kept
    ])
    gone = rm.scope_metrics.add()
    gone.scope.name = "emptied-scope"
    gone.metrics.extend([metric("exponential_histogram", "e", [{"synthetic": True}])])
    rm2 = req.resource_metrics.add()
    rm2.resource.attributes.extend(kvs({"service.name": "b"}))
    rm2.scope_metrics.add().metrics.extend([metric("histogram", "h", [{"http.status": 204}], {"x": "y"})])

    report = scrub("metrics", req, policy)
    assert len(req.resource_metrics) == 1
    (sm,) = req.resource_metrics[0].scope_metrics
    assert sm.scope.name == "kept-scope"
    assert [m.name for m in sm.metrics] == ["g", "q"]
    (g_point,) = points(sm.metrics[0])
    assert pairs(g_point.attributes) == {"peer": "external-7"}
    assert (g_point.start_time_unix_nano, g_point.time_unix_nano, g_point.as_int) == (101, 201, 7)
    assert (report.items_in, report.items_out) == (6, 2)
    assert report.dropped == [1, 1, 1, 1, 0]
    assert report.redactions == [0, 0, 0, 0, 1]


def test_metric_without_data_and_nothing_to_do():
    policy = load(POLICIES / "everywhere.yaml", ENV)
    req = request_of([Metric(name="empty"), metric("gauge", "g", [{"ok": 1}])], {"ok": "1"})
    before = copy.deepcopy(req)
    report = scrub("metrics", req, policy)
    assert req == before
    assert (report.items_in, report.items_out, report.changed) == (1, 1, False)
