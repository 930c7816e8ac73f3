"""The deploy/ stack as local processes: redact-proxy in front of the real collector,
Jaeger v2, Prometheus, Alertmanager and node-exporter, all on 127.0.0.1.

Strategy: the configs are the files in deploy/, loaded and changed only where a
local run must differ from compose: listen addresses and ports (free loopback
ports instead of service names), Prometheus' intervals (seconds instead of 15s,
so an alert fires within a test), a file exporter added to every collector
pipeline as a tap (proof of what the collector received), and the alert
receivers' far ends (loopback sinks, see sinks.py). Every change goes through
`_set`, which refuses a path that does not exist: when a deploy file changes shape,
this harness fails loudly instead of silently testing something else.

Each process logs to <workdir>/logs/<name>.log; start-up waits are bounded and a
failure names the process and shows the end of its log.

Developer entry point:

    python -m tests.e2e.stack up [--standard-ports] [--workdir DIR]

starts everything, prints the URLs and runs until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable

import yaml

from . import tools
from .sinks import Sinks

PORT_NAMES = (
    "proxy_grpc", "proxy_http", "proxy_admin",
    "collector_grpc", "collector_http", "collector_telemetry", "collector_metrics", "collector_health",
    "jaeger_grpc", "jaeger_http", "jaeger_query", "jaeger_query_grpc", "jaeger_telemetry", "jaeger_health",
    "prometheus", "alertmanager", "node_exporter", "railgun_api", "sink_http", "sink_smtp",
)
# The ports an operator of the compose stack knows (issue 3), for `up --standard-ports`.
STANDARD_PORTS = {
    "proxy_grpc": 4317, "proxy_http": 4318, "proxy_admin": 8890, "collector_telemetry": 8888,
    "jaeger_query": 16686, "prometheus": 9090, "alertmanager": 9093,
}
# Where Alertmanager's receivers deliver in a local run.
ALERT_ENV = {
    "SMTP_FROM": "alertmanager@e2e.invalid",
    "SMTP_USER": "",
    "SMTP_PASSWORD": "",
    "SMTP_REQUIRE_TLS": "false",
    "PLATFORM_TEAM_EMAIL": "platform@e2e.invalid",
    "SECURITY_TEAM_EMAIL": "security@e2e.invalid",
    "SLACK_CHANNEL": "#e2e-alerts",
    "SLACK_INFO_CHANNEL": "#e2e-alerts-info",
    "PAGERDUTY_SERVICE_KEY": "e2e-routing-key",
}
START_TIMEOUT = 90.0  # seconds, per process; first starts on a busy 2-core machine are slow


class StackError(RuntimeError):
    """A process of the stack failed to start or a wait ran out; the message says which."""


def free_ports(names, fixed: dict[str, int] | None = None) -> dict[str, int]:
    """Distinct free loopback ports (held open together so none is handed out twice)."""
    fixed = dict(fixed or {})
    socks = []
    try:
        out = {}
        for name in names:
            if name in fixed:
                out[name] = fixed[name]
                continue
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            out[name] = s.getsockname()[1]
        return out
    finally:
        for s in socks:
            s.close()


def _set(cfg: Any, path: list, value: Any) -> None:
    """cfg[path...] = value, where every step of path must already exist."""
    node = cfg
    for i, step in enumerate(path[:-1]):
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError) as exc:
            raise StackError(f"deploy config changed: {'.'.join(map(str, path[:i + 1]))} is missing; "
                             "update tests/e2e/stack.py") from exc
    if path[-1] not in node:
        raise StackError(f"deploy config changed: {'.'.join(map(str, path))} is missing; update tests/e2e/stack.py")
    node[path[-1]] = value


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def get_json(url: str, timeout: float = 10.0) -> Any:
    status, body = http_get(url, timeout)
    if status != 200:
        raise StackError(f"GET {url} answered {status}: {body[:500]!r}")
    return json.loads(body)


class Process:
    def __init__(self, name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None):
        self.name, self.argv, self.env, self.cwd = name, argv, env, cwd
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            log.write(f"\n$ {' '.join(self.argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          env=self.env, cwd=self.cwd, start_new_session=True)

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (graceful), then SIGKILL after `timeout`; only this process."""
        if not self.alive():
            return
        assert self.popen is not None
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(10)

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


class Stack:
    def __init__(self, workdir: Path, *, ports: dict[str, int] | None = None, scrape_interval: str = "2s",
                 hash_key: str | None = None):
        self.workdir = Path(workdir)
        self.logs = self.workdir / "logs"
        self.ports = free_ports(PORT_NAMES, ports)
        self.scrape_interval = scrape_interval
        self.hash_key = hash_key or secrets.token_hex(32)
        self.tap = self.workdir / "collector-tap.jsonl"
        self.procs: dict[str, Process] = {}
        self.sinks: Sinks | None = None

    # ---------------------------------------------------------------- addresses
    def addr(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    def url(self, name: str) -> str:
        return f"http://{self.addr(name)}"

    def urls(self) -> dict[str, str]:
        return {
            "OTLP/gRPC (redact-proxy)": self.addr("proxy_grpc"),
            "OTLP/HTTP (redact-proxy)": self.url("proxy_http"),
            "redact-proxy admin": f"{self.url('proxy_admin')}/metrics  /healthz  /readyz",
            "Jaeger UI / query API": self.url("jaeger_query"),
            "Prometheus": self.url("prometheus"),
            "Alertmanager": self.url("alertmanager"),
            "Collector telemetry": f"{self.url('collector_telemetry')}/metrics",
            "Collector app metrics": f"{self.url('collector_metrics')}/metrics",
            "Alert sinks (Slack/PagerDuty, SMTP)": f"{self.url('sink_http')}  smtp://{self.addr('sink_smtp')}",
            "Logs": str(self.logs),
        }

    def hash(self, value: str) -> str:
        """What the doctrine's hmac-sha256 hash rules turn `value` into with this stack's key."""
        return hmac.new(self.hash_key.encode(), value.encode(), hashlib.sha256).hexdigest()

    # ---------------------------------------------------------------- configs from deploy/
    def _write(self, name: str, cfg: Any) -> Path:
        path = self.workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        return path

    def collector_config(self) -> Path:
        cfg = yaml.safe_load((tools.DEPLOY / "otel/config.yaml").read_text())
        _set(cfg, ["extensions", "health_check", "endpoint"], self.addr("collector_health"))
        _set(cfg, ["receivers", "otlp", "protocols", "grpc", "endpoint"], self.addr("collector_grpc"))
        _set(cfg, ["receivers", "otlp", "protocols", "http", "endpoint"], self.addr("collector_http"))
        _set(cfg, ["exporters", "otlp_grpc/jaeger", "endpoint"], self.addr("jaeger_grpc"))
        _set(cfg, ["exporters", "prometheus", "endpoint"], self.addr("collector_metrics"))
        reader = ["service", "telemetry", "metrics", "readers", 0, "pull", "exporter", "prometheus"]
        _set(cfg, [*reader, "host"], "127.0.0.1")
        _set(cfg, [*reader, "port"], self.ports["collector_telemetry"])
        # e2e only: a tap recording everything the collector received, after the proxy.
        cfg["exporters"]["file/e2e-tap"] = {"path": str(self.tap), "format": "json", "flush_interval": "200ms"}
        for pipeline in cfg["service"]["pipelines"].values():
            pipeline["exporters"].append("file/e2e-tap")
        return self._write("otel/config.yaml", cfg)

    def jaeger_config(self) -> Path:
        cfg = yaml.safe_load((tools.DEPLOY / "jaeger/config.yaml").read_text())
        _set(cfg, ["receivers", "otlp", "protocols", "grpc", "endpoint"], self.addr("jaeger_grpc"))
        _set(cfg, ["receivers", "otlp", "protocols", "http", "endpoint"], self.addr("jaeger_http"))
        _set(cfg, ["extensions", "jaeger_query", "http", "endpoint"], self.addr("jaeger_query"))
        _set(cfg, ["extensions", "jaeger_query", "grpc", "endpoint"], self.addr("jaeger_query_grpc"))
        _set(cfg, ["extensions", "healthcheckv2", "http", "endpoint"], self.addr("jaeger_health"))
        reader = ["service", "telemetry", "metrics", "readers", 0, "pull", "exporter", "prometheus"]
        _set(cfg, [*reader, "host"], "127.0.0.1")
        _set(cfg, [*reader, "port"], self.ports["jaeger_telemetry"])
        return self._write("jaeger/config.yaml", cfg)

    def prometheus_targets(self) -> dict[str, list[str]]:
        """Job -> targets; the jobs must be exactly deploy/prometheus/prometheus.yml's."""
        return {
            "prometheus": [self.addr("prometheus")],
            "redact-proxy": [self.addr("proxy_admin")],
            "otel-collector": [self.addr("collector_telemetry")],
            "otel-collector-exporter": [self.addr("collector_metrics")],
            "jaeger": [self.addr("jaeger_telemetry")],
            "alertmanager": [self.addr("alertmanager")],
            "node": [self.addr("node_exporter")],
            # The API servers are not part of this stack: nothing listens here (APIDown pends).
            "railgun-api": [self.addr("railgun_api")],
        }

    def prometheus_config(self) -> Path:
        cfg = yaml.safe_load((tools.DEPLOY / "prometheus/prometheus.yml").read_text())
        _set(cfg, ["global", "scrape_interval"], self.scrape_interval)
        _set(cfg, ["global", "evaluation_interval"], self.scrape_interval)
        _set(cfg, ["global", "scrape_timeout"], "1s")
        targets = self.prometheus_targets()
        jobs = {job["job_name"]: job for job in cfg["scrape_configs"]}
        if set(jobs) != set(targets):
            raise StackError(f"deploy/prometheus/prometheus.yml jobs {sorted(jobs)} != harness jobs "
                             f"{sorted(targets)}; update tests/e2e/stack.py")
        for name, job in jobs.items():
            _set(job, ["static_configs", 0, "targets"], targets[name])
        _set(cfg, ["alerting", "alertmanagers", 0, "static_configs", 0, "targets"], [self.addr("alertmanager")])
        out = self._write("prometheus/prometheus.yml", cfg)
        for rule_file in cfg["rule_files"]:
            (out.parent / rule_file).write_text((tools.DEPLOY / "prometheus" / rule_file).read_text())
        return out

    def alertmanager_env(self) -> dict[str, str]:
        return {
            **ALERT_ENV,
            "SMTP_HOST": self.addr("sink_smtp"),
            "SLACK_WEBHOOK_URL": f"{self.url('sink_http')}/slack",
            "PAGERDUTY_URL": f"{self.url('sink_http')}/pagerduty",
        }

    def alertmanager_config(self) -> Path:
        """Rendered by the same render-config.sh the compose service runs."""
        out = self.workdir / "alertmanager/alertmanager.yml"
        out.parent.mkdir(parents=True, exist_ok=True)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **self.alertmanager_env()}
        proc = subprocess.run(["sh", str(tools.DEPLOY / "alertmanager/render-config.sh"),
                               str(tools.DEPLOY / "alertmanager/alertmanager.yml"), str(out)],
                              env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise StackError(f"render-config.sh failed: {proc.stderr}")
        return out

    def proxy_argv(self) -> list[str]:
        """The compose service's command, with loopback addresses and host paths."""
        compose = yaml.safe_load((tools.DEPLOY / "docker-compose.yml").read_text())
        svc = compose["services"]["redact-proxy"]
        mounts = {}
        for volume in svc.get("volumes", []):
            source, target = volume.split(":")[:2]
            mounts[target] = (tools.DEPLOY / source).resolve()
        replace = {
            "--grpc-listen": self.addr("proxy_grpc"),
            "--http-listen": self.addr("proxy_http"),
            "--admin-listen": self.addr("proxy_admin"),
            "--upstream": f"grpc://{self.addr('collector_grpc')}",
        }
        argv, seen = [tools.redact_proxy()], set()
        for arg in svc["command"]:
            option, eq, value = arg.partition("=")
            if option in replace:
                arg = f"{option}={replace[option]}"
                seen.add(option)
            elif option == "--policy":
                container_dir = str(Path(value).parent)
                if container_dir not in mounts:
                    raise StackError(f"compose --policy {value} is not under a mounted volume")
                arg = f"--policy={mounts[container_dir] / Path(value).name}"
                seen.add(option)
            argv.append(arg)
        missing = ({*replace, "--policy"} - seen)
        if missing:
            raise StackError(f"deploy/docker-compose.yml redact-proxy command lacks {sorted(missing)}")
        return argv

    # ---------------------------------------------------------------- processes
    def _proc(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Process:
        proc = Process(name, argv, self.logs, env={**os.environ, **(env or {})}, cwd=self.workdir)
        self.procs[name] = proc
        proc.start()
        return proc

    def wait_http(self, name: str, url: str, timeout: float = START_TIMEOUT) -> None:
        """Until `url` answers 200, while process `name` stays alive."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            proc = self.procs.get(name)
            if proc is not None and not proc.alive():
                raise StackError(f"{name} exited with {proc.popen.returncode} while starting:\n{proc.tail()}")
            try:
                status, body = http_get(url, timeout=2)
                if status == 200:
                    return
                last = f"{status} {body[:200]!r}"
            except (OSError, urllib.error.URLError) as exc:
                last = str(exc)
            time.sleep(0.25)
        tail = self.procs[name].tail() if name in self.procs else ""
        raise StackError(f"{name} not ready at {url} after {timeout:.0f}s (last: {last}):\n{tail}")

    def start_proxy(self) -> None:
        self._proc("redact-proxy", self.proxy_argv(), env={"REDACT_PROXY_HASH_KEY": self.hash_key})
        self.wait_http("redact-proxy", f"{self.url('proxy_admin')}/readyz")

    def stop_proxy(self) -> None:
        proc = self.procs.get("redact-proxy")
        if proc:
            proc.stop()

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        try:
            self.sinks = Sinks(self.ports["sink_http"], self.ports["sink_smtp"])
            self.sinks.start()
            self._proc("jaeger", [tools.jaeger(), f"--config={self.jaeger_config()}"])
            self._proc("otel-collector", [tools.otelcol(), f"--config={self.collector_config()}"])
            self._proc("node-exporter", [
                tools.system("prometheus-node-exporter"), f"--web.listen-address={self.addr('node_exporter')}",
                "--collector.disable-defaults", "--collector.cpu", "--collector.meminfo",
                "--collector.filesystem", "--collector.loadavg"])
            self._proc("alertmanager", [
                tools.system("prometheus-alertmanager"), f"--config.file={self.alertmanager_config()}",
                f"--storage.path={self.workdir / 'alertmanager/data'}",
                f"--web.listen-address={self.addr('alertmanager')}", "--cluster.listen-address="])
            self._proc("prometheus", [
                tools.system("prometheus"), f"--config.file={self.prometheus_config()}",
                f"--storage.tsdb.path={self.workdir / 'prometheus/data'}",
                f"--web.listen-address={self.addr('prometheus')}"])
            self.wait_http("jaeger", f"{self.url('jaeger_query')}/api/services")
            self.wait_http("otel-collector", f"{self.url('collector_health')}/")
            self.wait_http("node-exporter", f"{self.url('node_exporter')}/metrics")
            self.wait_http("alertmanager", f"{self.url('alertmanager')}/-/ready")
            self.wait_http("prometheus", f"{self.url('prometheus')}/-/ready")
            self.start_proxy()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for name in reversed(list(self.procs)):  # proxy first, backends last
            with contextlib.suppress(Exception):
                self.procs[name].stop()
        if self.sinks:
            with contextlib.suppress(Exception):
                self.sinks.stop()
            self.sinks = None

    def log_tails(self, lines: int = 40) -> str:
        return "\n\n".join(f"===== {name} ({p.log_path}) =====\n{p.tail(lines)}" for name, p in self.procs.items())

    # ---------------------------------------------------------------- reading the backends
    def wait_for(self, what: str, fn: Callable[[], Any], timeout: float = 60.0, interval: float = 1.0) -> Any:
        """Poll fn() until it returns something truthy; a StackError naming `what` otherwise."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            try:
                last = fn()
                if last:
                    return last
            except (StackError, OSError, ValueError) as exc:
                last = exc
            if time.monotonic() >= deadline:
                raise StackError(f"timed out after {timeout:.0f}s waiting for {what}; last result: {last!r}")
            time.sleep(interval)

    def prom_query(self, expr: str) -> list[dict]:
        q = urllib.parse.urlencode({"query": expr})
        answer = get_json(f"{self.url('prometheus')}/api/v1/query?{q}")
        if answer.get("status") != "success":
            raise StackError(f"query {expr!r}: {answer}")
        return answer["data"]["result"]

    def jaeger_trace(self, trace_id: str) -> dict | None:
        status, body = http_get(f"{self.url('jaeger_query')}/api/traces/{trace_id}")
        if status == 404:
            return None
        if status != 200:
            raise StackError(f"Jaeger /api/traces/{trace_id} answered {status}: {body[:300]!r}")
        data = json.loads(body).get("data") or []
        return data[0] if data else None


# ---------------------------------------------------------------- CLI

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.e2e.stack",
                                 description="Run the deploy/ stack as local processes (no Docker).")
    sub = ap.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the stack, print its URLs, run until Ctrl-C")
    up.add_argument("--workdir", type=Path, help="configs, data and logs (default: a new temp dir)")
    up.add_argument("--standard-ports", action="store_true",
                    help="use the compose stack's ports (4317, 4318, 8890, 9090, 9093, 16686, 8888)")
    up.add_argument("--scrape-interval", default="5s")
    args = ap.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="redact-proxy-stack-"))
    key = os.environ.get("REDACT_PROXY_HASH_KEY")
    stack = Stack(workdir, ports=STANDARD_PORTS if args.standard_ports else None,
                  scrape_interval=args.scrape_interval, hash_key=key)
    stop = {"now": False}

    def on_signal(signum, frame):
        stop["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        stack.start()
    except (StackError, tools.ToolMissing) as exc:
        print(f"stack failed to start: {exc}", file=sys.stderr)
        return 1
    width = max(map(len, stack.urls()))
    print("Stack is up (Ctrl-C stops it):")
    for name, url in stack.urls().items():
        print(f"  {name:<{width}}  {url}")
    print(f"\nSend telemetry: OTEL_EXPORTER_OTLP_ENDPOINT={stack.url('proxy_http')} "
          f"(or grpc {stack.addr('proxy_grpc')})")
    if not key:
        print("Hash key: a random one for this run (set REDACT_PROXY_HASH_KEY to choose it)")
    sys.stdout.flush()
    try:
        while not stop["now"]:
            for name, proc in stack.procs.items():
                if not proc.alive():
                    print(f"{name} exited ({proc.popen.returncode}):\n{proc.tail()}", file=sys.stderr)
                    stop["now"] = True
                    break
            time.sleep(0.5)
    finally:
        print("stopping...")
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
