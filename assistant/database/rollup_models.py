"""Hourly and daily totals of an assistant's turns, so a report sums a few thousand rows, not
every turn.

Each table holds, per assistant and UTC hour (``hour``: its start; ``hours=1``) or UTC day
(``hours=24``, the sum of its 24 hours), the sums a report needs:
``HourTotalsRow`` per provider and model (volume, cost, answers, ratings, groundedness),
``HourClusterRow`` per question cluster of a clustering version (counts, ratings, content-gap
reasons) and ``HourPageRow`` per page (cited, given as context, cited in a 👎 turn).

They are a cache of the turns, rebuilt one hour at a time: ``AnalyticsHourRow`` marks the
hours whose totals are built. Whatever changes a turn's figures (feedback, insights, clusters,
a deletion) removes its hour's mark, and the next report rebuilds that hour from the turns
(``assistant.analytics.rollups``). Hours still running are never built: a report reads them
from the turns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from sqlalchemy import Float, Index, Integer, String, Text, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from assistant.database.models import Base, TurnRow, UTCDateTime

__all__ = [
    "AnalyticsHourRow",
    "HourClusterRow",
    "HourPageRow",
    "HourTotalsRow",
    "floor_hour",
    "invalidate_assistant",
    "invalidate_hours",
    "invalidate_turns",
]


class AnalyticsHourRow(Base):
    """An hour (``hours=1``) or a UTC day (``hours=24``, starting at ``hour``) of an
    assistant whose totals are built and current."""

    __tablename__ = "analytics_hours"

    assistant: Mapped[str] = mapped_column(String(64), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    hours: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


class HourTotalsRow(Base):
    """One hour's turns of one provider and model: volume, cost and answer quality."""

    __tablename__ = "analytics_hour_totals"
    __table_args__ = (
        Index("ix_analytics_hour_totals_assistant_hour", "assistant", "hours", "hour"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    assistant: Mapped[str] = mapped_column(String(64))
    hour: Mapped[datetime] = mapped_column(UTCDateTime())
    hours: Mapped[int] = mapped_column(Integer, default=1)
    """1: the totals of one hour; 24: of the UTC day starting at ``hour``."""
    provider: Mapped[str] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(128), default=None)
    turns: Mapped[int] = mapped_column(Integer, default=0)
    answered: Mapped[int] = mapped_column(Integer, default=0)
    thumbs_up: Mapped[int] = mapped_column(Integer, default=0)
    thumbs_down: Mapped[int] = mapped_column(Integer, default=0)
    reasked: Mapped[int] = mapped_column(Integer, default=0)
    grounded_sum: Mapped[float] = mapped_column(Float, default=0.0)
    grounded_turns: Mapped[int] = mapped_column(Integer, default=0)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float | None] = mapped_column(Float, default=None)
    """Sum of the known costs; ``None`` when no turn of the hour had a price."""
    insights: Mapped[int] = mapped_column(Integer, default=0)
    """Turns with an up-to-date insight (the others wait for the background refresh)."""
    graded_sum: Mapped[float] = mapped_column(Float, default=0.0)
    graded_turns: Mapped[int] = mapped_column(Integer, default=0)
    """Sum and count of the language-model grades of the hour's graded answers."""


class HourClusterRow(Base):
    """One hour's clustered turns of one question cluster (of clustering ``version``)."""

    __tablename__ = "analytics_hour_clusters"
    __table_args__ = (
        Index(
            "ix_analytics_hour_clusters_assistant_version_hour",
            "assistant",
            "version",
            "hours",
            "hour",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    assistant: Mapped[str] = mapped_column(String(64))
    hour: Mapped[datetime] = mapped_column(UTCDateTime())
    hours: Mapped[int] = mapped_column(Integer, default=1)
    """1: the totals of one hour; 24: of the UTC day starting at ``hour``."""
    version: Mapped[int] = mapped_column(Integer)
    cluster: Mapped[int] = mapped_column(Integer)
    turns: Mapped[int] = mapped_column(Integer, default=0)
    answered: Mapped[int] = mapped_column(Integer, default=0)
    thumbs_up: Mapped[int] = mapped_column(Integer, default=0)
    thumbs_down: Mapped[int] = mapped_column(Integer, default=0)
    gaps: Mapped[int] = mapped_column(Integer, default=0)
    """Turns not answered well, for any of the reasons below."""
    gap_no_answer: Mapped[int] = mapped_column(Integer, default=0)
    gap_low_score: Mapped[int] = mapped_column(Integer, default=0)
    gap_thumbs_down: Mapped[int] = mapped_column(Integer, default=0)
    gap_reasked: Mapped[int] = mapped_column(Integer, default=0)


class HourPageRow(Base):
    """One hour's use of one page by the turns with an insight."""

    __tablename__ = "analytics_hour_pages"
    __table_args__ = (
        Index("ix_analytics_hour_pages_assistant_hour", "assistant", "hours", "hour"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    assistant: Mapped[str] = mapped_column(String(64))
    hour: Mapped[datetime] = mapped_column(UTCDateTime())
    hours: Mapped[int] = mapped_column(Integer, default=1)
    """1: the totals of one hour; 24: of the UTC day starting at ``hour``."""
    url: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text, default="")
    cited: Mapped[int] = mapped_column(Integer, default=0)
    in_context: Mapped[int] = mapped_column(Integer, default=0)
    cited_in_thumbs_down: Mapped[int] = mapped_column(Integer, default=0)


def floor_hour(moment: datetime) -> datetime:
    """The start of the UTC hour of ``moment``."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def invalidate_hours(session: Session, assistant: str, moments: Iterable[datetime]) -> None:
    """Mark the hours of ``moments`` (turn times), and their days, to be built again, in
    ``session``'s transaction."""
    hours = {floor_hour(moment) for moment in moments}
    starts = sorted(hours | {hour.replace(hour=0) for hour in hours})
    for start in range(0, len(starts), 500):
        session.execute(
            delete(AnalyticsHourRow).where(
                AnalyticsHourRow.assistant == assistant,
                AnalyticsHourRow.hour.in_(starts[start : start + 500]),
            )
        )


def invalidate_turns(session: Session, turn_ids: Sequence[int]) -> None:
    """Mark the hours of the turns ``turn_ids`` to be built again (call it before they go)."""
    for start in range(0, len(turn_ids), 500):
        rows = session.execute(
            select(TurnRow.assistant, TurnRow.created_at).where(
                TurnRow.id.in_(turn_ids[start : start + 500])
            )
        ).all()
        by_assistant: dict[str, list[datetime]] = {}
        for assistant, created_at in rows:
            by_assistant.setdefault(assistant, []).append(created_at)
        for assistant, moments in by_assistant.items():
            invalidate_hours(session, assistant, moments)


def invalidate_assistant(session: Session, assistant: str) -> None:
    """Mark every hour of ``assistant`` to be built again (a new clustering, a bulk write)."""
    session.execute(delete(AnalyticsHourRow).where(AnalyticsHourRow.assistant == assistant))
