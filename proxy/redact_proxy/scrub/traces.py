"""Traces: resource, scope, span, event and link attributes; every free-text field (span
and event names, status messages, trace_state of spans and links, scope name and
version, schema_urls, resource entity refs); drop rules on spans."""

from __future__ import annotations

from redact_proxy.policy import Action, CompiledPolicy, Level
from redact_proxy.scrub.attributes import DbSystem, Tally, scrub_attributes, scrub_text, system_of
from redact_proxy.scrub.common import scrub_resource, scrub_scope
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
    name_ops = policy.text("traces", Level.SPAN, "span_name")
    # A span name that is a statement is read in the dialect of the span's database.
    name_needs_system = any(r.decision.action is Action.SANITIZE_SQL for r in name_ops.rules)
    status_ops = policy.text("traces", Level.SPAN, "status_message")
    state_ops = policy.text("traces", Level.SPAN, "trace_state")
    event_ops = policy.text("traces", Level.EVENT, "event_name")
    link_state_ops = policy.text("traces", Level.LINK, "trace_state")
    dropped_any = False
    for rs in request.resource_spans:
        scrub_resource(rs, policy, "traces", resource, tally)
        pruned = False
        for ss in rs.scope_spans:
            scrub_scope(ss, policy, "traces", scope, tally)
            spans = ss.spans
            if drops and drop_items(spans, drops, tally):
                pruned = True
            for span in spans:
                # Read once, before the attributes are scrubbed: the span name's dialect,
                # and the one sanitize_sql on db.statement would look up again.
                system = system_of(span.attributes) if name_needs_system else None
                scrub_attributes(
                    span.attributes, span_d, tally, hasher, DbSystem.known(system) if name_needs_system else None
                )
                if name_ops:
                    out = scrub_text(span.name, name_ops, tally, system)
                    if out is not None:
                        span.name = out
                if status_ops and span.status.message:
                    out = scrub_text(span.status.message, status_ops, tally)
                    if out is not None:
                        span.status.message = out
                if state_ops and span.trace_state:
                    out = scrub_text(span.trace_state, state_ops, tally)
                    if out is not None:
                        span.trace_state = out
                for event in span.events:
                    scrub_attributes(event.attributes, event_d, tally, hasher)
                    if event_ops:
                        out = scrub_text(event.name, event_ops, tally)
                        if out is not None:
                            event.name = out
                for link in span.links:
                    scrub_attributes(link.attributes, link_d, tally, hasher)
                    if link_state_ops and link.trace_state:
                        out = scrub_text(link.trace_state, link_state_ops, tally)
                        if out is not None:
                            link.trace_state = out
        if pruned:
            prune_empty(rs.scope_spans, "spans")
            dropped_any = True
    if dropped_any:
        prune_empty(request.resource_spans, "scope_spans")
