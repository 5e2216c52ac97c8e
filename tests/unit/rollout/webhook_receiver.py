"""A real HTTP webhook receiver on loopback for the notification tests (unit and integration).

Test infrastructure only: it stands in for Slack/Mattermost's incoming-webhook endpoint, records every POST body
and answers with a chosen status.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self, server: ThreadingHTTPServer) -> None:
        self.server = server
        self.posts: list[dict[str, Any]] = []
        self.status = 200

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hooks/saltpipe"

    def texts(self) -> list[str]:
        return [p["json"]["text"] for p in self.posts]


@contextmanager
def webhook_receiver(status: int = 200) -> Iterator[Receiver]:
    """Serve on 127.0.0.1 (a free port) until the block ends."""
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            receiver = holder[0]
            receiver.posts.append({"path": self.path, "content_type": self.headers.get("Content-Type"),
                                   "json": json.loads(raw or b"null")})
            self.send_response(receiver.status)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = Receiver(server)
    receiver.status = status
    holder.append(receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
