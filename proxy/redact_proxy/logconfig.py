"""Process logging: text or JSON lines on stderr, under the "redact_proxy" logger.

Log lines are written by this package only and never quote telemetry content; this
module is deliberately free of heavy imports so the --workers supervisor can use it.
"""

from __future__ import annotations

import json
import logging
import sys
import time


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
                "level": record.levelname.lower(),
                "msg": record.getMessage(),
            }
        )


class _LibraryRecord(logging.Filter):
    """Records from other libraries (aiohttp's HTTP parser errors, grpc) quote request
    bytes in their message and traceback: keep the logger name and exception class only."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        record.msg = f"{record.name}: {record.levelname.lower()}" + (f" ({exc.__class__.__name__})" if exc else "")
        record.args = ()
        record.exc_info = record.exc_text = record.stack_info = None
        return True


def configure_logging(fmt: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger("redact_proxy")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    # Everything else (aiohttp, grpc, asyncio) reaches the root logger: same format, no content.
    other = logging.StreamHandler(sys.stderr)
    other.setFormatter(handler.formatter)
    other.addFilter(_LibraryRecord())
    logging.getLogger().handlers[:] = [other]
    logging.getLogger().setLevel(logging.WARNING)
