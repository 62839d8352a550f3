"""Response models of the analytics routes (``XPublic`` naming), built from an
``AnalyticsReport``. Every figure that has a trend carries the previous period's value beside
it (``previous_count``, ``previous``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from assistant.analytics.types import AnalyticsReport, ConversationQuality, LeadSummary, Volume

__all__ = [
    "AnalyticsPublic",
    "ClusterPublic",
    "GapClusterPublic",
    "LeadsPublic",
    "NearestSourcePublic",
    "QualityPublic",
    "ScoredLeadPublic",
    "SourceUsePublic",
    "VolumeBreakdown",
    "VolumePublic",
]


class ClusterPublic(BaseModel):
    """Questions of one meaning, labelled by their most distinctive words."""

    label: str
    count: int
    previous_count: int
    share: float
    questions: list[str]
    answer_rate: float
    thumbs_up: int
    thumbs_down: int
    daily: list[int]


class NearestSourcePublic(BaseModel):
    """A page that came close to answering (its best late-interaction score)."""

    url: str
    title: str
    score: float


class GapClusterPublic(BaseModel):
    """Questions not answered well, what almost answered them, and what to write."""

    label: str
    count: int
    previous_count: int
    questions: list[str]
    reasons: dict[str, int]
    nearest_sources: list[NearestSourcePublic]
    suggestion: str


class SourceUsePublic(BaseModel):
    """How one page was used: cited, given as context, cited in 👎 answers; its questions."""

    url: str
    title: str
    cited: int
    in_context: int
    cited_in_thumbs_down: int
    questions: list[str]


class QualityFigures(BaseModel):
    """Rates from 0 to 1 (``null`` when there was nothing to measure)."""

    turns: int = 0
    conversations: int = 0
    answer_rate: float | None
    resolution_rate: float | None
    csat: float | None
    groundedness: float | None
    thumbs_up: int
    thumbs_down: int
    reasked: int
    model_grade: float | None = None
    """Mean grade (0-1) a language model gave a sample of answers; ``null``: none graded."""
    model_graded: int = 0


class QualityPublic(QualityFigures):
    """This period's quality with the previous period's beside it."""

    previous: QualityFigures


class ModelUsagePublic(BaseModel):
    """Turns, tokens and estimated cost of one provider and model."""

    provider: str
    model: str | None
    turns: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None


class StageLatencyPublic(BaseModel):
    """Latency percentiles of one stage, in milliseconds."""

    stage: str
    count: int
    p50: float
    p90: float
    p99: float


class VolumeFigures(BaseModel):
    """Counts, tokens and cost of one period."""

    conversations: int
    turns: int
    visitors: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


class VolumeBreakdown(VolumeFigures):
    """One period's volume by model, latency per stage and turns per slice."""

    by_model: list[ModelUsagePublic]
    latency_ms: list[StageLatencyPublic]
    daily_turns: list[int]


class VolumePublic(VolumeBreakdown):
    """This period's volume with the previous period's beside it."""

    previous: VolumeBreakdown


class ScoredLeadPublic(BaseModel):
    """A lead of the period with its 0-100 score and the signals behind it."""

    id: str
    created_at: datetime
    fields: dict[str, str]
    conversation_id: str | None
    score: int
    questions: int
    pricing_intent: bool
    topics: list[str]


class LeadsPublic(BaseModel):
    """Leads captured in the period, conversion from conversations (0-1), mean score, leads
    per slice of the period, and the best-scored leads (all of them: ``leads.csv``)."""

    count: int
    previous_count: int
    conversion_rate: float | None = None
    previous_conversion_rate: float | None = None
    average_score: float | None = None
    daily: list[int] = []
    items: list[ScoredLeadPublic]


class AnalyticsPublic(BaseModel):
    """An assistant's analytics for ``since``–``until`` (the previous period for trends)."""

    assistant: str
    since: datetime
    until: datetime
    previous_since: datetime
    top_questions: list[ClusterPublic]
    content_gaps: list[GapClusterPublic]
    source_usage: list[SourceUsePublic]
    unused_pages: list[NearestSourcePublic]
    conversation_quality: QualityPublic
    leads: LeadsPublic
    volume: VolumePublic
    labels_model: str = ""
    """The language model that named the question clusters; empty: their c-TF-IDF terms."""
    pending_turns: int = 0
    """Turns not analysed yet (a background task computes them; figures that need per-turn
    analysis leave them out until then)."""
    refreshed_turns: int = 0
    """Turns whose analysis this report computed itself."""

    @classmethod
    def from_report(cls, report: AnalyticsReport) -> AnalyticsPublic:
        """The public shape of ``report``."""
        return cls(
            assistant=report.assistant,
            since=report.period.since,
            until=report.period.until,
            previous_since=report.previous_period.since,
            labels_model=report.labels_model,
            pending_turns=report.pending_turns,
            refreshed_turns=report.refreshed_turns,
            top_questions=[
                ClusterPublic(
                    label=c.label,
                    count=c.count,
                    previous_count=c.previous_count,
                    share=round(c.share, 4),
                    questions=list(c.questions),
                    answer_rate=round(c.answer_rate, 4),
                    thumbs_up=c.thumbs_up,
                    thumbs_down=c.thumbs_down,
                    daily=list(c.daily),
                )
                for c in report.top_questions
            ],
            content_gaps=[
                GapClusterPublic(
                    label=g.label,
                    count=g.count,
                    previous_count=g.previous_count,
                    questions=list(g.questions),
                    reasons=dict(g.reasons),
                    nearest_sources=[
                        NearestSourcePublic(url=p.url, title=p.title, score=p.score)
                        for p in g.nearest_sources
                    ],
                    suggestion=g.suggestion,
                )
                for g in report.content_gaps
            ],
            source_usage=[
                SourceUsePublic(
                    url=s.url,
                    title=s.title,
                    cited=s.cited,
                    in_context=s.in_context,
                    cited_in_thumbs_down=s.cited_in_thumbs_down,
                    questions=list(s.questions),
                )
                for s in report.source_usage
            ],
            unused_pages=[
                NearestSourcePublic(url=p.url, title=p.title, score=0.0)
                for p in report.unused_pages
            ],
            conversation_quality=QualityPublic(
                **_quality(report.quality).model_dump(),
                previous=_quality(report.previous_quality),
            ),
            leads=_leads(report.leads),
            volume=VolumePublic(
                **_volume(report.volume).model_dump(),
                previous=_volume(report.previous_volume),
            ),
        )


def _leads(leads: LeadSummary) -> LeadsPublic:
    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 4)

    return LeadsPublic(
        count=leads.count,
        previous_count=leads.previous_count,
        conversion_rate=rounded(leads.conversion_rate),
        previous_conversion_rate=rounded(leads.previous_conversion_rate),
        average_score=rounded(leads.average_score),
        daily=list(leads.daily),
        items=[
            ScoredLeadPublic(
                id=lead.id,
                created_at=lead.created_at,
                fields=dict(lead.fields),
                conversation_id=lead.conversation_id,
                score=lead.score,
                questions=lead.questions,
                pricing_intent=lead.pricing_intent,
                topics=list(lead.topics),
            )
            for lead in leads.items
        ],
    )


def _quality(quality: ConversationQuality) -> QualityFigures:
    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 4)

    return QualityFigures(
        turns=quality.turns,
        conversations=quality.conversations,
        answer_rate=rounded(quality.answer_rate),
        resolution_rate=rounded(quality.resolution_rate),
        csat=rounded(quality.csat),
        groundedness=rounded(quality.groundedness),
        thumbs_up=quality.thumbs_up,
        thumbs_down=quality.thumbs_down,
        reasked=quality.reasked,
        model_grade=rounded(quality.model_grade),
        model_graded=quality.model_graded,
    )


def _volume(volume: Volume) -> VolumeBreakdown:
    return VolumeBreakdown(
        conversations=volume.conversations,
        turns=volume.turns,
        visitors=volume.visitors,
        input_tokens=volume.input_tokens,
        output_tokens=volume.output_tokens,
        cost_usd=volume.cost_usd,
        by_model=[
            ModelUsagePublic(
                provider=m.provider,
                model=m.model,
                turns=m.turns,
                input_tokens=m.input_tokens,
                output_tokens=m.output_tokens,
                cost_usd=m.cost_usd,
            )
            for m in volume.by_model
        ],
        latency_ms=[
            StageLatencyPublic(stage=s.stage, count=s.count, p50=s.p50, p90=s.p90, p99=s.p99)
            for s in volume.latency_ms
        ],
        daily_turns=list(volume.daily_turns),
    )
