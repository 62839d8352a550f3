"""Server-sent events at the HTTP edge: an answer stream encoded as ``event:``/``data:`` lines.

Stream events stay frozen dataclasses everywhere else; here each becomes one SSE event named by
its ``type`` with the dataclass as JSON. Three things make a stream safe to put behind proxies
and in front of a paid provider:

- Errors that happen before the first event (unknown assistant or conversation, invalid
  message) must still become ordinary problem responses, so ``first_event`` pulls the first
  event before a response is chosen.
- A comment line (``: heartbeat``) goes out every ``HEARTBEAT_SECONDS`` so idle proxies keep the
  connection while a provider is slow; ``X-Accel-Buffering: no`` keeps nginx from buffering.
- When the client goes away the answer stream is closed (``aclose``), which closes the
  provider's HTTP stream instead of paying for tokens nobody reads.

In a route::

    events = core.stream("How do I reset my password?", kb="docs")
    first = await first_event(events)  # NotFoundError etc. raise here, before any byte
    return sse_response(encode_stream(first, events))
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator

import anyio
import orjson
from sse_starlette import EventSourceResponse, ServerSentEvent

from assistant.chat.events import ErrorEvent, StreamEvent
from assistant.errors import AssistantError

__all__ = [
    "HEARTBEAT_SECONDS",
    "SEND_TIMEOUT_SECONDS",
    "close_stream",
    "encode_event",
    "encode_stream",
    "first_event",
    "sse_message",
    "sse_response",
    "stream_failure",
]

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
"""Seconds between heartbeat comments on an open stream."""

SEND_TIMEOUT_SECONDS = 30.0
"""A client that accepts no bytes for this long is dropped (and its answer stream closed)."""

# Plain LF line ends: what every EventSource and line-based client splits on.
_SEPARATOR = "\n"


async def close_stream(events: AsyncIterator[StreamEvent]) -> None:
    """Close an answer stream, even from a cancelled task (the client went away).

    The close is shielded from the cancellation so the provider's HTTP stream really closes.
    """
    if isinstance(events, AsyncGenerator):
        with anyio.CancelScope(shield=True):
            await events.aclose()


async def first_event(events: AsyncIterator[StreamEvent]) -> StreamEvent:
    """The first event of ``events``; errors raised before it propagate (the stream is closed).

    Raises:
        AssistantError: whatever the stream raised before its first event (``NotFoundError``,
            ``InvalidInputError``, …), for the problem handlers to answer.
        RuntimeError: the stream ended without any event.
    """
    try:
        return await anext(events)
    except StopAsyncIteration:
        raise RuntimeError("the answer stream ended before its first event") from None
    except BaseException:
        await close_stream(events)
        raise


def sse_message(data: str, *, event: str | None = None) -> ServerSentEvent:
    """An SSE message: ``event: <event>`` (when given) and ``data`` (no line breaks in it)."""
    return ServerSentEvent(data=data, event=event, sep=_SEPARATOR)


def encode_event(event: StreamEvent) -> ServerSentEvent:
    """One stream event as an SSE event: ``event: <type>`` and the dataclass as JSON ``data``."""
    # orjson reads the dataclasses itself (no copy into dicts first): a turn sends several.
    data = orjson.dumps(event, option=orjson.OPT_NON_STR_KEYS).decode()
    return sse_message(data, event=event.type)


def stream_failure(exc: Exception) -> ErrorEvent:
    """The ``error`` event for an exception raised after streaming started.

    The assistant's own errors keep their message (it says how to fix); anything else is
    logged and reported without details, which may hold internals.
    """
    if isinstance(exc, AssistantError):
        logger.warning("answer stream failed after it started: %s", exc)
        return ErrorEvent(type(exc).__name__, str(exc))
    logger.exception("answer stream failed after it started")
    return ErrorEvent("InternalError", "the answer failed; try again")


async def encode_stream(
    first: StreamEvent, events: AsyncIterator[StreamEvent]
) -> AsyncIterator[ServerSentEvent]:
    """``first`` and the rest of ``events`` as SSE events; ``events`` is closed at the end,
    also when the client disconnects. A failure after the first event becomes an ``error``
    event (the status line has been sent)."""
    try:
        yield encode_event(first)
        async for event in events:
            yield encode_event(event)
    except Exception as exc:
        yield encode_event(stream_failure(exc))
    finally:
        await close_stream(events)


def _heartbeat() -> ServerSentEvent:
    return ServerSentEvent(comment="heartbeat", sep=_SEPARATOR)


def sse_response(
    messages: AsyncIterator[ServerSentEvent],
    *,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
) -> EventSourceResponse:
    """A ``text/event-stream`` response over ``messages`` with heartbeats and no caching.

    On client disconnect the producer is cancelled (its ``finally`` runs, closing the answer
    stream); the same happens to a client that stops reading for ``SEND_TIMEOUT_SECONDS``.
    """
    return EventSourceResponse(
        messages,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        ping=heartbeat_seconds,
        ping_message_factory=_heartbeat,
        sep=_SEPARATOR,
        send_timeout=SEND_TIMEOUT_SECONDS,
    )
