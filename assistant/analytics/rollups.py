"""Hourly totals of the turns, built from them an hour at a time and rebuilt when they change.

A report sums these totals (``assistant.database.rollup_models``) over the whole hours of its
period and reads only the turns of the part-hours at either end. The same three grouped
queries (``assistant.analytics.turn_queries``) build an hour's stored totals (grouped by hour)
and give a report its part-hours (grouped by the report's slice), so both count alike.

An hour is built once it has ended (``SEAL_LAG`` after, for turns still being written) and
stays built until something changes a figure of one of its turns: feedback, insights, re-asks,
clusters, a deletion. Those write paths call ``invalidate_hours`` (or ``invalidate_assistant``)
in their own transaction; the next report, or the background refresh, rebuilds what is missing
(``build_missing``). Code that writes turns behind the stores' back (bulk imports, tests that
move turns in time) calls ``invalidate_assistant`` after.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.orm import Session

from assistant.analytics.turn_queries import (
    as_hour,
    clusters_query,
    hour_of,
    pages_query,
    totals_query,
)
from assistant.database.engine import Database, is_duplicate_key
from assistant.database.models import TurnRow
from assistant.database.rollup_models import (
    AnalyticsHourRow,
    HourClusterRow,
    HourPageRow,
    HourTotalsRow,
    floor_hour,
    invalidate_assistant,
    invalidate_hours,
    invalidate_turns,
)
from assistant.errors import DatabaseError

__all__ = [
    "DAY",
    "HOUR",
    "SEAL_LAG",
    "build_missing",
    "day_span",
    "floor_hour",
    "invalidate_assistant",
    "invalidate_hours",
    "invalidate_turns",
    "sealed_until",
]

logger = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
SEAL_LAG = timedelta(minutes=5)
"""How long after an hour ends its totals may be built: a turn is stored with the time it
started being answered, which can be a little before it is written."""


def sealed_until(now: datetime | None = None) -> datetime:
    """The end of the last hour whose totals may be stored."""
    return floor_hour((now or datetime.now(UTC)) - SEAL_LAG)


def _runs(hours: Sequence[datetime], step: timedelta) -> list[tuple[datetime, datetime]]:
    """Consecutive hours (or days) as ``[start, end)`` ranges."""
    runs: list[tuple[datetime, datetime]] = []
    for hour in hours:
        if runs and runs[-1][1] == hour:
            runs[-1] = (runs[-1][0], hour + step)
        else:
            runs.append((hour, hour + step))
    return runs


_TOTALS = (
    "turns",
    "answered",
    "thumbs_up",
    "thumbs_down",
    "reasked",
    "grounded_sum",
    "grounded_turns",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "insights",
    "graded_sum",
    "graded_turns",
)
_CLUSTERS = (
    "turns",
    "answered",
    "thumbs_up",
    "thumbs_down",
    "gaps",
    "gap_no_answer",
    "gap_low_score",
    "gap_thumbs_down",
    "gap_reasked",
)
_PAGES = ("title", "cited", "in_context", "cited_in_thumbs_down")
_TABLES: tuple[tuple[Any, tuple[str, ...], tuple[str, ...]], ...] = (
    (HourTotalsRow, ("provider", "model"), _TOTALS),
    (HourClusterRow, ("cluster",), _CLUSTERS),
    (HourPageRow, ("url",), _PAGES),
)


def _clear(session: Session, assistant: str, start: datetime, end: datetime, hours: int) -> None:
    for model, _, _ in _TABLES:
        session.execute(
            delete(model).where(
                model.assistant == assistant,
                model.hours == hours,
                model.hour >= start,
                model.hour < end,
            )
        )


def _build_hours(
    database: Database, assistant: str, start: datetime, end: datetime, version: int | None
) -> None:
    """Group the turns of ``[start, end)`` by hour into the hourly tables."""
    with database.session() as session:
        slot = hour_of(session.get_bind().dialect.name, TurnRow.created_at)
        queries = [
            totals_query(assistant, start, end, slot),
            clusters_query(assistant, start, end, slot, version) if version is not None else None,
            pages_query(assistant, start, end, slot),
        ]
        _clear(session, assistant, start, end, 1)
        for (model, dimensions, measures), query in zip(_TABLES, queries, strict=True):
            if query is None:
                continue
            rows = _total_rows(
                session, query, model, (*dimensions, *measures), assistant, 1, version
            )
            if model is HourPageRow:
                for row in rows:
                    row["title"] = row["title"] or ""
            if rows:
                session.execute(insert(model), rows)
        _mark_built(session, assistant, start, end, HOUR, 1)


def _build_days(
    database: Database, assistant: str, start: datetime, end: datetime, version: int | None
) -> None:
    """Sum the built hours of the days of ``[start, end)`` into daily rows."""
    with database.session() as session:
        _clear(session, assistant, start, end, 24)
        for model, dimensions, measures in _TABLES:
            if model is HourClusterRow and version is None:
                continue
            day = _day_of(session, model.hour)
            where = [
                model.assistant == assistant,
                model.hours == 1,
                model.hour >= start,
                model.hour < end,
            ]
            if model is HourClusterRow:
                where.append(model.version == version)
            columns = [getattr(model, name) for name in dimensions]
            query = (
                select(
                    day,
                    *columns,
                    *(
                        func.max(getattr(model, name))
                        if name == "title"
                        else func.sum(getattr(model, name))
                        for name in measures
                    ),
                )
                .where(*where)
                .group_by(day, *columns)
            )
            rows = _total_rows(
                session, query, model, (*dimensions, *measures), assistant, 24, version
            )
            if rows:
                session.execute(insert(model), rows)
        _mark_built(session, assistant, start, end, DAY, 24)


def _total_rows(
    session: Session,
    query: Any,
    model: Any,
    names: tuple[str, ...],
    assistant: str,
    hours: int,
    version: int | None,
) -> list[dict[str, Any]]:
    """The rows of a totals table from ``query``'s (slot, *dimensions, *measures) results."""
    return [
        {
            "assistant": assistant,
            "hour": as_hour(row[0]),
            "hours": hours,
            **({"version": version} if model is HourClusterRow else {}),
            **dict(zip(names, row[1:], strict=True)),
        }
        for row in session.execute(query).all()
    ]


def _mark_built(
    session: Session, assistant: str, start: datetime, end: datetime, step: timedelta, hours: int
) -> None:
    """Record every ``hours``-long slot of ``[start, end)`` as built."""
    marks = []
    moment = start
    while moment < end:
        marks.append({"assistant": assistant, "hour": moment, "hours": hours})
        moment += step
    session.execute(insert(AnalyticsHourRow), marks)


def _day_of(session: Session, column: Any) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return func.date_trunc("day", func.timezone("UTC", column))
    return func.strftime("%Y-%m-%d 00:00:00", column)


def _missing(
    database: Database, assistant: str, start: datetime, end: datetime, hours: int
) -> list[datetime]:
    step = timedelta(hours=hours)
    expected = (end - start) // step
    with database.session() as session:
        condition = (
            AnalyticsHourRow.assistant == assistant,
            AnalyticsHourRow.hours == hours,
            AnalyticsHourRow.hour >= start,
            AnalyticsHourRow.hour < end,
        )
        # Usually everything is built: one count says so without reading the marks.
        if session.scalar(select(func.count()).where(*condition)) == expected:
            return []
        built = {
            as_hour(hour)
            for hour in session.scalars(
                select(AnalyticsHourRow.hour).where(
                    AnalyticsHourRow.assistant == assistant,
                    AnalyticsHourRow.hours == hours,
                    AnalyticsHourRow.hour >= start,
                    AnalyticsHourRow.hour < end,
                )
            ).all()
        }
    missing = []
    moment = start
    while moment < end:
        if moment not in built:
            missing.append(moment)
        moment += step
    return missing


_ATTEMPTS = 3


def _build_runs(
    database: Database,
    assistant: str,
    span: tuple[datetime, datetime],
    hours: int,
    version: int | None,
) -> int:
    """Build every missing ``hours``-long slot of ``span``; returns how many there were.

    Two reports building overlapping slots at once: the later one gives way (its whole
    transaction rolls back) and looks again for what is still missing, since the other may
    have built only part of its runs.
    """
    step, build = (HOUR, _build_hours) if hours == 1 else (DAY, _build_days)
    first_missing: int | None = None
    for _ in range(_ATTEMPTS):
        missing = _missing(database, assistant, *span, hours)
        first_missing = len(missing) if first_missing is None else first_missing
        if not missing:
            break
        collided = False
        for run_start, run_end in _runs(missing, step):
            try:
                build(database, assistant, run_start, run_end, version)
            except DatabaseError as exc:
                _unless_built_meanwhile(exc)
                collided = True
                logger.debug("slots from %s of %r were built concurrently", run_start, assistant)
        if not collided:
            break
    return first_missing or 0


def _unless_built_meanwhile(exc: DatabaseError) -> None:
    """Re-raise ``exc`` unless another report built the same slots first: its transaction
    then committed the very rows (and marks) this one would have, so giving way loses
    nothing."""
    if not is_duplicate_key(exc):
        raise exc


def day_span(start: datetime, end: datetime) -> tuple[datetime, datetime] | None:
    """The whole UTC days inside ``[start, end)`` (hour-aligned), or ``None``."""
    first = start.replace(hour=0)
    if first < start:
        first += DAY
    last = end.replace(hour=0)
    return (first, last) if first < last else None


def build_missing(
    database: Database,
    assistant: str,
    start: datetime,
    end: datetime,
    version: int | None,
    *,
    days: bool = True,
) -> int:
    """Build the totals of every hour in ``[start, end)`` (whole, ended hours) that is not
    built, for clustering ``version``, then of every whole day in it. Returns how many hours
    were built.

    Another process building the same hours at once makes one of the two give way.
    """
    with database.session() as session:
        first = session.scalar(
            select(func.min(TurnRow.created_at)).where(TurnRow.assistant == assistant)
        )
    if first is None:
        return 0
    # Nothing to build before the day of the first turn (a period may start years earlier);
    # from the start of that day, so that the day is built whole.
    start = max(start, floor_hour(first.astimezone(UTC)).replace(hour=0))
    if start >= end:
        return 0
    built = _build_runs(database, assistant, (start, end), 1, version)
    whole_days = day_span(start, end) if days else None
    if whole_days is not None:
        _build_runs(database, assistant, whole_days, 24, version)
    return built
