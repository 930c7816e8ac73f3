"""Every ``serve`` option: its default, unit, environment variable, parser and checks.

Strategy: ``OPTIONS`` is the single table of options (SPEC section 3): each row carries its
default (as a user would write it), its unit and the parser that turns the string into a
checked value. The CLI builds its argparse flags from it, every flag falls back to
``REDACT_PROXY_<NAME>`` and then to the default, and ``Settings.resolve`` is a loop over the
rows plus the checks that span options. The process model (worker index, SO_REUSEPORT) is
resolved here too, from the supervisor's mark in the environment. Nothing after start-up
reads the environment or argparse again.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from redact_proxy.errors import ConfigError
from redact_proxy.workers import WORKER_ENV

MiB = 1024 * 1024
QUEUE_MAX_BYTES = 1024 * MiB  # bytes; --queue-max-bytes default
QUEUE_MIN_BYTES = 64 * 1024  # bytes; a smaller bound could not hold one ordinary batch
ENV_PREFIX = "REDACT_PROXY_"

# A row's parser: (the option's text, its name without "--", the environment) -> value;
# raises ConfigError naming the option.
Parser = Callable[[str, str, Mapping[str, str]], object]


@dataclass(frozen=True)
class Option:
    flag: str
    default: str | None  # as a user would write it; None: not set
    help: str
    parse: Parser = lambda text, name, environ: text  # a word, as given
    unit: str = ""  # "bytes", "seconds"; "" for a count, a word, an address or a path
    attr: str | None = None  # the Settings field, when it is not ``dest``
    # (dest of an option this one needs, the error when it is missing), checked after
    # this row: e.g. a key needs its certificate.
    requires: tuple[str, str] | None = None
    required: str | None = None  # the error when it is not given at all

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def name(self) -> str:
        return self.flag.lstrip("-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.dest.upper()


# --- parsers ------------------------------------------------------------------------------

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str, name: str) -> float:
    m = _DURATION_RE.match(text)
    if not m:
        raise ConfigError([f"--{name}: invalid duration {text!r}; expected e.g. 500ms, 10s, 1m"])
    return float(m.group(1)) * _UNIT[m.group(2)]


def _duration(text: str, name: str, environ) -> float:
    return parse_duration(text, name)


def _positive_duration(text: str, name: str, environ) -> float:
    # Zero would mean "never" to some layers and "at once" to others: refused.
    seconds = parse_duration(text, name)
    if seconds <= 0:
        raise ConfigError([f"--{name}: expected a duration above zero, got {text!r}"])
    return seconds


def _positive_int(text: str, name: str, environ) -> int:
    if not str(text).strip().isdigit() or int(text) < 1:
        raise ConfigError([f"--{name}: expected a positive integer, got {text!r}"])
    return int(text)


def _at_least(floor: int) -> Parser:
    def parse(text: str, name: str, environ) -> int:
        n = _positive_int(text, name, environ)
        if n < floor:
            raise ConfigError([f"--{name}: expected at least {floor}, got {n}"])
        return n

    return parse


def _choice(*choices: str, fold: bool = False) -> Parser:
    expected = ", ".join(choices[:-1]) + f" or {choices[-1]}"

    def parse(text: str, name: str, environ) -> str:
        value = text.lower() if fold else text
        if value not in choices:
            raise ConfigError([f"--{name}: expected {expected}, got {value!r}"])
        return value

    return parse


def _switch(text: str, name: str, environ) -> bool:
    """on or off (case and surrounding blanks aside)."""
    return _choice("on", "off", fold=True)(text.strip(), name, environ) == "on"


def _file(text: str, name: str, environ) -> Path:
    p = Path(text)
    if not p.is_file():
        raise ConfigError([f"--{name}: no such file: {text}"])
    return p


def _token(text: str, name: str, environ) -> str:
    """The bearer token, read from the file once (never logged or shown)."""
    try:
        token = Path(text).read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc.__class__.__name__
        raise ConfigError([f"--{name}: cannot read {text}: {reason}"]) from exc
    if not token:
        raise ConfigError([f"--{name}: {text} is empty"])
    return token


_POLICY_REQUIRED = "--policy is required (or REDACT_PROXY_POLICY)"


def _policy(text: str, name: str, environ) -> Path:
    if not text:
        raise ConfigError([_POLICY_REQUIRED])
    return Path(text)


def _listen(text: str, name: str, environ) -> "Listen | None":
    return parse_listen(text, name)


def _upstream(text: str, name: str, environ) -> "Upstream | None":
    # Not given: None here, the OTel SDK environment's once every option is read
    # (_cross_checks), so its errors follow those of the options.
    return parse_upstream(text, environ) if text else None


# Defaults, with units. Strings, as a user would write them, parsed by their row's parser.
OPTIONS: tuple[Option, ...] = (
    Option(
        "--policy",
        None,
        "policy file (YAML), or a collector config with attributes processors",
        _policy,
        required=_POLICY_REQUIRED,
    ),
    Option("--grpc-listen", "0.0.0.0:4317", "OTLP/gRPC receiver HOST:PORT; 'off' disables it", _listen),
    Option("--http-listen", "0.0.0.0:4318", "OTLP/HTTP receiver HOST:PORT; 'off' disables it", _listen),
    Option(
        "--admin-listen",
        "0.0.0.0:8890",
        "admin HOST:PORT serving /healthz /readyz /metrics; 'off' disables it",
        _listen,
    ),
    Option(
        "--upstream",
        None,
        "where clean batches go: grpc://H:P, grpcs://H:P, http://H:P, https://H:P, file:PATH or debug "
        "(default: $OTEL_EXPORTER_OTLP_ENDPOINT, else debug = OTLP-JSON lines on stdout)",
        _upstream,
    ),
    Option("--workers", "1", "processes sharing the ports with SO_REUSEPORT; /metrics sums over them", _positive_int),
    Option(
        "--scrub-threads",
        "1",
        "threads per process that scrub batches; the native engine runs without the GIL, so with cores to "
        "spare more scrub in parallel (measured, 2 cores: 1.42x on an idle machine, 0.75-0.95x when the "
        "cores are busy; --workers 2 1.35-1.47x at twice the memory)",
        _positive_int,
    ),
    Option(
        "--max-request-bytes",
        str(16 * MiB),
        "largest request body, in bytes, after decompression",
        _positive_int,
        "bytes",
    ),
    Option(
        "--max-inflight",
        "64",
        "concurrent export requests before new ones are refused as overload (503/UNAVAILABLE)",
        _positive_int,
    ),
    Option(
        "--max-inflight-bytes",
        str(256 * MiB),
        "decompressed request bytes in progress before new requests are refused as overload (503/UNAVAILABLE); "
        "at least --max-request-bytes",
        _positive_int,
        "bytes",
    ),
    Option(
        "--max-connections",
        "1024",
        "open connections per receiver; at the cap a new connection replaces the oldest idle one, or is closed "
        "at once when every connection has a request in progress",
        _positive_int,
    ),
    Option(
        "--max-concurrent-streams",
        "100",
        "gRPC: concurrent calls one HTTP/2 connection may open (SETTINGS_MAX_CONCURRENT_STREAMS); more are "
        "refused with REFUSED_STREAM, which clients retry",
        _positive_int,
    ),
    Option(
        "--header-timeout",
        "10s",
        "HTTP: once a request has begun, its request line and headers must arrive within this",
        _positive_duration,
        "seconds",
    ),
    Option(
        "--body-timeout",
        "30s",
        "a request body (HTTP) or request message (gRPC) must arrive whole within this once its headers have; "
        "else 408 / DEADLINE_EXCEEDED and the connection (HTTP) or call (gRPC) is closed",
        _positive_duration,
        "seconds",
    ),
    Option(
        "--idle-timeout",
        "60s",
        "a connection with no request in progress is closed after this (gRPC: with GOAWAY)",
        _positive_duration,
        "seconds",
    ),
    Option("--upstream-timeout", "10s", "deadline of one forward upstream (e.g. 500ms, 10s, 1m)", _duration, "seconds"),
    Option("--shutdown-grace", "10s", "on SIGTERM, how long in-flight requests get to finish", _duration, "seconds"),
    Option(
        "--tls-cert",
        None,
        "PEM certificate for TLS on both receivers",
        _file,
        requires=("tls_key", "--tls-cert and --tls-key go together"),
    ),
    Option(
        "--tls-key",
        None,
        "PEM private key for --tls-cert",
        _file,
        requires=("tls_cert", "--tls-cert and --tls-key go together"),
    ),
    Option(
        "--tls-client-ca",
        None,
        "PEM CA bundle: require client certificates signed by it (mTLS)",
        _file,
        requires=("tls_cert", "--tls-client-ca needs --tls-cert/--tls-key (mTLS is TLS first)"),
    ),
    Option("--upstream-ca", None, "PEM CA bundle to verify the upstream's certificate", _file),
    Option(
        "--upstream-cert",
        None,
        "PEM client certificate towards upstream (mTLS)",
        _file,
        requires=("upstream_key", "--upstream-cert and --upstream-key go together"),
    ),
    Option(
        "--upstream-key",
        None,
        "PEM private key for --upstream-cert",
        _file,
        requires=("upstream_cert", "--upstream-cert and --upstream-key go together"),
    ),
    Option(
        "--auth-token-file",
        None,
        "file holding the bearer token clients must send (Authorization: Bearer ...)",
        _token,
        attr="auth_token",
    ),
    Option("--log-format", "text", "text or json; log lines never carry telemetry content", _choice("text", "json")),
    Option(
        "--log-level", "info", "debug, info, warning or error", _choice("debug", "info", "warning", "error", fold=True)
    ),
    Option(
        "--event-loop",
        "uvloop",
        "uvloop or asyncio (the standard library's loop; for comparison)",
        _choice("uvloop", "asyncio", fold=True),
    ),
    Option(
        "--queue-dir",
        None,
        "persistent queue: a batch is acknowledged once stored (fsync) here, then delivered upstream with "
        "retries; survives restarts and upstream outages (each worker uses DIR/worker-<index>)",
        lambda text, name, environ: Path(text),
    ),
    Option(
        "--queue-max-bytes",
        str(QUEUE_MAX_BYTES),
        "bound of the persistent queue, in bytes of batches not yet delivered; when full, new batches are "
        "refused (503/UNAVAILABLE)",
        _at_least(QUEUE_MIN_BYTES),
        "bytes",
    ),
    Option(
        "--audit",
        "off",
        "on or off: shadow audit of what survives the policy, counted in redact_proxy_audit_findings_total and "
        "served as JSON at /audit on the admin port (values never kept; bare --audit = on)",
        _switch,
    ),
)
BY_DEST = {o.dest: o for o in OPTIONS}


@dataclass(frozen=True)
class Listen:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen(text: str, name: str) -> Listen | None:
    if text.strip().lower() == "off":
        return None
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError([f"--{name}: invalid address {text!r}; expected HOST:PORT or off"])
    return Listen(host or "0.0.0.0", int(port))


@dataclass(frozen=True)
class Upstream:
    kind: str  # "grpc" | "http" | "file" | "debug"
    target: str = ""  # grpc: host:port; http: base URL; file: path
    tls: bool = False
    headers: tuple[tuple[str, str], ...] = ()
    compression: str | None = None  # "gzip" or None

    def describe(self) -> str:
        """For logs: no credentials, no headers."""
        if self.kind in ("grpc", "http"):
            scheme = {("grpc", False): "grpc", ("grpc", True): "grpcs"}.get(
                (self.kind, self.tls), "https" if self.tls else "http"
            )
            hostport = self.target.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]
            return f"{scheme}://{hostport}"
        return self.kind if self.kind == "debug" else f"file:{self.target}"


def parse_upstream(text: str | None, environ) -> Upstream:
    headers = _otlp_headers(environ.get("OTEL_EXPORTER_OTLP_HEADERS", ""))
    compression = environ.get("OTEL_EXPORTER_OTLP_COMPRESSION", "").strip().lower() or None
    if compression not in (None, "none", "gzip"):
        raise ConfigError([f"OTEL_EXPORTER_OTLP_COMPRESSION: unsupported {compression!r}; expected gzip or none"])
    compression = None if compression == "none" else compression
    from_env = text is None
    text = text if text is not None else environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "debug"
    if text == "debug":
        return Upstream("debug")
    if text.startswith("file:"):
        path = text[len("file:") :]
        if path.startswith("//"):
            path = path[2:]
        if not path:
            raise ConfigError(["--upstream: file: needs a path, e.g. file:/var/lib/redact/out.jsonl"])
        return Upstream("file", path)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ConfigError([f"--upstream: invalid URL {text!r}: {exc}"]) from exc
    scheme = parts.scheme.lower()
    if from_env and scheme in ("http", "https"):
        # The SDKs' convention: OTEL_EXPORTER_OTLP_PROTOCOL says whether an http(s)
        # endpoint speaks gRPC or OTLP/HTTP; the OTLP default is http/protobuf.
        protocol = environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf").strip().lower()
        if protocol == "grpc":
            scheme = "grpcs" if scheme == "https" else "grpc"
    if scheme in ("grpc", "grpcs"):
        if not parts.hostname or not port:
            raise ConfigError([f"--upstream: {scheme}:// needs HOST:PORT, e.g. grpc://collector:4317"])
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        return Upstream("grpc", f"{host}:{port}", scheme == "grpcs", headers, compression)
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise ConfigError([f"--upstream: {scheme}:// needs a host, e.g. http://collector:4318"])
        return Upstream("http", text.rstrip("/"), scheme == "https", headers, compression)
    raise ConfigError(["--upstream: expected grpc://H:P, grpcs://H:P, http://H:P, https://H:P, file:PATH or debug"])


def _otlp_headers(text: str) -> tuple[tuple[str, str], ...]:
    """OTEL_EXPORTER_OTLP_HEADERS: comma-separated key=value, values URL-encoded (W3C
    baggage format, as the OTel SDKs read it). Keys are lowercased for gRPC metadata."""
    out = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(["OTEL_EXPORTER_OTLP_HEADERS: expected key=value pairs separated by commas"])
        out.append((key.strip().lower(), unquote(value.strip())))
    return tuple(out)


@dataclass(frozen=True)
class Settings:
    """Every serve option as a checked value (defaults and units: OPTIONS), and the
    process model."""

    policy: Path
    grpc_listen: Listen | None  # None: off
    http_listen: Listen | None
    admin_listen: Listen | None
    upstream: Upstream
    workers: int
    max_request_bytes: int  # bytes, decompressed
    max_inflight: int  # requests
    max_inflight_bytes: int  # bytes
    scrub_threads: int  # per process
    max_connections: int  # per receiver
    max_concurrent_streams: int  # per gRPC connection
    header_timeout: float  # seconds
    body_timeout: float  # seconds
    idle_timeout: float  # seconds
    upstream_timeout: float  # seconds
    shutdown_grace: float  # seconds
    tls_cert: Path | None
    tls_key: Path | None
    tls_client_ca: Path | None
    upstream_ca: Path | None
    upstream_cert: Path | None
    upstream_key: Path | None
    auth_token: str | None = field(repr=False)
    log_format: str
    log_level: str
    event_loop: str
    queue_dir: Path | None  # this process's own directory: --queue-dir/worker-<index>
    queue_max_bytes: int  # bytes
    audit: bool  # --audit: shadow audit after each scrub (audit/)
    # The process model. worker_index: this process's index under a --workers supervisor
    # (REDACT_PROXY_WORKER), None for a process on its own (or the supervisor itself).
    # reuse_port: bind with SO_REUSEPORT, so the kernel spreads connections over the
    # workers; off otherwise, so a second proxy on the same port fails instead of sharing.
    worker_index: int | None = None
    reuse_port: bool = False
    # REDACT_PROXY_* variables that are no option: a typo must not pass for a default.
    unknown_env: tuple[str, ...] = ()

    @classmethod
    def resolve(cls, values: Mapping[str, str | None], environ: Mapping[str, str] | None = None) -> "Settings":
        """Check and convert raw option strings (already merged with env and defaults; a
        missing one takes its default). Raises ConfigError listing every bad option."""
        environ = os.environ if environ is None else environ
        errors: list[str] = []
        # Field name -> value: Any, as each option's own parser gives its field's type.
        kw: dict[str, Any] = {}
        for opt in OPTIONS:
            raw = values.get(opt.dest)
            raw = opt.default if raw is None else raw
            value = None
            if raw is not None:
                try:
                    value = opt.parse(raw, opt.name, environ)
                except ConfigError as exc:
                    errors.extend(exc.errors)
            elif opt.required:
                errors.append(opt.required)
            kw[opt.attr or opt.dest] = value
            if opt.requires and raw and not values.get(opt.requires[0]):
                errors.append(opt.requires[1])
        errors.extend(_cross_checks(kw, values, environ))
        if errors:
            raise ConfigError(errors)
        return cls(**kw)


def _cross_checks(kw: dict, values: Mapping[str, str | None], environ: Mapping[str, str]) -> list[str]:
    """What spans options, filled into ``kw``: the upstream from the OTel SDK environment,
    the byte budgets, the process model, the queue directory per worker, the receivers.
    Returns the errors."""
    errors: list[str] = []
    if kw["upstream"] is None and not values.get("upstream"):  # else --upstream was bad
        try:
            kw["upstream"] = parse_upstream(None, environ)
        except ConfigError as exc:
            errors.extend(exc.errors)
    request_bytes, inflight_bytes = kw["max_request_bytes"], kw["max_inflight_bytes"]
    if request_bytes and inflight_bytes and inflight_bytes < request_bytes:
        # A request the size limit accepts must fit the budget, or it is refused forever
        # and its client retries forever.
        errors.append(f"--max-inflight-bytes ({inflight_bytes}) must be at least --max-request-bytes ({request_bytes})")
    index = environ.get(WORKER_ENV)
    if index is not None and not index.isdigit():
        errors.append(f"{WORKER_ENV}: expected a worker index, got {index!r}")
        index = None
    kw["worker_index"] = None if index is None else int(index)
    kw["reuse_port"] = index is not None
    if kw["queue_dir"] is not None:
        # One directory per process (worker 0 when there are no workers), so the layout
        # does not change with --workers and no two processes share a queue.
        kw["queue_dir"] = kw["queue_dir"] / f"worker-{kw['worker_index'] or 0}"
    kw["unknown_env"] = unknown_env(environ)
    if not errors and kw["grpc_listen"] is None and kw["http_listen"] is None:
        errors.append("both receivers are off: nothing would be received")
    return errors


def unknown_env(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The REDACT_PROXY_* variables set that no option, the worker mark or the default
    hash key reads (a policy's own ``hash.key_env`` may name one of them)."""
    from redact_proxy.policy.schema import DEFAULT_KEY_ENV  # the policy's, not an option

    known = {o.env for o in OPTIONS} | {WORKER_ENV, DEFAULT_KEY_ENV}
    return tuple(sorted(n for n in environ if n.startswith(ENV_PREFIX) and n not in known))
