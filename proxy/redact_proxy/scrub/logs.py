"""Logs: resource, scope and log record attributes; bodies (whole-field rules, key rules
on structured and JSON bodies, masks); event names and severity text; drop rules on log
records."""

from __future__ import annotations

from redact_proxy.policy import CompiledPolicy, Level
from redact_proxy.scrub.attributes import Tally, scrub_attributes, scrub_text, scrub_value
from redact_proxy.scrub.common import scrub_resource, scrub_scope
from redact_proxy.scrub.drop import drop_items, prune_empty


def count(request) -> int:
    return sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)


def scrub(request, policy: CompiledPolicy, tally: Tally) -> None:
    resource = policy.decider("logs", Level.RESOURCE)
    scope = policy.decider("logs", Level.SCOPE)
    log_d = policy.decider("logs", Level.LOG)
    drops = policy.drops["logs"]
    hasher = policy.hasher
    body_ops = policy.text("logs", Level.LOG, "log_body")
    event_ops = policy.text("logs", Level.LOG, "event_name")
    severity_ops = policy.text("logs", Level.LOG, "severity_text")
    dropped_any = False
    for rl in request.resource_logs:
        scrub_resource(rl, policy, "logs", resource, tally)
        pruned = False
        for sl in rl.scope_logs:
            scrub_scope(sl, policy, "logs", scope, tally)
            records = sl.log_records
            if drops and drop_items(records, drops, tally):
                pruned = True
            for record in records:
                scrub_attributes(record.attributes, log_d, tally, hasher)
                if record.HasField("body") and not scrub_value(record.body, log_d, tally, hasher, body_ops):
                    record.ClearField("body")
                if event_ops and record.event_name:
                    out = scrub_text(record.event_name, event_ops, tally)
                    if out is not None:
                        record.event_name = out
                if severity_ops and record.severity_text:
                    out = scrub_text(record.severity_text, severity_ops, tally)
                    if out is not None:
                        record.severity_text = out
        if pruned:
            prune_empty(rl.scope_logs, "log_records")
            dropped_any = True
    if dropped_any:
        prune_empty(request.resource_logs, "scope_logs")
