"""The analytics report of one assistant over a period, with the previous period for trends.

``build_report`` brings the per-turn insights of both periods up to date (question vectors,
groundedness, pages), reads the turns as plain data and hands them to the pure functions of
``topics``, ``usage``, ``quality`` and ``volume``. Questions are masked for personal data
before they are clustered, labelled or shown (``AnalyticsOptions.mask``, on by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from assistant.analytics.clustering import DEFAULT_DISTANCE_THRESHOLD
from assistant.analytics.insights import InsightEncoders, refresh_insights
from assistant.analytics.period import Period
from assistant.analytics.privacy import mask_personal_data
from assistant.analytics.quality import (
    REASK_SIMILARITY,
    ConversationQuality,
    conversation_quality,
    reasked_turns,
)
from assistant.analytics.records import Page, load_turns, nearest_pages
from assistant.analytics.topics import (
    LOW_SCORE,
    GapCluster,
    QuestionCluster,
    content_gaps,
    top_questions,
)
from assistant.analytics.usage import SourceUse, source_usage, unused_pages
from assistant.analytics.volume import Volume, volume
from assistant.chat.prompts import PromptLibrary
from assistant.database.engine import Database

__all__ = [
    "EXTEND_SCORE",
    "AnalyticsOptions",
    "AnalyticsReport",
    "ContentGap",
    "LeadSummary",
    "NearestPage",
    "build_report",
]

EXTEND_SCORE = 0.4
"""Best late-interaction score of a gap's nearest page from which the suggestion is to extend
that page rather than add a new one (off-topic questions score 0.2-0.4 on MiniLM tokens)."""


@dataclass(frozen=True, slots=True)
class AnalyticsOptions:
    """How a report is computed and shown."""

    mask: bool = True
    """Mask emails, phone numbers and card-like numbers in questions."""
    limit: int = 20
    """Clusters per list (top questions, content gaps)."""
    examples: int = 5
    """Example questions per cluster and per page."""
    buckets: int = 30
    """Slices of the period in the per-slice counts (sparklines)."""
    nearest: int = 3
    """Nearest pages per content gap."""
    low_score: float = LOW_SCORE
    reask_similarity: float = REASK_SIMILARITY
    distance_threshold: float = DEFAULT_DISTANCE_THRESHOLD


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
class LeadSummary:
    """Leads captured in the period (none until lead capture stores them)."""

    count: int = 0
    previous_count: int = 0


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
    refreshed_turns: int = 0


def _suggestion(prompts: PromptLibrary, gap: GapCluster, nearest: Sequence[NearestPage]) -> str:
    example = gap.questions[0] if gap.questions else gap.label
    topic = gap.label or example
    if nearest and nearest[0].score >= EXTEND_SCORE:
        page = nearest[0].title or nearest[0].url
        return prompts.render(
            "gap_extend_page", topic=topic, count=gap.count, example=example, page=page
        )
    return prompts.render("gap_new_page", topic=topic, count=gap.count, example=example)


def build_report(
    database: Database,
    assistant: str,
    period: Period,
    *,
    encoders: InsightEncoders | None,
    documents: Sequence[Page] = (),
    options: AnalyticsOptions | None = None,
    prompts: PromptLibrary | None = None,
) -> AnalyticsReport:
    """The report of ``assistant`` for ``period``.

    ``encoders`` computes the insights of turns that have none yet (``None``: only turns with
    stored insights take part in clustering and groundedness). ``documents`` are the knowledge
    base's pages, for the pages never used.

    >>> report = build_report(database, "docs", period_from("30d"), encoders=encoders)  # doctest: +SKIP
    >>> [cluster.label for cluster in report.top_questions]  # doctest: +SKIP
    """
    options = options or AnalyticsOptions()
    prompts = prompts or PromptLibrary()
    previous_period = period.previous()
    refreshed = 0
    if encoders is not None:
        both = Period(previous_period.since, period.until)
        refreshed = refresh_insights(database, assistant, both, encoders)
    render = mask_personal_data if options.mask else str
    current = load_turns(database, assistant, period)
    previous = load_turns(database, assistant, previous_period)
    reasked = reasked_turns([*previous, *current], similarity=options.reask_similarity)
    titles = {page.url: page.title for page in documents}
    for turn in current:
        for page in turn.context_pages:
            titles.setdefault(page.url, page.title)
    gaps = []
    for gap in content_gaps(
        current,
        previous,
        reasked,
        render=render,
        limit=options.limit,
        examples=options.examples,
        low_score=options.low_score,
        distance_threshold=options.distance_threshold,
    ):
        nearest = tuple(
            NearestPage(url, titles.get(url, ""), round(score, 4))
            for url, score in nearest_pages(
                database, assistant, gap.turn_ids, limit=options.nearest
            )
        )
        gaps.append(
            ContentGap(
                label=gap.label,
                count=gap.count,
                previous_count=gap.previous_count,
                questions=gap.questions,
                reasons=gap.reasons,
                nearest_sources=nearest,
                suggestion=_suggestion(prompts, gap, nearest),
            )
        )
    return AnalyticsReport(
        assistant=assistant,
        period=period,
        previous_period=previous_period,
        top_questions=tuple(
            top_questions(
                current,
                previous,
                period,
                render=render,
                limit=options.limit,
                examples=options.examples,
                buckets=options.buckets,
                distance_threshold=options.distance_threshold,
            )
        ),
        content_gaps=tuple(gaps),
        source_usage=tuple(source_usage(current, examples=options.examples, render=render)),
        unused_pages=tuple(unused_pages(documents, current)),
        quality=conversation_quality(current, reasked),
        previous_quality=conversation_quality(previous, reasked),
        volume=volume(current, period, buckets=options.buckets),
        previous_volume=volume(previous, previous_period, buckets=options.buckets),
        refreshed_turns=refreshed,
    )
