"""policies/doctrine-decisions.tsv and the doctrine, held to the OpenTelemetry
semantic-conventions registry (the installed ``opentelemetry-semantic-conventions``).

Three layers. The registry walk in tools/doctrine_table.py is checked against a plain
reading of the module sources, so a key it misses or invents fails here. The reviewed
table must hold every registry key and exactly the decisions both doctrine policies make
today: a policy edit that changes a decision fails until the table is regenerated and the
diff reviewed (``.venv/bin/python tools/doctrine_table.py``). And the review's rules are
asserted directly on the live decisions, by category (addresses, GenAI content, user
identifiers, personal-data families, counts, infrastructure, deprecated aliases, the
strict policy), so regenerating the table cannot quietly bless a wrong decision. Last,
the GenAI SDKs' own keys (Vercel AI SDK, OpenLLMetry, OpenInference), which no registry
lists: their content is deleted, their counts, costs and names survive.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import opentelemetry.semconv
import pytest
from opentelemetry.semconv.version import __version__ as SEMCONV_VERSION

from redact_proxy.policy import Level
from redact_proxy.policy.compile import load

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "doctrine_table.py"
REGENERATE = (f"regenerate with `.venv/bin/python tools/doctrine_table.py` and review the diff"
              f" (installed registry: opentelemetry-semantic-conventions {SEMCONV_VERSION})")


def _load_tool():
    spec = importlib.util.spec_from_file_location("doctrine_table", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


doctrine_table = _load_tool()
REGISTRY = doctrine_table.registry()
ROWS = {row.attribute.key: row for row in doctrine_table.rows()}
SURVIVE = {"keep", "mask"}  # the value is forwarded as it came (mask only rewrites detector hits)


def action(key: str) -> str:
    return ROWS[key].action


def matching(pattern: str) -> list[str]:
    """Registry keys (template keys included, as `<prefix>.<key>`) matching ``pattern``;
    never empty, so a pattern that stops matching the registry fails instead of passing."""
    regex = re.compile(pattern)
    keys = [key for key in ROWS if regex.fullmatch(key)]
    assert keys, f"{pattern!r} matches no registry key"
    return keys


# --- the registry walk --------------------------------------------------------------------

_FINAL_CONSTANT = re.compile(r'^([A-Z][A-Z0-9_]*): Final = "([^"]+)"$', re.MULTILINE)


def test_registry_walk_matches_a_plain_reading_of_the_sources():
    base = Path(opentelemetry.semconv.__file__).parent
    constants = {}
    for folder in (base / "attributes", base / "_incubating" / "attributes"):
        for source in folder.glob("*_attributes.py"):
            constants.update(_FINAL_CONSTANT.findall(source.read_text(encoding="utf-8")))
    expected = {
        f"{value}.<key>" if name == re.sub(r"[^A-Za-z0-9]", "_", value).upper() + "_TEMPLATE" else value
        for name, value in constants.items()
    }
    assert {a.key for a in REGISTRY} == expected
    assert len(REGISTRY) > 800


def test_templates_are_probed_with_a_suffix_and_look_alikes_are_not_templates():
    by_key = {a.key: a for a in REGISTRY}
    assert by_key["http.request.header.<key>"].probe == "http.request.header.x-example"
    assert by_key["process.environment_variable.<key>"].probe == "process.environment_variable.x-example"
    # URL_TEMPLATE and MESSAGING_DESTINATION_TEMPLATE are attributes named *.template.
    assert by_key["url.template"].probe == "url.template"
    assert by_key["messaging.destination.template"].probe == "messaging.destination.template"
    assert all(a.probe == a.key.replace("<key>", "x-example") for a in REGISTRY)


def test_enum_values_and_metric_names_are_not_attributes():
    keys = {a.key for a in REGISTRY}
    assert not {"active", "idle", "chat", "execute_tool", "ipv4"} & keys  # *Values enum members
    assert not {"http.server.request.duration", "gen_ai.client.token.usage", "db.client.operation.duration"} & keys


def test_status_and_deprecation_columns():
    by_key = {a.key: a for a in REGISTRY}
    assert (by_key["http.request.method"].status, by_key["http.request.method"].deprecated) == ("stable", "no")
    assert (by_key["gen_ai.usage.input_tokens"].status, by_key["gen_ai.usage.input_tokens"].deprecated) == ("incubating", "moved")
    assert (by_key["http.url"].status, by_key["http.url"].deprecated) == ("incubating", "yes")
    assert {a.status for a in REGISTRY} == {"stable", "incubating"}


# --- the reviewed table -------------------------------------------------------------------

TABLE = doctrine_table.read_table()


def test_every_registry_key_is_in_the_table():
    missing = sorted(set(ROWS) - set(TABLE))
    assert not missing, f"{len(missing)} registry keys are not in the table, e.g. {missing[:10]}; {REGENERATE}"


def test_the_table_holds_no_key_the_registry_lacks():
    stale = sorted(set(TABLE) - set(ROWS))
    assert not stale, f"{len(stale)} table rows are not registry keys, e.g. {stale[:10]}; {REGENERATE}"


def test_the_doctrine_decides_every_key_as_the_reviewed_table_says():
    changed = []
    for key, row in ROWS.items():
        if key not in TABLE:
            continue
        want = TABLE[key]
        got = dict(zip(doctrine_table.COLUMNS, row.cells()))
        if got != want:
            diff = ", ".join(f"{c}: {want[c]} -> {got[c]}" for c in doctrine_table.COLUMNS if want[c] != got[c])
            changed.append(f"{key} ({diff})")
    assert not changed, f"{len(changed)} decisions differ from the reviewed table:\n  " + "\n  ".join(changed[:30]) + f"\n{REGENERATE}"


def test_the_table_file_is_exactly_what_the_generator_renders():
    assert doctrine_table.TABLE.read_text(encoding="utf-8") == doctrine_table.render(list(ROWS.values())), REGENERATE


# --- category invariants ------------------------------------------------------------------

# Network addresses: the remote side and every IP or MAC is deleted (doctrine row "IP
# addresses", servers included). Kept, with the reason:
KEPT_ADDRESSES = {
    "server.address": "the serving side (our API host, or the DB/cache a client span calls): infrastructure",
    "k8s.service.publish_not_ready_addresses": "a boolean Service setting, not an address",
}


def test_addresses_ips_and_macs_are_deleted_except_the_server_side():
    for key in matching(r"(.*[._])?(address|addresses|addr|ip|mac)"):
        if key in KEPT_ADDRESSES:
            assert action(key) in SURVIVE, key
        else:
            assert action(key) == "delete", key


def test_remote_ports_are_deleted_and_server_ports_kept():
    for key in matching(r"(client|source|network\.peer|net\.peer|net\.sock\.peer)\.port"):
        assert action(key) == "delete", key
    for key in ("server.port", "destination.port", "network.local.port", "net.host.port", "url.port"):
        assert action(key) in SURVIVE, key


def test_gen_ai_content_is_deleted():
    keys = matching(r"gen_ai\.(.*\.)?(messages|system_instructions|arguments|result|prompt|completion|documents|explanation|content|text)")
    assert len(keys) >= 10
    for key in keys:
        assert action(key) == "delete", key


def test_gen_ai_counts_settings_and_names_survive():
    keys = matching(r"gen_ai\.(usage\..*|request\.(model|max_tokens|temperature|top_[kp]|.*_penalty|choice\.count|seed|stream|stop_sequences|encoding_formats)"
                    r"|response\.(model|finish_reasons|id|time_to_first_chunk)|token\.type|operation\.name|provider\.name|system"
                    r"|tool\.(name|type|description|call\.id)|agent\.(name|id|version)|prompt\.name|embeddings\.dimension\.count|output\.type)")
    for key in keys:
        assert action(key) in SURVIVE, key


def test_user_identifiers_are_hashed_or_deleted():
    for key in matching(r"(end)?user\..*|process\.(real_|saved_)?user\.(id|name)"):
        assert action(key) in {"hash", "delete"}, key
    # The pseudonymised set is small on purpose (doctrine: hash user identifiers for correlation).
    hashed_user_ids = {key for key in matching(r"(end)?user\..*") if action(key) == "hash"}
    assert hashed_user_ids == {"user.id", "user.hash", "enduser.id", "enduser.pseudo.id"}


# Families of personal data, credentials and content: none may be forwarded in clear
# (keep/mask). A sanitizer (URLs, SQL) is fine: it removes the data and keeps the shape.
NOT_IN_CLEAR = {
    "secrets-and-contact": r".*(email|phone|password|passwd|credential|cookie|authori[sz]ation|secret).*",
    "command-lines": r".*(command_line|command_args|environment_variable.*)",
    "free-text": r".*[._](message|stacktrace|body|content|text|prompt|completion|messages|system_instructions|arguments|documents|explanation)",
    "sessions": r"(session|mcp\.session|gen_ai\.conversation)\.(id|previous_id)",
    "fine-geolocation": r"geo\.(location\..*|postal_code|locality\.name|region\.iso_code)",
    "tls-client": r"tls\.client\..*",
    "certificates": r"tls\.(server|client)\.certificate(_chain)?",
    "user-agent": r"(user_agent\.original|http\.user_agent)",
    "devices": r"(device\.id|app\.installation\.id|hw\.serial_number)",
    "query-data": r"(url\.(query|fragment)|graphql\.document|db\.(query|operation)\.parameter\..*|db\.elasticsearch\.path_parts\..*)",
    "message-routing": r"messaging\.(destination|destination_publish)(\.name)?|messaging\..*\.message\.(key|keys|ordering_key|group)|messaging\..*\.routing_key",
    "os-logins": r"process\.(title|owner)|process\.(real_|saved_)?user\.name",
    "user-objects": r"(aws\.s3\.(key|copy_source|delete)|faas\.document\.name|cloudevents\.event_subject|feature_flag\.context\.id)",
}
CLEAR_EXCEPTIONS = {
    "code.stacktrace": "call-site frames of a log record (semconv), no exception message",
    "tls.client.server_name": "the SNI the client asked for: our own server's name",
}


@pytest.mark.parametrize("family", NOT_IN_CLEAR)
def test_no_personal_data_family_is_kept_in_clear(family):
    kept = [key for key in matching(NOT_IN_CLEAR[family]) if key not in CLEAR_EXCEPTIONS and action(key) in SURVIVE]
    assert not kept, f"kept in clear: {kept}"


def test_the_exceptions_are_registry_keys_that_survive():
    for key in CLEAR_EXCEPTIONS:
        assert action(key) in SURVIVE, key


def test_counts_and_sizes_survive():
    keys = matching(r"(.*[._])?(count|size|length|[a-z_]*tokens)")
    assert len(keys) >= 30
    for key in keys:
        assert action(key) in SURVIVE, key


# Infrastructure metadata is allowed. Removed from these namespaces, with the reason:
INFRASTRUCTURE_REMOVED = {
    "host.ip": "an IP address", "host.mac": "a MAC address", "k8s.pod.ip": "an IP address",
    "container.command_line": "can carry credentials", "container.command_args": "can carry credentials",
    "faas.document.name": "the name of a user's stored object",
    "otel.scope.schema_url": "sanitized: a URL, kept in shape",
}


def test_infrastructure_metadata_survives():
    keys = matching(r"(service|host|os|telemetry|cloud|container|k8s|deployment|faas|otel\.scope|cloudfoundry|gcp|heroku|webengine|aws\.(ecs|eks))\..*")
    for key in keys:
        if key not in INFRASTRUCTURE_REMOVED:
            assert action(key) in SURVIVE, key
    for key in INFRASTRUCTURE_REMOVED:
        assert action(key) not in SURVIVE, key


def test_server_certificate_metadata_survives_and_its_blobs_do_not():
    for key in matching(r"tls\.server\.(subject|issuer|hash\..*|not_after|not_before|ja3s)"):
        assert action(key) in SURVIVE, key
    assert action("tls.server.certificate") == action("tls.server.certificate_chain") == "delete"


def test_deprecated_keys_are_decided_like_their_replacements():
    pairs = {old: new for old, new in doctrine_table.replacements().items() if old in ROWS and new in ROWS}
    assert len(pairs) >= 50
    differ = [f"{old} ({action(old)}) vs {new} ({action(new)})" for old, new in pairs.items() if action(old) != action(new)]
    assert not differ, differ


def test_the_strict_policy_never_forwards_what_the_doctrine_removes():
    for key, row in ROWS.items():
        if row.strict_action in SURVIVE:
            assert row.action in SURVIVE | {"sanitize_url", "sanitize_sql"}, key
        if row.strict_action == "hash":
            assert row.action == "hash", key
        if row.action == "hash":
            assert row.strict_action in {"hash", "keep_only"}, key


# --- beyond the registry: the GenAI SDKs' own keys ----------------------------------------
# From the Vercel AI SDK 5 telemetry, OpenLLMetry/Traceloop and the OpenInference
# semantic conventions (@arizeai/openinference-semantic-conventions 2.12).

SDK_CONTENT = (
    "ai.prompt", "ai.prompt.messages", "ai.response.text", "ai.response.object", "ai.response.toolCalls",
    "ai.toolCall.args", "ai.toolCall.result", "ai.value", "ai.values", "ai.embedding", "ai.embeddings",
    "ai.result.text", "ai.result.object", "ai.result.toolCalls",
    "traceloop.entity.input", "traceloop.entity.output", "traceloop.prompt.template",
    "traceloop.prompt.template_variables.name", "gen_ai.prompt.0.content", "gen_ai.completion.0.content",
    "gen_ai.completion.0.tool_calls.0.arguments", "llm.prompts.0.content", "llm.completions.0.content", "llm.user",
    "input.value", "output.value", "input.images", "output.images", "llm.input_messages.0.message.content",
    "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments", "llm.prompt_template.variables",
    "llm.prompts", "llm.function_call", "message.content", "message.contents.0.message_content.text",
    "message_content.image", "message.function_call_arguments_json", "message.tool_calls", "tool.parameters",
    "tool_call.function.arguments", "retrieval.documents.0.document.content", "document.metadata",
    "reranker.query", "reranker.input_documents.0.document.content", "embedding.embeddings.0.embedding.text",
    "embedding.embeddings.0.embedding.vector", "embedding.text", "embedding.vector", "audio.transcript",
    "evaluation.explanation", "annotation.explanation",
)
SDK_KEPT = (
    "ai.model.id", "ai.model.provider", "ai.usage.promptTokens", "ai.usage.completionTokens", "ai.usage.inputTokens",
    "ai.usage.outputTokens", "ai.usage.totalTokens", "ai.usage.reasoningTokens", "ai.usage.cachedInputTokens",
    "ai.response.finishReason", "ai.response.model", "ai.response.id", "ai.response.msToFirstChunk",
    "ai.response.msToFinish", "ai.response.avgOutputTokensPerSecond", "ai.settings.output", "ai.settings.maxRetries",
    "ai.toolCall.name", "ai.toolCall.id", "ai.telemetry.functionId", "ai.operationId", "ai.schema.name",
    "traceloop.entity.name", "traceloop.span.kind", "llm.request.type", "llm.usage.total_tokens",
    "gen_ai.request.model", "llm.model_name", "llm.provider", "llm.system",
    "llm.token_count.prompt", "llm.token_count.completion", "llm.token_count.total",
    "llm.token_count.prompt_details.cache_read", "llm.token_count.completion_details.reasoning",
    "llm.cost.prompt", "llm.cost.completion", "llm.cost.total", "llm.cost.prompt_details.input",
    "llm.cost.completion_details.output", "input.mime_type", "output.mime_type", "message.role",
    "tool.name", "tool_call.function.name", "embedding.model_name", "reranker.model_name", "reranker.top_k",
    "openinference.span.kind", "document.score", "graph.node.name",
)


SPAN = load(doctrine_table.DOCTRINE, doctrine_table.ENVIRON).decider("traces", Level.SPAN)


def _decide(key: str) -> str:
    d = SPAN.decide(key)
    return "keep" if d.action is None else d.action.value


@pytest.mark.parametrize("key", SDK_CONTENT)
def test_sdk_content_keys_are_deleted(key):
    assert _decide(key) == "delete"


@pytest.mark.parametrize("key", SDK_KEPT)
def test_sdk_counts_settings_and_names_survive(key):
    assert _decide(key) == "keep"
