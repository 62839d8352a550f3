"""Turns as plain data for analytics, read in one pass from the application database.

Only the light columns of a turn are read here, together with its cached insight (question
vector, groundedness, pages used and cited) and its feedback; the heavy JSON columns (passage
texts, the retrieval trace) are read only where one is needed (``nearest_pages``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select

from assistant.analytics.period import Period
from assistant.analytics.types import Page
from assistant.database.analytics_models import TurnInsightRow
from assistant.database.engine import Database
from assistant.database.models import ConversationRow, FeedbackRow, TurnRow

__all__ = ["Page", "TurnFacts", "load_turns", "nearest_pages"]


@dataclass(frozen=True, slots=True)
class TurnFacts:
    """What analytics needs of one stored turn.

    ``question`` is the standalone question (a follow-up rewritten with its conversation), or
    the message itself when there was nothing to rewrite. ``rating`` is -1 when any feedback on
    the turn is a thumbs down, 1 when there is only thumbs up, ``None`` without feedback.
    ``vector`` is the question's dense vector, (dimension,) float32, unit norm; empty (0,)
    when no insight has been computed yet.
    """

    id: int
    conversation_id: str
    visitor: str | None
    position: int
    question: str
    outcome: str
    top_score: float | None
    rating: int | None
    provider: str
    model: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    timings_ms: Mapping[str, float]
    created_at: datetime
    vector: NDArray[np.float32]
    groundedness: float | None
    context_pages: tuple[Page, ...]
    cited_urls: tuple[str, ...]


_EMPTY = np.zeros(0, dtype=np.float32)


def _vector(data: bytes | None) -> NDArray[np.float32]:
    if not data:
        return _EMPTY
    return np.frombuffer(data, dtype=np.float16).astype(np.float32)


def _ratings(database: Database, assistant: str, period: Period) -> dict[int, int]:
    """The net rating of each turn of ``period`` that has feedback."""
    query = (
        select(FeedbackRow.turn_id, func.min(FeedbackRow.rating), func.max(FeedbackRow.rating))
        .join(TurnRow, TurnRow.id == FeedbackRow.turn_id)
        .where(
            FeedbackRow.assistant == assistant,
            TurnRow.assistant == assistant,
            TurnRow.created_at >= period.since,
            TurnRow.created_at < period.until,
        )
        .group_by(FeedbackRow.turn_id)
    )
    with database.session() as session:
        return {
            int(turn_id): -1 if int(lowest) < 0 else 1
            for turn_id, lowest, _highest in session.execute(query).all()
        }


def load_turns(database: Database, assistant: str, period: Period) -> list[TurnFacts]:
    """Every turn of ``assistant`` created in ``period``, oldest first."""
    query = (
        select(
            TurnRow.id,
            TurnRow.conversation_id,
            ConversationRow.visitor,
            TurnRow.position,
            TurnRow.question,
            TurnRow.standalone_question,
            TurnRow.outcome,
            TurnRow.top_score,
            TurnRow.provider,
            TurnRow.model,
            TurnRow.input_tokens,
            TurnRow.output_tokens,
            TurnRow.cost_usd,
            TurnRow.timings_ms,
            TurnRow.created_at,
            TurnInsightRow.question_vector,
            TurnInsightRow.groundedness,
            TurnInsightRow.context_pages,
            TurnInsightRow.cited_urls,
        )
        .join(ConversationRow, ConversationRow.id == TurnRow.conversation_id)
        .outerjoin(TurnInsightRow, TurnInsightRow.turn_id == TurnRow.id)
        .where(
            TurnRow.assistant == assistant,
            TurnRow.created_at >= period.since,
            TurnRow.created_at < period.until,
        )
        .order_by(TurnRow.created_at, TurnRow.id)
    )
    ratings = _ratings(database, assistant, period)
    with database.session() as session:
        rows = session.execute(query).all()
    return [
        TurnFacts(
            id=row.id,
            conversation_id=row.conversation_id,
            visitor=row.visitor,
            position=row.position,
            question=row.standalone_question or row.question,
            outcome=row.outcome,
            top_score=row.top_score,
            rating=ratings.get(row.id),
            provider=row.provider,
            model=row.model,
            input_tokens=row.input_tokens,
            output_tokens=row.output_tokens,
            cost_usd=row.cost_usd,
            timings_ms=row.timings_ms or {},
            created_at=row.created_at,
            vector=_vector(row.question_vector),
            groundedness=row.groundedness,
            context_pages=tuple(
                Page(str(url), str(title)) for url, title in row.context_pages or ()
            ),
            cited_urls=tuple(str(url) for url in row.cited_urls or ()),
        )
        for row in rows
    ]


def nearest_pages(
    database: Database, assistant: str, turn_ids: Sequence[int], *, limit: int = 3
) -> list[tuple[str, float]]:
    """The pages that came closest to answering the turns ``turn_ids``: the best
    late-interaction score each URL reached in their retrieval traces, best first."""
    best: dict[str, float] = defaultdict(lambda: float("-inf"))
    with database.session() as session:
        traces = session.scalars(
            select(TurnRow.trace).where(TurnRow.assistant == assistant, TurnRow.id.in_(turn_ids))
        ).all()
    for trace in traces:
        for candidate in trace.get("candidates") or ():
            url = candidate.get("url")
            score = candidate.get("late_interaction_score")
            if isinstance(url, str) and isinstance(score, int | float):
                best[url] = max(best[url], float(score))
    ranked = sorted(best.items(), key=lambda item: (-item[1], item[0]))
    return ranked[:limit]
