"""Every ``serve`` option: its default, its environment variable, its validation.

Strategy: ``OPTIONS`` is the single table of options (SPEC section 3). The CLI builds its
argparse flags from it, every flag falls back to ``REDACT_PROXY_<NAME>`` and then to the
default, and ``Settings.resolve`` turns the strings into checked values once. Nothing
after start-up reads the environment or argparse again.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from redact_proxy.errors import ConfigError
from redact_proxy.workers import WORKER_ENV

MiB = 1024 * 1024
QUEUE_MAX_BYTES = 1024 * MiB  # bytes; --queue-max-bytes default
QUEUE_MIN_BYTES = 64 * 1024  # bytes; a smaller bound could not hold one ordinary batch


@dataclass(frozen=True)
class Option:
    flag: str
    default: str | None
    help: str

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def env(self) -> str:
        return "REDACT_PROXY_" + self.dest.upper()


# Defaults, with units. Strings, as a user would write them, parsed by Settings.resolve.
OPTIONS: tuple[Option, ...] = (
    Option("--policy", None, "policy file (YAML), or a collector config with attributes processors"),
    Option("--grpc-listen", "0.0.0.0:4317", "OTLP/gRPC receiver HOST:PORT; 'off' disables it"),
    Option("--http-listen", "0.0.0.0:4318", "OTLP/HTTP receiver HOST:PORT; 'off' disables it"),
    Option("--admin-listen", "0.0.0.0:8890", "admin HOST:PORT serving /healthz /readyz /metrics; 'off' disables it"),
    Option("--upstream", None,
           "where clean batches go: grpc://H:P, grpcs://H:P, http://H:P, https://H:P, file:PATH or debug "
           "(default: $OTEL_EXPORTER_OTLP_ENDPOINT, else debug = OTLP-JSON lines on stdout)"),
    Option("--workers", "1", "processes sharing the ports with SO_REUSEPORT; /metrics sums over them"),
    Option("--max-request-bytes", str(16 * MiB), "largest request body, in bytes, after decompression"),
    Option("--max-inflight", "64", "concurrent export requests before new ones are refused as overload (503/UNAVAILABLE)"),
    Option("--max-inflight-bytes", str(256 * MiB),
           "decompressed request bytes in progress before new requests are refused as overload (503/UNAVAILABLE); "
           "at least --max-request-bytes"),
    Option("--max-connections", "1024",
           "open connections per receiver; at the cap a new connection replaces the oldest idle one, or is closed "
           "at once when every connection has a request in progress"),
    Option("--max-concurrent-streams", "100",
           "gRPC: concurrent calls one HTTP/2 connection may open (SETTINGS_MAX_CONCURRENT_STREAMS); more are "
           "refused with REFUSED_STREAM, which clients retry"),
    Option("--header-timeout", "10s", "HTTP: once a request has begun, its request line and headers must arrive within this"),
    Option("--body-timeout", "30s",
           "a request body (HTTP) or request message (gRPC) must arrive whole within this once its headers have; "
           "else 408 / DEADLINE_EXCEEDED and the connection (HTTP) or call (gRPC) is closed"),
    Option("--idle-timeout", "60s", "a connection with no request in progress is closed after this (gRPC: with GOAWAY)"),
    Option("--upstream-timeout", "10s", "deadline of one forward upstream (e.g. 500ms, 10s, 1m)"),
    Option("--shutdown-grace", "10s", "on SIGTERM, how long in-flight requests get to finish"),
    Option("--tls-cert", None, "PEM certificate for TLS on both receivers"),
    Option("--tls-key", None, "PEM private key for --tls-cert"),
    Option("--tls-client-ca", None, "PEM CA bundle: require client certificates signed by it (mTLS)"),
    Option("--upstream-ca", None, "PEM CA bundle to verify the upstream's certificate"),
    Option("--upstream-cert", None, "PEM client certificate towards upstream (mTLS)"),
    Option("--upstream-key", None, "PEM private key for --upstream-cert"),
    Option("--auth-token-file", None, "file holding the bearer token clients must send (Authorization: Bearer ...)"),
    Option("--log-format", "text", "text or json; log lines never carry telemetry content"),
    Option("--log-level", "info", "debug, info, warning or error"),
    Option("--event-loop", "uvloop", "uvloop or asyncio (the standard library's loop; for comparison)"),
    Option("--queue-dir", None,
           "persistent queue: a batch is acknowledged once stored (fsync) here, then delivered upstream with "
           "retries; survives restarts and upstream outages (each worker uses DIR/worker-<index>)"),
    Option("--queue-max-bytes", str(QUEUE_MAX_BYTES),
           "bound of the persistent queue, in bytes of batches not yet delivered; when full, new batches are "
           "refused (503/UNAVAILABLE)"),
    Option("--audit", "off",
           "on or off: shadow audit of what survives the policy, counted in redact_proxy_audit_findings_total and "
           "served as JSON at /audit on the admin port (values never kept; bare --audit = on)"),
)
BY_DEST = {o.dest: o for o in OPTIONS}

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str, name: str) -> float:
    m = _DURATION_RE.match(text)
    if not m:
        raise ConfigError([f"--{name}: invalid duration {text!r}; expected e.g. 500ms, 10s, 1m"])
    return float(m.group(1)) * _UNIT[m.group(2)]


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
            scheme = {("grpc", False): "grpc", ("grpc", True): "grpcs"}.get((self.kind, self.tls), "https" if self.tls else "http")
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
        path = text[len("file:"):]
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
    raise ConfigError(
        ["--upstream: expected grpc://H:P, grpcs://H:P, http://H:P, https://H:P, file:PATH or debug"]
    )


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
    policy: Path
    grpc_listen: Listen | None
    http_listen: Listen | None
    admin_listen: Listen | None
    upstream: Upstream
    workers: int
    max_request_bytes: int
    max_inflight: int
    max_inflight_bytes: int
    upstream_timeout: float  # seconds
    shutdown_grace: float  # seconds
    max_connections: int = 1024  # per receiver
    max_concurrent_streams: int = 100  # per gRPC connection
    header_timeout: float = 10.0  # seconds
    body_timeout: float = 30.0  # seconds
    idle_timeout: float = 60.0  # seconds
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    upstream_ca: Path | None = None
    upstream_cert: Path | None = None
    upstream_key: Path | None = None
    auth_token: str | None = field(default=None, repr=False)
    log_format: str = "text"
    log_level: str = "info"
    event_loop: str = "uvloop"
    queue_dir: Path | None = None  # this process's own directory: --queue-dir/worker-<index>
    queue_max_bytes: int = QUEUE_MAX_BYTES
    audit: bool = False  # --audit: shadow audit after each scrub (audit/)

    @classmethod
    def resolve(cls, values: dict[str, str | None], environ=None) -> "Settings":
        """Check and convert raw option strings (already merged with env and defaults).
        Raises ConfigError listing every bad option."""
        environ = os.environ if environ is None else environ
        errors: list[str] = []

        def take(name, fn, *args):
            raw = values.get(name)
            if raw is None:
                return None
            try:
                return fn(raw, *args)
            except ConfigError as exc:
                errors.extend(exc.errors)
                return None

        def positive_int(text, name):
            if not str(text).strip().isdigit() or int(text) < 1:
                raise ConfigError([f"--{name}: expected a positive integer, got {text!r}"])
            return int(text)

        def positive_duration(text, name):
            # Zero would mean "never" to some layers and "at once" to others: refused.
            seconds = parse_duration(text, name)
            if seconds <= 0:
                raise ConfigError([f"--{name}: expected a duration above zero, got {text!r}"])
            return seconds

        def path(text, name):
            p = Path(text)
            if not p.is_file():
                raise ConfigError([f"--{name}: no such file: {text}"])
            return p

        policy = values.get("policy")
        if not policy:
            errors.append("--policy is required (or REDACT_PROXY_POLICY)")
        settings_kw = dict(
            policy=Path(policy or "."),
            grpc_listen=take("grpc_listen", parse_listen, "grpc-listen"),
            http_listen=take("http_listen", parse_listen, "http-listen"),
            admin_listen=take("admin_listen", parse_listen, "admin-listen"),
            upstream=take("upstream", lambda t: parse_upstream(t, environ)) if values.get("upstream") else None,
            workers=take("workers", positive_int, "workers"),
            max_request_bytes=take("max_request_bytes", positive_int, "max-request-bytes"),
            max_inflight=take("max_inflight", positive_int, "max-inflight"),
            max_inflight_bytes=take("max_inflight_bytes", positive_int, "max-inflight-bytes"),
            upstream_timeout=take("upstream_timeout", parse_duration, "upstream-timeout"),
            shutdown_grace=take("shutdown_grace", parse_duration, "shutdown-grace"),
            max_connections=take("max_connections", positive_int, "max-connections"),
            max_concurrent_streams=take("max_concurrent_streams", positive_int, "max-concurrent-streams"),
            header_timeout=take("header_timeout", positive_duration, "header-timeout"),
            body_timeout=take("body_timeout", positive_duration, "body-timeout"),
            idle_timeout=take("idle_timeout", positive_duration, "idle-timeout"),
            log_format=values.get("log_format") or "text",
            log_level=(values.get("log_level") or "info").lower(),
            event_loop=(values.get("event_loop") or "uvloop").lower(),
        )
        for name in ("max_connections", "max_concurrent_streams", "header_timeout", "body_timeout", "idle_timeout"):
            if settings_kw[name] is None:  # not given (callers passing a partial dict): the default
                del settings_kw[name]
        if settings_kw["upstream"] is None and not values.get("upstream"):
            try:
                settings_kw["upstream"] = parse_upstream(None, environ)
            except ConfigError as exc:
                errors.extend(exc.errors)
        for name in ("tls_cert", "tls_key", "tls_client_ca", "upstream_ca", "upstream_cert", "upstream_key"):
            settings_kw[name] = take(name, path, name.replace("_", "-"))
        request_bytes, inflight_bytes = settings_kw["max_request_bytes"], settings_kw["max_inflight_bytes"]
        if request_bytes and inflight_bytes and inflight_bytes < request_bytes:
            # A request the size limit accepts must fit the budget, or it is refused forever
            # and its client retries forever.
            errors.append(f"--max-inflight-bytes ({inflight_bytes}) must be at least --max-request-bytes ({request_bytes})")
        if bool(values.get("tls_cert")) != bool(values.get("tls_key")):
            errors.append("--tls-cert and --tls-key go together")
        if values.get("tls_client_ca") and not values.get("tls_cert"):
            errors.append("--tls-client-ca needs --tls-cert/--tls-key (mTLS is TLS first)")
        if bool(values.get("upstream_cert")) != bool(values.get("upstream_key")):
            errors.append("--upstream-cert and --upstream-key go together")
        token_file = values.get("auth_token_file")
        if token_file:
            try:
                token = Path(token_file).read_text().strip()
            except (OSError, UnicodeDecodeError) as exc:
                errors.append(f"--auth-token-file: cannot read {token_file}: {getattr(exc, 'strerror', None) or exc.__class__.__name__}")
            else:
                if not token:
                    errors.append(f"--auth-token-file: {token_file} is empty")
                settings_kw["auth_token"] = token
        if settings_kw["log_format"] not in ("text", "json"):
            errors.append(f"--log-format: expected text or json, got {settings_kw['log_format']!r}")
        if settings_kw["event_loop"] not in ("uvloop", "asyncio"):
            errors.append(f"--event-loop: expected uvloop or asyncio, got {settings_kw['event_loop']!r}")
        if settings_kw["log_level"] not in ("debug", "info", "warning", "error"):
            errors.append(f"--log-level: expected debug, info, warning or error, got {settings_kw['log_level']!r}")
        if values.get("queue_dir"):
            # One directory per process (worker 0 when there are no workers), so the layout
            # does not change with --workers and no two processes share a queue.
            settings_kw["queue_dir"] = Path(values["queue_dir"]) / f"worker-{environ.get(WORKER_ENV, '0')}"
        queue_max = take("queue_max_bytes", positive_int, "queue-max-bytes")
        if queue_max is not None and queue_max < QUEUE_MIN_BYTES:
            errors.append(f"--queue-max-bytes: expected at least {QUEUE_MIN_BYTES}, got {queue_max}")
        settings_kw["queue_max_bytes"] = queue_max or QUEUE_MAX_BYTES
        audit = (values.get("audit") or "off").strip().lower()
        if audit not in ("on", "off"):
            errors.append(f"--audit: expected on or off, got {audit!r}")
        settings_kw["audit"] = audit == "on"
        if not (values.get("grpc_listen") and settings_kw["grpc_listen"]) and not (values.get("http_listen") and settings_kw["http_listen"]) and not errors:
            errors.append("both receivers are off: nothing would be received")
        if errors:
            raise ConfigError(errors)
        return cls(**settings_kw)
