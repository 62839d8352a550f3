"""A period's totals: stored daily and hourly totals for its whole days and hours, the turns
for the rest.

``period_totals`` splits a period into the whole, ended hours inside it (summed from the
stored tables: whole UTC days from the daily rows, the hours around them from the hourly
rows, after building what is not built yet) and the part-hours at either end, plus
the hour still running (grouped from the turns by the same queries). Each total comes per
slice of the period (``buckets``): a stored hour counts in the slice its start falls in, a
turn read directly in the slice of its own time. Short periods, whose slices are shorter than
an hour, are read from the turns alone.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    bindparam,
    case,
    func,
    literal,
    select,
)

from assistant.analytics.period import Period
from assistant.analytics.rollups import DAY, HOUR, build_missing, day_span, floor_hour, sealed_until
from assistant.analytics.turn_queries import (
    as_hour,
    clusters_query,
    hour_of,
    pages_query,
    totals_query,
)
from assistant.database.engine import Database
from assistant.database.models import TurnRow, UTCDateTime
from assistant.database.rollup_models import HourClusterRow, HourPageRow, HourTotalsRow

__all__ = ["PeriodTotals", "bucket_case", "period_totals"]

Key = tuple[Any, ...]


def bucket_case(period: Period, buckets: int, column: Any) -> ColumnElement[int]:
    """The slice (of ``buckets``) of ``period`` that a timestamp column falls in, in SQL."""
    starts = period.buckets(buckets)
    return case(
        *((column < start, index - 1) for index, start in enumerate(starts) if index),
        else_=buckets - 1,
    )


@dataclass(slots=True)
class PeriodTotals:
    """Sums per key, each key starting with the slice: ``totals`` by (slice, provider,
    model), ``clusters`` by (slice, cluster), ``pages`` by (slice, url) with the title
    first. Measures are in the column order of ``assistant.analytics.rollups``' queries."""

    totals: dict[Key, list[Any]] = field(default_factory=dict)
    clusters: dict[Key, list[Any]] = field(default_factory=dict)
    pages: dict[Key, list[Any]] = field(default_factory=dict)
    cluster_sums: dict[int, list[Any]] | None = field(default=None, compare=False, repr=False)
    """``clusters`` summed over the slices, per cluster, once read (``aggregate_topics``)."""


def _ceil_hour(moment: datetime) -> datetime:
    floor = floor_hour(moment)
    return floor if floor == moment else floor + HOUR


def _split(
    period: Period, buckets: int, now: datetime | None
) -> tuple[tuple[datetime, datetime] | None, list[tuple[datetime, datetime]]]:
    """The stored span ``[start, end)`` (or ``None``) and the ranges read from the turns."""
    if period.length / max(buckets, 1) < HOUR:
        return None, [(period.since, period.until)]
    start = _ceil_hour(period.since)
    end = min(floor_hour(period.until), sealed_until(now))
    if start >= end:
        return None, [(period.since, period.until)]
    edges = [(period.since, start), (end, period.until)]
    return (start, end), [(low, high) for low, high in edges if low < high]


def _add(target: dict[Key, list[Any]], key: Key, values: Any) -> None:
    """Add a row's measures to ``target[key]`` (``None`` stays ``None`` until a number)."""
    current = target.get(key)
    if current is None:
        target[key] = list(values)
        return
    for index, value in enumerate(values):
        if value is None:
            continue
        if isinstance(value, str):
            current[index] = max(current[index] or "", value)
        else:
            current[index] = value if current[index] is None else current[index] + value


def _merge(
    target: dict[Key, list[Any]],
    rows: Any,
    dimensions: int,
    slice_of: Callable[[Any], int] | None = None,
) -> None:
    """Add ``rows`` (slot, dimensions..., measures...) into ``target``; ``slice_of`` turns a
    row's slot (an hour) into its slice, else the slot is the slice."""
    for row in rows:
        slot = slice_of(row[0]) if slice_of is not None else row[0]
        _add(target, (slot, *row[1:dimensions]), row[dimensions:])


_ASSISTANT = bindparam("assistant", type_=String())
_START = bindparam("start", type_=UTCDateTime())
_END = bindparam("end", type_=UTCDateTime())
_VERSION = bindparam("version", type_=Integer())
_HOURS = bindparam("hours", type_=Integer())

_TABLES: dict[str, tuple[Any, list[Any], int]] = {
    "totals": (HourTotalsRow, [HourTotalsRow.provider, HourTotalsRow.model], 3),
    "clusters": (HourClusterRow, [HourClusterRow.cluster], 2),
    "pages": (HourPageRow, [HourPageRow.url], 2),
}


def _raw(part: str, slot: Any) -> Select[Any]:
    """The grouped turns of ``part`` between the parameters ``start`` and ``end``."""
    if part == "totals":
        return totals_query(_ASSISTANT, _START, _END, slot)  # type: ignore[arg-type]
    if part == "clusters":
        return clusters_query(_ASSISTANT, _START, _END, slot, _VERSION)  # type: ignore[arg-type]
    return pages_query(_ASSISTANT, _START, _END, slot)  # type: ignore[arg-type]


@functools.cache
def _raw_by_hour(part: str, dialect: str) -> Select[Any]:
    """``_raw`` per hour, built once per dialect (statements are costly to build)."""
    return _raw(part, hour_of(dialect, TurnRow.created_at))


@functools.cache
def _stored(part: str) -> Select[Any]:
    """The stored rows of ``part`` with ``hours`` between ``start`` and ``end``, summed per
    hour (or day) and dimensions; pages, which need no slices, per page only (a page's
    title: the greatest seen)."""
    model, dimensions, _ = _TABLES[part]
    names = {column.key for column in dimensions}
    measures = [
        func.max(column) if column.key == "title" else func.sum(column)
        for column in model.__table__.columns
        if column.key not in {"id", "assistant", "hour", "hours", "version", *names}
    ]
    where = [
        model.assistant == _ASSISTANT,
        model.hours == _HOURS,
        model.hour >= _START,
        model.hour < _END,
    ]
    if model is HourClusterRow:
        where.append(HourClusterRow.version == _VERSION)
    slot = literal(0) if model is HourPageRow else model.hour
    group = dimensions if model is HourPageRow else [model.hour, *dimensions]
    return select(slot, *dimensions, *measures).where(*where).group_by(*group)


def _stored_spans(
    span: tuple[datetime, datetime], use_days: bool
) -> list[tuple[int, datetime, datetime]]:
    """The stored rows that cover ``span``: its whole days, and the hours around them, as
    (hours, start, end) per index range."""
    days = day_span(*span) if use_days else None
    if days is None:
        return [(1, span[0], span[1])]
    parts = [(24, days[0], days[1]), (1, span[0], days[0]), (1, days[1], span[1])]
    return [(hours, low, high) for hours, low, high in parts if low < high]


def _first(_: Any) -> int:
    return 0


def period_totals(
    database: Database,
    assistant: str,
    period: Period,
    *,
    version: int | None,
    buckets: int = 30,
    now: datetime | None = None,
    stored: bool = True,
    parts: tuple[str, ...] = ("totals", "clusters", "pages"),
) -> PeriodTotals:
    """The sums of ``period`` per slice: totals, clusters of ``version`` and pages.

    ``stored=False`` reads every turn (the stored hours count a weak best passage below
    ``LOW_SCORE``; a report with another threshold reads the turns).
    """
    span, edges = _split(period, buckets, now) if stored else (None, [(period.since, period.until)])
    result = PeriodTotals()
    # A stored day counts in the slice its start falls in: only where slices last a day.
    use_days = period.length / max(buckets, 1) >= DAY
    if span is not None:
        build_missing(database, assistant, span[0], span[1], version, days=use_days)
    # Slices of an hour or more: hours are put in their slice here, from the hour's start
    # (the part-hours too, so one slice's edge may be off by part of an hour); shorter
    # slices are computed exactly in SQL.
    hourly = period.length / max(buckets, 1) >= HOUR
    slices: dict[Any, int] = {}

    def slice_of(hour: Any) -> int:
        if hour not in slices:
            slices[hour] = period.bucket_of(as_hour(hour), buckets)
        return slices[hour]

    raw_slice = slice_of if hourly else None
    wanted = [part for part in parts if part != "clusters" or version is not None]
    with database.session() as session:
        dialect = session.get_bind().dialect.name
        exact = None if hourly else bucket_case(period, buckets, TurnRow.created_at)
        for part in wanted:
            target = getattr(result, part)
            dimensions = _TABLES[part][2]
            raw = _raw_by_hour(part, dialect) if exact is None else _raw(part, exact)
            for low, high in edges:
                rows = session.execute(
                    raw, {"assistant": assistant, "start": low, "end": high, "version": version}
                ).all()
                # Pages need no slices: all in slice 0.
                _merge(target, rows, dimensions, _first if part == "pages" else raw_slice)
            if span is None:
                continue
            for hours, low, high in _stored_spans(span, use_days):
                rows = session.execute(
                    _stored(part),
                    {
                        "assistant": assistant,
                        "hours": hours,
                        "start": low,
                        "end": high,
                        "version": version,
                    },
                ).all()
                _merge(target, rows, dimensions, _first if part == "pages" else slice_of)
    return result
