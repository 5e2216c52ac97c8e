"""The health endpoint production's gate asks in the demo (``ops_app.health`` reads ``ops:app:health_url`` from
pillar; the fixture's URL answers nothing on this machine)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

class HealthServer:
    """A tiny HTTP server on loopback answering ``GET /health/<minion>`` with 200 and counting the probes, so the
    production gate's ``ops_app.health`` has an application to ask (the fixture's URL answers nothing here)."""

    def __init__(self) -> None:
        hits: dict[str, int] = {}
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                minion = self.path.rstrip("/").rsplit("/", 1)[-1]
                with lock:
                    hits[minion] = hits.get(minion, 0) + 1
                body = b'{"status": "ok"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep the demo output clean
                return

        self.hits = hits
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-health", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, minion: str) -> str:
        return f"http://127.0.0.1:{self.port}/health/{minion}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
