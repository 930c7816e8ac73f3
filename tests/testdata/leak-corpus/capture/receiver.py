"""A capturing OTLP/HTTP receiver: what the real SDK exporters send becomes a corpus file.

Strategy: ``POST /<source>/v1/<signal>`` is recorded as it arrived (after gzip, if the
exporter compressed). Every request of one (source, signal) is merged into one export
request, written as ``<source>.<signal>.pb`` for ``application/x-protobuf`` (serialized
requests concatenate into their merge) or ``<source>.<signal>.json`` for OTLP-JSON (the
``resource*`` arrays concatenated). Files are written when the receiver stops. It answers
every request with an empty success body in the request's encoding.

In-process (Python capture): ``with Receiver(out_dir) as rx: endpoint = rx.url("src")``.
As a program (Node, Go, Java capture): ``python receiver.py OUT_DIR PORT_FILE`` serves until
SIGTERM/SIGINT, having written its port to PORT_FILE.
"""

from __future__ import annotations

import gzip
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RESOURCE_ARRAYS = {"traces": "resourceSpans", "metrics": "resourceMetrics", "logs": "resourceLogs"}


class Receiver:
    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
        self.bodies: dict[tuple[str, str, str], list[bytes]] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self._read_body()
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
                parts = self.path.strip("/").split("/")
                if len(parts) != 3 or parts[1] != "v1" or parts[2] not in RESOURCE_ARRAYS:
                    self.send_error(404)
                    return
                ext = "json" if ctype == "application/json" else "pb"
                with receiver.lock:
                    receiver.bodies.setdefault((parts[0], parts[2], ext), []).append(body)
                answer = b"{}" if ext == "json" else b""
                self.send_response(200)
                self.send_header("Content-Type", ctype or "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def _read_body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                    return self.rfile.read(int(self.headers.get("Content-Length") or 0))
                chunks = []  # the JS exporters stream their body
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, source: str, signal_name: str | None = None) -> str:
        base = f"http://127.0.0.1:{self.port}/{source}"
        return f"{base}/v1/{signal_name}" if signal_name else base

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.written = self.write()

    def write(self) -> list[Path]:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for (source, signal_name, ext), bodies in sorted(self.bodies.items()):
            path = self.out_dir / f"{source}.{signal_name}.{ext}"
            if ext == "pb":
                path.write_bytes(b"".join(bodies))
            else:
                key = RESOURCE_ARRAYS[signal_name]
                merged = {key: [r for b in bodies for r in json.loads(b).get(key, [])]}
                path.write_text(json.dumps(merged, indent=1, ensure_ascii=False) + "\n")
            written.append(path)
        return written


def main() -> int:
    out_dir, port_file = Path(sys.argv[1]), Path(sys.argv[2])
    receiver = Receiver(out_dir)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with receiver:
        port_file.write_text(str(receiver.port))
        stop.wait()
    for path in receiver.written:
        print(f"receiver: wrote {path.name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
