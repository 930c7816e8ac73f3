"""Loopback stand-ins for the alert receivers' far ends: Slack's and PagerDuty's HTTP
endpoints and an SMTP server. Alertmanager is real; only where it delivers to is
local, so the e2e can prove an alert was routed and sent without any traffic
leaving the machine.

Strategy: two tiny threaded servers that record what they receive and answer
success. They never parse more than they must: HTTP keeps path + body, SMTP keeps
recipients + message text.
"""

from __future__ import annotations

import socketserver
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    kind: str                 # "http" or "smtp"
    where: str                # HTTP path, or SMTP recipients joined by ","
    body: str


@dataclass
class Inbox:
    items: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, item: Received) -> None:
        with self.lock:
            self.items.append(item)

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.items)


class _HTTPHandler(BaseHTTPRequestHandler):
    inbox: Inbox

    def do_POST(self):  # noqa: N802 (http.server naming)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        self.server.inbox.add(Received("http", self.path, body))  # type: ignore[attr-defined]
        payload = b'{"status":"success","message":"Event processed","dedup_key":"e2e"}'
        self.send_response(202 if self.path.startswith("/pagerduty") else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):  # quiet
        pass


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) for Go's net/smtp client without TLS or AUTH."""

    def _send(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self):
        self._send("220 e2e-sink ESMTP")
        recipients: list[str] = []
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self._send("250-e2e-sink")
                self._send("250 8BITMIME")
            elif verb == "HELO":
                self._send("250 e2e-sink")
            elif verb == "MAIL":
                recipients = []
                self._send("250 OK")
            elif verb == "RCPT":
                recipients.append(line.split(":", 1)[1].strip().strip("<>"))
                self._send("250 OK")
            elif verb == "DATA":
                self._send("354 end with <CRLF>.<CRLF>")
                lines = []
                while True:
                    data = self.rfile.readline()
                    if not data or data in (b".\r\n", b".\n"):
                        break
                    lines.append(data.decode("utf-8", "replace"))
                self.server.inbox.add(Received("smtp", ",".join(recipients), "".join(lines)))  # type: ignore[attr-defined]
                self._send("250 OK queued")
            elif verb in ("RSET", "NOOP"):
                self._send("250 OK")
            elif verb == "QUIT":
                self._send("221 bye")
                return
            else:
                self._send("502 not implemented")


class _ThreadingTCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class Sinks:
    """Both servers on 127.0.0.1, sharing one inbox."""

    def __init__(self, http_port: int, smtp_port: int):
        self.inbox = Inbox()
        self.http = ThreadingHTTPServer(("127.0.0.1", http_port), _HTTPHandler)
        self.http.daemon_threads = True
        self.http.inbox = self.inbox  # type: ignore[attr-defined]
        self.smtp = _ThreadingTCPServer(("127.0.0.1", smtp_port), _SMTPHandler)
        self.smtp.inbox = self.inbox  # type: ignore[attr-defined]
        self._threads = [threading.Thread(target=s.serve_forever, daemon=True, name=f"sink-{n}")
                         for n, s in (("http", self.http), ("smtp", self.smtp))]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        for server in (self.http, self.smtp):
            server.shutdown()
            server.server_close()
