"""Traces: resource, scope, span, event and link attributes; span and event names (mask
targets); drop rules on spans."""

from __future__ import annotations

from redact_proxy.policy import CompiledPolicy, Level
from redact_proxy.scrub.attributes import Tally, mask_text, scrub_attributes
from redact_proxy.scrub.drop import drop_items, prune_empty


def count(request) -> int:
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)


def scrub(request, policy: CompiledPolicy, tally: Tally) -> None:
    resource = policy.decider("traces", Level.RESOURCE)
    scope = policy.decider("traces", Level.SCOPE)
    span_d = policy.decider("traces", Level.SPAN)
    event_d = policy.decider("traces", Level.EVENT)
    link_d = policy.decider("traces", Level.LINK)
    drops = policy.drops["traces"]
    hasher = policy.hasher
    name_masks = policy.name_masks[("traces", "span_name")]
    event_masks = policy.name_masks[("traces", "event_name")]
    dropped_any = False
    for rs in request.resource_spans:
        scrub_attributes(rs.resource.attributes, resource, tally, hasher)
        pruned = False
        for ss in rs.scope_spans:
            scrub_attributes(ss.scope.attributes, scope, tally, hasher)
            spans = ss.spans
            if drops and drop_items(spans, drops, tally):
                pruned = True
            for span in spans:
                scrub_attributes(span.attributes, span_d, tally, hasher)
                if name_masks:
                    masked = mask_text(span.name, name_masks, tally)
                    if masked is not None:
                        span.name = masked
                for event in span.events:
                    scrub_attributes(event.attributes, event_d, tally, hasher)
                    if event_masks:
                        masked = mask_text(event.name, event_masks, tally)
                        if masked is not None:
                            event.name = masked
                for link in span.links:
                    scrub_attributes(link.attributes, link_d, tally, hasher)
        if pruned:
            prune_empty(rs.scope_spans, "spans")
            dropped_any = True
    if dropped_any:
        prune_empty(request.resource_spans, "scope_spans")
