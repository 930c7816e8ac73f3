"""Command line: ``serve`` (the default), ``check``, ``apply``, ``test``, ``audit``; exit codes.

Exit codes: 0 success; 1 could not start or run (port taken, unreadable file), or a
``test`` case failed; 2 invalid options, policy or input (``check`` prints each problem
as FILE:LINE:COL: ...); 3 ``audit --fail-on``: a finding of one of the named kinds
survived the policy.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from redact_proxy import __version__, signals
from redact_proxy.errors import EXIT_CONFIG, EXIT_FINDINGS, EXIT_OK, EXIT_RUNTIME, ConfigError
from redact_proxy.settings import OPTIONS, Settings

COMMANDS = ("serve", "check", "apply", "test", "audit")
# serve options that may be given bare (`serve --audit` = `--audit on`).
SWITCHES = frozenset({"audit"})
AUDIT_PROGRESS_BYTES = 8 << 20  # inputs at least this large show a progress line on a terminal

_DESCRIPTION = """\
Scrubs personal data out of OpenTelemetry (OTLP) traffic before it reaches the collector.
Receives OTLP/gRPC and OTLP/HTTP (protobuf or JSON; traces, metrics, logs), applies a YAML
redaction policy, and forwards the clean batch upstream.

  redact-proxy --policy policies/doctrine.yaml                  # = serve, prints to stdout
  redact-proxy serve --policy P --upstream grpc://collector:4317
  redact-proxy check --policy P                                 # validate a policy
  redact-proxy apply --policy P spans.json -o clean.json        # redact a file offline
  redact-proxy test --policy P                                  # run the policy's tests: cases
  redact-proxy audit --policy P capture.jsonl                   # what still looks personal after P
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="redact-proxy",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"redact-proxy {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        help="run the proxy (the default command)",
        description="Run the proxy. Every option can also be set as REDACT_PROXY_<OPTION> "
        "(e.g. REDACT_PROXY_UPSTREAM); a flag wins over the environment.",
    )
    for opt in OPTIONS:
        switch = opt.dest in SWITCHES  # a bare switch flag means "on"
        serve.add_argument(
            opt.flag,
            dest=opt.dest,
            default=None,
            metavar=opt.dest.split("_")[-1].upper(),
            help=f"{opt.help} [env {opt.env}" + (f"; default {opt.default}]" if opt.default else "]"),
            nargs="?" if switch else None,
            const="on" if switch else None,
        )

    check = sub.add_parser(
        "check",
        help="validate a policy file and print a summary",
        description="Validate a policy. Exit 0 with a summary, or exit 2 with one "
        "FILE:LINE:COL: yaml.path: message line per problem.",
    )
    check.add_argument("--policy", required=True, help="policy file to check")

    apply = sub.add_parser(
        "apply",
        help="redact an OTLP file offline",
        description="Redact OTLP export requests from a file (or stdin): protobuf (one request) or "
        "OTLP-JSON (one request, or one per line as the collector's file exporter writes). "
        "The output has the input's format.",
    )
    apply.add_argument("--policy", required=True, help="policy file")
    apply.add_argument(
        "--signal", choices=signals.NAMES, help="signal of the input (needed for protobuf; read from OTLP-JSON)"
    )
    apply.add_argument("--format", choices=("json", "protobuf"), help="input format (default: from the file extension)")
    apply.add_argument("input", nargs="?", help="input file (default: stdin, with --format)")
    apply.add_argument("-o", "--output", help="output file (default: stdout)")

    test = sub.add_parser(
        "test",
        help="run the tests: cases of a policy file",
        description="Run the `tests:` cases embedded in a policy file. Prints ok/FAIL per case with a "
        "diff of expected and got; exit 1 if any case fails. When the hash key is not set, a fixed test "
        "key is used ({hash} in an expectation means: the hash of the input value).",
    )
    test.add_argument("--policy", required=True, help="policy file")

    audit = sub.add_parser(
        "audit",
        help="report what still looks personal in captured OTLP after a policy",
        description="Apply a policy to captured OTLP files exactly as serve would (protobuf, OTLP-JSON, the "
        "collector file exporter's JSON lines or length-prefixed protobuf; gzip or zstd) and report, per "
        "signal, level and field path, what survived: detector hits by kind, identifier-shaped values "
        "(UUIDs, long digit runs, high-entropy tokens, high cardinality), free text under keys outside the "
        "semantic-convention registry, the rule that decided each field and the keys no key rule matched. "
        "Never prints a value: counts, shares, lengths and keyed hashes (a key that looks personal is "
        "shown as its hash). Exit 3 when --fail-on names a kind that was found.",
    )
    audit.add_argument("--policy", required=True, help="policy file")
    audit.add_argument(
        "--signal",
        choices=("traces", "metrics", "logs"),
        help="signal of protobuf inputs (default: from the file name; OTLP-JSON says its own)",
    )
    audit.add_argument("--json", action="store_true", help="print the report as JSON")
    audit.add_argument(
        "--fail-on",
        metavar="KIND[,KIND]",
        default="",
        help="exit 3 if any of these kinds survived: detector names (email, ipv4, credit_card, ...), "
        "uuid, digits, high_entropy, high_cardinality, free_text, or the groups secrets, ip, card, "
        "detectors, identifiers, any",
    )
    audit.add_argument("inputs", nargs="*", metavar="IN", help="input files (default: stdin)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `redact-proxy --policy P` is `redact-proxy serve --policy P`.
    if argv and argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version"):
        argv.insert(0, "serve")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_CONFIG
    if args.command == "check":
        return check(args.policy)
    if args.command == "apply":
        return apply(args)
    if args.command == "test":
        return test(args.policy)
    if args.command == "audit":
        return audit(args)
    return serve(args)


def option_values(args: argparse.Namespace, environ=None) -> dict[str, str | None]:
    """Flag, else REDACT_PROXY_<NAME>, else the default."""
    environ = os.environ if environ is None else environ
    return {
        opt.dest: getattr(args, opt.dest) if getattr(args, opt.dest) is not None else environ.get(opt.env, opt.default)
        for opt in OPTIONS
    }


def serve(args: argparse.Namespace) -> int:
    try:
        settings = Settings.resolve(option_values(args))
    except ConfigError as exc:
        for line in exc.errors:
            print(f"redact-proxy: {line}", file=sys.stderr)
        return EXIT_CONFIG
    from redact_proxy import workers

    if settings.workers > 1 and settings.worker_index is None:  # the supervisor
        from redact_proxy.logconfig import configure_logging
        from redact_proxy.policy import load

        try:  # one clear error here rather than N from the workers
            load(settings.policy)
        except ConfigError as exc:
            for line in exc.errors:
                print(f"redact-proxy: policy: {line}", file=sys.stderr)
            return EXIT_CONFIG
        configure_logging(settings.log_format, settings.log_level)
        return workers.supervise(settings.workers, settings.shutdown_grace)
    from redact_proxy.service import serve as run  # imports grpc/aiohttp: only when serving

    return run(settings)


def check(path: str) -> int:
    from redact_proxy.policy import load

    try:
        policy = load(path)
    except ConfigError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        print(f"{path}: {len(exc.errors)} problem(s)", file=sys.stderr)
        return EXIT_CONFIG
    from redact_proxy.engine import dialect_errors

    declined = dialect_errors(policy)
    if declined:
        for line in declined:
            print(line, file=sys.stderr)
        print(f"{path}: {len(declined)} problem(s)", file=sys.stderr)
        return EXIT_CONFIG
    print(f"{path}: OK, {policy.summary()}, sha256 {policy.sha256}")
    for rule in policy.rules:
        parts = list(rule.keys + rule.patterns)
        if rule.fields:
            parts.append(f"fields: {', '.join(sorted(rule.fields))}")
        if rule.when:
            parts.append(f"when {rule.when.key} {rule.when.op} {list(rule.when.values)}")
        if rule.action.value == "mask":
            parts.append(
                f"detectors: {', '.join(rule.detectors + rule.regexes)}; targets: {', '.join(sorted(rule.targets))}"
            )
        print(f"  {rule.name:<28} {rule.action.value:<12} {', '.join(parts)}")
    return EXIT_OK


def apply(args: argparse.Namespace) -> int:
    from redact_proxy import offline
    from redact_proxy.errors import RequestError
    from redact_proxy.policy import load

    try:
        policy = load(args.policy)
        fmt = offline.guess_format(args.input, args.format)
        data = Path(args.input).read_bytes() if args.input else sys.stdin.buffer.read()
        docs = offline.apply(policy, data, fmt, args.signal)
    except ConfigError as exc:
        for line in exc.errors:
            print(f"redact-proxy apply: {line}", file=sys.stderr)
        return EXIT_CONFIG
    except RequestError as exc:  # the input is not OTLP
        print(f"redact-proxy apply: {args.input or 'stdin'}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except OSError as exc:
        print(f"redact-proxy apply: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return EXIT_RUNTIME
    sep = b"\n" if fmt.name == "JSON" else b""
    payload = sep.join(docs) + sep
    if args.output:
        with open(args.output, "wb") as f:
            f.write(payload)
    else:
        sys.stdout.buffer.write(payload)
    return EXIT_OK


def test(path: str) -> int:
    from redact_proxy import offline

    try:
        policy, cases, note = offline.load_for_test(path)
    except ConfigError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        return EXIT_CONFIG
    if note:
        print(f"note: {note}")
    if not cases:
        print(f"{path}: no tests: cases")
        return EXIT_RUNTIME
    return offline.run_tests(policy, cases, path)


def audit(args: argparse.Namespace) -> int:
    import json
    import time

    from redact_proxy.audit import Auditor, expand_kinds, inputs, report
    from redact_proxy.codec import Format
    from redact_proxy.errors import RedactionFailed, RequestError
    from redact_proxy.engine import Engine
    from redact_proxy.pipeline import _redact
    from redact_proxy.signals import BY_NAME

    try:
        fail_on = expand_kinds(args.fail_on.split(","))
    except ValueError as exc:
        print(f"redact-proxy audit: --fail-on: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        policy, own_key = _audit_policy(args.policy)
    except ConfigError as exc:
        for line in exc.errors:
            print(f"redact-proxy audit: {line}", file=sys.stderr)
        return EXIT_CONFIG
    auditor, engine = Auditor(policy, policy_key=own_key), Engine(policy)
    paths = args.inputs or ["-"]
    try:
        sizes = [0 if p == "-" else os.path.getsize(p) for p in paths]
    except OSError as exc:
        print(f"redact-proxy audit: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return EXIT_RUNTIME
    total = sum(sizes)
    progress = sys.stderr.isatty() and total >= AUDIT_PROGRESS_BYTES
    shown, requests, read = 0.0, 0, 0
    for index, path in enumerate(paths, 1):
        name = "stdin" if path == "-" else path
        try:
            data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
            for body in inputs.read(name, data, args.signal):
                batch, rep = _redact(BY_NAME[body.signal], body.data, body.fmt, engine)
                auditor.observe(body.signal, batch.to_bytes(Format.PROTOBUF), rep)
                requests += 1
                read += len(body.data)
                if progress and time.monotonic() - shown > 0.5:  # counts only, like everything printed
                    shown = time.monotonic()
                    print(
                        f"\raudit: input {index}/{len(paths)}, {requests} requests, {read >> 20} MiB of OTLP read",
                        end="",
                        file=sys.stderr,
                    )
        except ConfigError as exc:
            for line in exc.errors:
                print(f"redact-proxy audit: {line}", file=sys.stderr)
            return EXIT_CONFIG
        except RedactionFailed as exc:
            print(f"redact-proxy audit: {name}: {exc}", file=sys.stderr)
            return EXIT_RUNTIME
        except RequestError as exc:  # not OTLP; the message names the place, never the content
            print(f"redact-proxy audit: {name}: {exc}", file=sys.stderr)
            return EXIT_CONFIG
        except OSError as exc:
            print(f"redact-proxy audit: {exc.filename or name}: {exc.strerror}", file=sys.stderr)
            return EXIT_RUNTIME
    if progress:
        print("\r\033[K", end="", file=sys.stderr)
    snap = auditor.snapshot()
    if args.json:
        print(json.dumps(snap, indent=2))
    else:
        sys.stdout.write(report.render(snap, f" from {len(paths)} input(s)"))
    failed = report.failing(snap, fail_on)
    if failed:
        print("redact-proxy audit: --fail-on: " + ", ".join(f"{k} {n}" for k, n in failed.items()), file=sys.stderr)
        return EXIT_FINDINGS
    return EXIT_OK


def _audit_policy(path: str):
    """The policy, and whether hashes are under its own key. Without the key in the
    environment a random one is used: an audit in CI needs no production secret, and
    its hashes then compare within the run only (never a fixed, guessable test key)."""
    import secrets

    from redact_proxy.policy.compile import compile_policy
    from redact_proxy.policy.schema import DEFAULT_KEY_ENV, load_file

    doc = load_file(path)
    environ = dict(os.environ)
    key_env = doc.hash.key_env or DEFAULT_KEY_ENV
    if doc.hash.algorithm == "hmac-sha256" and doc.hash.key_file is None and not environ.get(key_env):
        environ[key_env] = secrets.token_hex(32)
        return compile_policy(doc, environ), False
    return compile_policy(doc, environ), True
