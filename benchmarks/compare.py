#!/usr/bin/env python3
"""redact-proxy beside the stock collector doing the same job, measured side by side in one run.

Systems under test, each a real process on 127.0.0.1 forwarding synchronously to the same
sink (a separate collector: otlp receiver -> debug exporter, not counted):

  (a)  redact-proxy, policies/doctrine.yaml, --workers 1        ("proxy-w1")
  (a2) redact-proxy, same policy, --workers 2 (scaling figure)  ("proxy-w2")
  (a3) redact-proxy, same policy, --workers 1 --scrub-threads 2 (threads vs workers;
       `traces` only)                                           ("proxy-t2")
  (a4) redact-proxy, same policy, --workers 1 --audit (shadow mode's cost; `traces`
       only)                                                    ("proxy-audit")
  (b)  collector + attributes processor: the doctrine's delete/hash keys and patterns
       (configs/attributes.yaml, generated from the policy)     ("collector-attributes")
  (b') the same with the exact keys only, no pattern: less work than the policy asks, a
       lower bound for (b); `traces` only              ("collector-attributes-keys")
  (c)  collector + redaction processor, hmac-sha256: the same keys and patterns as
       blocked_key_patterns, the doctrine's mask detectors as blocked_values
       (configs/redaction.yaml, generated from the policy)      ("collector-redaction")
  (d)  collector, no processor: the pass-through floor          ("collector-passthrough")
  direct: the load generator straight to the sink (latency baseline only)

Every collector forwards with ``sending_queue`` and retries off and no compression, so
like redact-proxy (synchronous by default) it answers a client once the sink has answered:
the same work per request, and what a client was told accepted is at the sink.

Workloads (benchmarks/loadgen.py, fixed seeds; 40% of each item's attributes have keys the
doctrine deletes or hashes, the rest keys it keeps):
  traces        1000-span batches x 12 attributes, closed loop (saturation)
  metrics       1000 data points x 8 attributes, closed loop
  logs          1000 log records x 10 attributes, closed loop
  traces-clean  as traces, but no sensitive key at all
  latency       512-span batches, open loop, each system at half of its own saturation on
                `traces`, each followed by the direct baseline at the same rate

For each (workload, system): throughput (items answered OK per second), CPU seconds per
million items (utime+stime from /proc/PID/stat of the system's whole process tree:
supervisor and workers, or the collector; over the measured window only), peak RSS (VmHWM
of each process, reset through /proc/PID/clear_refs before the run), latency percentiles,
and the sink's count of items received against what the load generator was told accepted.
Systems alternate: each workload runs ``--rounds`` times, odd rounds in reverse order, all
systems kept running meanwhile, so drift in the machine's load hits them alike. Each run
is a warm-up, drained, then the measured window, drained too (see loadgen.py): the CPU of
the window and the items answered in it are the same work, even for a system that takes
seconds per request.

    python benchmarks/compare.py                  # full run, ~10 minutes, writes benchmarks/RESULTS.md
    python benchmarks/compare.py --quick          # ~2-3 minutes, shorter windows
    python benchmarks/compare.py --smoke --output /tmp/r.md --json /tmp/r.json   # seconds, for the tests
    python benchmarks/compare.py --write-configs  # regenerate configs/attributes.yaml, configs/redaction.yaml
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
LOADGEN = BENCH / "loadgen.py"
DEFAULT_POLICY = ROOT / "policies" / "doctrine.yaml"
DEFAULT_OTELCOL = ROOT / ".cache" / "bin" / "otelcol"
sys.path.insert(0, str(ROOT / "proxy"))
sys.path.insert(0, str(BENCH))

import loadgen  # noqa: E402
from collector_configs import CONFIGS, check_keys, generated_configs  # noqa: E402
from redact_proxy.policy.schema import load_file  # noqa: E402
from report import BASE, FLOOR, SUT_KEYS, machine_info, render, to_json  # noqa: E402

READY_TIMEOUT = 30.0  # seconds for a system to start listening


# --- workloads ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    name: str
    signal: str
    batch: int
    attrs: int
    sensitive: float
    systems: tuple[str, ...]
    open_loop: bool = False
    what: str = ""


def workloads(smoke: bool) -> list[Workload]:
    batch, lat_batch = (50, 32) if smoke else (1000, 512)
    common = ("proxy-w1", BASE, "collector-redaction", FLOOR)
    return [
        Workload("traces", "traces", batch, 12, 0.4,
                 ("proxy-w1", "proxy-w2", "proxy-t2", "proxy-audit", BASE, "collector-attributes-keys",
                  "collector-redaction", FLOOR),
                 what=f"traces, {batch}-span batches x 12 attributes (5 sensitive)"),
        Workload("metrics", "metrics", batch, 8, 0.4, common,
                 what=f"metrics, {batch} data points x 8 attributes (3 sensitive)"),
        Workload("logs", "logs", batch, 10, 0.4, common,
                 what=f"logs, {batch} log records x 10 attributes (4 sensitive)"),
        Workload("traces-clean", "traces", batch, 12, 0.0, common,
                 what=f"traces, {batch}-span batches x 12 attributes, no sensitive key"),
        Workload("latency", "traces", lat_batch, 12, 0.4, common, open_loop=True,
                 what=f"traces, {lat_batch}-span batches x 12 attributes, open loop, each system at half of "
                      "its own saturation on `traces`, then the direct baseline at the same rate"),
    ]



# --- processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status_kib(pid: int, name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except OSError:
        return 0, ""


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Service:
    """One long-running process of the benchmark (a system under test or the sink)."""

    def __init__(self, key: str, workdir: Path):
        self.key = key
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self.argv: list[str] = []
        self.log = workdir / f"{key}.log"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tree(self) -> list[int]:
        return loadgen.process_tree([self.pid])

    def reset_peak_rss(self) -> None:
        for pid in self.tree():
            try:
                Path(f"/proc/{pid}/clear_refs").write_text("5")
            except OSError:
                pass

    def peak_rss(self) -> dict[int, int]:
        return {pid: _status_kib(pid, "VmHWM") * 1024 for pid in self.tree()}

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _spawn(self, argv: list[str], env: dict) -> None:
        self.argv = argv
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=self.workdir,
                                         start_new_session=True)

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # our own session: this service and its children only
            return self.proc.wait(5)

    def tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


class Collector(Service):
    def __init__(self, key: str, workdir: Path, otelcol: Path, config: Path, env_extra: dict | None = None):
        super().__init__(key, workdir)
        self.otelcol, self.config, self.env_extra = otelcol, config, env_extra or {}

    def start(self, sink_endpoint: str | None = None) -> "Collector":
        for _ in range(3):  # a free port may be taken by someone else meanwhile
            self.grpc_port, self.http_port, self.telemetry_port = free_port(), free_port(), free_port()
            env = {**_clean_env(), **self.env_extra,
                   "BENCH_GRPC_ENDPOINT": f"127.0.0.1:{self.grpc_port}",
                   "BENCH_HTTP_ENDPOINT": f"127.0.0.1:{self.http_port}",
                   "BENCH_TELEMETRY_PORT": str(self.telemetry_port),
                   "BENCH_SINK_ENDPOINT": sink_endpoint or "127.0.0.1:1"}
            self._spawn([str(self.otelcol), "--config", str(self.config)], env)
            deadline = time.monotonic() + READY_TIMEOUT
            while time.monotonic() < deadline and self.alive():
                if _http_get(f"http://127.0.0.1:{self.telemetry_port}/metrics")[0] == 200 and _port_open(self.grpc_port):
                    return self
                time.sleep(0.1)
            if self.alive():
                self.stop()
            if "address already in use" not in self.tail(50):
                break
        raise RuntimeError(f"{self.key} did not start; log:\n{self.tail()}")

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def accepted(self) -> dict[str, int]:
        """The receiver's accepted-item counters, summed over transports, per signal."""
        status, text = _http_get(f"http://127.0.0.1:{self.telemetry_port}/metrics")
        if status != 200:
            raise RuntimeError(f"{self.key}: telemetry endpoint answered {status}")
        out = {"traces": 0, "metrics": 0, "logs": 0}
        names = {"otelcol_receiver_accepted_spans": "traces", "otelcol_receiver_accepted_metric_points": "metrics",
                 "otelcol_receiver_accepted_log_records": "logs"}
        for line in text.splitlines():
            m = re.match(r"(otelcol_receiver_accepted_[a-z_]+?)(?:_total)?(?:\{[^}]*\})? ([0-9.e+]+)$", line)
            if m and m.group(1) in names:
                out[names[m.group(1)]] += int(float(m.group(2)))
        return out


class Proxy(Service):
    def __init__(self, key: str, workdir: Path, policy: Path, workers: int, hash_key: str, threads: int = 1,
                 audit: bool = False):
        super().__init__(key, workdir)
        self.policy, self.workers, self.hash_key, self.threads = policy, workers, hash_key, threads
        self.audit = audit

    def start(self, sink_endpoint: str) -> "Proxy":
        exe = Path(sys.executable).parent / "redact-proxy"
        base = [str(exe)] if exe.exists() else [sys.executable, "-m", "redact_proxy"]
        for _ in range(3):
            self.grpc_port, self.http_port, self.admin_port = free_port(), free_port(), free_port()
            argv = [*base, "serve", "--policy", str(self.policy),
                    "--grpc-listen", f"127.0.0.1:{self.grpc_port}", "--http-listen", f"127.0.0.1:{self.http_port}",
                    "--admin-listen", f"127.0.0.1:{self.admin_port}", "--upstream", f"grpc://{sink_endpoint}",
                    "--workers", str(self.workers), "--scrub-threads", str(self.threads), "--log-level", "warning",
                    *(["--audit"] if self.audit else [])]
            self._spawn(argv, {**_clean_env(), "REDACT_PROXY_HASH_KEY": self.hash_key})
            deadline = time.monotonic() + READY_TIMEOUT
            while time.monotonic() < deadline and self.alive():
                if _http_get(f"http://127.0.0.1:{self.admin_port}/readyz")[0] == 200 and _port_open(self.grpc_port):
                    if self.workers == 1 or len(self.tree()) > self.workers:
                        return self
                time.sleep(0.1)
            if self.alive():
                self.stop()
            if "in use" not in self.tail(50):
                break
        raise RuntimeError(f"{self.key} did not start; log:\n{self.tail()}")

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def metrics_text(self) -> str:
        return _http_get(f"http://127.0.0.1:{self.admin_port}/metrics")[1]


def _clean_env() -> dict:
    """Our environment minus anything that would configure a system behind our back."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("REDACT_PROXY_", "OTEL_", "GRPC_", "BENCH_"))}


# --- one measured run ---------------------------------------------------------------------


@dataclass
class RunResult:
    workload: str
    system: str
    round: int
    argv: list[str]
    report: dict
    rss: dict[int, int]
    sink_delta: int
    loadavg: str
    started: float
    error: str = ""
    rate: float | None = None  # open loop: offered requests/s

    @property
    def items(self) -> int:
        return self.report["window"]["items_accepted"] if self.report else 0

    @property
    def window(self) -> float:
        return self.report["window_seconds"] if self.report else 0.0

    @property
    def cpu(self) -> float:
        return self.report["watched_cpu_seconds"] if self.report else 0.0


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


class Bench:
    def __init__(self, args):
        self.args = args
        self.workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="redact-bench-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.services: dict[str, Service] = {}
        self.sink: Collector | None = None
        self.results: list[RunResult] = []
        self.notes: list[str] = list(args.note)
        self.rates: dict[str, float] = {}  # latency workload: system -> requests/s
        self.hash_key = secrets.token_hex(32)

    def say(self, msg: str) -> None:
        print(f"[compare {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    # setting up
    def configs(self) -> dict[str, Path]:
        fresh = generated_configs(self.args.policy)
        paths = {}
        for name, text in fresh.items():
            shipped = CONFIGS / name
            if not shipped.exists() or shipped.read_text() != text:
                if self.args.policy == DEFAULT_POLICY:
                    self.notes.append(f"benchmarks/configs/{name} is out of date with the policy; this run used a "
                                      "freshly generated copy (`compare.py --write-configs` updates it)")
            path = self.workdir / name
            path.write_text(text)
            paths[name] = path
        return paths

    def start(self) -> None:
        otelcol = Path(self.args.otelcol)
        if not os.access(otelcol, os.X_OK):
            raise SystemExit(f"no collector binary at {otelcol}: run `bash tests/e2e/setup.sh` first")
        paths = self.configs()
        self.sink = Collector("sink", self.workdir, otelcol, paths["sink.yaml"]).start()
        sink_ep = self.sink.grpc_target
        self.say(f"sink up at {sink_ep} (pid {self.sink.pid})")
        wanted = {s for w in self.selected_workloads() for s in w.systems}
        makers = {
            "proxy-w1": lambda: Proxy("proxy-w1", self.workdir, self.args.policy, 1, self.hash_key),
            "proxy-w2": lambda: Proxy("proxy-w2", self.workdir, self.args.policy, 2, self.hash_key),
            "proxy-t2": lambda: Proxy("proxy-t2", self.workdir, self.args.policy, 1, self.hash_key, threads=2),
            "proxy-audit": lambda: Proxy("proxy-audit", self.workdir, self.args.policy, 1, self.hash_key, audit=True),
            "collector-attributes": lambda: Collector("collector-attributes", self.workdir, otelcol, paths["attributes.yaml"]),
            "collector-attributes-keys": lambda: Collector("collector-attributes-keys", self.workdir, otelcol,
                                                           paths["attributes-keys.yaml"]),
            "collector-redaction": lambda: Collector("collector-redaction", self.workdir, otelcol, paths["redaction.yaml"],
                                                     {"BENCH_HMAC_KEY": self.hash_key}),
            "collector-passthrough": lambda: Collector("collector-passthrough", self.workdir, otelcol, paths["passthrough.yaml"]),
        }
        for key in SUT_KEYS:
            if key in wanted:
                svc = makers[key]().start(sink_ep)
                self.services[key] = svc
                self.say(f"{key} up at {svc.grpc_target} (pids {svc.tree()})")

    def stop(self) -> dict[str, int | None]:
        codes = {}
        for key, svc in list(self.services.items()) + ([("sink", self.sink)] if self.sink else []):
            codes[key] = svc.stop()
        return codes

    def selected_workloads(self) -> list[Workload]:
        ws = workloads(self.args.smoke)
        if self.args.workloads:
            ws = [w for w in ws if w.name in self.args.workloads]
        if self.args.systems:
            ws = [Workload(**{**w.__dict__, "systems": tuple(s for s in w.systems if s in self.args.systems)})
                  for w in ws]
        return ws

    # running
    def loadgen_argv(self, w: Workload, target: str, cpu_pid: int | None, rate: float | None) -> list[str]:
        a = self.args
        argv = [sys.executable, str(LOADGEN), "--target", target, "--signal", w.signal, "--batch", str(w.batch),
                "--attrs", str(w.attrs), "--sensitive", str(w.sensitive), "--seed", str(a.seed),
                "--pool", str(a.pool), "--pool-cache", str(self.workdir / "pools"), "--json", "--raw-latencies",
                "--warmup", str(a.warmup), "--progress-every", "5", "--timeout", str(a.timeout)]
        if a.smoke:
            argv += ["--requests", str(a.requests)]
        else:
            argv += ["--duration", str(a.duration)]
        if w.open_loop:
            argv += ["--rate", f"{rate:.3f}", "--connections", "4"]
        else:
            argv += ["--concurrency", str(a.concurrency)]
        if cpu_pid is not None:
            argv += ["--cpu-pid", str(cpu_pid)]
        if a.quiet:
            argv.append("--quiet")
        return argv

    def run_one(self, w: Workload, system: str, rnd: int) -> RunResult:
        """``system`` is a system under test, or ``direct:<system>``: the load generator
        straight to the sink, at the rate that system had."""
        svc = self.services.get(system)
        target = svc.grpc_target if svc else self.sink.grpc_target
        rate = self.rates.get(system.removeprefix("direct:")) if w.open_loop else None
        argv = self.loadgen_argv(w, target, svc.pid if svc else None, rate)
        before = self.sink.accepted()[w.signal]
        if svc:
            svc.reset_peak_rss()
        started, load = time.time(), _loadavg()
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=None if not self.args.quiet else subprocess.DEVNULL,
                              text=True, timeout=(self.args.duration or 0) + self.args.warmup + 4 * self.args.timeout + 60)
        rss = svc.peak_rss() if svc else {}
        after = self.sink.accepted()[w.signal]
        error, report = "", {}
        if proc.returncode != 0:
            error = f"loadgen exited {proc.returncode}"
        try:
            report = json.loads(proc.stdout)
        except json.JSONDecodeError:
            error = error or "loadgen printed no JSON"
        if svc and not svc.alive():
            error = f"{system} died (exit {svc.proc.returncode}); log:\n{svc.tail()}"
        res = RunResult(w.name, system, rnd, argv, report, rss, after - before, load, started, error, rate)
        if report:
            t = report["totals"]
            if res.sink_delta != t["items_accepted"]:
                res.error = res.error or (f"sink received {res.sink_delta} items, the system answered OK for "
                                          f"{t['items_accepted']}")
        return res

    def run(self) -> None:
        for w in self.selected_workloads():
            systems = list(w.systems)
            if w.open_loop:
                for system in w.systems:
                    self.rates[system] = self.half_saturation(system, w.batch)
                    self.say(f"{w.name}: {system} at {self.rates[system]:.2f} req/s x {w.batch} = "
                             f"{self.rates[system] * w.batch:,.0f} items/s")
                systems = [x for s in w.systems for x in (s, f"direct:{s}")]
            for rnd in range(self.args.rounds):
                order = systems if rnd % 2 == 0 else list(reversed(systems))
                for system in order:
                    self.say(f"{w.name} round {rnd + 1}/{self.args.rounds}: {system}  (load {_loadavg()})")
                    res = self.run_one(w, system, rnd)
                    self.results.append(res)
                    if res.error:
                        self.say(f"  PROBLEM: {res.error}")
                    elif res.report:
                        win = res.report["window"]
                        self.say(f"  {win['items_per_s']:,.0f} items/s, CPU {res.cpu:.2f}s, "
                                 f"p99 {win['latency_ms']['p99'] or 0:.1f} ms, failed {win['failed']}")

    def half_saturation(self, system: str, batch: int) -> float:
        """Half of ``system``'s saturation on `traces`, in requests of ``batch`` items/s."""
        agg = self.aggregate().get(("traces", system))
        if not agg or agg["items_per_s"] <= 0:
            return 5.0
        return max(0.5 * agg["items_per_s"] / batch, 0.2)

    # figures
    def aggregate(self) -> dict[tuple[str, str], dict]:
        out: dict[tuple[str, str], dict] = {}
        for r in self.results:
            a = out.setdefault((r.workload, r.system), {
                "items": 0, "window": 0.0, "cpu": 0.0, "requests": 0, "failed": 0, "latencies": [],
                "rss_max_process": 0, "rss_total": 0, "rss_per_process": [], "gen_cpu": 0.0, "errors": [],
                "sink_ok": True, "accepted_total": 0, "sink_total": 0, "codes": {}, "rounds": 0})
            a["rounds"] += 1
            if r.error:
                a["errors"].append(r.error)
            if not r.report:
                continue
            win = r.report["window"]
            a["items"] += win["items_accepted"]
            a["window"] += r.window
            a["cpu"] += r.cpu
            a["requests"] += win["requests"]
            a["failed"] += r.report["totals"]["failed"]
            for code, n in r.report["totals"]["codes"].items():
                a["codes"][code] = a["codes"].get(code, 0) + n
            a["latencies"] += win.get("latencies_ms", [])
            a["gen_cpu"] += r.report["generator_cpu_seconds"]
            a["accepted_total"] += r.report["totals"]["items_accepted"]
            a["sink_total"] += r.sink_delta
            a["sink_ok"] &= r.sink_delta == r.report["totals"]["items_accepted"]
            if r.rss:
                a["rss_max_process"] = max(a["rss_max_process"], max(r.rss.values()))
                a["rss_total"] = max(a["rss_total"], sum(r.rss.values()))
                a["rss_per_process"] = sorted(r.rss.values(), reverse=True)
        for a in out.values():
            a["items_per_s"] = a["items"] / a["window"] if a["window"] else 0.0
            a["cpu_per_m"] = a["cpu"] / a["items"] * 1e6 if a["items"] else math.nan
            a["gen_cpu_share"] = a["gen_cpu"] / a["window"] if a["window"] else 0.0
            lat = sorted(a.pop("latencies"))
            a["latency_ms"] = {f"p{q}": loadgen.percentile(lat, q) for q in (50, 90, 99)}
            a["latency_samples"] = len(lat)
        return out


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--policy", type=Path, default=DEFAULT_POLICY)
    p.add_argument("--otelcol", type=Path, default=DEFAULT_OTELCOL, help="collector binary (tests/e2e/setup.sh builds it)")
    p.add_argument("--output", type=Path, default=BENCH / "RESULTS.md", help="where to write the report")
    p.add_argument("--json", type=Path, help="also write every figure as JSON here")
    p.add_argument("--quick", action="store_true", help="one round, short windows (~3 minutes)")
    p.add_argument("--smoke", action="store_true", help="tiny batches, a few requests per run: checks it works (seconds)")
    p.add_argument("--duration", type=float, help="measured seconds per system per round (default 6; --quick 3)")
    p.add_argument("--warmup", type=float, help="seconds of load before each window (default 1; --smoke 0)")
    p.add_argument("--rounds", type=int, help="rounds, alternating the order of systems (default 2; --quick/--smoke 1)")
    p.add_argument("--requests", type=int, default=4, help="--smoke: requests per run")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight at saturation, one connection each")
    p.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    p.add_argument("--pool", type=int, help="distinct request bodies per workload (default 4; --smoke 2)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workloads", nargs="+", choices=[w.name for w in workloads(False)])
    p.add_argument("--systems", nargs="+", choices=list(SUT_KEYS))
    p.add_argument("--workdir", help="keep configs, logs and pools here (default: a new temporary directory)")
    p.add_argument("--quiet", action="store_true", help="no progress from the load generator")
    p.add_argument("--note", action="append", default=[], help="a line for the report's Notes (repeatable)")
    p.add_argument("--write-configs", action="store_true", help="regenerate benchmarks/configs/ from the policy and exit")
    args = p.parse_args(argv)
    args.policy = args.policy.resolve()
    if args.smoke:
        args.quick = True
    if args.duration is None:
        args.duration = 3.0 if args.quick else 6.0
    if args.warmup is None:
        args.warmup = 0.0 if args.smoke else 1.0
    if args.rounds is None:
        args.rounds = 1 if args.quick else 2
    if args.pool is None:
        args.pool = 2 if args.smoke else 4
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.write_configs:
        CONFIGS.mkdir(exist_ok=True)
        for name, text in generated_configs(args.policy).items():
            (CONFIGS / name).write_text(text)
            print(f"wrote {CONFIGS / name}")
        return 0
    problems = check_keys(load_file(args.policy))
    if problems:
        print("the workload's keys do not fit the policy:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    bench = Bench(args)
    bench.argv = [str(LOADGEN.parent / "compare.py"), *(sys.argv[1:] if argv is None else argv)]
    info = machine_info(args.otelcol)
    started, load_before = time.time(), _loadavg()
    bench.say(f"workdir {bench.workdir}; load average {load_before}")
    exit_codes: dict = {}
    interrupted = False
    try:
        bench.start()
        bench.run()
    except KeyboardInterrupt:
        interrupted = True
        bench.notes.append("interrupted: the figures below are partial")
    finally:
        exit_codes = bench.stop()
    finished, load_after = time.time(), _loadavg()
    text = render(bench, info, started, finished, load_before, load_after, exit_codes)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(to_json(bench, info, exit_codes), indent=1, default=str))
    # The tables, on stdout.
    start = text.index("## Ratios vs (b)")
    end = text.index("## Problems")
    print(text[start:end].rstrip())
    print(f"\nwritten: {args.output}")
    failed = any(r.error for r in bench.results)
    return 130 if interrupted else 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
