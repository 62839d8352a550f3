"""Stored conversations as callers read them: turns, conversation summaries, conversations.

Plain dataclasses with no SQLAlchemy at import, shared by the conversation store, the
in-process ``Assistant`` and the HTTP client.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from assistant.chat.events import Citation, Source, Usage

__all__ = ["Conversation", "ConversationSummary", "Outcome", "TurnRecord"]

Outcome = Literal["answered", "no_answer", "error"]


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """A stored turn."""

    id: int
    conversation_id: str
    position: int
    question: str
    standalone_question: str
    answer: str
    sources: tuple[Source, ...]
    citations: tuple[Citation, ...]
    provider: str
    model: str | None
    usage: Usage
    cost_usd: float | None
    timings_ms: Mapping[str, float]
    outcome: Outcome
    top_score: float | None
    error_code: str | None
    created_at: datetime
    trace: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """A conversation without its turns."""

    id: str
    assistant: str
    title: str
    visitor: str | None
    turns: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Conversation:
    """A conversation and every turn of it, oldest first."""

    id: str
    assistant: str
    title: str
    visitor: str | None
    created_at: datetime
    updated_at: datetime
    turns: tuple[TurnRecord, ...]
