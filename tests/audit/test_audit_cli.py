"""``redact-proxy audit`` over captured-style inputs (tests/testdata/audit, generated with
the real OpenTelemetry SDK by make_testdata.py): every planted leak is found at its field
path, and no planted value appears anywhere in what the command prints."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "testdata" / "audit"
POLICY = DATA / "policy.yaml"
LEAKY = [DATA / "traces-leaky.jsonl.gz", DATA / "logs-leaky.json", DATA / "metrics-leaky.pb"]
CLEAN = [DATA / "clean-spans.binpb", DATA / "logs-clean.jsonl"]
PLANTED = json.loads((DATA / "planted.json").read_text())
KEY = "audit-tests-hash-key-0123456789abcdef"


def audit(*args: str, key: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDACT_PROXY_")}
    env["PYTHONPATH"] = str(ROOT / "proxy")
    if key:
        env["REDACT_PROXY_HASH_KEY"] = KEY
    return subprocess.run([sys.executable, "-m", "redact_proxy", "audit", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def assert_no_planted_value(*texts: str) -> None:
    everything = "\n".join(texts)
    for leak in PLANTED:
        assert leak["value"] not in everything, f"planted {leak['kind']} value printed"
        if leak["kind"] == "free_text":
            continue  # its words are ordinary words
        # Nor a recognisable piece of it (the e-mail's local part, the card's digits).
        for piece in leak["value"].replace("@", " ").split():
            if len(piece) >= 8:
                assert piece not in everything, f"part of a planted {leak['kind']} value printed"


@pytest.fixture(scope="module")
def leaky_json():
    run = audit("--policy", str(POLICY), "--json", *map(str, LEAKY))
    assert run.returncode == 0, run.stderr
    return run, json.loads(run.stdout)


def test_every_planted_leak_is_found_at_its_field(leaky_json):
    _, report = leaky_json
    found = {(f["signal"], f["level"], f["field"], f["kind"]) for f in report["findings"]}
    for leak in PLANTED:
        if leak["field"] is None:
            continue  # the key that is itself personal: below
        assert (leak["signal"], leak["level"], leak["field"], leak["kind"]) in found, leak["field"]


def test_a_personal_key_is_found_and_shown_hashed(leaky_json):
    _, report = leaky_json
    (leak,) = [p for p in PLANTED if p["field"] is None]
    hits = [f for f in report["findings"] if f["kind"] == leak["kind"] and f["signal"] == leak["signal"]
            and f["level"] == leak["level"] and f["field"].startswith("attributes.#")]
    assert len(hits) == 1
    shown = hits[0]["field"].removeprefix("attributes.#")
    assert len(shown) == 16 and all(c in "0123456789abcdef" for c in shown)


def test_no_planted_value_in_json_or_stderr(leaky_json):
    run, _ = leaky_json
    assert_no_planted_value(run.stdout, run.stderr)


def test_no_planted_value_in_the_table():
    run = audit("--policy", str(POLICY), *map(str, LEAKY))
    assert run.returncode == 0, run.stderr
    assert "WHAT SURVIVED THE POLICY" in run.stdout and "attributes.app.customer_phone" in run.stdout
    assert_no_planted_value(run.stdout, run.stderr)


def test_what_the_policy_handled_is_not_reported(leaky_json):
    _, report = leaky_json
    fields = {(f["signal"], f["level"], f["field"]): f for f in report["fields"]}
    # enduser.id is hashed by the policy: its values are the policy's pseudonyms.
    hashed = fields[("traces", "span", "attributes.enduser.id")]
    assert hashed["decided_by"] == "hash by hash-enduser-id" and hashed["key_rule"] is True
    assert hashed["findings"] == {}
    # user.email is masked by the policy's e-mail rule: nothing left to find.
    assert fields[("traces", "span", "attributes.user.email")]["findings"] == {}
    rules = {r["name"]: r["applied"] for r in report["rules"]}
    assert rules == {"hash-enduser-id": 64, "delete-passwords": 0, "mask-emails-in-attributes": 1}


def test_keys_no_rule_matched_and_the_registry(leaky_json):
    _, report = leaky_json
    unmatched = {(u["signal"], u["level"], u["field"]): u for u in report["unmatched_keys"]}
    assert unmatched[("traces", "span", "attributes.app.delivery_note")]["registry"] is False
    assert unmatched[("traces", "span", "attributes.http.route")]["registry"] is True
    assert ("traces", "span", "attributes.enduser.id") not in unmatched


def test_hashes_are_keyed_with_the_policy_key(leaky_json):
    import hashlib
    import hmac

    _, report = leaky_json
    assert report["hash_key"] == "policy"
    (leak,) = [p for p in PLANTED if p["kind"] == "iban"]
    (hit,) = [f for f in report["findings"] if f["field"] == leak["field"] and f["kind"] == "iban"]
    assert hit["sample_hash"] == hmac.new(KEY.encode(), leak["value"].encode(), hashlib.sha256).hexdigest()[:16]


def test_without_the_key_a_random_one_is_used():
    runs = [audit("--policy", str(POLICY), "--json", str(LEAKY[0]), key=False) for _ in range(2)]
    reports = [json.loads(r.stdout) for r in runs]
    assert all(r["hash_key"] == "ephemeral" for r in reports)
    samples = [{f["field"]: f["sample_hash"] for f in r["findings"]} for r in reports]
    assert samples[0]["attributes.app.customer_phone"] != samples[1]["attributes.app.customer_phone"]
    assert "random key" in audit("--policy", str(POLICY), str(LEAKY[0]), key=False).stdout


def test_a_clean_input_gives_no_findings():
    run = audit("--policy", str(POLICY), "--json", "--fail-on", "any", *map(str, CLEAN))
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["findings"] == [] and report["totals"] == {}
    assert report["items"] == {"traces": 40, "metrics": 0, "logs": 20}
    assert "no findings" in audit("--policy", str(POLICY), *map(str, CLEAN)).stdout


def test_fail_on_exit_code():
    run = audit("--policy", str(POLICY), "--fail-on", "secrets,card", *map(str, LEAKY))
    assert run.returncode == 3
    assert "github_token 1" in run.stderr and "credit_card 1" in run.stderr
    assert_no_planted_value(run.stdout, run.stderr)
    # Kinds that did not survive do not fail the gate.
    assert audit("--policy", str(POLICY), "--fail-on", "aws_access_key_id,slack_token", *map(str, LEAKY)).returncode == 0
    bad = audit("--policy", str(POLICY), "--fail-on", "emails", str(LEAKY[0]))
    assert bad.returncode == 2 and "unknown kind" in bad.stderr


def test_inputs_it_cannot_read(tmp_path):
    bare = tmp_path / "capture.bin"
    bare.write_bytes((DATA / "metrics-leaky.pb").read_bytes())
    run = audit("--policy", str(POLICY), str(bare))
    assert run.returncode == 2 and "--signal" in run.stderr
    assert audit("--policy", str(POLICY), "--signal", "metrics", str(bare)).returncode == 0
    junk = tmp_path / "junk.json"
    junk.write_text('{"resourceSpans": [{"scopeSpans": 7}]}\n')
    run = audit("--policy", str(POLICY), str(junk))
    assert run.returncode == 2 and "7" not in run.stderr.replace(str(junk), "")
    assert audit("--policy", str(POLICY), str(tmp_path / "missing.json")).returncode == 1


def test_stdin_and_gzip_of_json_lines(tmp_path):
    lines = gzip.decompress((DATA / "traces-leaky.jsonl.gz").read_bytes())
    env = {**os.environ, "PYTHONPATH": str(ROOT / "proxy"), "REDACT_PROXY_HASH_KEY": KEY}
    run = subprocess.run([sys.executable, "-m", "redact_proxy", "audit", "--policy", str(POLICY), "--json"],
                         input=lines, capture_output=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["batches"] == 2


def test_progress_line_on_a_terminal(monkeypatch, capsys):
    """Big inputs on a terminal get a progress line on stderr: counts only."""
    import io

    from redact_proxy import cli

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    err = Terminal()
    monkeypatch.setenv("REDACT_PROXY_HASH_KEY", KEY)
    monkeypatch.setattr(cli, "AUDIT_PROGRESS_BYTES", 0)
    monkeypatch.setattr(sys, "stderr", err)
    assert cli.main(["audit", "--policy", str(POLICY), *map(str, LEAKY)]) == 0
    out = capsys.readouterr().out
    assert "\raudit: input 1/3, 1 requests" in err.getvalue()
    assert_no_planted_value(out, err.getvalue())
