"""Per-turn facts computed once and stored: question vector, groundedness, pages used.

``refresh_insights`` finds the turns of an assistant in a period that have no insight yet (or
one computed for another turn or by another model), computes theirs in batches and stores them
in ``turn_insights`` with their pages in ``turn_pages`` (context, cited, nearest in the
trace); ``mark_reasked`` then flags the turns a later turn of their conversation asked again. Identical questions are embedded once per batch, and passages shared by
several answers are encoded once, which is what keeps a busy help centre's backlog cheap.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import torch
from sqlalchemy import Select, delete, func, or_, select, update

from assistant.analytics.groundedness import SUPPORT_THRESHOLD, cited_sentences, groundedness_score
from assistant.analytics.period import Period
from assistant.analytics.quality import REASK_SIMILARITY
from assistant.database.analytics_models import TurnInsightRow, TurnPageRow
from assistant.database.engine import Database
from assistant.database.models import TurnRow
from assistant.database.rollup_models import invalidate_hours
from assistant.database.unresolved import recount_unresolved
from assistant.knowledge.encoder import Encoder, TokenEncoder
from assistant.knowledge.vectors import unit_rows

__all__ = [
    "InsightEncoders",
    "mark_reasked",
    "pending_insights",
    "question_hash",
    "refresh_insights",
]

logger = logging.getLogger(__name__)

BATCH = 256

NEAREST_PER_TURN = 5
"""Pages kept per turn from its retrieval trace, best late-interaction score first."""


@dataclass(frozen=True, slots=True)
class InsightEncoders:
    """The encoders already loaded by the product: ``dense`` embeds questions, ``late`` gives
    the token vectors groundedness is measured with."""

    dense: Encoder
    late: TokenEncoder
    support_threshold: float = SUPPORT_THRESHOLD


def question_hash(question: str) -> str:
    """A stable key of the text that was embedded (whitespace and case folded)."""
    return hashlib.sha256(" ".join(question.lower().split()).encode("utf-8")).hexdigest()


class _TokenMemo:
    """Token matrices by text for one refresh: shared passages are encoded once."""

    def __init__(self, encoder: TokenEncoder) -> None:
        self._encoder = encoder
        self._known: dict[str, torch.Tensor] = {}

    def encode(self, texts: Sequence[str]) -> list[torch.Tensor]:
        missing = list(dict.fromkeys(text for text in texts if text not in self._known))
        if missing:
            self._known.update(
                zip(missing, self._encoder.encode_document_tokens(missing), strict=True)
            )
        return [self._known[text] for text in texts]


def _stale_query(assistant: str, period: Period, model_id: str) -> Select[Any]:
    """Ids of the period's turns whose insight is missing, was computed by another model, or
    belongs to another turn (a deleted turn whose id SQLite gave to a new one)."""
    return (
        select(TurnRow.id)
        .outerjoin(TurnInsightRow, TurnInsightRow.turn_id == TurnRow.id)
        .where(
            TurnRow.assistant == assistant,
            TurnRow.created_at >= period.since,
            TurnRow.created_at < period.until,
            or_(
                TurnInsightRow.turn_id.is_(None),
                TurnInsightRow.model_id != model_id,
                TurnInsightRow.turn_created_at.is_(None),
                TurnInsightRow.turn_created_at != TurnRow.created_at,
            ),
        )
        .order_by(TurnRow.id)
    )


def pending_insights(database: Database, assistant: str, period: Period, model_id: str) -> int:
    """How many turns of ``period`` have no up-to-date insight (one SQL count)."""
    query = select(func.count()).select_from(
        _stale_query(assistant, period, model_id).order_by(None).subquery()
    )
    with database.session() as session:
        return int(session.scalar(query) or 0)


def _pages(sources: Iterable[dict[str, Any]]) -> list[list[str]]:
    seen: dict[str, str] = {}
    for source in sources:
        seen.setdefault(str(source.get("url", "")), str(source.get("title", "")))
    return [[url, title] for url, title in seen.items() if url]


def _nearest(
    trace: dict[str, Any] | None, limit: int = NEAREST_PER_TURN
) -> list[tuple[str, float]]:
    """The ``limit`` pages with the best late-interaction score in a retrieval trace."""
    best: dict[str, float] = {}
    for candidate in (trace or {}).get("candidates") or ():
        url = candidate.get("url")
        score = candidate.get("late_interaction_score")
        if isinstance(url, str) and url and isinstance(score, int | float):
            best[url] = max(best.get(url, float("-inf")), float(score))
    return sorted(best.items(), key=lambda item: (-item[1], item[0]))[:limit]


def _page_rows(
    turn_id: int, context: list[list[str]], cited: list[str], nearest: list[tuple[str, float]]
) -> list[TurnPageRow]:
    pages: dict[str, TurnPageRow] = {}

    def page(url: str, title: str = "") -> TurnPageRow:
        if url not in pages:
            pages[url] = TurnPageRow(
                turn_id=turn_id,
                url=url,
                title=title,
                in_context=False,
                cited=False,
                nearest_score=None,
            )
        return pages[url]

    for url, title in context:
        page(url, title).in_context = True
    for url in cited:
        page(url).cited = True
    for url, score in nearest:
        page(url).nearest_score = score
    return list(pages.values())


def _cited_urls(citations: Iterable[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(str(c.get("url", "")) for c in citations if c.get("url")))


def _groundedness(row: Any, memo: _TokenMemo, threshold: float) -> tuple[float | None, int]:
    if row.outcome != "answered" or not row.answer:
        return None, 0
    cited = {int(c["n"]) for c in row.citations if "n" in c}
    passages = {
        int(s["n"]): str(s.get("text", ""))
        for s in row.sources
        if "n" in s and (not cited or int(s["n"]) in cited)
    }
    sentences = cited_sentences(row.answer)
    score = groundedness_score(sentences, passages, memo.encode, threshold=threshold)
    return score, len(sentences)


def _compute(
    rows: Sequence[Any],
    encoders: InsightEncoders,
    memo: _TokenMemo,
    assistant: str,
    vectors: dict[str, bytes],
) -> tuple[list[TurnInsightRow], list[TurnPageRow]]:
    questions = [row.standalone_question or row.question for row in rows]
    unique = [text for text in dict.fromkeys(questions) if text not in vectors]
    if unique:
        vectors.update(
            (text, encoded.dense.numpy().astype(np.float16).tobytes())
            for text, encoded in zip(unique, encoders.dense.encode_documents(unique), strict=True)
        )
    insights: list[TurnInsightRow] = []
    pages: list[TurnPageRow] = []
    for row, question in zip(rows, questions, strict=True):
        score, sentences = _groundedness(row, memo, encoders.support_threshold)
        context, cited = _pages(row.sources), _cited_urls(row.citations)
        insights.append(
            TurnInsightRow(
                turn_id=row.id,
                assistant=assistant,
                question_hash=question_hash(question),
                model_id=encoders.dense.model_id,
                question_vector=vectors[question],
                groundedness=score,
                sentences=sentences,
                context_pages=context,
                cited_urls=cited,
                turn_created_at=row.created_at,
                conversation_id=row.conversation_id,
                position=row.position,
                reasked=False,
                cluster=None,
                clustering_version=None,
            )
        )
        pages.extend(_page_rows(row.id, context, cited, _nearest(row.trace)))
    return insights, pages


def mark_reasked(
    database: Database,
    assistant: str,
    conversation_ids: Iterable[str],
    *,
    similarity: float = REASK_SIMILARITY,
) -> int:
    """Set ``reasked`` on the insights of ``conversation_ids``: a turn is re-asked when a
    later turn of its conversation asks nearly the same (question cosine ``≥ similarity``).

    Only the given conversations are read, so new turns cost in proportion to their
    conversations. Returns how many flags changed.
    """
    wanted = sorted(set(conversation_ids))
    changed: dict[bool, list[int]] = {True: [], False: []}
    moments: list[datetime] = []
    conversations: set[str] = set()
    for start in range(0, len(wanted), BATCH):
        with database.session() as session:
            rows = session.execute(
                select(
                    TurnInsightRow.turn_id,
                    TurnInsightRow.conversation_id,
                    TurnInsightRow.position,
                    TurnInsightRow.question_vector,
                    TurnInsightRow.reasked,
                    TurnInsightRow.turn_created_at,
                ).where(
                    TurnInsightRow.assistant == assistant,
                    TurnInsightRow.conversation_id.in_(wanted[start : start + BATCH]),
                )
            ).all()
        by_conversation: dict[str, list[Any]] = defaultdict(list)
        for row in rows:
            by_conversation[row.conversation_id].append(row)
        for members in by_conversation.values():
            members.sort(key=lambda row: (row.position, row.turn_id))
            vectors = unit_rows(
                np.stack(
                    [np.frombuffer(row.question_vector, dtype=np.float16) for row in members]
                ).astype(np.float32)
            )
            similarities = vectors @ vectors.T
            for index, row in enumerate(members):
                flag = bool((similarities[index, index + 1 :] >= similarity).any())
                if flag != row.reasked:
                    changed[flag].append(row.turn_id)
                    moments.append(row.turn_created_at)
                    conversations.add(row.conversation_id)
    with database.session() as session:
        for flag, turn_ids in changed.items():
            for start in range(0, len(turn_ids), BATCH):
                session.execute(
                    update(TurnInsightRow)
                    .where(TurnInsightRow.turn_id.in_(turn_ids[start : start + BATCH]))
                    .values(reasked=flag)
                )
        # Re-asks count in the analytics totals and in their conversations' resolution.
        invalidate_hours(session, assistant, (moment for moment in moments if moment))
        recount_unresolved(session, conversations)
    return len(changed[True]) + len(changed[False])


def refresh_insights(
    database: Database,
    assistant: str,
    period: Period,
    encoders: InsightEncoders,
    *,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Compute and store the missing insights of ``assistant``'s turns in ``period``.

    Args:
        limit: compute at most this many (the oldest first); ``None``: all.
        progress: called with (turns done, turns to do) after each batch.

    Returns how many turns were computed (0 when every turn already had its insight).
    """
    query = _stale_query(assistant, period, encoders.dense.model_id)
    if limit is not None:
        query = query.limit(limit)
    with database.session() as session:
        stale = list(session.scalars(query).all())
    memo = _TokenMemo(encoders.late)
    vectors: dict[str, bytes] = {}  # question text -> vector, across batches
    for start in range(0, len(stale), BATCH):
        batch = stale[start : start + BATCH]
        with database.session() as session:
            rows = session.execute(
                select(
                    TurnRow.id,
                    TurnRow.conversation_id,
                    TurnRow.position,
                    TurnRow.created_at,
                    TurnRow.question,
                    TurnRow.standalone_question,
                    TurnRow.answer,
                    TurnRow.outcome,
                    TurnRow.sources,
                    TurnRow.citations,
                    TurnRow.trace,
                ).where(TurnRow.id.in_(batch))
            ).all()
        insights, pages = _compute(rows, encoders, memo, assistant, vectors)
        with database.session() as session:
            # Rows of another model (or of a deleted turn whose id SQLite reused) are replaced.
            session.execute(delete(TurnPageRow).where(TurnPageRow.turn_id.in_(batch)))
            session.execute(delete(TurnInsightRow).where(TurnInsightRow.turn_id.in_(batch)))
            session.add_all(insights)
            session.flush()
            session.add_all(pages)
            invalidate_hours(session, assistant, (row.created_at for row in rows))
        mark_reasked(database, assistant, (row.conversation_id for row in rows))
        if progress is not None:
            progress(min(start + BATCH, len(stale)), len(stale))
    if stale:
        logger.info("computed analytics insights of %d turns of %r", len(stale), assistant)
    return len(stale)
