"""A real HTTP server in a thread that receives webhooks, for tests and benchmarks.

It records every request (headers and raw body) and answers with the statuses queued in
``replies`` (then 200), so tests can make it fail a few times before it accepts.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ReceivedHook:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """The running receiver: its URL, what it received, and the statuses still to answer."""

    url: str
    received: list[ReceivedHook] = field(default_factory=list)
    replies: list[int] = field(default_factory=list)

    def wait_for(self, count: int, timeout: float = 30.0) -> list[ReceivedHook]:
        """Wait until ``count`` requests have arrived; returns them."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.received)} webhook requests, expected {count}")
            time.sleep(0.02)
        return list(self.received)


@contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """Serve a receiver on a free loopback port for the duration of the block."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    receiver = WebhookReceiver(f"http://127.0.0.1:{server.server_address[1]}/hook")
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with lock:
                receiver.received.append(ReceivedHook(self.path, dict(self.headers), body))
                status = receiver.replies.pop(0) if receiver.replies else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server.RequestHandlerClass = Handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
