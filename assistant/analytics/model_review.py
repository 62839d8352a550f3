"""Cluster names and answer grades written by a language model, when the assistant has one.

Offline, a cluster is named by its c-TF-IDF terms (``labels``). With a chat provider,
``review_with_model`` asks it, after each full clustering, to name the largest clusters from
their questions (template ``cluster_name``), and to grade a sample of answered turns from 1
to 5 (template ``answer_grade``; stored 0-1 as ``TurnInsightRow.model_grade``). A provider
that fails, or replies with something unusable, leaves the c-TF-IDF name (and no grade): the
model only ever improves on the offline figures.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, update

from assistant.analytics.period import Period
from assistant.analytics.privacy import mask_personal_data
from assistant.chat.events import TextDelta
from assistant.chat.prompts import PromptLibrary
from assistant.chat.provider import ChatProvider, ChatRequest, Message
from assistant.database.analytics_models import QuestionClusteringRow, TurnInsightRow
from assistant.database.engine import Database
from assistant.database.models import TurnRow
from assistant.database.rollup_models import invalidate_hours
from assistant.errors import AssistantError

__all__ = [
    "GRADE_SAMPLE",
    "NAMED_CLUSTERS",
    "ModelReview",
    "grade_answer",
    "name_cluster",
    "review_with_model",
]

logger = logging.getLogger(__name__)

NAMED_CLUSTERS = 30
"""Largest clusters a model names after a full clustering (the others keep their terms)."""
GRADE_SAMPLE = 20
"""Answered turns a model grades per review (the newest not graded yet)."""
_QUESTIONS_SHOWN = 8
_LONGEST_NAME = 60
_GRADE = re.compile(r"[1-5]")


@dataclass(frozen=True, slots=True)
class ModelReview:
    """What ``review_with_model`` did: clusters named by the model, answers graded."""

    named: int
    graded: int


async def _reply(provider: ChatProvider, prompt: str, limit: int = 400) -> str:
    """The provider's text for one user message (cut off past ``limit`` characters)."""
    text: list[str] = []
    stream = provider.stream(ChatRequest(prompt, sources=(), messages=(Message("user", prompt),)))
    try:
        async for event in stream:
            if isinstance(event, TextDelta):
                text.append(event.text)
                if sum(map(len, text)) > limit:
                    break
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()
    return "".join(text)


async def name_cluster(
    provider: ChatProvider, prompts: PromptLibrary, questions: Sequence[str], fallback: str
) -> str:
    """A model's name for the cluster of ``questions`` (masked), or ``fallback`` when the
    provider fails or its reply is not a short one-line name."""
    listed = "\n".join(f"- {mask_personal_data(q)}" for q in questions[:_QUESTIONS_SHOWN])
    try:
        reply = await _reply(provider, prompts.render("cluster_name", questions=listed))
    except AssistantError as exc:
        logger.warning(
            "provider %s could not name a cluster (%s)", provider.name, type(exc).__name__
        )
        return fallback
    name = " ".join(reply.strip().strip("\"'“”.").split())
    if not name or len(name) > _LONGEST_NAME or "\n" in reply.strip():
        return fallback
    return name


async def grade_answer(
    provider: ChatProvider, prompts: PromptLibrary, question: str, answer: str
) -> float | None:
    """A model's 0-1 grade of how well ``answer`` serves ``question`` (``None``: it failed)."""
    prompt = prompts.render(
        "answer_grade", question=mask_personal_data(question), answer=mask_personal_data(answer)
    )
    try:
        reply = await _reply(provider, prompt, limit=40)
    except AssistantError as exc:
        logger.warning(
            "provider %s could not grade an answer (%s)", provider.name, type(exc).__name__
        )
        return None
    match = _GRADE.search(reply)
    return (int(match.group()) - 1) / 4 if match else None


def _cluster_questions(
    database: Database, assistant: str, version: int, clusters: int
) -> list[tuple[int, list[str]]]:
    """The largest clusters (at most ``NAMED_CLUSTERS``) with some of their questions."""
    text = func.coalesce(func.nullif(TurnRow.standalone_question, ""), TurnRow.question)
    with database.session() as session:
        sizes = session.execute(
            select(TurnInsightRow.cluster, func.count())
            .where(
                TurnInsightRow.assistant == assistant,
                TurnInsightRow.clustering_version == version,
                TurnInsightRow.cluster.is_not(None),
            )
            .group_by(TurnInsightRow.cluster)
            .order_by(func.count().desc(), TurnInsightRow.cluster)
            .limit(min(clusters, NAMED_CLUSTERS))
        ).all()
        result = []
        for cluster, _ in sizes:
            questions = session.scalars(
                select(text)
                .join(TurnInsightRow, TurnInsightRow.turn_id == TurnRow.id)
                .where(
                    TurnInsightRow.assistant == assistant,
                    TurnInsightRow.clustering_version == version,
                    TurnInsightRow.cluster == cluster,
                )
                .order_by(TurnRow.id.desc())
                .limit(_QUESTIONS_SHOWN * 4)
            ).all()
            distinct = list(dict.fromkeys(questions))[:_QUESTIONS_SHOWN]
            result.append((int(cluster or 0), distinct))
    return result


async def _review(
    database: Database,
    assistant: str,
    provider: ChatProvider,
    prompts: PromptLibrary,
    period: Period,
    grades: int,
) -> ModelReview:
    named = 0
    with database.session() as session:
        row = session.get(QuestionClusteringRow, assistant)
        stored = (row.version, list(row.labels), row.labels_model) if row is not None else None
    model = f"{provider.name}/{getattr(provider, 'model', '') or ''}".rstrip("/")
    if stored is not None and stored[2] != model:
        version, labels, _ = stored
        names = list(labels)
        for cluster, questions in _cluster_questions(database, assistant, version, len(labels)):
            if cluster < len(names) and questions:
                name = await name_cluster(provider, prompts, questions, names[cluster])
                named += name != names[cluster]
                names[cluster] = name
        with database.session() as session:
            # Only if no new clustering replaced the one just named.
            session.execute(
                update(QuestionClusteringRow)
                .where(
                    QuestionClusteringRow.assistant == assistant,
                    QuestionClusteringRow.version == version,
                )
                .values(labels=names, labels_model=model)
            )
    with database.session() as session:
        sample = session.execute(
            select(TurnRow.id, TurnRow.question, TurnRow.answer, TurnRow.created_at)
            .join(TurnInsightRow, TurnInsightRow.turn_id == TurnRow.id)
            .where(
                TurnRow.assistant == assistant,
                TurnRow.created_at >= period.since,
                TurnRow.created_at < period.until,
                TurnRow.outcome == "answered",
                TurnInsightRow.model_grade.is_(None),
            )
            .order_by(TurnRow.created_at.desc())
            .limit(grades)
        ).all()
    graded = 0
    for turn_id, question, answer, created_at in sample:
        grade = await grade_answer(provider, prompts, question, answer)
        if grade is None:
            continue
        graded += 1
        with database.session() as session:
            session.execute(
                update(TurnInsightRow)
                .where(TurnInsightRow.turn_id == turn_id)
                .values(model_grade=grade)
            )
            invalidate_hours(session, assistant, [created_at])
    return ModelReview(named, graded)


def review_with_model(
    database: Database,
    assistant: str,
    provider: ChatProvider,
    period: Period,
    *,
    prompts: PromptLibrary | None = None,
    grades: int = GRADE_SAMPLE,
) -> ModelReview:
    """Have ``provider`` name the stored clusters (once per clustering and model) and grade
    up to ``grades`` answered turns of ``period`` not graded yet. Failures are logged and
    leave the offline figures.

    >>> review_with_model(database, "docs", provider, period_from("30d"))  # doctest: +SKIP
    ModelReview(named=24, graded=20)
    """
    return asyncio.run(
        _review(database, assistant, provider, prompts or PromptLibrary(), period, grades)
    )
