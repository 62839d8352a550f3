"""One earlier exchange of a conversation, as the orchestrator hands it to its parts."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HistoryTurn"]


@dataclass(frozen=True, slots=True)
class HistoryTurn:
    """A user message, the standalone question it was condensed into, and the answer given."""

    question: str
    answer: str
    standalone_question: str = ""
