"""A local server that speaks Slack's Web API, for tests (as bolt-python's own tests do).

``POST /api/<method>`` answers like Slack (``{"ok": true, ...}``) for ``auth.test``,
``chat.postMessage``, ``chat.update``, ``chat.postEphemeral``, ``reactions.add``,
``conversations.replies`` and any other method (a bare ``ok``); ``POST /response/<n>`` stands
in for a slash command's ``response_url``. Every request is recorded (method, form or JSON
parameters, headers, arrival time) so tests assert on what the real SDK sent. ``fail`` scripts
an error status (e.g. a 429 with ``Retry-After``) for the next matching request.
"""

from __future__ import annotations

import http.server
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from tests.support.servers import free_loopback_port

__all__ = ["BOT_ID", "BOT_USER", "TEAM", "Call", "FakeSlackServer"]

TEAM = "T0HARBOR"
BOT_USER = "U0BOT"
BOT_ID = "B0BOT"


@dataclass(frozen=True)
class Call:
    """One request the server received."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    at: float
    status: int = 200

    @property
    def channel(self) -> str | None:
        """The ``channel`` parameter, if any."""
        value = self.params.get("channel")
        return str(value) if value is not None else None

    @property
    def blocks(self) -> list[dict[str, Any]]:
        """The ``blocks`` parameter, decoded (form posts send it as a JSON string)."""
        blocks = self.params.get("blocks") or []
        return json.loads(blocks) if isinstance(blocks, str) else list(blocks)


@dataclass
class _Failure:
    method: str
    status: int
    headers: dict[str, str]
    when: Callable[[dict[str, Any]], bool]


@dataclass
class _State:
    calls: list[Call] = field(default_factory=list)
    failures: list[_Failure] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    clock: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: _State

    def do_POST(self) -> None:
        raw = self._body().decode("utf-8")
        if self.headers.get("Content-Type", "").startswith("application/json"):
            params: dict[str, Any] = json.loads(raw or "{}")
        else:
            params = dict(parse_qsl(raw))
        path, _, query = self.path.partition("?")
        # Some methods send their arguments in the query string rather than the body.
        params = {**dict(parse_qsl(query)), **params}
        method = path.removeprefix("/api/") if path.startswith("/api/") else path
        with self.state.lock:
            failure = next(
                (f for f in self.state.failures if f.method == method and f.when(params)), None
            )
            if failure is not None:
                self.state.failures.remove(failure)
            status = failure.status if failure else 200
            self.state.calls.append(
                Call(method, params, dict(self.headers), time.monotonic(), status)
            )
            ts = f"1700000000.{next(self.state.clock):06d}"
        if failure is not None:
            self._reply(failure.status, {"ok": False, "error": "ratelimited"}, failure.headers)
            return
        self._reply(200, self._answer(method, params, ts))

    def _body(self) -> bytes:
        # aiohttp sends form bodies chunked, without a Content-Length.
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self, method: str, params: dict[str, Any], ts: str) -> dict[str, Any]:
        channel = params.get("channel")
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://harbor.slack.com/",
                "team": "Harbor",
                "user": "assistant",
                "team_id": TEAM,
                "user_id": BOT_USER,
                "bot_id": BOT_ID,
                "is_enterprise_install": False,
            }
        if method == "chat.postMessage":
            return {"ok": True, "channel": channel, "ts": ts, "message": {"ts": ts}}
        if method == "chat.update":
            return {"ok": True, "channel": channel, "ts": params.get("ts"), "text": ""}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": ts}
        if method == "conversations.replies":
            return {"ok": True, "messages": [], "has_more": False}
        return {"ok": True}

    def _reply(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test output is for the tests."""


class FakeSlackServer:
    """Slack's Web API on a free loopback port, in a thread; a context manager."""

    def __init__(self) -> None:
        self._state = _State()
        handler = type("Handler", (_Handler,), {"state": self._state})
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", free_loopback_port()), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:port``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def url(self) -> str:
        """The Web API base URL (``ASSISTANT_SLACK_API_URL``)."""
        return f"{self.origin}/api/"

    def calls(self, method: str | None = None, *, channel: str | None = None) -> list[Call]:
        """The requests received so far, optionally only one method's or one channel's."""
        with self._state.lock:
            calls = list(self._state.calls)
        return [
            call
            for call in calls
            if (method is None or call.method == method)
            and (channel is None or call.channel == channel)
        ]

    def wait_for(self, condition: Callable[[FakeSlackServer], bool], timeout: float = 60.0) -> None:
        """Wait until ``condition(self)`` holds; fail the test after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not condition(self):
            if time.monotonic() > deadline:
                raise AssertionError(
                    "Slack never received what was expected; got: "
                    + ", ".join(f"{c.method}({c.channel})" for c in self.calls())
                )
            time.sleep(0.02)

    def fail(
        self,
        method: str,
        status: int,
        headers: dict[str, str] | None = None,
        when: Callable[[dict[str, Any]], bool] = lambda params: True,
    ) -> None:
        """Answer the next ``method`` request matching ``when`` with ``status``."""
        with self._state.lock:
            self._state.failures.append(_Failure(method, status, headers or {}, when))

    def __enter__(self) -> FakeSlackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
