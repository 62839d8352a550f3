"""The answer-provider seam: one streaming method.

A provider receives the question, the numbered sources and the rendered messages, and yields
``TextDelta`` events then one ``DoneEvent`` (it may yield a ``CitationsEvent`` of its own when it
knows exactly which spans it quoted). LLM providers use ``messages``; the extractive provider
reads ``question`` and ``sources`` directly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol

from assistant.chat.events import CitationsEvent, DoneEvent, Source, TextDelta

__all__ = ["ChatProvider", "ChatRequest", "Message", "ProviderEvent"]


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message sent to a model."""

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """What a provider answers: the question, its numbered sources, the rendered prompt."""

    question: str
    sources: tuple[Source, ...]
    messages: tuple[Message, ...] = ()


ProviderEvent = TextDelta | CitationsEvent | DoneEvent


class ChatProvider(Protocol):
    """Streams an answer for a request."""

    name: str

    def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
        """Yield text deltas, optionally citations, and finally one ``DoneEvent``."""
        ...
