"""The period a report covers, and the one before it for trends.

``since`` is written as a duration back from now (``30d``, ``12h``, ``2w``, ``90m``) or as an
ISO 8601 date or date-time; ``until`` defaults to now. The previous period has the same length
and ends where this one starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from assistant.errors import InvalidInputError

__all__ = ["Period", "parse_since", "period_from"]

_DURATION = re.compile(r"^\s*(\d{1,6})\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open time range ``[since, until)`` in UTC."""

    since: datetime
    until: datetime

    @property
    def length(self) -> timedelta:
        """How long the period lasts."""
        return self.until - self.since

    def previous(self) -> Period:
        """The period of the same length that ends where this one starts."""
        return Period(self.since - self.length, self.since)

    def contains(self, moment: datetime) -> bool:
        """Whether ``moment`` falls inside the period."""
        return self.since <= moment < self.until

    def buckets(self, count: int) -> list[datetime]:
        """The start of each of ``count`` equal slices of the period (for sparklines)."""
        step = self.length / count
        return [self.since + step * index for index in range(count)]

    def bucket_of(self, moment: datetime, count: int) -> int:
        """The index of the slice (of ``count``) that ``moment`` falls in, clamped to the range."""
        fraction = (moment - self.since) / self.length if self.length else 0.0
        return min(count - 1, max(0, int(fraction * count)))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_since(text: str, *, now: datetime) -> datetime:
    """The start of a period written as ``30d`` / ``12h`` / ``2w`` / ``90m`` or ISO 8601.

    Raises:
        InvalidInputError: ``text`` is neither a duration nor a date.

    >>> parse_since("2d", now=datetime(2025, 1, 3, tzinfo=UTC)).isoformat()
    '2025-01-01T00:00:00+00:00'
    """
    match = _DURATION.match(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return now - timedelta(**{_UNITS[unit]: amount})
    try:
        return _aware(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise InvalidInputError(
            f"since must be a duration like 30d, 12h, 2w or 90m, or an ISO date; got {text!r}"
        ) from None


def period_from(
    since: str | datetime = "30d", until: datetime | None = None, *, now: datetime | None = None
) -> Period:
    """The period from ``since`` to ``until`` (default now).

    Raises:
        InvalidInputError: ``since`` is not before ``until``, or cannot be read.
    """
    end = _aware(until) if until is not None else (now or datetime.now(UTC))
    start = _aware(since) if isinstance(since, datetime) else parse_since(since, now=end)
    if start >= end:
        raise InvalidInputError("since must be earlier than until")
    return Period(start, end)
