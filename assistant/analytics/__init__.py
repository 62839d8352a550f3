"""Analytics for site owners: what visitors ask, what the content misses, how well it answers.

Computed from stored turns and their retrieval traces, for one assistant and a period, each
figure beside the previous period's. Per-turn facts (question vector, groundedness, pages) are
computed once and stored in ``turn_insights``; everything else is pure functions over plain data.

>>> report = bot.report("docs", since="30d")  # doctest: +SKIP
>>> report.top_questions[0].label, report.quality.answer_rate  # doctest: +SKIP

The value types (``AnalyticsReport`` and its parts, ``Period``) load at once and lightly; the
functions that compute a report load their modules (numpy, SQLAlchemy, scikit-learn, torch)
on first use, so the HTTP client can read reports without them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from assistant.analytics.period import Period, period_from
from assistant.analytics.privacy import mask_personal_data
from assistant.analytics.types import (
    AnalyticsReport,
    ContentGap,
    ConversationQuality,
    LeadSummary,
    ModelUsage,
    NearestPage,
    Page,
    QuestionCluster,
    SourceUse,
    StageLatency,
    Volume,
)

if TYPE_CHECKING:
    from assistant.analytics.clustering import (
        cluster_questions,
        pair_recall,
        random_pair_recall,
    )
    from assistant.analytics.export import gaps_csv
    from assistant.analytics.groundedness import (
        SUPPORT_THRESHOLD,
        cited_sentences,
        groundedness_score,
    )
    from assistant.analytics.insights import InsightEncoders, refresh_insights
    from assistant.analytics.records import TurnFacts, load_turns
    from assistant.analytics.report import AnalyticsOptions, build_report
    from assistant.analytics.topics import GapCluster
    from assistant.analytics.usage import page_questions

_LAZY = {
    "cluster_questions": "assistant.analytics.clustering",
    "pair_recall": "assistant.analytics.clustering",
    "random_pair_recall": "assistant.analytics.clustering",
    "gaps_csv": "assistant.analytics.export",
    "SUPPORT_THRESHOLD": "assistant.analytics.groundedness",
    "cited_sentences": "assistant.analytics.groundedness",
    "groundedness_score": "assistant.analytics.groundedness",
    "InsightEncoders": "assistant.analytics.insights",
    "refresh_insights": "assistant.analytics.insights",
    "TurnFacts": "assistant.analytics.records",
    "load_turns": "assistant.analytics.records",
    "AnalyticsOptions": "assistant.analytics.report",
    "build_report": "assistant.analytics.report",
    "GapCluster": "assistant.analytics.topics",
    "page_questions": "assistant.analytics.usage",
}
"""Names whose modules need the heavy libraries: imported on first access."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'assistant.analytics' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "SUPPORT_THRESHOLD",
    "AnalyticsOptions",
    "AnalyticsReport",
    "ContentGap",
    "ConversationQuality",
    "GapCluster",
    "InsightEncoders",
    "LeadSummary",
    "ModelUsage",
    "NearestPage",
    "Page",
    "Period",
    "QuestionCluster",
    "SourceUse",
    "StageLatency",
    "TurnFacts",
    "Volume",
    "build_report",
    "cited_sentences",
    "cluster_questions",
    "gaps_csv",
    "groundedness_score",
    "load_turns",
    "mask_personal_data",
    "page_questions",
    "pair_recall",
    "period_from",
    "random_pair_recall",
    "refresh_insights",
]
