"""The answer-provider seam: one streaming method.

A provider receives the question, the numbered sources and the rendered messages, and yields
``TextDelta`` events then one ``DoneEvent`` (it may yield a ``CitationsEvent`` of its own when it
knows exactly which spans it quoted). LLM providers use ``messages``; the extractive provider
reads ``question`` and ``sources`` directly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from assistant.chat.events import CitationsEvent, DoneEvent, Source, TextDelta

if TYPE_CHECKING:
    import torch

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
    query_tokens: torch.Tensor | None = field(default=None, compare=False, repr=False)
    """``question``'s token vectors (n_tokens, token_dimension) from the search that found the
    sources, when known: a provider that scores text against the question reuses them."""


ProviderEvent = TextDelta | CitationsEvent | DoneEvent


class ChatProvider(Protocol):
    """Streams an answer for a request."""

    name: str

    def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
        """Yield text deltas, optionally citations, and finally one ``DoneEvent``."""
        ...
