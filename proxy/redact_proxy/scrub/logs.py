"""Logs: resource, scope and log record attributes, keys inside structured bodies, bodies
and event names (mask targets); drop rules on log records."""

from __future__ import annotations

from redact_proxy.policy import CompiledPolicy, Level
from redact_proxy.scrub.attributes import Tally, mask_text, scrub_attributes, scrub_value
from redact_proxy.scrub.drop import drop_items, prune_empty


def count(request) -> int:
    return sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)


def scrub(request, policy: CompiledPolicy, tally: Tally) -> None:
    resource = policy.decider("logs", Level.RESOURCE)
    scope = policy.decider("logs", Level.SCOPE)
    log_d = policy.decider("logs", Level.LOG)
    drops = policy.drops["logs"]
    hasher = policy.hasher
    body_masks = policy.name_masks[("logs", "log_body")]
    event_masks = policy.name_masks[("logs", "event_name")]
    dropped_any = False
    for rl in request.resource_logs:
        scrub_attributes(rl.resource.attributes, resource, tally, hasher)
        pruned = False
        for sl in rl.scope_logs:
            scrub_attributes(sl.scope.attributes, scope, tally, hasher)
            records = sl.log_records
            if drops and drop_items(records, drops, tally):
                pruned = True
            for record in records:
                scrub_attributes(record.attributes, log_d, tally, hasher)
                if record.HasField("body"):
                    scrub_value(record.body, log_d, tally, hasher, body_masks)
                if event_masks and record.event_name:
                    masked = mask_text(record.event_name, event_masks, tally)
                    if masked is not None:
                        record.event_name = masked
        if pruned:
            prune_empty(rl.scope_logs, "log_records")
            dropped_any = True
    if dropped_any:
        prune_empty(request.resource_logs, "scope_logs")
