"""Command line: ``serve`` (the default), ``check``; exit codes.

Exit codes: 0 success; 1 could not start or run (port taken, unreadable file);
2 invalid options or policy (``check`` prints each problem as FILE:LINE:COL: ...).
"""

from __future__ import annotations

import argparse
import os
import sys

from redact_proxy import __version__
from redact_proxy.errors import ConfigError
from redact_proxy.settings import OPTIONS, Settings

EXIT_OK, EXIT_RUNTIME, EXIT_CONFIG = 0, 1, 2
COMMANDS = ("serve", "check")

_DESCRIPTION = """\
Scrubs personal data out of OpenTelemetry (OTLP) traffic before it reaches the collector.
Receives OTLP/gRPC and OTLP/HTTP (protobuf or JSON; traces, metrics, logs), applies a YAML
redaction policy, and forwards the clean batch upstream.

  redact-proxy --policy policies/doctrine.yaml                  # = serve, prints to stdout
  redact-proxy serve --policy P --upstream grpc://collector:4317
  redact-proxy check --policy P                                 # validate a policy
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="redact-proxy", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"redact-proxy {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser(
        "serve", help="run the proxy (the default command)",
        description="Run the proxy. Every option can also be set as REDACT_PROXY_<OPTION> "
        "(e.g. REDACT_PROXY_UPSTREAM); a flag wins over the environment.",
    )
    for opt in OPTIONS:
        serve.add_argument(
            opt.flag, dest=opt.dest, default=None, metavar=opt.dest.split("_")[-1].upper(),
            help=f"{opt.help} [env {opt.env}" + (f"; default {opt.default}]" if opt.default else "]"),
        )

    check = sub.add_parser(
        "check", help="validate a policy file and print a summary",
        description="Validate a policy. Exit 0 with a summary, or exit 2 with one "
        "FILE:LINE:COL: yaml.path: message line per problem.",
    )
    check.add_argument("--policy", required=True, help="policy file to check")
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
    print(f"{path}: OK, {policy.summary()}, sha256 {policy.sha256}")
    for rule in policy.rules:
        targets = ", ".join(rule.keys + rule.patterns) if rule.keys or rule.patterns else (
            f"when {rule.when.key} {rule.when.op} {list(rule.when.values)}" if rule.when else "")
        print(f"  {rule.name:<28} {rule.action.value:<12} {targets}")
    return EXIT_OK
