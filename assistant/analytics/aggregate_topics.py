"""Top questions, content gaps and page usage as SQL aggregates over stored clusters.

Each turn's cluster is stored (``stored_clusters``), so the clusters of a period are a
``GROUP BY cluster``; examples, per-slice counts and drill-down ids are read for the listed
clusters only. A content gap is the part of a question cluster that was not answered well
(declined, weak best passage, 👎, or asked again), so gaps and top questions share their labels;
the pages nearest to a gap are the best ``turn_pages.nearest_score`` of its turns.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select

from assistant.analytics.aggregates import bucket_of, gap_reasons, in_period, question_text, ratings
from assistant.analytics.period import Period
from assistant.analytics.topics import LOW_SCORE, GapCluster, QuestionCluster
from assistant.analytics.usage import SourceUse
from assistant.database.analytics_models import QuestionClusteringRow, TurnInsightRow, TurnPageRow
from assistant.database.engine import Database
from assistant.database.models import TurnRow

__all__ = [
    "Clustering",
    "clustering_of",
    "sql_content_gaps",
    "sql_source_usage",
    "sql_top_questions",
]

Clustering = tuple[int, list[str]]
"""The stored clustering's version and the label of each of its clusters."""


def clustering_of(database: Database, assistant: str) -> Clustering | None:
    """The version and labels of ``assistant``'s stored clustering (``None``: none yet)."""
    with database.session() as session:
        row = session.get(QuestionClusteringRow, assistant)
        return (row.version, [str(label) for label in row.labels]) if row else None


def _count_if(condition: ColumnElement[bool] | Any) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _clustered(assistant: str, period: Period, version: int, rated: Any) -> Select[Any]:
    """The period's turns with their cluster of the current clustering and net rating."""
    return (
        select()
        .select_from(TurnRow)
        .join(TurnInsightRow, TurnInsightRow.turn_id == TurnRow.id)
        .outerjoin(rated, rated.c.turn_id == TurnRow.id)
        .where(in_period(assistant, period), TurnInsightRow.clustering_version == version)
    )


def _examples(
    database: Database,
    base: Select[Any],
    clusters: Sequence[int],
    render: Callable[[str], str],
    examples: int,
) -> dict[int, tuple[str, ...]]:
    """The most asked questions of each of ``clusters`` (after ``render``)."""
    text = question_text().label("text")
    grouped = (
        base.add_columns(TurnInsightRow.cluster.label("cluster"), text, func.count().label("n"))
        .where(TurnInsightRow.cluster.in_(clusters))
        .group_by(TurnInsightRow.cluster, text)
        .subquery()
    )
    ranked = select(
        grouped.c.cluster,
        grouped.c.text,
        grouped.c.n,
        func.row_number()
        .over(partition_by=grouped.c.cluster, order_by=(grouped.c.n.desc(), grouped.c.text))
        .label("rank"),
    ).subquery()
    # Masking can merge questions, so a few more than needed are read.
    query = select(ranked.c.cluster, ranked.c.text, ranked.c.n).where(ranked.c.rank <= examples * 3)
    counted: dict[int, Counter[str]] = defaultdict(Counter)
    with database.session() as session:
        for cluster, question, count in session.execute(query).all():
            counted[int(cluster)][render(question)] += int(count)
    return {
        cluster: tuple(q for q, _ in counter.most_common(examples))
        for cluster, counter in counted.items()
    }


def _turn_ids(
    database: Database, base: Select[Any], clusters: Sequence[int], limit: int
) -> dict[int, tuple[int, ...]]:
    """Up to ``limit`` turn ids per cluster (newest first), for drill-down."""
    ranked = (
        base.add_columns(
            TurnInsightRow.cluster.label("cluster"),
            TurnRow.id.label("turn_id"),
            func.row_number()
            .over(partition_by=TurnInsightRow.cluster, order_by=TurnRow.id.desc())
            .label("rank"),
        )
        .where(TurnInsightRow.cluster.in_(clusters))
        .subquery()
    )
    query = select(ranked.c.cluster, ranked.c.turn_id).where(ranked.c.rank <= limit)
    ids: dict[int, list[int]] = defaultdict(list)
    with database.session() as session:
        for cluster, turn_id in session.execute(query).all():
            ids[int(cluster)].append(int(turn_id))
    return {cluster: tuple(sorted(values)) for cluster, values in ids.items()}


def sql_top_questions(
    database: Database,
    assistant: str,
    period: Period,
    clustering: Clustering,
    *,
    render: Callable[[str], str] = str,
    limit: int = 20,
    examples: int = 5,
    buckets: int = 30,
    turn_ids: int = 1000,
) -> list[QuestionCluster]:
    """The ``limit`` largest clusters of the period's clustered questions."""
    version, labels = clustering
    rated = ratings(assistant)
    lowest = func.coalesce(rated.c.lowest, 0)
    base = _clustered(assistant, period, version, rated)
    counts_query = base.add_columns(
        TurnInsightRow.cluster,
        func.count(),
        _count_if(TurnRow.outcome == "answered"),
        _count_if(lowest > 0),
        _count_if(lowest < 0),
    ).group_by(TurnInsightRow.cluster)
    previous_query = (
        _clustered(assistant, period.previous(), version, rated)
        .add_columns(TurnInsightRow.cluster, func.count())
        .group_by(TurnInsightRow.cluster)
    )
    with database.session() as session:
        rows = session.execute(counts_query).all()
        previous = {int(c): int(n) for c, n in session.execute(previous_query).all()}
    total = sum(int(row[1]) for row in rows)
    chosen = sorted(rows, key=lambda row: (-int(row[1]), int(row[0])))[:limit]
    top = [int(row[0]) for row in chosen]
    if not top:
        return []
    bucket = bucket_of(period, buckets).label("bucket")
    daily_query = (
        base.add_columns(TurnInsightRow.cluster, bucket, func.count())
        .where(TurnInsightRow.cluster.in_(top))
        .group_by(TurnInsightRow.cluster, bucket)
    )
    daily: dict[int, list[int]] = {cluster: [0] * buckets for cluster in top}
    with database.session() as session:
        for cluster, index, count in session.execute(daily_query).all():
            daily[int(cluster)][int(index)] = int(count)
    questions = _examples(database, base, top, render, examples)
    ids = _turn_ids(database, base, top, turn_ids)
    return [
        QuestionCluster(
            label=labels[cluster] if cluster < len(labels) else "",
            count=int(count),
            previous_count=previous.get(cluster, 0),
            share=int(count) / total,
            questions=questions.get(cluster, ()),
            answer_rate=int(answered) / int(count),
            thumbs_up=int(up),
            thumbs_down=int(down),
            daily=tuple(daily[cluster]),
            turn_ids=ids.get(cluster, ()),
        )
        for cluster, count, answered, up, down in ((int(r[0]), *r[1:]) for r in chosen)
    ]


def sql_content_gaps(
    database: Database,
    assistant: str,
    period: Period,
    clustering: Clustering,
    *,
    render: Callable[[str], str] = str,
    limit: int = 20,
    examples: int = 5,
    low_score: float = LOW_SCORE,
    turn_ids: int = 1000,
) -> list[GapCluster]:
    """The ``limit`` largest clusters of the period's questions that were not answered well."""
    version, labels = clustering
    rated = ratings(assistant)
    reasons = gap_reasons(rated.c.lowest, low_score)
    is_gap = or_(*reasons.values())
    base = _clustered(assistant, period, version, rated).where(is_gap)
    counts_query = base.add_columns(
        TurnInsightRow.cluster,
        func.count(),
        *(_count_if(condition) for condition in reasons.values()),
    ).group_by(TurnInsightRow.cluster)
    previous_query = (
        _clustered(assistant, period.previous(), version, rated)
        .where(is_gap)
        .add_columns(TurnInsightRow.cluster, func.count())
        .group_by(TurnInsightRow.cluster)
    )
    with database.session() as session:
        rows = session.execute(counts_query).all()
        previous = {int(c): int(n) for c, n in session.execute(previous_query).all()}
    chosen = sorted(rows, key=lambda row: (-int(row[1]), int(row[0])))[:limit]
    top = [int(row[0]) for row in chosen]
    if not top:
        return []
    questions = _examples(database, base, top, render, examples)
    ids = _turn_ids(database, base, top, turn_ids)
    gaps = []
    for row in chosen:
        cluster, count = int(row[0]), int(row[1])
        counted = Counter(
            {name: int(value) for name, value in zip(reasons, row[2:], strict=True) if value}
        )
        gaps.append(
            GapCluster(
                label=labels[cluster] if cluster < len(labels) else "",
                count=count,
                previous_count=previous.get(cluster, 0),
                questions=questions.get(cluster, ()),
                reasons=dict(counted.most_common()),
                turn_ids=ids.get(cluster, ()),
            )
        )
    return gaps


def nearest_to_gap(
    database: Database,
    assistant: str,
    period: Period,
    gap_turn_ids: Sequence[int],
    *,
    limit: int = 3,
) -> list[tuple[str, float]]:
    """The pages that came closest to answering the turns ``gap_turn_ids``: the best
    late-interaction score each URL reached in their traces (stored per turn), best first."""
    best = func.max(TurnPageRow.nearest_score)
    query = (
        select(TurnPageRow.url, best)
        .join(TurnRow, TurnRow.id == TurnPageRow.turn_id)
        .where(
            in_period(assistant, period),
            TurnPageRow.turn_id.in_(gap_turn_ids),
            TurnPageRow.nearest_score.is_not(None),
        )
        .group_by(TurnPageRow.url)
        .order_by(best.desc(), TurnPageRow.url)
        .limit(limit)
    )
    with database.session() as session:
        return [(str(url), float(score or 0.0)) for url, score in session.execute(query).all()]


def sql_source_usage(
    database: Database,
    assistant: str,
    period: Period,
    *,
    render: Callable[[str], str] = str,
    examples: int = 5,
) -> list[SourceUse]:
    """Every page the period's turns used as context or cited, most cited first."""
    rated = ratings(assistant)
    used = or_(TurnPageRow.cited, TurnPageRow.in_context)
    base = (
        select()
        .select_from(TurnPageRow)
        .join(TurnRow, TurnRow.id == TurnPageRow.turn_id)
        .where(in_period(assistant, period), used)
    )
    query = (
        base.outerjoin(rated, rated.c.turn_id == TurnRow.id)
        .add_columns(
            TurnPageRow.url,
            func.max(TurnPageRow.title),
            _count_if(TurnPageRow.cited),
            _count_if(TurnPageRow.in_context),
            _count_if(and_(TurnPageRow.cited, func.coalesce(rated.c.lowest, 0) < 0)),
        )
        .group_by(TurnPageRow.url)
    )
    text = question_text().label("text")
    grouped = (
        base.where(TurnPageRow.in_context)
        .add_columns(TurnPageRow.url.label("url"), text, func.count().label("n"))
        .group_by(TurnPageRow.url, text)
        .subquery()
    )
    ranked = select(
        grouped.c.url,
        grouped.c.text,
        grouped.c.n,
        func.row_number()
        .over(partition_by=grouped.c.url, order_by=(grouped.c.n.desc(), grouped.c.text))
        .label("rank"),
    ).subquery()
    examples_query = select(ranked.c.url, ranked.c.text, ranked.c.n).where(
        ranked.c.rank <= examples * 3
    )
    counted: dict[str, Counter[str]] = defaultdict(Counter)
    with database.session() as session:
        rows = session.execute(query).all()
        for url, question, count in session.execute(examples_query).all():
            counted[url][render(question)] += int(count)
    uses = [
        SourceUse(
            url=str(url),
            title=str(title or ""),
            cited=int(cited),
            in_context=int(in_context),
            cited_in_thumbs_down=int(down),
            questions=tuple(q for q, _ in counted[url].most_common(examples)),
        )
        for url, title, cited, in_context, down in rows
    ]
    return sorted(uses, key=lambda use: (-use.cited, -use.in_context, use.url))
