"""The grouped queries over the turns that both the stored totals and a report's part-hours
use, so that both count alike: ``totals_query`` (volume, cost, quality), ``clusters_query``
(question clusters and why they were not answered well) and ``pages_query`` (pages used).

Each groups by a ``slot`` expression over ``TurnRow.created_at``: the hour (``hour_of``) when
building stored totals, a report's slice when reading part-hours.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, false, func, literal, or_, select

from assistant.analytics.topics import LOW_SCORE
from assistant.database.analytics_models import TurnInsightRow, TurnPageRow
from assistant.database.models import FeedbackRow, TurnRow

__all__ = ["as_hour", "clusters_query", "hour_of", "pages_query", "totals_query"]


def hour_of(dialect: str, column: Any) -> ColumnElement[Any]:
    """The start of the UTC hour of a timestamp column, in SQL ``dialect``."""
    if dialect == "postgresql":
        return func.date_trunc("hour", func.timezone("UTC", column))
    return func.strftime("%Y-%m-%d %H:00:00", column)


def as_hour(value: Any) -> datetime:
    """An hour as read back from ``hour_of`` (text on SQLite, naive UTC on PostgreSQL)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _lowest() -> Any:
    """Each turn's lowest rating (below 0: any 👎), a correlated subquery."""
    return (
        select(func.min(FeedbackRow.rating))
        .where(FeedbackRow.turn_id == TurnRow.id)
        .correlate(TurnRow)
        .scalar_subquery()
    )


def _count_if(condition: ColumnElement[bool] | Any) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _in_range(assistant: str, start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(
        TurnRow.assistant == assistant, TurnRow.created_at >= start, TurnRow.created_at < end
    )


def totals_query(assistant: str, start: datetime, end: datetime, slot: Any) -> Select[Any]:
    """Per ``slot`` (an expression over ``TurnRow.created_at``), provider and model: turns,
    answered, 👍, 👎, re-asked, groundedness sum and count, tokens, cost and turns with an
    up-to-date insight."""
    turns = (
        select(
            slot.label("slot"),
            TurnRow.provider.label("provider"),
            TurnRow.model.label("model"),
            TurnRow.outcome.label("outcome"),
            _lowest().label("lowest"),
            func.coalesce(TurnInsightRow.reasked, false()).label("reasked"),
            TurnInsightRow.groundedness.label("groundedness"),
            TurnRow.input_tokens.label("input_tokens"),
            TurnRow.output_tokens.label("output_tokens"),
            TurnRow.cost_usd.label("cost_usd"),
            case((TurnInsightRow.turn_created_at == TurnRow.created_at, 1)).label("insight"),
            TurnInsightRow.model_grade.label("grade"),
        )
        .select_from(TurnRow)
        .outerjoin(TurnInsightRow, TurnInsightRow.turn_id == TurnRow.id)
        .where(_in_range(assistant, start, end))
        .subquery()
    )
    return select(
        turns.c.slot,
        turns.c.provider,
        turns.c.model,
        func.count(),
        _count_if(turns.c.outcome == "answered"),
        _count_if(func.coalesce(turns.c.lowest, 0) > 0),
        _count_if(func.coalesce(turns.c.lowest, 0) < 0),
        _count_if(turns.c.reasked == literal(True)),
        func.coalesce(func.sum(turns.c.groundedness), 0.0),
        func.count(turns.c.groundedness),
        func.coalesce(func.sum(turns.c.input_tokens), 0),
        func.coalesce(func.sum(turns.c.output_tokens), 0),
        func.sum(turns.c.cost_usd),
        func.count(turns.c.insight),
        func.coalesce(func.sum(turns.c.grade), 0.0),
        func.count(turns.c.grade),
    ).group_by(turns.c.slot, turns.c.provider, turns.c.model)


def clusters_query(
    assistant: str, start: datetime, end: datetime, slot: Any, version: int
) -> Select[Any]:
    """Per ``slot`` and question cluster (of clustering ``version``): turns, answered, 👍, 👎,
    turns not answered well, and each reason (declined, weak best passage, 👎, asked again)."""
    turns = (
        select(
            slot.label("slot"),
            TurnInsightRow.cluster.label("cluster"),
            TurnRow.outcome.label("outcome"),
            TurnRow.top_score.label("top_score"),
            _lowest().label("lowest"),
            TurnInsightRow.reasked.label("reasked"),
        )
        .select_from(TurnRow)
        .join(TurnInsightRow, TurnInsightRow.turn_id == TurnRow.id)
        .where(
            _in_range(assistant, start, end),
            TurnInsightRow.clustering_version == version,
            TurnInsightRow.cluster.is_not(None),
        )
        .subquery()
    )
    reasons = (
        turns.c.outcome == "no_answer",
        and_(
            turns.c.outcome == "answered",
            turns.c.top_score.is_not(None),
            turns.c.top_score < LOW_SCORE,
        ),
        func.coalesce(turns.c.lowest, 0) < 0,
        turns.c.reasked == literal(True),
    )
    return select(
        turns.c.slot,
        turns.c.cluster,
        func.count(),
        _count_if(turns.c.outcome == "answered"),
        _count_if(func.coalesce(turns.c.lowest, 0) > 0),
        _count_if(func.coalesce(turns.c.lowest, 0) < 0),
        _count_if(or_(*reasons)),
        *(_count_if(reason) for reason in reasons),
    ).group_by(turns.c.slot, turns.c.cluster)


def pages_query(assistant: str, start: datetime, end: datetime, slot: Any) -> Select[Any]:
    """Per ``slot`` and page used as context or cited: its title, times cited, times given as
    context, times cited in a 👎 turn."""
    pages = (
        select(
            slot.label("slot"),
            TurnPageRow.url.label("url"),
            TurnPageRow.title.label("title"),
            TurnPageRow.cited.label("cited"),
            TurnPageRow.in_context.label("in_context"),
            _lowest().label("lowest"),
        )
        .select_from(TurnPageRow)
        .join(TurnRow, TurnRow.id == TurnPageRow.turn_id)
        .where(_in_range(assistant, start, end), or_(TurnPageRow.cited, TurnPageRow.in_context))
        .subquery()
    )
    return select(
        pages.c.slot,
        pages.c.url,
        func.max(pages.c.title),
        _count_if(pages.c.cited),
        _count_if(pages.c.in_context),
        _count_if(and_(pages.c.cited, func.coalesce(pages.c.lowest, 0) < 0)),
    ).group_by(pages.c.slot, pages.c.url)
