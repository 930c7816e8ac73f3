"""deploy/docker-compose.yml, Dockerfile and .dockerignore, validated offline.

No Docker engine runs here, so the compose file is resolved by docker-compose's own
`config` (compose-go, the code `docker compose up` runs first) and checked against
the compose-spec JSON schema; the Dockerfile is linted by hadolint and its
contract (pinned base, non-root, HEALTHCHECK, entrypoint, build context) is read
off the file.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

from deploy_helpers import (
    DEPLOY, REPO, clean_env, compose_model, read_versions, run, run_ok, tool,
)

COMPOSE = DEPLOY / "docker-compose.yml"

# What an operator of this stack expects on the host (issue 3).
EXPECTED_PUBLISHED = {
    "redact-proxy": {4317: 4317, 4318: 4318, 8890: 8890},
    "prometheus": {9090: 9090},
    "grafana": {3030: 3000},
    "jaeger": {16686: 16686},
    "alertmanager": {9093: 9093},
    "otel-collector": {8888: 8888},
}
SECRET_VARIABLES = {
    "REDACT_PROXY_HASH_KEY", "GRAFANA_ADMIN_PASSWORD", "SMTP_PASSWORD",
    "SLACK_WEBHOOK_URL", "PAGERDUTY_SERVICE_KEY",
}


def published(service: dict) -> dict[int, int]:
    return {int(p["published"]): int(p["target"]) for p in service.get("ports", [])}


def test_compose_config_resolves():
    """docker-compose's own parser and interpolation accept the file (exit code, not wrapper)."""
    run_ok([tool("docker-compose"), "--project-directory", str(DEPLOY), "-f", str(COMPOSE),
            "--env-file", str(DEPLOY / ".env.example"), "config", "--quiet"], env=clean_env())


def test_compose_refuses_to_start_without_secrets():
    proc = run([tool("docker-compose"), "--project-directory", str(DEPLOY), "-f", str(COMPOSE),
                "--env-file", "/dev/null", "config", "--quiet"], env=clean_env())
    assert proc.returncode != 0, "compose accepted the stack with no secrets set"
    assert "required variable" in proc.stdout, proc.stdout


def test_compose_matches_compose_spec_schema():
    run_ok([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)])


def test_compose_services_and_published_ports():
    services = compose_model()["services"]
    assert set(EXPECTED_PUBLISHED) <= set(services), sorted(services)
    for name, ports in EXPECTED_PUBLISHED.items():
        assert published(services[name]) == ports, (name, services[name].get("ports"))
    # The collector receives only from the proxy: its OTLP ports are not on the host.
    assert not {4317, 4318} & set(published(services["otel-collector"])), "collector OTLP is published"
    for name in ("jaeger", "prometheus", "alertmanager", "grafana", "node-exporter"):
        assert not {4317, 4318} & set(published(services[name])), f"{name} publishes OTLP"


def test_compose_network_isolation():
    """redact-proxy and the collector share only the internal ingest network."""
    model = compose_model()
    assert model["networks"]["ingest"].get("internal") is True
    nets = {name: set(svc.get("networks", {})) for name, svc in model["services"].items()}
    assert nets["redact-proxy"] == {"edge", "ingest"}
    assert "ingest" in nets["otel-collector"]
    assert "edge" not in nets["otel-collector"]
    on_ingest = {name for name, n in nets.items() if "ingest" in n}
    assert on_ingest == {"redact-proxy", "otel-collector", "prometheus"}, on_ingest


def test_compose_images_are_pinned_to_the_tested_versions():
    services = compose_model()["services"]
    versions = read_versions()
    assert services["otel-collector"]["image"] == \
        f"otel/opentelemetry-collector-contrib:{versions['COLLECTOR_VERSION']}"
    assert services["jaeger"]["image"] == f"jaegertracing/jaeger:{versions['JAEGER_VERSION']}"
    for name, svc in services.items():
        if name == "redact-proxy":
            assert svc["build"]["dockerfile"] == "Dockerfile"
            assert Path(svc["build"]["context"]) == REPO
            continue
        image = svc["image"]
        assert ":" in image and not image.endswith((":latest", ":main")), f"{name}: unpinned {image}"


def test_compose_proxy_wiring():
    """The proxy's command follows SPEC section 3 and points at the collector's receiver."""
    services = compose_model()["services"]
    command = services["redact-proxy"]["command"]
    assert command[0] == "serve"
    opts = dict(arg.split("=", 1) for arg in command[1:])
    assert opts["--upstream"] == "grpc://otel-collector:4317"
    assert opts["--admin-listen"].endswith(":8890")
    assert opts["--grpc-listen"].endswith(":4317") and opts["--http-listen"].endswith(":4318")
    policy = opts["--policy"]
    mounts = {v["target"]: Path(v["source"]) for v in services["redact-proxy"]["volumes"]}
    host_dir = mounts[str(Path(policy).parent)]
    assert (host_dir / Path(policy).name).is_file(), f"{policy} is not a file of the mounted {host_dir}"
    collector_cfg = yaml.safe_load((DEPLOY / "otel/config.yaml").read_text())
    assert collector_cfg["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317")


def test_compose_bind_mounts_exist():
    for name, svc in compose_model()["services"].items():
        for volume in svc.get("volumes", []):
            if volume["type"] != "bind" or volume["source"] == "/":
                continue
            assert Path(volume["source"]).exists(), f"{name}: missing {volume['source']}"
            assert volume.get("read_only"), f"{name}: {volume['source']} mounted writable"


def test_compose_hardening():
    for name, svc in compose_model()["services"].items():
        assert svc.get("read_only") is True, f"{name} has a writable root filesystem"
        assert "ALL" in svc.get("cap_drop", []), f"{name} keeps capabilities"
        assert "no-new-privileges:true" in svc.get("security_opt", []), name


def test_compose_secrets_come_only_from_the_environment():
    """Secret values are interpolated (${VAR}), never written into the compose file."""
    raw = yaml.safe_load(COMPOSE.read_text())
    seen = set()
    for svc in raw["services"].values():
        for key, value in (svc.get("environment") or {}).items():
            names = set(re.findall(r"\$\{([A-Z0-9_]+)", str(value)))
            if names & SECRET_VARIABLES or key in SECRET_VARIABLES:
                assert str(value).startswith("${"), f"{key} is not from the environment: {value}"
                seen |= names & SECRET_VARIABLES
    assert seen == SECRET_VARIABLES, SECRET_VARIABLES - seen
    ignored = (DEPLOY / ".gitignore").read_text().split()
    assert ".env" in ignored


# ---------------------------------------------------------------- Dockerfile

def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def test_hadolint():
    run_ok([tool("hadolint"), "--failure-threshold", "info", str(REPO / "Dockerfile")])


def test_dockerfile_contract():
    instructions = dockerfile_instructions()
    args = dict(rest.split("=", 1) for op, rest in instructions if op == "ARG" and "=" in rest)
    froms = [rest.split()[0] for op, rest in instructions if op == "FROM"]
    bases = {args.get(f.strip("${}"), f) for f in froms}
    for base in bases:
        assert re.fullmatch(r"(python|rust):\d+\.\d+\.\d+-slim-[a-z]+", base), f"base image not pinned: {base}"
    final_stage = [i for i, (op, _) in enumerate(instructions) if op == "FROM"][-1]
    final = instructions[final_stage:]
    users = [rest for op, rest in final if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root"), "final stage runs as root"
    health = " ".join(rest for op, rest in final if op == "HEALTHCHECK")
    assert "/healthz" in health and "8890" in health, health
    entry = [rest for op, rest in final if op == "ENTRYPOINT"]
    assert entry and yaml.safe_load(entry[-1]) == ["redact-proxy"], entry
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert "redact-proxy" in scripts
    assert not any(op == "ADD" for op, _ in instructions), "use COPY"


def dockerignore_allows(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes."""
    allowed = True
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        candidates = [pattern, pattern.replace("**/", "")]
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(p, c) for p in prefixes for c in candidates):
            allowed = negate
    return allowed


def test_dockerfile_copy_sources_are_in_the_build_context():
    copies = [rest for op, rest in dockerfile_instructions() if op == "COPY" and "--from" not in rest]
    assert copies
    for rest in copies:
        sources = shlex.split(rest)[:-1]
        for src in sources:
            src = src.rstrip("/")
            assert (REPO / src).exists(), f"COPY {src}: not in the repository"
            assert dockerignore_allows(src), f"COPY {src}: excluded by .dockerignore"
    # and the context stays small: no venv, caches, tests or git history
    for path in (".venv", ".git", ".cache", "tests", "deploy", "benchmarks", "native/target"):
        assert not dockerignore_allows(path), f".dockerignore lets {path} into the build context"


@pytest.mark.parametrize("required", ["pyproject.toml", "README.md", "proxy", "policies", "native/core", "native/python",
                                      "native/Cargo.lock"])
def test_build_context_has_what_pip_install_needs(required):
    # README.md is pyproject's `readme`: setuptools fails the build without it.
    copied = " ".join(rest for op, rest in dockerfile_instructions() if op == "COPY")
    assert required in copied, f"Dockerfile does not COPY {required}"
