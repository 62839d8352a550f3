"""CSV export of content gaps: one row per gap, spreadsheet-ready."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from assistant.analytics.report import ContentGap

__all__ = ["GAP_COLUMNS", "gaps_csv"]

GAP_COLUMNS = (
    "label",
    "count",
    "previous_count",
    "reasons",
    "example_questions",
    "nearest_sources",
    "suggestion",
)

# A cell starting with these is run as a formula by spreadsheet programs.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def gaps_csv(gaps: Sequence[ContentGap]) -> str:
    """The gaps as CSV text with a header row (``GAP_COLUMNS``); lists are joined by `` | ``.

    Questions arrive already masked when the report masks personal data; cells that a
    spreadsheet would run as a formula are prefixed with ``'``.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(GAP_COLUMNS)
    for gap in gaps:
        writer.writerow(
            [
                _cell(gap.label),
                gap.count,
                gap.previous_count,
                " | ".join(f"{reason}:{count}" for reason, count in gap.reasons.items()),
                _cell(" | ".join(gap.questions)),
                " | ".join(f"{page.url} ({page.score:.2f})" for page in gap.nearest_sources),
                _cell(gap.suggestion),
            ]
        )
    return buffer.getvalue()
