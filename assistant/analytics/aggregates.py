"""Report figures as SQL aggregates: volume, cost, latency and quality of one period.

A report at 100,000 turns cannot read every turn into Python, so each figure here is one
``GROUP BY`` over the turns of the period (index ``ix_turns_assistant_created_at``) joined to
their insight and their net rating. Only the latency percentiles read rows: the stage timings
of an evenly spread sample of at most ``LATENCY_SAMPLE`` turns.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sqlalchemy import (
    ColumnElement,
    Select,
    Subquery,
    and_,
    case,
    distinct,
    false,
    func,
    literal,
    or_,
    select,
)

from assistant.analytics.period import Period
from assistant.analytics.quality import ConversationQuality
from assistant.analytics.volume import ModelUsage, StageLatency, Volume
from assistant.database.analytics_models import TurnInsightRow
from assistant.database.engine import Database
from assistant.database.models import ConversationRow, FeedbackRow, TurnRow

__all__ = [
    "LATENCY_SAMPLE",
    "bucket_of",
    "gap_reasons",
    "in_period",
    "question_text",
    "ratings",
    "sql_quality",
    "sql_volume",
]

LATENCY_SAMPLE = 2000
"""Most turns whose stage timings are read for the latency percentiles."""

_UNRESOLVED_OUTCOMES = ("no_answer", "error", "handoff")


def in_period(assistant: str, period: Period) -> ColumnElement[bool]:
    """The turns of ``assistant`` created in ``period``."""
    return and_(
        TurnRow.assistant == assistant,
        TurnRow.created_at >= period.since,
        TurnRow.created_at < period.until,
    )


def ratings(assistant: str) -> Subquery:
    """Per rated turn its lowest rating (``lowest``): below 0 means any thumbs down."""
    return (
        select(FeedbackRow.turn_id, func.min(FeedbackRow.rating).label("lowest"))
        .where(FeedbackRow.assistant == assistant)
        .group_by(FeedbackRow.turn_id)
        .subquery("ratings")
    )


def question_text() -> ColumnElement[str]:
    """The standalone question, or the message when there was nothing to rewrite."""
    return func.coalesce(func.nullif(TurnRow.standalone_question, ""), TurnRow.question)


def bucket_of(period: Period, buckets: int) -> ColumnElement[int]:
    """The slice (of ``buckets``) of the period each turn falls in, as a SQL expression."""
    starts = period.buckets(buckets)
    return case(
        *((TurnRow.created_at < start, index - 1) for index, start in enumerate(starts) if index),
        else_=buckets - 1,
    )


def gap_reasons(lowest: Any, low_score: float) -> dict[str, ColumnElement[bool]]:
    """Why a turn counts as not answered well, each as a SQL condition (in report order)."""
    return {
        "no_answer": TurnRow.outcome == "no_answer",
        "low_score": and_(
            TurnRow.outcome == "answered",
            TurnRow.top_score.is_not(None),
            TurnRow.top_score < low_score,
        ),
        "thumbs_down": func.coalesce(lowest, 0) < 0,
        "reasked": func.coalesce(TurnInsightRow.reasked, false()) == literal(True),
    }


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _by_model(database: Database, assistant: str, period: Period) -> tuple[ModelUsage, ...]:
    query = (
        select(
            TurnRow.provider,
            TurnRow.model,
            func.count(),
            func.coalesce(func.sum(TurnRow.input_tokens), 0),
            func.coalesce(func.sum(TurnRow.output_tokens), 0),
            func.sum(TurnRow.cost_usd),
        )
        .where(in_period(assistant, period), TurnRow.provider != "")
        .group_by(TurnRow.provider, TurnRow.model)
    )
    with database.session() as session:
        rows = session.execute(query).all()
    usages = [
        ModelUsage(
            provider=provider,
            model=model,
            turns=int(turns),
            input_tokens=int(input_tokens),
            output_tokens=int(output_tokens),
            cost_usd=round(float(cost), 6) if cost is not None else None,
        )
        for provider, model, turns, input_tokens, output_tokens, cost in rows
    ]
    return tuple(sorted(usages, key=lambda usage: (-usage.turns, usage.provider)))


def _latency(
    database: Database, assistant: str, period: Period, turns: int, sample: int
) -> tuple[StageLatency, ...]:
    step = max(1, math.ceil(turns / sample))
    query: Select[tuple[Any]] = select(TurnRow.timings_ms).where(in_period(assistant, period))
    if step > 1:
        query = query.where(TurnRow.id % step == 0)
    with database.session() as session:
        timings = session.scalars(query).all()
    stages: dict[str, list[float]] = {}
    for timing in timings:
        for stage, milliseconds in (timing or {}).items():
            if isinstance(milliseconds, int | float):
                stages.setdefault(stage, []).append(float(milliseconds))
    result = []
    for stage, values in sorted(stages.items()):
        p50, p90, p99 = np.percentile(np.asarray(values), [50, 90, 99])
        result.append(
            StageLatency(stage, len(values) * step, round(p50, 3), round(p90, 3), round(p99, 3))
        )
    return tuple(result)


def sql_volume(
    database: Database,
    assistant: str,
    period: Period,
    *,
    buckets: int = 30,
    latency_sample: int = LATENCY_SAMPLE,
) -> Volume:
    """Volume, cost and latency of ``assistant``'s turns in ``period``.

    Latency percentiles come from an evenly spread sample of at most ``latency_sample``
    turns (exact below it); their ``count`` is the number of turns it stands for.
    """
    totals = (
        select(
            func.count(),
            func.count(distinct(TurnRow.conversation_id)),
            func.count(distinct(ConversationRow.visitor)),
            func.coalesce(func.sum(TurnRow.input_tokens), 0),
            func.coalesce(func.sum(TurnRow.output_tokens), 0),
            func.coalesce(func.sum(TurnRow.cost_usd), 0.0),
        )
        .join(ConversationRow, ConversationRow.id == TurnRow.conversation_id)
        .where(in_period(assistant, period))
    )
    bucket = bucket_of(period, buckets).label("bucket")
    daily_query = select(bucket, func.count()).where(in_period(assistant, period)).group_by(bucket)
    with database.session() as session:
        turns, conversations, visitors, input_tokens, output_tokens, cost = session.execute(
            totals
        ).one()
        daily = [0] * buckets
        for index, count in session.execute(daily_query).all():
            daily[int(index)] = int(count)
    return Volume(
        conversations=int(conversations),
        turns=int(turns),
        visitors=int(visitors),
        input_tokens=int(input_tokens),
        output_tokens=int(output_tokens),
        cost_usd=round(float(cost or 0.0), 6),
        by_model=_by_model(database, assistant, period),
        latency_ms=_latency(database, assistant, period, int(turns), latency_sample)
        if turns
        else (),
        daily_turns=tuple(daily),
    )


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def sql_quality(database: Database, assistant: str, period: Period) -> ConversationQuality:
    """Answer rate, resolution, CSAT, groundedness and re-asks of ``assistant`` in ``period``
    (re-asks and groundedness from the turns' stored insights)."""
    rated = ratings(assistant)
    lowest = func.coalesce(rated.c.lowest, 0)
    reasked = func.coalesce(TurnInsightRow.reasked, false()) == literal(True)
    unresolved = or_(TurnRow.outcome.in_(_UNRESOLVED_OUTCOMES), lowest < 0, reasked)
    query = (
        select(
            func.count(),
            func.count(distinct(TurnRow.conversation_id)),
            _count_if(TurnRow.outcome == "answered"),
            func.count(distinct(case((unresolved, TurnRow.conversation_id)))),
            _count_if(lowest > 0),
            _count_if(lowest < 0),
            func.avg(TurnInsightRow.groundedness),
            _count_if(reasked),
        )
        .select_from(TurnRow)
        .outerjoin(TurnInsightRow, TurnInsightRow.turn_id == TurnRow.id)
        .outerjoin(rated, rated.c.turn_id == TurnRow.id)
        .where(in_period(assistant, period))
    )
    with database.session() as session:
        turns, conversations, answered, unresolved_count, up, down, grounded, reasks = (
            int(value) if index != 6 and value is not None else value
            for index, value in enumerate(session.execute(query).one())
        )
    return ConversationQuality(
        turns=turns,
        conversations=conversations,
        answer_rate=_rate(answered, turns),
        resolution_rate=_rate(conversations - unresolved_count, conversations),
        csat=_rate(up, up + down),
        groundedness=float(grounded) if grounded is not None else None,
        thumbs_up=up,
        thumbs_down=down,
        reasked=reasks,
    )
