"""offline.py and its commands (SPEC section 3): ``redact-proxy apply`` redacts OTLP files
(OTLP-JSON, one document or JSON lines; protobuf with --signal) to a file or stdout, keeping
trace and span ids as hex; ``redact-proxy test`` runs a policy's ``tests:`` cases, exit 1
with an expected/got diff when one fails. Mostly through ``redact_proxy.cli.main``; the
stdin/stdout paths and the missing-key note through the real console entry point."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from redact_proxy import cli, offline

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = ROOT / "tests" / "testdata"
POLICY = TESTDATA / "offline-policy.yaml"
TRACES_JSON = TESTDATA / "otlp-traces.json"
MIXED_JSONL = TESTDATA / "otlp-mixed.jsonl"
DOCTRINES = [ROOT / "policies" / "doctrine.yaml", ROOT / "policies" / "doctrine-strict.yaml"]
KEY = "offline-test-key-0123456789"


@pytest.fixture(autouse=True)
def hash_key(monkeypatch):
    monkeypatch.setenv("REDACT_PROXY_HASH_KEY", KEY)


def H(text: str) -> str:
    return hmac.new(KEY.encode(), text.encode(), hashlib.sha256).hexdigest()


def attrs(node: dict, field: str = "attributes") -> dict:
    """OTLP-JSON attributes as {key: the single value member}."""
    return {kv["key"]: next(iter(kv["value"].values())) for kv in node.get(field, [])}


# --- what redacting otlp-traces.json must give ----------------------------------------------


def check_redacted_traces(out: dict) -> None:
    """``out`` is otlp-traces.json after offline-policy.yaml, as OTLP-JSON (hex ids)."""
    sent = json.loads(TRACES_JSON.read_text())
    [rs] = out["resourceSpans"]
    assert attrs(rs["resource"]) == {"service.name": "checkout"}
    [ss] = rs["scopeSpans"]
    assert ss["scope"] == {"name": "checkout.http", "version": "1.2.0"}
    [span] = ss["spans"]  # the health check is dropped
    original = sent["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    for field in ("traceId", "spanId", "parentSpanId"):
        assert span[field] == original[field], f"{field} must survive as the same hex"
    assert span["links"][0]["traceId"] == original["links"][0]["traceId"]
    assert span["links"][0]["spanId"] == original["links"][0]["spanId"]
    for field in ("startTimeUnixNano", "endTimeUnixNano", "status"):
        assert span[field] == original[field]
    assert span["kind"] in (2, "SPAN_KIND_SERVER")
    assert span["name"] == "GET /users/[REDACTED]"
    assert attrs(span) == {
        "user.id": H("u-1"),
        "session.id": H("4242"),  # an int hashes as its decimal text, and becomes a string
        "db.statement": "SELECT * FROM users WHERE email = ?",
        "url.full": "https://shop.example/cart?token=REDACTED",
        "client.note": "from [REDACTED]",
        "http.route": "/users/:id",
    }
    [event] = span["events"]
    assert event["name"] == "mail to [REDACTED]"
    assert attrs(event) == {}
    assert attrs(span["links"][0]) == {"user.id": H("u-2")}


def run_apply(*args: str) -> int:
    return cli.main(["apply", "--policy", str(POLICY), *args])


def test_apply_json_document_to_an_output_file(tmp_path, capsys):
    out = tmp_path / "clean.json"
    assert run_apply(str(TRACES_JSON), "-o", str(out)) == 0
    assert capsys.readouterr() == ("", "")
    text = out.read_text()
    assert "ada@example.com" not in text and "10.1.2.3" not in text and "see you at 5" not in text
    check_redacted_traces(json.loads(text))


def test_apply_json_lines_keeps_one_line_per_request(tmp_path):
    out = tmp_path / "clean.jsonl"
    assert run_apply(str(MIXED_JSONL), "-o", str(out)) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 2
    traces, logs = (json.loads(line) for line in lines)
    [span] = traces["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert attrs(span) == {"user.id": H("u-7")}
    assert (span["traceId"], span["spanId"]) == ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
    [record] = logs["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    assert attrs(record) == {"user.id": H("u-7")}
    # Keys inside a structured body are scrubbed, and its strings masked.
    assert attrs(record["body"]["kvlistValue"], "values") == {"msg": "login by [REDACTED] from [REDACTED]"}
    assert (record["traceId"], record["spanId"]) == ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
    assert "grace@example.org" not in out.read_text()


@pytest.mark.parametrize("indent", [2, 0])
def test_apply_pretty_printed_json_document(tmp_path, indent):
    # indent=0 (Python's json.dumps, Go's MarshalIndent with "") starts nested objects at
    # the beginning of a line: still one document, not JSON lines.
    source = tmp_path / "pretty.json"
    source.write_text(json.dumps(json.loads(TRACES_JSON.read_text()), indent=indent))
    out = tmp_path / "clean.json"
    assert run_apply(str(source), "-o", str(out)) == 0
    check_redacted_traces(json.loads(out.read_text()))


def _convert_ids(tree, convert) -> None:
    if isinstance(tree, dict):
        for k, v in tree.items():
            if k in ("traceId", "spanId", "parentSpanId"):
                tree[k] = convert(v)
            else:
                _convert_ids(v, convert)
    elif isinstance(tree, list):
        for v in tree:
            _convert_ids(v, convert)


def _protobuf_of(path: Path) -> bytes:
    """An OTLP-JSON file as protobuf, converted here (not by the proxy's codec)."""
    tree = json.loads(path.read_text())
    _convert_ids(tree, lambda h: base64.b64encode(bytes.fromhex(h)).decode())
    return json_format.ParseDict(tree, ExportTraceServiceRequest()).SerializeToString()


def _as_otlp_json(msg) -> dict:
    tree = json_format.MessageToDict(msg, use_integers_for_enums=True)
    _convert_ids(tree, lambda b: base64.b64decode(b).hex())
    return tree


def test_apply_protobuf_with_signal(tmp_path):
    source = tmp_path / "spans.pb"
    source.write_bytes(_protobuf_of(TRACES_JSON))
    out = tmp_path / "clean.pb"
    assert run_apply("--signal", "traces", str(source), "-o", str(out)) == 0
    data = out.read_bytes()
    assert b"ada@example.com" not in data
    msg = ExportTraceServiceRequest.FromString(data)
    check_redacted_traces(_as_otlp_json(msg))


def test_apply_protobuf_without_signal_exits_2_saying_so(tmp_path, capsys):
    source = tmp_path / "spans.pb"
    source.write_bytes(_protobuf_of(TRACES_JSON))
    out = tmp_path / "clean.pb"
    assert run_apply(str(source), "-o", str(out)) == 2
    captured = capsys.readouterr()
    assert "--signal" in captured.err
    assert captured.out == ""
    assert not out.exists()


def test_unknown_extension_needs_format(tmp_path, capsys):
    source = tmp_path / "spans.txt"
    source.write_bytes(TRACES_JSON.read_bytes())
    out = tmp_path / "clean.json"
    assert run_apply(str(source), "-o", str(out)) == 2
    assert "--format" in capsys.readouterr().err
    assert not out.exists()
    assert run_apply("--format", "json", str(source), "-o", str(out)) == 0
    check_redacted_traces(json.loads(out.read_text()))


def test_input_that_is_not_otlp_exits_2_without_quoting_it(tmp_path, capsys):
    source = tmp_path / "bad.json"
    source.write_text('{"spans": ["ada@example.com"]}\n')
    assert run_apply(str(source)) == 2
    err = capsys.readouterr().err
    assert "not an OTLP export request" in err
    assert "ada@example.com" not in err


def _cli(args: list[str], *, stdin: bytes = b"", env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("REDACT_PROXY_")}
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "redact_proxy", *args], input=stdin, capture_output=True,
                          env=environ, timeout=60)


def test_apply_reads_stdin_and_writes_stdout():
    result = _cli(["apply", "--policy", str(POLICY), "--format", "json"], stdin=TRACES_JSON.read_bytes(),
                  env={"REDACT_PROXY_HASH_KEY": KEY})
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    [line] = result.stdout.decode().splitlines()
    check_redacted_traces(json.loads(line))


# --- redact-proxy test ---------------------------------------------------------------------------


def case_names(path: Path) -> list[str]:
    return [case["name"] for case in yaml.safe_load(path.read_text())["tests"]]


def run_test(policy: Path, *, key: bool = True) -> tuple[int, list[str]]:
    """`redact-proxy test` as a user runs it: returncode and stdout lines (stderr must be empty)."""
    result = _cli(["test", "--policy", str(policy)], env={"REDACT_PROXY_HASH_KEY": KEY} if key else None)
    assert result.stderr == b""
    return result.returncode, result.stdout.decode().splitlines()


@pytest.mark.parametrize("policy", DOCTRINES, ids=lambda p: p.name)
def test_shipped_policies_pass_their_own_cases(policy):
    names = case_names(policy)
    assert names, "the shipped policy has tests: cases"
    assert run_test(policy) == (0, [f"ok    {name}" for name in names] + [f"{len(names)} passed, 0 failed"])


def test_hash_and_dropped_expectations_pass():
    names = case_names(POLICY)
    assert run_test(POLICY) == (0, [f"ok    {n}" for n in names] + [f"{len(names)} passed, 0 failed"])


def test_without_the_hash_key_a_note_is_printed_and_cases_still_pass():
    code, lines = run_test(POLICY, key=False)
    assert code == 0, lines
    assert lines[0] == "note: REDACT_PROXY_HASH_KEY not set: hashing with a fixed test key"
    assert lines[1:] == [f"ok    {n}" for n in case_names(POLICY)] + ["5 passed, 0 failed"]


FAILING_CASES = """\
  - name: a deleted key expected to survive
    signal: traces
    level: span
    input: {user.email: ada@example.com, http.route: /x}
    expect: {user.email: ada@example.com, http.route: /x}
  - name: a hash expected where the key is deleted
    signal: logs
    level: log
    input: {message.content: hi bob}
    expect: {message.content: '{hash}'}
  - name: a kept span expected to be dropped
    signal: traces
    level: span
    input: {url.path: /orders}
    expect: dropped
"""


def test_failing_cases_exit_1_with_an_expected_got_diff(tmp_path):
    policy = tmp_path / "policy.yaml"
    text = POLICY.read_text().rstrip("\n") + "\n" + FAILING_CASES
    policy.write_text(text)
    names = case_names(policy)
    line_of = {line.partition("- name: ")[2]: n for n, line in enumerate(text.splitlines(), 1) if "- name: " in line}

    code, lines = run_test(policy)
    assert code == 1
    assert lines[:5] == [f"ok    {n}" for n in case_names(POLICY)]
    assert lines[-1] == "5 passed, 3 failed"
    failures: dict[str, list[str]] = {}
    for line in lines[5:-1]:
        if line.startswith("FAIL  "):
            name = line[6:].rpartition("  (")[0]
            index = names.index(name)
            assert line == f"FAIL  {name}  ({policy}:{line_of[name]}:5: tests[{index}])", "names the case's place"
            failures[name] = []
        else:
            failures[name].append(line.strip())
    assert len(failures) == 3
    for diff in failures.values():
        assert diff[:2] == ["--- expected", "+++ got"]

    diff = failures["a deleted key expected to survive"]
    assert '-user.email: "ada@example.com"' in diff
    assert 'http.route: "/x"' in diff  # unchanged context
    assert not any(d.startswith("+") and "user.email" in d for d in diff)
    # {hash} is the keyed hash of the input value, under the policy's key.
    assert f'-message.content: "{H("hi bob")}"' in failures["a hash expected where the key is deleted"]
    diff = failures["a kept span expected to be dropped"]
    assert "-(dropped)" in diff
    assert '+url.path: "/orders"' in diff


def test_a_literal_hash_expectation_holds_only_under_its_key(tmp_path):
    # Without the key, the rule and {hash} alike use a fixed test key: {hash} cases pass
    # either way, and a case that pins a literal hash passes only under the key it was
    # computed with - so the fixed key really is what hashed.
    policy = tmp_path / "policy.yaml"
    pinned = yaml.safe_load(POLICY.read_text())
    pinned["tests"] = [{"name": "pinned", "signal": "logs", "level": "log",
                        "input": {"user.id": "u-1"}, "expect": {"user.id": H("u-1")}}]
    policy.write_text(yaml.safe_dump(pinned))
    assert run_test(policy) == (0, ["ok    pinned", "1 passed, 0 failed"])
    code, lines = run_test(policy, key=False)
    assert code == 1
    assert lines[1].startswith("FAIL  pinned")


def test_test_command_prints_to_the_current_stdout(capsys):
    # cli.main is also called in-process (this suite, tools embedding the CLI): the case
    # lines must go to whatever sys.stdout is at call time.
    assert offline.__name__ == "redact_proxy.offline"  # imported at collection, as any importer would
    assert cli.main(["test", "--policy", str(POLICY)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "5 passed, 0 failed"


FIELD_CASES = """\
version: 1
rules:
  - name: no-status-text
    action: delete
    fields: [status_message]
  - name: mask
    action: mask
    detectors: [email]
    targets: [log_body, metric_description]
tests:
  - name: the status text goes, the span name stays
    input: {http.route: /x}
    expect: {http.route: /x}
    fields: {status_message: "KeyError: ada@example.com", span_name: GET /x}
    expect_fields: {status_message: "", span_name: GET /x}
  - name: a string body is masked
    signal: logs
    level: log
    input: {}
    expect: {}
    fields: {log_body: mail ada@example.com}
    expect_fields: {log_body: "mail [REDACTED]"}
  - name: a metric description expected to survive
    signal: metrics
    level: datapoint
    input: {}
    expect: {}
    fields: {metric_description: per ada@example.com}
    expect_fields: {metric_description: per ada@example.com}
"""


def test_cases_can_set_and_expect_free_text_fields(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(FIELD_CASES)
    code, lines = run_test(policy)
    assert code == 1
    assert lines[:2] == ["ok    the status text goes, the span name stays", "ok    a string body is masked"]
    assert lines[2].startswith("FAIL  a metric description expected to survive")
    assert '-(metric_description): "per ada@example.com"' in [line.strip() for line in lines]
    assert '+(metric_description): "per [REDACTED]"' in [line.strip() for line in lines]


def test_a_case_field_that_is_not_at_its_level_is_a_located_error(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(FIELD_CASES.replace("fields: {log_body: mail ada@example.com}", "fields: {span_name: x}"))
    result = _cli(["test", "--policy", str(policy)], env={"REDACT_PROXY_HASH_KEY": KEY})
    assert result.returncode == 2
    assert result.stderr.decode() == (f"{policy}:21:14: tests[1].fields.span_name: no such field at logs level log; "
                                      "expected one of: event_name, severity_text, log_body\n")
