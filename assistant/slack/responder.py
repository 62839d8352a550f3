"""Answers streamed into Slack: one message in the thread, updated as the text arrives.

The first text posts the message; later text updates it at most once per ``update_interval``
(``chat.update`` is rate limited by Slack); the finished answer replaces it with mrkdwn
sections, a Sources block and the feedback buttons. Private answers (ephemeral, or a slash
command's) cannot be edited, so they are sent once, finished. A provider failure ends the
message with a short apology; the details go to the log, never to Slack.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from assistant.chat.events import (
    Citation,
    CitationsEvent,
    DoneEvent,
    ErrorEvent,
    Source,
    SourcesEvent,
    StreamEvent,
    TextDelta,
)
from assistant.core import Assistant
from assistant.errors import AssistantError, NotFoundError
from assistant.slack.mrkdwn import MAX_SECTION_CHARS, answer_blocks, feedback_value, to_mrkdwn
from assistant.slack.store import ThreadKey, ThreadStore

__all__ = [
    "APOLOGY",
    "EphemeralSink",
    "RespondSink",
    "SlackAnswerer",
    "ThreadSink",
]

logger = logging.getLogger(__name__)

APOLOGY = "Sorry, I can't answer that right now. Please try again in a moment."
UNFINISHED = "Sorry, I couldn't finish this answer. Please try again in a moment."

Blocks = list[dict[str, Any]]


class AnswerSink(Protocol):
    """Where an answer goes: shown while it streams (or not), then shown finished."""

    async def progress(self, text: str) -> None:
        """The answer so far (Markdown); may be ignored."""
        ...

    async def finish(self, messages: list[Blocks], fallback: str) -> None:
        """The finished answer: one or more messages of blocks, and its plain-text form."""
        ...


def _preview(text: str) -> str:
    shown = to_mrkdwn(text)
    return shown if len(shown) <= MAX_SECTION_CHARS else shown[: MAX_SECTION_CHARS - 1] + "…"


@dataclass
class ThreadSink:
    """A public reply in a thread: posted at the first text, updated while it streams."""

    client: AsyncWebClient
    channel: str
    thread_ts: str
    update_interval: float = 1.0
    ts: str | None = None
    _last_update: float = field(default=0.0, repr=False)

    async def progress(self, text: str) -> None:
        """Post the message, or update it if the last update is old enough."""
        now = time.monotonic()
        if self.ts is None:
            response = await self.client.chat_postMessage(
                channel=self.channel, thread_ts=self.thread_ts, text=_preview(text)
            )
            self.ts = str(response["ts"])
            self._last_update = now
        elif now - self._last_update >= self.update_interval:
            self._last_update = now
            await self.client.chat_update(channel=self.channel, ts=self.ts, text=_preview(text))

    async def finish(self, messages: list[Blocks], fallback: str) -> None:
        """Replace the streamed message with the first finished one; post the rest after it."""
        notification = fallback[:MAX_SECTION_CHARS]
        first, *rest = messages
        if self.ts is None:
            await self.client.chat_postMessage(
                channel=self.channel, thread_ts=self.thread_ts, text=notification, blocks=first
            )
        else:
            await self.client.chat_update(
                channel=self.channel, ts=self.ts, text=notification, blocks=first
            )
        for blocks in rest:
            await self.client.chat_postMessage(
                channel=self.channel, thread_ts=self.thread_ts, text=notification, blocks=blocks
            )


@dataclass
class EphemeralSink:
    """A reply only the asker sees, in the thread of their message."""

    client: AsyncWebClient
    channel: str
    user: str
    thread_ts: str | None = None

    async def progress(self, text: str) -> None:
        """Ephemeral messages cannot be edited: nothing is shown until the end."""

    async def finish(self, messages: list[Blocks], fallback: str) -> None:
        """Send each message ephemerally."""
        for blocks in messages:
            await self.client.chat_postEphemeral(
                channel=self.channel,
                user=self.user,
                thread_ts=self.thread_ts,
                text=fallback[:MAX_SECTION_CHARS],
                blocks=blocks,
            )


@dataclass
class RespondSink:
    """A slash command's private reply, through its ``response_url`` (bolt's ``respond``)."""

    respond: Callable[..., Awaitable[Any]]

    async def progress(self, text: str) -> None:
        """Sent once, finished."""

    async def finish(self, messages: list[Blocks], fallback: str) -> None:
        """Send each message as an ephemeral response."""
        for blocks in messages:
            await self.respond(
                text=fallback[:MAX_SECTION_CHARS], blocks=blocks, response_type="ephemeral"
            )


@dataclass
class _Collected:
    text: list[str] = field(default_factory=list)
    sources: tuple[Source, ...] = ()
    citations: tuple[Citation, ...] = ()
    conversation_id: str | None = None
    turn_id: int | None = None
    failed: bool = False


class SlackAnswerer:
    """Runs one chat turn of ``Assistant.stream`` and shows it through a sink."""

    def __init__(self, core: Assistant, threads: ThreadStore, *, handoff: bool) -> None:
        self._core = core
        self._threads = threads
        self._handoff = handoff

    async def answer(
        self,
        question: str,
        sink: AnswerSink,
        *,
        assistant: str,
        user: str,
        thread: ThreadKey | None = None,
    ) -> None:
        """Answer ``question`` for ``user``; a ``thread`` makes it a turn of its conversation."""
        collected = _Collected()
        try:
            await self._stream(question, sink, assistant, user, thread, collected)
        except SlackApiError as exc:
            # Slack refused a post; telling the user would need Slack too.
            logger.warning("Slack refused the answer: %s", exc.response.get("error"))
            return
        except AssistantError as exc:
            logger.warning("Slack question not answered: %s: %s", type(exc).__name__, exc)
            collected.failed = True
        except Exception:
            logger.exception("Slack question not answered")
            collected.failed = True
        await self._finish(sink, assistant, collected)

    async def _stream(
        self,
        question: str,
        sink: AnswerSink,
        assistant: str,
        user: str,
        thread: ThreadKey | None,
        collected: _Collected,
    ) -> None:
        conversation_id = (
            await asyncio.to_thread(self._threads.conversation, thread) if thread else None
        )
        visitor = f"slack:{thread.team}:{user}" if thread else f"slack:{user}"
        events = self._core.stream(
            question,
            kb=assistant,
            conversation_id=conversation_id,
            visitor=visitor,
            remember=thread is not None,
        )
        try:
            first = await anext(events)
        except NotFoundError:
            if conversation_id is None:
                raise
            # The thread's conversation was deleted: the thread starts a new one.
            events = self._core.stream(question, kb=assistant, visitor=visitor)
            first = await anext(events)
        # Closed at once if Slack fails mid-answer, and with it the provider's stream.
        async with contextlib.aclosing(cast(AsyncGenerator[StreamEvent, None], events)):
            await self._handle(first, sink, assistant, thread, collected)
            async for event in events:
                await self._handle(event, sink, assistant, thread, collected)

    async def _handle(
        self,
        event: object,
        sink: AnswerSink,
        assistant: str,
        thread: ThreadKey | None,
        collected: _Collected,
    ) -> None:
        if isinstance(event, SourcesEvent):
            collected.sources = event.sources
            collected.conversation_id = event.conversation_id
            if thread is not None and event.conversation_id is not None:
                await asyncio.to_thread(
                    self._threads.remember, thread, assistant, event.conversation_id
                )
        elif isinstance(event, TextDelta):
            collected.text.append(event.text)
            await sink.progress("".join(collected.text))
        elif isinstance(event, CitationsEvent):
            collected.citations = event.citations
        elif isinstance(event, DoneEvent):
            collected.turn_id = event.turn_id
        elif isinstance(event, ErrorEvent):
            logger.warning("Slack answer failed: %s: %s", event.code, event.message)
            collected.failed = True

    async def _finish(self, sink: AnswerSink, assistant: str, collected: _Collected) -> None:
        text = "".join(collected.text).strip()
        if collected.failed:
            text = f"{text}\n\n_{UNFINISHED}_" if text else APOLOGY
            messages = answer_blocks(text)
        else:
            messages = answer_blocks(
                text or APOLOGY,
                citations=collected.citations,
                sources=collected.sources,
                button_value=(
                    feedback_value(assistant, collected.turn_id)
                    if collected.turn_id is not None
                    else None
                ),
                handoff=self._handoff,
            )
        try:
            await sink.finish(messages, to_mrkdwn(text or APOLOGY))
        except SlackApiError as exc:
            logger.warning("Slack refused the answer: %s", exc.response.get("error"))
