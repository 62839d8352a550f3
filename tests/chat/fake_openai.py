"""A local server that speaks OpenAI's Chat Completions streaming protocol, for tests.

It listens on a free loopback port and answers ``POST …/chat/completions`` the way the vendor
does: ``text/event-stream`` over chunked HTTP/1.1, ``data: {json}`` events whose
``choices[0].delta.content`` carry the text, a final chunk with the finish reason, a usage chunk
with empty ``choices`` when ``stream_options.include_usage`` is set, then ``data: [DONE]``. Errors
are JSON ``{"error": {...}}`` bodies with the vendor's statuses and headers.

What it does is scripted per request (``FakeOpenAIServer.script``): each behaviour is used for one
request, the last one for every request after it. Every request is recorded (headers, JSON body)
so tests assert on what the real SDK sent.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tests.support.servers import free_loopback_port

__all__ = [
    "Drop",
    "Fail",
    "FakeOpenAIServer",
    "Raw",
    "RecordedRequest",
    "Stall",
    "Stream",
    "Trickle",
]


@dataclass(frozen=True)
class Stream:
    """A normal answer: one chunk per delta, the finish reason, usage if asked for, ``[DONE]``."""

    deltas: tuple[str, ...]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"
    interval_seconds: float = 0.0
    """The pause before each delta after the first."""


@dataclass(frozen=True)
class Fail:
    """An error status with the vendor's JSON error body and optional extra headers."""

    status: int
    message: str = "The server had an error while processing your request."
    error_type: str = "server_error"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Stall:
    """Accept the request and send nothing for ``seconds`` (or until the server stops)."""

    seconds: float


@dataclass(frozen=True)
class Raw:
    """Stream ``deltas`` as usual, then write ``tail`` verbatim and end the body."""

    deltas: tuple[str, ...]
    tail: bytes


@dataclass(frozen=True)
class Drop:
    """Stream ``deltas``, then cut the connection.

    With ``chunked`` the cut lands inside the chunked body (a protocol error for the client);
    without it the response has no length and simply ends early, with no finish reason.
    """

    deltas: tuple[str, ...]
    chunked: bool = True


@dataclass(frozen=True)
class Trickle:
    """Send a delta every ``interval_seconds`` until the client goes away (or the server stops).

    With ``deltas``, those are sent first and then only SSE comments (keep-alives), so the
    client sees exactly ``deltas`` while the stream stays open.
    """

    interval_seconds: float = 0.02
    deltas: tuple[str, ...] = ()


Behaviour = Stream | Fail | Stall | Raw | Drop | Trickle


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it; header names are lower case."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class _State:
    behaviours: list[Behaviour] = field(default_factory=lambda: [Stream(("Hello",))])
    requests: list[RecordedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    disconnected: threading.Event = field(default_factory=threading.Event)
    stopping: threading.Event = field(default_factory=threading.Event)

    def record(self, request: RecordedRequest) -> Behaviour:
        with self.lock:
            self.requests.append(request)
            index = min(len(self.requests), len(self.behaviours)) - 1
            return self.behaviours[index]


def _chunk(model: str, choices: list[dict[str, Any]], usage: object = None) -> bytes:
    payload = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1_760_000_000,
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": choices,
        "usage": usage,
    }
    return f"data: {json.dumps(payload)}\n\n".encode()


def _delta(model: str, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
    return _chunk(
        model,
        [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    )


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Each streamed chunk leaves at once, as from a real API server: with Nagle's algorithm a
    # chunk could wait for the client's delayed ACK (40 ms on Linux) and time the fake, not us.
    disable_nagle_algorithm = True
    state: _State  # set on the subclass each server makes

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        raw_body = self.rfile.read(length)
        body = json.loads(raw_body) if raw_body else {}
        recorded = RecordedRequest(
            "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body
        )
        behaviour = self.state.record(recorded)
        if not self.path.endswith("/chat/completions"):
            self._fail(Fail(404, f"Unknown path {self.path}", "invalid_request_error"))
            return
        try:
            self._perform(behaviour, body)
        except (BrokenPipeError, ConnectionResetError):
            self.state.disconnected.set()
            self.close_connection = True

    def _perform(self, behaviour: Behaviour, body: dict[str, Any]) -> None:
        model = str(body.get("model", ""))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        if isinstance(behaviour, Fail):
            self._fail(behaviour)
        elif isinstance(behaviour, Stall):
            self.state.stopping.wait(behaviour.seconds)
            self.close_connection = True
        elif isinstance(behaviour, Stream):
            self._start_stream()
            self._send_deltas(model, behaviour.deltas, interval_seconds=behaviour.interval_seconds)
            self._send(_delta(model, {}, behaviour.finish_reason))
            if include_usage:
                usage = {
                    "prompt_tokens": behaviour.prompt_tokens,
                    "completion_tokens": behaviour.completion_tokens,
                    "total_tokens": behaviour.prompt_tokens + behaviour.completion_tokens,
                }
                self._send(_chunk(model, [], usage))
            self._send(b"data: [DONE]\n\n")
            self._end_stream()
        elif isinstance(behaviour, Raw):
            self._start_stream()
            self._send_deltas(model, behaviour.deltas)
            self._send(behaviour.tail)
            self._end_stream()
        elif isinstance(behaviour, Drop):
            self._start_stream(chunked=behaviour.chunked)
            self._send_deltas(model, behaviour.deltas, chunked=behaviour.chunked)
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        else:
            self._start_stream()
            if behaviour.deltas:
                self._send_deltas(model, behaviour.deltas)
            deadline = time.monotonic() + 30
            while not self.state.stopping.is_set() and time.monotonic() < deadline:
                if behaviour.deltas:
                    self._send(b": keep-alive\n\n")
                else:
                    self._send(_delta(model, {"content": "tick "}))
                time.sleep(behaviour.interval_seconds)

    def _fail(self, failure: Fail) -> None:
        payload = json.dumps(
            {
                "error": {
                    "message": failure.message,
                    "type": failure.error_type,
                    "param": None,
                    "code": None,
                }
            }
        ).encode()
        self.send_response(failure.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in failure.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _start_stream(self, *, chunked: bool = True) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
        self.end_headers()

    def _send_deltas(
        self,
        model: str,
        deltas: tuple[str, ...],
        *,
        chunked: bool = True,
        interval_seconds: float = 0.0,
    ) -> None:
        self._send(_delta(model, {"role": "assistant", "content": "", "refusal": None}), chunked)
        for index, text in enumerate(deltas):
            if index and interval_seconds:
                time.sleep(interval_seconds)
            self._send(_delta(model, {"content": text}), chunked)

    def _send(self, data: bytes, chunked: bool = True) -> None:
        if chunked:
            data = f"{len(data):x}\r\n".encode() + data + b"\r\n"
        self.wfile.write(data)
        self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        del format, args  # keep test output quiet


class FakeOpenAIServer:
    """The fake endpoint on a free loopback port; use as a context manager.

    ``url`` is the base URL to give the SDK (it ends in ``/v1``), ``requests`` what it received,
    ``disconnected`` is set when a client went away while it was still writing.
    """

    def __init__(self) -> None:
        self._state = _State()
        self.port = free_loopback_port()
        handler = type("Handler", (_Handler,), {"state": self._state})
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        # A short poll interval lets shutdown() return promptly at the end of each test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        """The OpenAI-style base URL, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far, oldest first."""
        with self._state.lock:
            return list(self._state.requests)

    @property
    def disconnected(self) -> threading.Event:
        """Set once a client closed its connection in the middle of a streamed answer."""
        return self._state.disconnected

    def script(self, *behaviours: Behaviour) -> None:
        """Answer the next requests with ``behaviours`` in order; the last one repeats."""
        with self._state.lock:
            self._state.behaviours = list(behaviours)

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._state.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
