"""A local server that speaks Anthropic's Messages API wire protocol, for provider tests.

``ScriptedServer`` is protocol-neutral: it records every request it receives and answers each one
with the next scripted ``Reply`` (the last reply repeats): an error status with a JSON body, or a
200 server-sent-event stream sent with chunked transfer encoding, which then ends cleanly, is cut
mid-body, or is held open until the client disconnects. ``anthropic_answer`` and
``anthropic_error`` script what the real API sends: ``message_start``, a thinking block, ``ping``,
a text block of ``text_delta``s, ``message_delta`` with the output usage, ``message_stop``; and
the error envelope ``{"type": "error", "error": {"type", "message"}}``.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self

__all__ = [
    "FakeAnthropic",
    "RecordedRequest",
    "Reply",
    "ScriptedServer",
    "anthropic_answer",
    "anthropic_error",
    "anthropic_event",
    "anthropic_stream_error",
]

# The longest a held stream waits for its client to go away before giving up.
_HOLD_LIMIT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    headers: Mapping[str, str]
    """Header names lower-cased."""
    body: Any
    """The JSON body, parsed."""
    received_at: float
    """``time.monotonic()`` when the request arrived."""


@dataclass(frozen=True, slots=True)
class Reply:
    """How the server answers one request.

    A ``status`` other than 200 sends ``body`` as JSON. A 200 sends ``frames`` (already encoded
    server-sent events) as a chunked stream, then ``after_frames`` decides the end: ``"end"``
    finishes the body, ``"drop"`` closes the connection mid-body, ``"hold"`` keeps it open until
    the client disconnects. ``delay_seconds`` passes before the status line is sent, and
    ``frame_interval_seconds`` between two frames.
    """

    status: int = 200
    frames: tuple[bytes, ...] = ()
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()
    delay_seconds: float = 0.0
    frame_interval_seconds: float = 0.0
    after_frames: Literal["end", "drop", "hold"] = "end"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script: Sequence[Reply]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = list(script)
        self.requests: list[RecordedRequest] = []
        self.lock = threading.Lock()
        self.disconnected = threading.Event()
        self.stopping = threading.Event()

    def next_reply(self, request: RecordedRequest) -> Reply:
        with self.lock:
            self.requests.append(request)
            return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that goes away mid-answer is what several tests do on purpose.
        self.disconnected.set()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Streamed events leave at once, not held by Nagle's algorithm for a delayed ACK.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        raw = self.rfile.read(length) if length else b""
        request = RecordedRequest(
            method="POST",
            path=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=json.loads(raw) if raw else None,
            received_at=time.monotonic(),
        )
        reply = self.server.next_reply(request)
        if reply.delay_seconds:
            self.server.stopping.wait(reply.delay_seconds)
        try:
            if reply.status != 200:
                self._send_error(reply)
            else:
                self._send_stream(reply)
        except OSError:
            self.server.disconnected.set()
            self.close_connection = True

    def _send_error(self, reply: Reply) -> None:
        payload = json.dumps(reply.body).encode()
        self.send_response(reply.status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _send_stream(self, reply: Reply) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        for index, frame in enumerate(reply.frames):
            if index and reply.frame_interval_seconds:
                self.server.stopping.wait(reply.frame_interval_seconds)
            self.wfile.write(f"{len(frame):x}\r\n".encode() + frame + b"\r\n")
            self.wfile.flush()
        if reply.after_frames == "end":
            self.wfile.write(b"0\r\n\r\n")
        elif reply.after_frames == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self.close_connection = True
            self._wait_for_disconnect()

    def _wait_for_disconnect(self) -> None:
        """Return once the client closes its end (a read at EOF), or the server stops."""
        waited = 0.0
        while waited < _HOLD_LIMIT_SECONDS and not self.server.stopping.is_set():
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            waited += 0.05
            if readable and self.connection.recv(1, socket.MSG_PEEK) == b"":
                self.server.disconnected.set()
                return


class ScriptedServer:
    """A threaded HTTP server on 127.0.0.1 answering requests from a script of ``Reply``s.

    Use it as a context manager; ``requests`` lists what it received, and ``disconnected`` is set
    once a client hung up on an answer still being sent.
    """

    def __init__(self, script: Sequence[Reply] = (Reply(),)) -> None:
        self._server = _Server(script)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far, oldest first."""
        with self._server.lock:
            return list(self._server.requests)

    @property
    def disconnected(self) -> threading.Event:
        """Set when a client closed its connection while an answer was being sent."""
        return self._server.disconnected

    def script(self, *replies: Reply) -> None:
        """Replace the replies for the next requests (the last one repeats)."""
        with self._server.lock:
            self._server.script = list(replies)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class FakeAnthropic(ScriptedServer):
    """A fake Messages API; by default every request gets a short answer."""

    def __init__(self, script: Sequence[Reply] | None = None) -> None:
        super().__init__(script or (Reply(frames=anthropic_answer(["Hello", " world"])),))


def anthropic_event(name: str, data: Mapping[str, Any]) -> bytes:
    """One server-sent event as the Messages API writes it."""
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def anthropic_answer(
    pieces: Sequence[str],
    *,
    input_tokens: int = 25,
    output_tokens: int = 12,
    cache_read_input_tokens: int = 0,
    model: str = "claude-sonnet-5-5",
    thinking: str | None = "Let me look at the sources.",
) -> tuple[bytes, ...]:
    """The full event stream of one answer whose text deltas are ``pieces``."""
    frames = [
        anthropic_event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_01fake",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": input_tokens,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": cache_read_input_tokens,
                        "output_tokens": 1,
                    },
                },
            },
        )
    ]
    index = 0
    if thinking is not None:
        frames += [
            _block_start(index, {"type": "thinking", "thinking": "", "signature": ""}),
            _block_delta(index, {"type": "thinking_delta", "thinking": thinking}),
            _block_delta(index, {"type": "signature_delta", "signature": "EqQBCgIYAhIM"}),
            anthropic_event("content_block_stop", {"type": "content_block_stop", "index": index}),
        ]
        index += 1
    frames.append(anthropic_event("ping", {"type": "ping"}))
    frames.append(_block_start(index, {"type": "text", "text": ""}))
    frames += [_block_delta(index, {"type": "text_delta", "text": piece}) for piece in pieces]
    frames += [
        anthropic_event("content_block_stop", {"type": "content_block_stop", "index": index}),
        anthropic_event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
        ),
        anthropic_event("message_stop", {"type": "message_stop"}),
    ]
    return tuple(frames)


def anthropic_error(
    status: int, error_type: str, message: str, *, headers: Sequence[tuple[str, str]] = ()
) -> Reply:
    """An error status with the Messages API's error envelope."""
    return Reply(
        status=status,
        body={
            "type": "error",
            "error": {"type": error_type, "message": message},
            "request_id": "req_01fake",
        },
        headers=(("request-id", "req_01fake"), *headers),
    )


def anthropic_stream_error(error_type: str, message: str) -> bytes:
    """The ``event: error`` the API sends inside a 200 stream (e.g. when overloaded)."""
    return anthropic_event(
        "error", {"type": "error", "error": {"type": error_type, "message": message}}
    )


def _block_start(index: int, block: Mapping[str, Any]) -> bytes:
    return anthropic_event(
        "content_block_start",
        {"type": "content_block_start", "index": index, "content_block": dict(block)},
    )


def _block_delta(index: int, delta: Mapping[str, Any]) -> bytes:
    return anthropic_event(
        "content_block_delta", {"type": "content_block_delta", "index": index, "delta": dict(delta)}
    )
