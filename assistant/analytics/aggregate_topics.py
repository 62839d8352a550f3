"""Top questions, content gaps and page usage from a period's totals and its newest turns.

Counts, ratings, gap reasons and per-slice counts of each cluster, and the use of each page,
are sums of the period's totals (``period_totals``). What a list shows beside them is read for
the listed clusters only, from their newest turns (index ``ix_turn_insights_cluster_created_at``):
the most asked questions among the newest ``EXAMPLE_SAMPLE``, the newest turn ids for
drill-down, and the pages that came nearest to answering a gap's newest ``GAP_SAMPLE`` turns
(one query for every gap). A page's questions come from the period's newest ``PAGE_SAMPLE``
turns that used a page.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select

from assistant.analytics.aggregates import in_period
from assistant.analytics.period import Period
from assistant.analytics.period_totals import PeriodTotals
from assistant.analytics.topics import LOW_SCORE, GapCluster, QuestionCluster
from assistant.analytics.usage import SourceUse
from assistant.database.analytics_models import QuestionClusteringRow, TurnInsightRow, TurnPageRow
from assistant.database.engine import Database
from assistant.database.models import FeedbackRow, TurnRow

__all__ = [
    "EXAMPLE_SAMPLE",
    "GAP_SAMPLE",
    "PAGE_SAMPLE",
    "Clustering",
    "clustering_of",
    "content_gaps",
    "nearest_to_gaps",
    "source_usage",
    "top_questions",
]

EXAMPLE_SAMPLE = 60
"""Newest turns of a listed cluster whose questions are counted for its examples."""
GAP_SAMPLE = 25
"""Newest turns of a content gap read for its examples and its nearest pages."""
PAGE_SAMPLE = 1000
"""Newest turns of the period that used a page, read for the pages' questions."""

Clustering = tuple[int, list[str], str]
"""The stored clustering's version, the label of each of its clusters and the language model
that wrote them (empty: c-TF-IDF terms)."""

_REASONS = ("no_answer", "low_score", "thumbs_down", "reasked")


def clustering_of(database: Database, assistant: str) -> Clustering | None:
    """The version and labels of ``assistant``'s stored clustering (``None``: none yet)."""
    with database.session() as session:
        row = session.get(QuestionClusteringRow, assistant)
        if row is None:
            return None
        return row.version, [str(label) for label in row.labels], row.labels_model


def _question() -> Any:
    return func.coalesce(func.nullif(TurnRow.standalone_question, ""), TurnRow.question)


def _cluster_turns(assistant: str, period: Period, version: int, *columns: Any) -> Any:
    """The turns in the period of the cluster given as parameter ``cluster`` (their ids and
    ``columns``), newest first (walks the cluster index). Built once, run per cluster."""
    return (
        select(TurnInsightRow.turn_id, *columns)
        .where(
            TurnInsightRow.assistant == assistant,
            TurnInsightRow.clustering_version == version,
            TurnInsightRow.cluster == bindparam("cluster"),
            TurnInsightRow.turn_created_at >= period.since,
            TurnInsightRow.turn_created_at < period.until,
        )
        .order_by(TurnInsightRow.turn_created_at.desc(), TurnInsightRow.turn_id.desc())
    )


def _is_gap() -> Any:
    lowest = (
        select(func.min(FeedbackRow.rating))
        .where(FeedbackRow.turn_id == TurnRow.id)
        .correlate(TurnRow)
        .scalar_subquery()
    )
    return or_(
        TurnRow.outcome == "no_answer",
        and_(
            TurnRow.outcome == "answered",
            TurnRow.top_score.is_not(None),
            TurnRow.top_score < LOW_SCORE,
        ),
        func.coalesce(lowest, 0) < 0,
        TurnInsightRow.reasked,
    )


def _examples(texts: Sequence[str], render: Callable[[str], str], examples: int) -> tuple[str, ...]:
    counted: Counter[str] = Counter()
    for text, count in Counter(texts).items():  # masks each distinct question once
        counted[render(text)] += count
    ordered = sorted(counted.items(), key=lambda item: (-item[1], item[0]))
    return tuple(text for text, _ in ordered[:examples])


def _sums(totals: PeriodTotals) -> dict[int, list[Any]]:
    """Per cluster its measures over every slice (summed once per ``totals``: both lists
    read them)."""
    if totals.cluster_sums is None:
        sums: dict[int, list[Any]] = {}
        for (_, cluster), values in totals.clusters.items():
            current = sums.setdefault(int(cluster), [0] * len(values))
            for index, value in enumerate(values):
                current[index] += int(value)
        totals.cluster_sums = sums
    return totals.cluster_sums


def top_questions(
    database: Database,
    assistant: str,
    period: Period,
    clustering: Clustering,
    totals: PeriodTotals,
    previous: PeriodTotals,
    *,
    render: Callable[[str], str] = str,
    limit: int = 20,
    examples: int = 5,
    buckets: int = 30,
    turn_ids: int = 1000,
) -> list[QuestionCluster]:
    """The ``limit`` largest clusters of the period's clustered questions."""
    version, labels, _ = clustering
    sums = _sums(totals)
    before = _sums(previous)
    total = sum(values[0] for values in sums.values())
    chosen = sorted(sums, key=lambda cluster: (-sums[cluster][0], cluster))[:limit]
    daily: dict[int, list[int]] = {cluster: [0] * buckets for cluster in chosen}
    for (bucket, cluster), values in totals.clusters.items():
        if int(cluster) in daily:
            daily[int(cluster)][int(bucket)] += int(values[0])
    result = []
    examples_query = (
        _cluster_turns(assistant, period, version, _question())
        .join(TurnRow, TurnRow.id == TurnInsightRow.turn_id)
        .limit(EXAMPLE_SAMPLE)
    )
    ids_query = _cluster_turns(assistant, period, version).limit(turn_ids)
    with database.session() as session:
        for cluster in chosen:
            texts = session.execute(examples_query, {"cluster": cluster}).all()
            ids = session.scalars(ids_query, {"cluster": cluster}).all() if turn_ids else []
            count, answered, up, down = sums[cluster][:4]
            result.append(
                QuestionCluster(
                    label=labels[cluster] if cluster < len(labels) else "",
                    count=count,
                    previous_count=before.get(cluster, [0])[0],
                    share=count / total,
                    questions=_examples([text for _, text in texts], render, examples),
                    answer_rate=answered / count,
                    thumbs_up=up,
                    thumbs_down=down,
                    daily=tuple(daily[cluster]),
                    turn_ids=tuple(sorted(int(turn_id) for turn_id in ids)),
                )
            )
    return result


def content_gaps(
    database: Database,
    assistant: str,
    period: Period,
    clustering: Clustering,
    totals: PeriodTotals,
    previous: PeriodTotals,
    *,
    render: Callable[[str], str] = str,
    limit: int = 20,
    examples: int = 5,
) -> list[GapCluster]:
    """The ``limit`` largest clusters of the period's questions that were not answered well;
    each gap's ``turn_ids`` are its newest ``GAP_SAMPLE`` turns."""
    version, labels, _ = clustering
    sums = {cluster: values for cluster, values in _sums(totals).items() if values[4]}
    before = _sums(previous)
    chosen = sorted(sums, key=lambda cluster: (-sums[cluster][4], cluster))[:limit]
    gaps = []
    query = (
        _cluster_turns(assistant, period, version, _question())
        .join(TurnRow, TurnRow.id == TurnInsightRow.turn_id)
        .where(_is_gap())
        .limit(GAP_SAMPLE)
    )
    with database.session() as session:
        for cluster in chosen:
            rows = session.execute(query, {"cluster": cluster}).all()
            values = sums[cluster]
            reasons = {
                name: int(value)
                for name, value in zip(_REASONS, values[5:9], strict=False)
                if value
            }
            gaps.append(
                GapCluster(
                    label=labels[cluster] if cluster < len(labels) else "",
                    count=values[4],
                    previous_count=before.get(cluster, [0] * 5)[4],
                    questions=_examples([text for _, text in rows], render, examples),
                    reasons=dict(sorted(reasons.items(), key=lambda item: -item[1])),
                    turn_ids=tuple(sorted(int(turn_id) for turn_id, _ in rows)),
                )
            )
    return gaps


def nearest_to_gaps(
    database: Database, gaps: Sequence[GapCluster], *, limit: int = 3
) -> list[list[tuple[str, float]]]:
    """For each gap, the pages that came closest to answering its turns: the best
    late-interaction score each URL reached in their traces, best first (one query)."""
    gap_of = {turn_id: index for index, gap in enumerate(gaps) for turn_id in gap.turn_ids}
    best: list[dict[str, float]] = [{} for _ in gaps]
    ids = list(gap_of)
    with database.session() as session:
        for start in range(0, len(ids), 1000):
            rows = session.execute(
                select(TurnPageRow.turn_id, TurnPageRow.url, TurnPageRow.nearest_score).where(
                    TurnPageRow.turn_id.in_(ids[start : start + 1000]),
                    TurnPageRow.nearest_score.is_not(None),
                )
            ).all()
            for turn_id, url, score in rows:
                scores = best[gap_of[int(turn_id)]]
                scores[url] = max(scores.get(url, float("-inf")), float(score or 0.0))
    return [sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit] for scores in best]


def source_usage(
    database: Database,
    assistant: str,
    period: Period,
    totals: PeriodTotals,
    *,
    render: Callable[[str], str] = str,
    examples: int = 5,
) -> list[SourceUse]:
    """Every page the period's turns used as context or cited, most cited first."""
    pages: dict[str, list[Any]] = {}
    for (_, url), (title, cited, in_context, down) in totals.pages.items():
        current = pages.setdefault(url, ["", 0, 0, 0])
        current[0] = max(current[0], title or "")
        current[1] += int(cited)
        current[2] += int(in_context)
        current[3] += int(down)
    texts: dict[str, list[str]] = defaultdict(list)
    if pages:
        newest = (
            select(TurnPageRow.url, _question())
            .select_from(TurnRow)
            .join(TurnPageRow, TurnPageRow.turn_id == TurnRow.id)
            .where(in_period(assistant, period), TurnPageRow.in_context)
            .order_by(TurnRow.created_at.desc())
            .limit(PAGE_SAMPLE)
        )
        with database.session() as session:
            for url, text in session.execute(newest).all():
                texts[url].append(text)
    uses = [
        SourceUse(
            url=url,
            title=title,
            cited=cited,
            in_context=in_context,
            cited_in_thumbs_down=down,
            questions=_examples(texts.get(url, []), render, examples),
        )
        for url, (title, cited, in_context, down) in pages.items()
    ]
    return sorted(uses, key=lambda use: (-use.cited, -use.in_context, use.url))
