"""The analytics report read back from ``GET /api/assistants/{name}/analytics``.

The route sends an ``AnalyticsPublic``; ``decode_report`` turns it into the ``AnalyticsReport``
that ``Assistant.report`` returns. What the route does not send keeps its default: the turn
ids of each question cluster (drill-down stays on the server) are empty, and rates and shares
arrive rounded to four decimals as the route rounds them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assistant.analytics.types import AnalyticsReport
from assistant.client._wire import validate

__all__ = ["decode_report"]

JsonObject = Mapping[str, Any]

_QUALITY = (
    "turns",
    "conversations",
    "answer_rate",
    "resolution_rate",
    "csat",
    "groundedness",
    "thumbs_up",
    "thumbs_down",
    "reasked",
    "model_grade",
    "model_graded",
)
_BREAKDOWNS = ("by_model", "latency_ms", "daily_turns")


def _quality(figures: JsonObject) -> dict[str, Any]:
    # A server from before ``turns`` / ``conversations`` were sent gives 0 for them.
    return {name: figures.get(name, None if name == "model_grade" else 0) for name in _QUALITY}


def _volume(figures: JsonObject) -> dict[str, Any]:
    # A server from before the previous period's breakdowns were sent gives none.
    return {name: value for name, value in figures.items() if name != "previous"} | {
        name: figures.get(name, ()) for name in _BREAKDOWNS
    }


def _leads(leads: JsonObject) -> dict[str, Any]:
    # A server from before lead quality sends counts only.
    names = ("conversion_rate", "previous_conversion_rate", "average_score")
    return {
        "count": leads["count"],
        "previous_count": leads["previous_count"],
        **{name: leads.get(name) for name in names},
        "daily": leads.get("daily", ()),
        "items": [
            {**item, "topics": tuple(item.get("topics", ()))} for item in leads.get("items", ())
        ],
    }


def decode_report(data: JsonObject) -> AnalyticsReport:
    """The ``AnalyticsReport`` of an ``AnalyticsPublic``.

    Raises:
        pydantic.ValidationError: ``data`` is not an analytics report.
    """
    quality = data["conversation_quality"]
    volume = data["volume"]
    leads = data["leads"]
    return validate(
        AnalyticsReport,
        {
            "assistant": data["assistant"],
            "period": {"since": data["since"], "until": data["until"]},
            "previous_period": {"since": data["previous_since"], "until": data["since"]},
            "top_questions": data["top_questions"],
            "content_gaps": data["content_gaps"],
            "source_usage": data["source_usage"],
            "unused_pages": [
                {"url": page["url"], "title": page["title"]} for page in data["unused_pages"]
            ],
            "quality": _quality(quality),
            "previous_quality": _quality(quality["previous"]),
            "volume": _volume(volume),
            "previous_volume": _volume(volume["previous"]),
            "leads": _leads(leads),
            "refreshed_turns": data.get("refreshed_turns", 0),
            "labels_model": data.get("labels_model", ""),
            "pending_turns": data.get("pending_turns", 0),
        },
    )
