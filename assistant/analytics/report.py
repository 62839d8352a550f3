"""The analytics report of one assistant over a period, with the previous period for trends.

``build_report`` reads SQL aggregates (``aggregates``, ``aggregate_topics``) over the turns and
their stored insights and clusters; it computes a small backlog of insights itself and leaves a
large one to ``bring_up_to_date``, which runs outside the request (the API's background task,
``assistant report``). Questions are masked for personal data
before they are clustered, labelled or shown (``AnalyticsOptions.mask``, on by default).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select

from assistant.analytics.aggregate_topics import (
    Clustering,
    clustering_of,
    content_gaps,
    nearest_to_gaps,
    source_usage,
    top_questions,
)
from assistant.analytics.aggregates import conversation_figures, quality_of, volume_of
from assistant.analytics.clustering import DEFAULT_DISTANCE_THRESHOLD
from assistant.analytics.insights import InsightEncoders, pending_insights, refresh_insights
from assistant.analytics.lead_quality import lead_summary
from assistant.analytics.model_review import review_with_model
from assistant.analytics.period import Period
from assistant.analytics.period_totals import PeriodTotals, period_totals
from assistant.analytics.privacy import mask_personal_data
from assistant.analytics.quality import REASK_SIMILARITY
from assistant.analytics.records import Page
from assistant.analytics.stored_clusters import update_clusters
from assistant.analytics.topics import LOW_SCORE, GapCluster, QuestionCluster
from assistant.analytics.types import AnalyticsReport, ContentGap, LeadSummary, NearestPage
from assistant.chat.prompts import PromptLibrary
from assistant.chat.provider import ChatProvider
from assistant.database.analytics_models import QuestionClusteringRow
from assistant.database.engine import Database
from assistant.engagement_config import LeadScoringConfig

__all__ = [
    "EXTEND_SCORE",
    "AnalyticsOptions",
    "AnalyticsReport",
    "ContentGap",
    "LeadSummary",
    "NearestPage",
    "bring_up_to_date",
    "build_report",
]

TOTALS_AHEAD = timedelta(days=180)
"""How far back the background refresh builds totals (the dashboard's longest period, 90
days, and the one before it); older periods build theirs when first reported."""

_LIST_ATTEMPTS = 3
"""Reads of the top questions and gaps when the questions are re-clustered meanwhile."""

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
    inline_refresh: int = 200
    """Largest backlog of turns without insight that a report computes itself; a larger one
    is left to the background refresh (``bring_up_to_date``)."""
    turn_ids: int = 1000
    """Turn ids kept per cluster for drill-down (the newest)."""
    lead_scoring: LeadScoringConfig = field(default_factory=LeadScoringConfig)
    """How leads are scored (the assistant's ``lead_form.scoring``)."""


def _suggestion(prompts: PromptLibrary, gap: GapCluster, nearest: Sequence[NearestPage]) -> str:
    example = gap.questions[0] if gap.questions else gap.label
    topic = gap.label or example
    asked = f"{gap.count} question" if gap.count == 1 else f"{gap.count} questions"
    if nearest and nearest[0].score >= EXTEND_SCORE:
        page = nearest[0].title or nearest[0].url
        return prompts.render(
            "gap_extend_page", topic=topic, asked=asked, example=example, page=page
        )
    return prompts.render("gap_new_page", topic=topic, asked=asked, example=example)


def bring_up_to_date(
    database: Database,
    assistant: str,
    period: Period,
    encoders: InsightEncoders,
    *,
    limit: int | None = None,
    distance_threshold: float = DEFAULT_DISTANCE_THRESHOLD,
    recluster: bool = False,
    progress: Callable[[int, int], None] | None = None,
    provider: ChatProvider | None = None,
) -> int:
    """Compute the missing insights of ``period`` (at most ``limit``), bring the stored
    question clusters up to date (``recluster``: cluster everything again), have
    ``provider`` (when given) name the clusters and grade a sample of answers, then build the
    period's hourly and daily totals. Returns how many insights were computed."""
    refreshed = refresh_insights(
        database, assistant, period, encoders, limit=limit, progress=progress
    )
    clustering = update_clusters(
        database,
        assistant,
        encoders.dense.model_id,
        full=recluster,
        distance_threshold=distance_threshold,
    )
    if provider is not None:
        # Names for the clusters and grades for a sample of answers; failures keep the rest.
        review_with_model(database, assistant, provider, period)
    # Build the hourly and daily totals now rather than in the next report.
    period_totals(database, assistant, period, version=clustering.version or None, parts=())
    return refreshed


def _pending(
    database: Database,
    assistant: str,
    both: Period,
    model_id: str,
    totals: PeriodTotals,
    before: PeriodTotals,
) -> int:
    """Turns of both periods without an up-to-date insight: from the totals, unless the
    questions were clustered with another encoder (then every insight is counted again)."""
    with database.session() as session:
        clustered_with = session.scalar(
            select(QuestionClusteringRow.model_id).where(
                QuestionClusteringRow.assistant == assistant
            )
        )
    if clustered_with is not None and clustered_with != model_id:
        return pending_insights(database, assistant, both, model_id)
    sums = [values for part in (totals, before) for values in part.totals.values()]
    return sum(int(values[0]) - int(values[10]) for values in sums)


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
    """The report of ``assistant`` for ``period``, from SQL aggregates over stored insights.

    With ``encoders``, a backlog of at most ``options.inline_refresh`` turns without insight
    is computed first (and the clusters updated); a larger one is left to the background
    refresh (``bring_up_to_date``) and counted in ``pending_turns``. ``encoders=None`` computes
    nothing. ``documents`` are the knowledge base's pages, for the pages never used.

    >>> report = build_report(database, "docs", period_from("30d"), encoders=encoders)  # doctest: +SKIP
    >>> [cluster.label for cluster in report.top_questions]  # doctest: +SKIP
    """
    options = options or AnalyticsOptions()
    prompts = prompts or PromptLibrary()
    previous_period = period.previous()
    both = Period(previous_period.since, period.until)
    stored = options.low_score == LOW_SCORE

    def sums() -> tuple[Clustering | None, PeriodTotals, PeriodTotals]:
        clustering = clustering_of(database, assistant)
        version = clustering[0] if clustering is not None else None
        totals = period_totals(
            database, assistant, period, version=version, buckets=options.buckets, stored=stored
        )
        before = period_totals(
            database,
            assistant,
            previous_period,
            version=version,
            buckets=options.buckets,
            stored=stored,
            parts=("totals", "clusters"),
        )
        return clustering, totals, before

    clustering, totals, before = sums()
    refreshed = pending = 0
    if encoders is not None:
        model_id = encoders.dense.model_id
        pending = _pending(database, assistant, both, model_id, totals, before)
        if 0 < pending <= options.inline_refresh:
            refreshed = bring_up_to_date(
                database,
                assistant,
                both,
                encoders,
                distance_threshold=options.distance_threshold,
            )
            clustering, totals, before = sums()
            pending = _pending(database, assistant, both, model_id, totals, before)
        elif clustering is None:
            update_clusters(
                database, assistant, model_id, distance_threshold=options.distance_threshold
            )
            clustering, totals, before = sums()
    render = mask_personal_data if options.mask else str
    titles = {page.url: page.title for page in documents}
    usage = source_usage(
        database, assistant, period, totals, render=render, examples=options.examples
    )
    for use in usage:
        titles.setdefault(use.url, use.title)

    def lists(
        clustering: Clustering, totals: PeriodTotals, before: PeriodTotals
    ) -> tuple[list[QuestionCluster], list[ContentGap]]:
        gaps: list[ContentGap] = []
        top = top_questions(
            database,
            assistant,
            period,
            clustering,
            totals,
            before,
            render=render,
            limit=options.limit,
            examples=options.examples,
            buckets=options.buckets,
            turn_ids=options.turn_ids,
        )
        found = content_gaps(
            database,
            assistant,
            period,
            clustering,
            totals,
            before,
            render=render,
            limit=options.limit,
            examples=options.examples,
        )
        for gap, pages in zip(
            found, nearest_to_gaps(database, found, limit=options.nearest), strict=True
        ):
            nearest = tuple(
                NearestPage(url, titles.get(url, ""), round(score, 4)) for url, score in pages
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
        return top, gaps

    top: list[QuestionCluster] = []
    gaps: list[ContentGap] = []
    for _ in range(_LIST_ATTEMPTS):
        if clustering is None:
            break
        top, gaps = lists(clustering, totals, before)
        current = clustering_of(database, assistant)
        if current is None or current[0] == clustering[0]:
            break
        # Re-clustered meanwhile (another report's refresh): the turns now carry the new
        # clustering's cluster ids, so the lists just read found none of their examples.
        # Read everything again under the new one.
        clustering, totals, before = sums()
    used = {use.url for use in usage if use.in_context}
    started = conversation_figures(database, assistant, period)
    started_before = conversation_figures(database, assistant, previous_period)
    return AnalyticsReport(
        assistant=assistant,
        period=period,
        previous_period=previous_period,
        top_questions=tuple(top),
        content_gaps=tuple(gaps),
        source_usage=tuple(usage),
        unused_pages=tuple(
            sorted((page for page in documents if page.url not in used), key=lambda p: p.url)
        ),
        quality=quality_of(totals, started),
        previous_quality=quality_of(before, started_before),
        volume=volume_of(database, assistant, period, totals, started, buckets=options.buckets),
        leads=lead_summary(
            database,
            assistant,
            period,
            options.lead_scoring,
            conversations=started[0],
            previous_conversations=started_before[0],
            labels=clustering[1] if clustering is not None else (),
            buckets=options.buckets,
        ),
        previous_volume=volume_of(
            database, assistant, previous_period, before, started_before, buckets=options.buckets
        ),
        labels_model=clustering[2] if clustering is not None else "",
        refreshed_turns=refreshed,
        pending_turns=pending,
    )
