"""Fixtures of the client tests: the API tests' real server, and a scripted local server.

- ``api_server`` / ``harbor`` (from ``tests/api/conftest.py``): ``create_app`` served by uvicorn
  in a thread, with the help centre ingested into ``harbor`` once per module.
- ``remote``: that server with a secret key for ``harbor`` and the admin key.
- ``scripted``: a plain HTTP server on loopback that answers each request with the next
  scripted ``Reply`` and records what it received, for retries, timeouts and broken streams.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.api.conftest import ApiServer, admin_key, api_server, harbor, make_api_server

__all__ = [
    "Remote",
    "Reply",
    "ScriptedServer",
    "admin_key",
    "api_server",
    "harbor",
    "make_api_server",
    "remote",
    "scripted",
]


@dataclass(frozen=True)
class Remote:
    """The module's API server, a secret key of ``harbor`` and the admin key."""

    server: ApiServer
    secret_key: str
    admin_key: str

    @property
    def url(self) -> str:
        """The server's base URL."""
        return self.server.url


@pytest.fixture(scope="module")
def remote(api_server: ApiServer, harbor: str) -> Remote:
    """The help centre served over HTTP, with a secret key for ``harbor``."""
    assert api_server.admin_key is not None
    return Remote(api_server, api_server.create_key(harbor), api_server.admin_key)


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    ``body`` is sent as JSON unless it is bytes. ``delay`` waits before answering (timeouts);
    ``drop`` closes the connection without a word; ``chunks`` are sent with chunked encoding
    and, with ``cut``, the connection closes before the terminating chunk (a broken stream).
    """

    status: int = 200
    body: object = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    chunks: tuple[bytes, ...] = ()
    cut: bool = False


@dataclass(frozen=True)
class Received:
    """A request the scripted server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ScriptedServer:
    """Answers requests with ``replies`` in order (a 500 once they run out)."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.received: list[Received] = []
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with server._lock:
                    server.received.append(
                        Received(self.command, self.path, dict(self.headers.items()), body)
                    )
                    reply = server.replies.pop(0) if server.replies else Reply(500, b"no reply")
                time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    return
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.chunks:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for chunk in reply.chunks:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                    if not reply.cut:
                        self.wfile.write(b"0\r\n\r\n")
                    self.close_connection = True
                    return
                content = (
                    reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                )
                if not isinstance(reply.body, bytes):
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_DELETE = do_PATCH = _answer

            def log_message(self, format: str, *args: Any) -> None:
                del format, args  # keep test output quiet

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, in order."""
        with self._lock:
            self.replies = list(replies)
            self.received = []

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    """A scripted HTTP server on a free loopback port."""
    with ScriptedServer() as server:
        yield server
