"""Per-turn facts computed once and stored: question vector, groundedness, pages used.

``refresh_insights`` finds the turns of an assistant in a period that have no insight yet (or
one computed from another question or model), computes theirs in batches and stores them in
``turn_insights``. Identical questions are embedded once per batch, and passages shared by
several answers are encoded once, which is what keeps a busy help centre's backlog cheap.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sqlalchemy import delete, select

from assistant.analytics.groundedness import SUPPORT_THRESHOLD, cited_sentences, groundedness_score
from assistant.analytics.period import Period
from assistant.database.analytics_models import TurnInsightRow
from assistant.database.engine import Database
from assistant.database.models import TurnRow
from assistant.knowledge.encoder import Encoder, TokenEncoder

__all__ = ["InsightEncoders", "question_hash", "refresh_insights"]

logger = logging.getLogger(__name__)

BATCH = 256


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


def _stale(database: Database, assistant: str, period: Period, model_id: str) -> list[int]:
    """Ids of the period's turns whose insight is missing, was computed by another model, or
    belongs to another question (a deleted turn whose id SQLite gave to a new one)."""
    query = (
        select(
            TurnRow.id,
            TurnRow.question,
            TurnRow.standalone_question,
            TurnInsightRow.model_id,
            TurnInsightRow.question_hash,
        )
        .outerjoin(TurnInsightRow, TurnInsightRow.turn_id == TurnRow.id)
        .where(
            TurnRow.assistant == assistant,
            TurnRow.created_at >= period.since,
            TurnRow.created_at < period.until,
        )
    )
    with database.session() as session:
        rows = session.execute(query).all()
    return [
        turn_id
        for turn_id, question, standalone, model, stored_hash in rows
        if model != model_id or stored_hash != question_hash(standalone or question)
    ]


def _pages(sources: Iterable[dict[str, Any]]) -> list[list[str]]:
    seen: dict[str, str] = {}
    for source in sources:
        seen.setdefault(str(source.get("url", "")), str(source.get("title", "")))
    return [[url, title] for url, title in seen.items() if url]


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
) -> list[TurnInsightRow]:
    questions = [row.standalone_question or row.question for row in rows]
    unique = [text for text in dict.fromkeys(questions) if text not in vectors]
    if unique:
        vectors.update(
            (text, encoded.dense.numpy().astype(np.float16).tobytes())
            for text, encoded in zip(unique, encoders.dense.encode_documents(unique), strict=True)
        )
    insights = []
    for row, question in zip(rows, questions, strict=True):
        score, sentences = _groundedness(row, memo, encoders.support_threshold)
        insights.append(
            TurnInsightRow(
                turn_id=row.id,
                assistant=assistant,
                question_hash=question_hash(question),
                model_id=encoders.dense.model_id,
                question_vector=vectors[question],
                groundedness=score,
                sentences=sentences,
                context_pages=_pages(row.sources),
                cited_urls=_cited_urls(row.citations),
            )
        )
    return insights


def refresh_insights(
    database: Database, assistant: str, period: Period, encoders: InsightEncoders
) -> int:
    """Compute and store the missing insights of ``assistant``'s turns in ``period``.

    Returns how many turns were computed (0 when every turn already had its insight).
    """
    stale = _stale(database, assistant, period, encoders.dense.model_id)
    memo = _TokenMemo(encoders.late)
    vectors: dict[str, bytes] = {}  # question text -> vector, across batches
    for start in range(0, len(stale), BATCH):
        batch = stale[start : start + BATCH]
        with database.session() as session:
            rows = session.execute(
                select(
                    TurnRow.id,
                    TurnRow.question,
                    TurnRow.standalone_question,
                    TurnRow.answer,
                    TurnRow.outcome,
                    TurnRow.sources,
                    TurnRow.citations,
                ).where(TurnRow.id.in_(batch))
            ).all()
        insights = _compute(rows, encoders, memo, assistant, vectors)
        with database.session() as session:
            # Rows of another model (or of a deleted turn whose id SQLite reused) are replaced.
            session.execute(delete(TurnInsightRow).where(TurnInsightRow.turn_id.in_(batch)))
            session.add_all(insights)
    if stale:
        logger.info("computed analytics insights of %d turns of %r", len(stale), assistant)
    return len(stale)
