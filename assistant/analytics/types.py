"""The value types of an analytics report, importable without the analytics machinery.

``AnalyticsReport`` and its parts are plain frozen dataclasses over the standard library, so
the HTTP client can hand out the same report as ``Assistant.report`` without loading numpy,
SQLAlchemy, scikit-learn or torch. The modules that compute each part re-export its type
(``assistant.analytics.report.AnalyticsReport`` is this ``AnalyticsReport``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from assistant.analytics.period import Period

__all__ = [
    "AnalyticsReport",
    "ContentGap",
    "ConversationQuality",
    "LeadSummary",
    "ModelUsage",
    "NearestPage",
    "Page",
    "Period",
    "QuestionCluster",
    "ScoredLead",
    "SourceUse",
    "StageLatency",
    "Volume",
]


@dataclass(frozen=True, slots=True)
class Page:
    """A page of the knowledge base, by URL, with its title where known."""

    url: str
    title: str


@dataclass(frozen=True, slots=True)
class QuestionCluster:
    """Questions of one meaning: how many (this period and the previous one), their share of
    the period's questions, examples (most asked first), how they were answered and rated, and
    ``daily`` counts per slice of the period. ``turn_ids`` (the newest, for drill-down) are
    empty in a report read over HTTP."""

    label: str
    count: int
    previous_count: int
    share: float
    questions: tuple[str, ...]
    answer_rate: float
    thumbs_up: int
    thumbs_down: int
    daily: tuple[int, ...]
    turn_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class NearestPage:
    """A page that came close to answering a gap's questions: its best late-interaction score."""

    url: str
    title: str
    score: float


@dataclass(frozen=True, slots=True)
class ContentGap:
    """A content gap: its questions, why they count as gaps, what almost answered, and what to
    write (``suggestion``, from the ``gap_new_page`` / ``gap_extend_page`` templates)."""

    label: str
    count: int
    previous_count: int
    questions: tuple[str, ...]
    reasons: dict[str, int]
    nearest_sources: tuple[NearestPage, ...]
    suggestion: str


@dataclass(frozen=True, slots=True)
class SourceUse:
    """How often one page was cited, given as context, and cited in a 👎 turn; ``questions``
    are the questions it was used for, most frequent first."""

    url: str
    title: str
    cited: int
    in_context: int
    cited_in_thumbs_down: int
    questions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ConversationQuality:
    """Quality of the answers of one period; rates are 0-1, ``None`` when nothing to measure.

    ``groundedness`` is the mean, over answered turns with cited sentences, of the share of
    sentences their cited passages support.
    """

    turns: int
    conversations: int
    answer_rate: float | None
    resolution_rate: float | None
    csat: float | None
    groundedness: float | None
    thumbs_up: int
    thumbs_down: int
    reasked: int
    model_grade: float | None = None
    """Mean 0-1 grade a language model gave the sampled answers (``None``: none graded)."""
    model_graded: int = 0
    """Answers graded by the model."""


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """Turns, tokens and estimated cost (USD; ``None`` when no price is known) of one model."""

    provider: str
    model: str | None
    turns: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None


@dataclass(frozen=True, slots=True)
class StageLatency:
    """Percentiles (milliseconds) of one stage over the turns that timed it."""

    stage: str
    count: int
    p50: float
    p90: float
    p99: float


@dataclass(frozen=True, slots=True)
class Volume:
    """How much the assistant was used in one period; ``daily_turns`` counts turns per slice
    of the period (for a sparkline)."""

    conversations: int
    turns: int
    visitors: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    by_model: tuple[ModelUsage, ...]
    latency_ms: tuple[StageLatency, ...]
    daily_turns: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ScoredLead:
    """A lead with its 0-100 score and the conversation signals behind it: questions asked,
    pricing intent, and the topics (question cluster labels) of its questions."""

    id: str
    created_at: datetime
    fields: dict[str, str]
    conversation_id: str | None
    score: int
    questions: int
    pricing_intent: bool
    topics: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LeadSummary:
    """Leads captured in the period and the previous one, the share of the period's
    conversations that left one (``conversion_rate``, 0-1, ``None`` without conversations),
    their mean score, leads per slice of the period, and the best-scored leads."""

    count: int = 0
    previous_count: int = 0
    conversion_rate: float | None = None
    previous_conversion_rate: float | None = None
    average_score: float | None = None
    daily: tuple[int, ...] = ()
    items: tuple[ScoredLead, ...] = ()


@dataclass(frozen=True, slots=True)
class AnalyticsReport:
    """Everything a site owner sees for one assistant and period (and the previous period)."""

    assistant: str
    period: Period
    previous_period: Period
    top_questions: tuple[QuestionCluster, ...]
    content_gaps: tuple[ContentGap, ...]
    source_usage: tuple[SourceUse, ...]
    unused_pages: tuple[Page, ...]
    quality: ConversationQuality
    previous_quality: ConversationQuality
    volume: Volume
    previous_volume: Volume
    leads: LeadSummary = field(default_factory=LeadSummary)
    labels_model: str = ""
    """The language model that named the question clusters; empty: c-TF-IDF terms."""
    refreshed_turns: int = 0
    """Turns whose insights this report computed."""
    pending_turns: int = 0
    """Turns of both periods still without insight (left out of clusters, gaps, pages and
    groundedness until the background refresh reaches them)."""
