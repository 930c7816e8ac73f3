"""What every signal has: a resource (attributes, schema_url, entity refs) and scopes
(attributes, name, version, schema_url)."""

from __future__ import annotations

from redact_proxy.policy import CompiledPolicy, Decider, Level
from redact_proxy.scrub.attributes import Tally, scrub_attributes, scrub_text


def scrub_resource(container, policy: CompiledPolicy, signal: str, decider: Decider, tally: Tally) -> None:
    """A ResourceSpans / ResourceMetrics / ResourceLogs: its resource and schema_url."""
    resource = container.resource
    scrub_attributes(resource.attributes, decider, tally, policy.hasher)
    url_ops = policy.text(signal, Level.RESOURCE, "schema_url")
    scrub_schema_url(container, url_ops, tally)
    refs = policy.text(signal, Level.RESOURCE, "entity_ref")
    for ref in resource.entity_refs:
        if refs:
            out = scrub_text(ref.type, refs, tally)
            if out is not None:
                ref.type = out
            for keys in (ref.id_keys, ref.description_keys):
                for i, key in enumerate(keys):
                    out = scrub_text(key, refs, tally)
                    if out is not None:
                        keys[i] = out
        scrub_schema_url(ref, url_ops, tally)


def scrub_scope(container, policy: CompiledPolicy, signal: str, decider: Decider, tally: Tally) -> None:
    """A ScopeSpans / ScopeMetrics / ScopeLogs: its scope and schema_url."""
    scope = container.scope
    scrub_attributes(scope.attributes, decider, tally, policy.hasher)
    for target, name in (("scope_name", "name"), ("scope_version", "version")):
        ops = policy.text(signal, Level.SCOPE, target)
        if ops:
            text = getattr(scope, name)
            out = scrub_text(text, ops, tally) if text else None
            if out is not None:
                setattr(scope, name, out)
    scrub_schema_url(container, policy.text(signal, Level.SCOPE, "schema_url"), tally)


def scrub_schema_url(message, ops, tally: Tally) -> None:
    if ops and message.schema_url:
        out = scrub_text(message.schema_url, ops, tally)
        if out is not None:
            message.schema_url = out
