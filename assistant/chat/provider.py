"""The answer-provider seam: one streaming method.

A provider receives the question, the numbered sources and the rendered messages, and yields
``TextDelta`` events then one ``DoneEvent`` (it may yield a ``CitationsEvent`` of its own when it
knows exactly which spans it quoted). LLM providers use ``messages``; the extractive provider
reads ``question`` and ``sources`` directly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Literal, Protocol

from assistant.chat.events import CitationsEvent, DoneEvent, Source, TextDelta

if TYPE_CHECKING:
    import torch

__all__ = ["ChatProvider", "ChatRequest", "Message", "PassageTokens", "ProviderEvent"]


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message sent to a model."""

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class PassageTokens:
    """One chunk of a source as the late-interaction encoder read it, with the token vectors
    that reading gave (from the search's token cache)."""

    text: str
    """The chunk's own text (a source's text is made of these)."""
    encoded_text: str
    """What the encoder read: title and headings, then ``text`` from ``text_start`` on."""
    text_start: int
    read_tokens: Callable[[], torch.Tensor] = field(compare=False, repr=False)
    """Reads ``tokens``. Called on first use only: the rows are stored quantised, and a
    provider that answers from the messages never needs them scaled."""

    @cached_property
    def tokens(self) -> torch.Tensor:
        """(n_tokens, token_dimension), the rows of ``encoded_text`` in order."""
        return self.read_tokens()


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """What a provider answers: the question, its numbered sources, the rendered prompt."""

    question: str
    sources: tuple[Source, ...]
    messages: tuple[Message, ...] = ()
    query_tokens: torch.Tensor | None = field(default=None, compare=False, repr=False)
    """``question``'s token vectors (n_tokens, token_dimension) from the search that found the
    sources, when known: a provider that scores text against the question reuses them."""
    passage_tokens: tuple[PassageTokens, ...] = field(default=(), compare=False, repr=False)
    """The chunks the sources are made of, with their token vectors, when known: a provider
    that scores text against the question scores spans of them instead of encoding again."""


ProviderEvent = TextDelta | CitationsEvent | DoneEvent


class ChatProvider(Protocol):
    """Streams an answer for a request."""

    name: str

    def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
        """Yield text deltas, optionally citations, and finally one ``DoneEvent``."""
        ...
