"""settings.py: every serve option parsed and checked once; upstream from --upstream or
the OTel SDK environment (endpoint, protocol, headers, compression); every bad option is
reported together."""

from __future__ import annotations

from pathlib import Path

import pytest

from redact_proxy.errors import ConfigError
from redact_proxy.settings import (
    OPTIONS, Listen, Settings, Upstream, parse_duration, parse_listen, parse_upstream,
)

DEFAULTS = {o.dest: o.default for o in OPTIONS}


def values(**overrides) -> dict:
    return {**DEFAULTS, "policy": "policy.yaml", **overrides}


def config_errors(fn, *args) -> list[str]:
    with pytest.raises(ConfigError) as info:
        fn(*args)
    return info.value.errors


# --- durations --------------------------------------------------------------------------


@pytest.mark.parametrize("text, seconds", [
    ("500ms", 0.5), ("10s", 10.0), ("1m", 60.0), ("2h", 7200.0), ("1.5s", 1.5),
    ("10", 10.0), (" 3 s ", 3.0), ("0", 0.0), ("250 ms", 0.25),
])
def test_durations(text, seconds):
    assert parse_duration(text, "upstream-timeout") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "-1s", "1d", "1e3s", "ten", "1.s", "1 s s"])
def test_bad_durations(text):
    assert config_errors(parse_duration, text, "upstream-timeout") == [
        f"--upstream-timeout: invalid duration {text!r}; expected e.g. 500ms, 10s, 1m"
    ]


# --- listen addresses -------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("0.0.0.0:4317", Listen("0.0.0.0", 4317)),
    ("127.0.0.1:0", Listen("127.0.0.1", 0)),
    ("localhost:4318", Listen("localhost", 4318)),
    (":8890", Listen("0.0.0.0", 8890)),
    ("[::1]:4317", Listen("::1", 4317)),
    ("[::]:4318", Listen("::", 4318)),
    ("off", None),
    ("OFF", None),
    (" off ", None),
])
def test_listen(text, expected):
    assert parse_listen(text, "grpc-listen") == expected


@pytest.mark.parametrize("text", ["4317", "host:", "host:65536", "host:-1", "host:http", ""])
def test_bad_listen(text):
    assert config_errors(parse_listen, text, "grpc-listen") == [
        f"--grpc-listen: invalid address {text!r}; expected HOST:PORT or off"
    ]


def test_listen_str_brackets_ipv6():
    assert str(Listen("::1", 4317)) == "[::1]:4317"
    assert str(Listen("0.0.0.0", 4318)) == "0.0.0.0:4318"


# --- upstream ---------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("debug", Upstream("debug")),
    ("grpc://collector:4317", Upstream("grpc", "collector:4317")),
    ("grpcs://collector:443", Upstream("grpc", "collector:443", tls=True)),
    ("GRPC://collector:4317", Upstream("grpc", "collector:4317")),
    ("grpc://[::1]:4317", Upstream("grpc", "[::1]:4317")),
    ("http://collector:4318", Upstream("http", "http://collector:4318")),
    ("http://collector:4318/", Upstream("http", "http://collector:4318")),
    ("https://collector", Upstream("http", "https://collector", tls=True)),
    ("http://[::1]:4318", Upstream("http", "http://[::1]:4318")),
    ("file:/var/lib/out.jsonl", Upstream("file", "/var/lib/out.jsonl")),
    ("file:///var/lib/out.jsonl", Upstream("file", "/var/lib/out.jsonl")),
    ("file:out.jsonl", Upstream("file", "out.jsonl")),
])
def test_upstream(text, expected):
    assert parse_upstream(text, {}) == expected


@pytest.mark.parametrize("text, error", [
    ("grpc://collector", "--upstream: grpc:// needs HOST:PORT, e.g. grpc://collector:4317"),
    ("grpcs://:443", "--upstream: grpcs:// needs HOST:PORT, e.g. grpc://collector:4317"),
    ("http://:4318", "--upstream: http:// needs a host, e.g. http://collector:4318"),
    ("file:", "--upstream: file: needs a path, e.g. file:/var/lib/redact/out.jsonl"),
    ("ftp://collector:21", "--upstream: expected grpc://H:P, grpcs://H:P, http://H:P, https://H:P, file:PATH or debug"),
    ("collector:4317", "--upstream: expected grpc://H:P, grpcs://H:P, http://H:P, https://H:P, file:PATH or debug"),
])
def test_bad_upstream(text, error):
    assert config_errors(parse_upstream, text, {}) == [error]


@pytest.mark.parametrize("text", [
    "grpc://collector:99999", "grpc://collector:port", "http://collector:99999",
    "https://collector:abc", "grpc://[::1:4317",
])
def test_bad_upstream_port_is_a_config_error_not_a_crash(text):
    # urlsplit().port raises ValueError; it must surface as a collected ConfigError.
    errors = config_errors(parse_upstream, text, {})
    assert len(errors) == 1 and errors[0].startswith("--upstream: ")


def test_upstream_from_otel_endpoint():
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}
    assert parse_upstream(None, env) == Upstream("http", "http://collector:4318")
    assert parse_upstream(None, {}) == Upstream("debug")
    assert parse_upstream(None, {"OTEL_EXPORTER_OTLP_ENDPOINT": ""}) == Upstream("debug")


@pytest.mark.parametrize("endpoint, protocol, expected", [
    ("http://collector:4317", "grpc", Upstream("grpc", "collector:4317")),
    ("https://collector:4317", "grpc", Upstream("grpc", "collector:4317", tls=True)),
    ("https://collector:4317", " GRPC ", Upstream("grpc", "collector:4317", tls=True)),
    ("http://collector:4318", "http/protobuf", Upstream("http", "http://collector:4318")),
    ("grpc://collector:4317", "http/protobuf", Upstream("grpc", "collector:4317")),
])
def test_otel_protocol_decides_what_an_http_endpoint_speaks(endpoint, protocol, expected):
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": protocol}
    assert parse_upstream(None, env) == expected


def test_otel_protocol_does_not_override_an_explicit_upstream():
    env = {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    assert parse_upstream("http://collector:4318", env) == Upstream("http", "http://collector:4318")


def test_otel_headers_and_compression_apply_to_network_upstreams():
    env = {
        "OTEL_EXPORTER_OTLP_HEADERS": "Api-Key=a%20b%3Dc, x-tenant = t1 ,,authorization=Basic%20dXNlcjpwdw==",
        "OTEL_EXPORTER_OTLP_COMPRESSION": " GZIP ",
    }
    headers = (("api-key", "a b=c"), ("x-tenant", "t1"), ("authorization", "Basic dXNlcjpwdw=="))
    assert parse_upstream("grpc://c:4317", env) == Upstream("grpc", "c:4317", False, headers, "gzip")
    assert parse_upstream("https://c", env) == Upstream("http", "https://c", True, headers, "gzip")


@pytest.mark.parametrize("compression", ["none", "NONE", ""])
def test_no_compression(compression):
    up = parse_upstream("grpc://c:1", {"OTEL_EXPORTER_OTLP_COMPRESSION": compression})
    assert up.compression is None


def test_bad_otel_headers_and_compression():
    assert config_errors(parse_upstream, "grpc://c:1", {"OTEL_EXPORTER_OTLP_HEADERS": "novalue"}) == [
        "OTEL_EXPORTER_OTLP_HEADERS: expected key=value pairs separated by commas"
    ]
    assert config_errors(parse_upstream, "grpc://c:1", {"OTEL_EXPORTER_OTLP_HEADERS": "=v"}) == [
        "OTEL_EXPORTER_OTLP_HEADERS: expected key=value pairs separated by commas"
    ]
    assert config_errors(parse_upstream, "grpc://c:1", {"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}) == [
        "OTEL_EXPORTER_OTLP_COMPRESSION: unsupported 'zstd'; expected gzip or none"
    ]


def test_describe_never_shows_credentials_or_paths():
    up = Upstream("http", "https://user:pw@collector:4318/base", tls=True, headers=(("authorization", "x"),))
    assert up.describe() == "https://collector:4318"
    assert Upstream("grpc", "collector:4317", tls=True).describe() == "grpcs://collector:4317"
    assert Upstream("grpc", "collector:4317").describe() == "grpc://collector:4317"
    assert Upstream("debug").describe() == "debug"
    assert Upstream("file", "/tmp/o.jsonl").describe() == "file:/tmp/o.jsonl"


# --- Settings.resolve -------------------------------------------------------------------


def test_defaults():
    s = Settings.resolve(values(), environ={})
    assert s.policy == Path("policy.yaml")
    assert s.grpc_listen == Listen("0.0.0.0", 4317)
    assert s.http_listen == Listen("0.0.0.0", 4318)
    assert s.admin_listen == Listen("0.0.0.0", 8890)
    assert s.upstream == Upstream("debug")
    assert (s.workers, s.max_request_bytes, s.max_inflight) == (1, 16 * 1024 * 1024, 64)
    assert (s.upstream_timeout, s.shutdown_grace) == (10.0, 10.0)
    assert (s.log_format, s.log_level, s.auth_token) == ("text", "info", None)
    assert s.max_inflight_bytes == 256 * 1024 * 1024
    assert (s.queue_dir, s.queue_max_bytes) == (None, 1024 * 1024 * 1024)


def test_every_option_has_its_env_name():
    assert {o.env for o in OPTIONS} >= {
        "REDACT_PROXY_POLICY", "REDACT_PROXY_UPSTREAM", "REDACT_PROXY_GRPC_LISTEN",
        "REDACT_PROXY_HTTP_LISTEN", "REDACT_PROXY_ADMIN_LISTEN", "REDACT_PROXY_MAX_REQUEST_BYTES",
        "REDACT_PROXY_UPSTREAM_TIMEOUT", "REDACT_PROXY_AUTH_TOKEN_FILE", "REDACT_PROXY_LOG_FORMAT",
    }


def test_resolve_reads_upstream_from_the_given_environment():
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    assert Settings.resolve(values(), environ=env).upstream == Upstream("grpc", "c:4317", tls=True)
    assert Settings.resolve(values(upstream="http://x:1"), environ=env).upstream == Upstream("http", "http://x:1")


def test_one_receiver_off_is_fine_both_off_is_not():
    s = Settings.resolve(values(grpc_listen="off", admin_listen="off"), environ={})
    assert (s.grpc_listen, s.admin_listen, s.http_listen) == (None, None, Listen("0.0.0.0", 4318))
    assert config_errors(Settings.resolve, values(grpc_listen="off", http_listen="OFF"), {}) == [
        "both receivers are off: nothing would be received"
    ]


def test_every_bad_option_is_reported_at_once():
    errors = config_errors(Settings.resolve, values(
        policy=None, grpc_listen="nowhere", workers="0", max_request_bytes="big",
        max_inflight="-3", upstream_timeout="soon", upstream="ftp://x", log_format="xml",
        log_level="LOUD", tls_cert="/no/such/cert.pem",
    ), {})
    assert errors == [
        "--policy is required (or REDACT_PROXY_POLICY)",
        "--grpc-listen: invalid address 'nowhere'; expected HOST:PORT or off",
        "--upstream: expected grpc://H:P, grpcs://H:P, http://H:P, https://H:P, file:PATH or debug",
        "--workers: expected a positive integer, got '0'",
        "--max-request-bytes: expected a positive integer, got 'big'",
        "--max-inflight: expected a positive integer, got '-3'",
        "--upstream-timeout: invalid duration 'soon'; expected e.g. 500ms, 10s, 1m",
        "--tls-cert: no such file: /no/such/cert.pem",
        "--tls-cert and --tls-key go together",
        "--log-format: expected text or json, got 'xml'",
        "--log-level: expected debug, info, warning or error, got 'loud'",
    ]


def test_otel_environment_errors_are_collected_too():
    errors = config_errors(Settings.resolve, values(workers="x"), {"OTEL_EXPORTER_OTLP_COMPRESSION": "br"})
    assert errors == [
        "--workers: expected a positive integer, got 'x'",
        "OTEL_EXPORTER_OTLP_COMPRESSION: unsupported 'br'; expected gzip or none",
    ]


def test_tls_files(tmp_path):
    cert, key, ca = (tmp_path / n for n in ("cert.pem", "key.pem", "ca.pem"))
    for p in (cert, key, ca):
        p.write_text("pem")
    s = Settings.resolve(values(tls_cert=str(cert), tls_key=str(key), tls_client_ca=str(ca),
                                upstream_ca=str(ca), upstream_cert=str(cert), upstream_key=str(key)), {})
    assert (s.tls_cert, s.tls_key, s.tls_client_ca) == (cert, key, ca)
    assert (s.upstream_ca, s.upstream_cert, s.upstream_key) == (ca, cert, key)
    assert config_errors(Settings.resolve, values(tls_client_ca=str(ca)), {}) == [
        "--tls-client-ca needs --tls-cert/--tls-key (mTLS is TLS first)"
    ]
    assert config_errors(Settings.resolve, values(upstream_key=str(key)), {}) == [
        "--upstream-cert and --upstream-key go together"
    ]


def test_auth_token_file(tmp_path):
    token = tmp_path / "token"
    token.write_text("  s3cret-token\n")
    s = Settings.resolve(values(auth_token_file=str(token)), {})
    assert s.auth_token == "s3cret-token"
    assert "s3cret-token" not in repr(s)
    token.write_text("\n")
    assert config_errors(Settings.resolve, values(auth_token_file=str(token)), {}) == [
        f"--auth-token-file: {token} is empty"
    ]
    missing = tmp_path / "missing"
    assert config_errors(Settings.resolve, values(auth_token_file=str(missing)), {}) == [
        f"--auth-token-file: cannot read {missing}: No such file or directory"
    ]


def test_bad_upstream_port_is_collected_with_the_other_errors():
    errors = config_errors(Settings.resolve, values(upstream="grpc://collector:99999", workers="0"), {})
    assert len(errors) == 2
    assert errors[0].startswith("--upstream: ")
    assert errors[1] == "--workers: expected a positive integer, got '0'"


def test_inflight_bytes_must_hold_one_request():
    assert config_errors(Settings.resolve, values(max_request_bytes="1000", max_inflight_bytes="999"), {}) == [
        "--max-inflight-bytes (999) must be at least --max-request-bytes (1000)"
    ]
    s = Settings.resolve(values(max_request_bytes="1000", max_inflight_bytes="1000"), {})
    assert (s.max_request_bytes, s.max_inflight_bytes) == (1000, 1000)


def test_queue_dir_is_per_worker(tmp_path):
    assert Settings.resolve(values(queue_dir=str(tmp_path)), {}).queue_dir == tmp_path / "worker-0"
    s = Settings.resolve(values(queue_dir=str(tmp_path)), {"REDACT_PROXY_WORKER": "3"})
    assert s.queue_dir == tmp_path / "worker-3"


def test_queue_max_bytes_has_a_floor():
    assert config_errors(Settings.resolve, values(queue_max_bytes="1024"), {}) == [
        "--queue-max-bytes: expected at least 65536, got 1024"
    ]
    assert Settings.resolve(values(queue_max_bytes="65536"), {}).queue_max_bytes == 65536


# --- the table and the process model ------------------------------------------------------


@pytest.mark.parametrize("option", [o for o in OPTIONS if o.unit], ids=lambda o: o.flag)
def test_every_option_with_a_unit_parses_its_default_to_a_number_in_that_unit(option):
    s = Settings.resolve(values(), environ={})
    value = getattr(s, option.attr or option.dest)
    assert isinstance(value, float if option.unit == "seconds" else int)
    assert value == option.parse(option.default, option.name, {})


def test_the_process_model_is_resolved_once():
    alone = Settings.resolve(values(), environ={})
    assert (alone.worker_index, alone.reuse_port) == (None, False)
    worker = Settings.resolve(values(), environ={"REDACT_PROXY_WORKER": "2"})
    assert (worker.worker_index, worker.reuse_port) == (2, True)
    assert config_errors(Settings.resolve, values(), {"REDACT_PROXY_WORKER": "two"}) == [
        "REDACT_PROXY_WORKER: expected a worker index, got 'two'"
    ]


def test_unknown_redact_proxy_variables_are_named_for_a_warning():
    env = {"REDACT_PROXY_UPSTRAEM": "grpc://x:1", "REDACT_PROXY_MAX_INFLIGHT": "8", "REDACT_PROXY_WORKER": "0",
           "REDACT_PROXY_HASH_KEY": "k" * 32, "REDACT_PROXY_TIMEOUT": "1s", "OTHER_THING": "1"}
    assert Settings.resolve(values(), environ=env).unknown_env == ("REDACT_PROXY_TIMEOUT", "REDACT_PROXY_UPSTRAEM")
    assert Settings.resolve(values(), environ={}).unknown_env == ()
