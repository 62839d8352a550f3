"""Analytics for site owners: what visitors ask, what the content misses, how well it answers.

Computed from stored turns and their retrieval traces, for one assistant and a period, each
figure beside the previous period's. Per-turn facts (question vector, groundedness, pages) are
computed once and stored in ``turn_insights``; everything else is pure functions over plain data.

>>> report = bot.report("docs", since="30d")  # doctest: +SKIP
>>> report.top_questions[0].label, report.quality.answer_rate  # doctest: +SKIP
"""

from assistant.analytics.clustering import cluster_questions, pair_recall, random_pair_recall
from assistant.analytics.export import gaps_csv
from assistant.analytics.groundedness import SUPPORT_THRESHOLD, cited_sentences, groundedness_score
from assistant.analytics.insights import InsightEncoders, refresh_insights
from assistant.analytics.period import Period, period_from
from assistant.analytics.privacy import mask_personal_data
from assistant.analytics.quality import ConversationQuality
from assistant.analytics.records import Page, TurnFacts, load_turns
from assistant.analytics.report import (
    AnalyticsOptions,
    AnalyticsReport,
    ContentGap,
    LeadSummary,
    NearestPage,
    build_report,
)
from assistant.analytics.topics import GapCluster, QuestionCluster
from assistant.analytics.usage import SourceUse, page_questions
from assistant.analytics.volume import ModelUsage, StageLatency, Volume

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
