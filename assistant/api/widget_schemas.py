"""Request and response bodies of the widget's own routes (``/api/widget``, ``.../widget/...``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["WidgetCitation", "WidgetConversation", "WidgetFeedback", "WidgetTurn"]


class WidgetCitation(BaseModel):
    """A numbered source of an answer."""

    n: int
    title: str
    url: str
    quote: str = ""


class WidgetTurn(BaseModel):
    """One question and answer as the visitor saw it; ``turn_ref`` rates it."""

    question: str
    answer: str
    citations: list[WidgetCitation]
    outcome: str
    turn_ref: str


class WidgetConversation(BaseModel):
    """The visitor's own conversation, read back to restore the widget after a reload."""

    id: str
    turns: list[WidgetTurn]


class WidgetFeedback(BaseModel):
    """Thumbs up (``1``) or down (``-1``) on the turn named by its public reference."""

    model_config = ConfigDict(extra="forbid")

    turn: str = Field(min_length=1, max_length=80)
    rating: Literal[1, -1]
    comment: str = Field(default="", max_length=2000)
