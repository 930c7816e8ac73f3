"""Prints the structlog JSON lines of the leak corpus.

Strategy: structlog configured as its docs recommend for JSON output in production
(contextvars, log level, ISO timestamp, ``dict_tracebacks`` so an exception becomes a
structured ``exception`` list with ``exc_value`` and frames, ``JSONRenderer``), logging a
failed login with the request's headers and client address, the user and a context dict
bound to the logger. Personal values come from ../plants.py.

usage: python capture_structlog.py LINES_DIR
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from plants import LOGGER_PLANTS  # noqa: E402


def main() -> int:
    out = io.StringIO()
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso"), structlog.processors.dict_tracebacks,
                    structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(out), cache_logger_on_first_use=False)
    L = LOGGER_PLANTS["structlog"]
    req = {"method": "POST", "path": "/login", "query_string": "next=%2Fhome",
           "headers": {"authorization": f"Bearer {L['bearer']}", "cookie": f"sid={L['cookie']}; theme=dark",
                       "x-forwarded-for": L["fwd_ip"], "user-agent": "Mozilla/5.0 (X11; Linux x86_64)"},
           "remoteAddress": L["remote_ip"]}
    user = {"id": L["user_id"], "email": L["user_email"], "name": L["user_name"]}
    context = {"ip": L["ctx_ip6"], "sessionId": L["session"], "note": f"client retried with password={L['password']}"}
    log = structlog.get_logger("checkout").bind(service="checkout", req=req, user=user)
    log.info("request received", route="/login")
    try:
        raise LookupError(f"no account for {L['err_email']}")
    except LookupError:
        log.error(f"login failed for {L['msg_email']}", context=context, exc_info=True)
    Path(sys.argv[1]).mkdir(parents=True, exist_ok=True)
    (Path(sys.argv[1]) / "structlog.log").write_text(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
