"""Question clusters kept in the database: clustered fully now and then, joined incrementally.

A full clustering (``cluster_questions`` over every question of the assistant that has an
insight) stores one centroid and one label per cluster in ``question_clusterings`` and each
turn's cluster in its ``turn_insights`` row. Turns that arrive later join the cluster of their
nearest centroid, which costs in proportion to the new turns. The assistant is clustered fully
again on demand, when the encoder or the distance threshold changed, while it is small enough
for that to be cheap (``DIRECT_LIMIT`` questions), or once the turns joined since the last full
clustering reach ``recluster_share`` of the turns it saw.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import ColumnElement, func, or_, select, update

from assistant.analytics.clustering import (
    DEFAULT_DISTANCE_THRESHOLD,
    DIRECT_LIMIT,
    cluster_questions,
)
from assistant.analytics.labels import cluster_labels
from assistant.analytics.privacy import mask_personal_data
from assistant.database.analytics_models import QuestionClusteringRow, TurnInsightRow
from assistant.database.engine import Database
from assistant.database.models import TurnRow
from assistant.database.rollup_models import invalidate_assistant, invalidate_hours
from assistant.knowledge.vectors import unit_rows

__all__ = ["RECLUSTER_SHARE", "ClusteringUpdate", "update_clusters"]

logger = logging.getLogger(__name__)

RECLUSTER_SHARE = 0.2
"""Share of new turns (joined to a centroid since the last full clustering) that triggers a
full clustering: by then new subjects have had time to form clusters of their own."""

_LABEL_QUESTIONS = 500  # questions per cluster read for its label
_CHUNK = 2000  # rows per read and ids per UPDATE ... IN


@dataclass(frozen=True, slots=True)
class ClusteringUpdate:
    """What ``update_clusters`` did: ``full`` clustering or incremental, ``turns`` clustered or
    joined, the clustering ``version`` now stored, its ``clusters`` and the time taken."""

    version: int
    full: bool
    turns: int
    clusters: int
    seconds: float


def _vectors(rows: Iterable[bytes]) -> NDArray[np.float32]:
    return unit_rows(
        np.stack([np.frombuffer(data, dtype=np.float16) for data in rows]).astype(np.float32)
    )


def _store_assignments(
    database: Database, turn_ids: list[int], labels: NDArray[np.int64], version: int
) -> None:
    """Write each turn's cluster, one ``UPDATE ... WHERE turn_id IN`` per cluster and chunk."""
    by_cluster: dict[int, list[int]] = defaultdict(list)
    for turn_id, label in zip(turn_ids, labels.tolist(), strict=True):
        by_cluster[int(label)].append(turn_id)
    with database.session() as session:
        for label, members in by_cluster.items():
            for start in range(0, len(members), _CHUNK):
                session.execute(
                    update(TurnInsightRow)
                    .where(TurnInsightRow.turn_id.in_(members[start : start + _CHUNK]))
                    .values(cluster=label, clustering_version=version)
                )


def _labels(database: Database, turn_ids: list[int], labels: NDArray[np.int64]) -> list[str]:
    """Each cluster's label from (up to ``_LABEL_QUESTIONS`` of) its masked questions."""
    clusters = int(labels.max()) + 1 if len(labels) else 0
    chosen: dict[int, int] = {}
    counts = [0] * clusters
    for turn_id, label in zip(turn_ids, labels.tolist(), strict=True):
        if counts[label] < _LABEL_QUESTIONS:
            counts[label] += 1
            chosen[turn_id] = label
    texts: list[list[str]] = [[] for _ in range(clusters)]
    ids = list(chosen)
    with database.session() as session:
        for start in range(0, len(ids), _CHUNK):
            for turn_id, question, standalone in session.execute(
                select(TurnRow.id, TurnRow.question, TurnRow.standalone_question).where(
                    TurnRow.id.in_(ids[start : start + _CHUNK])
                )
            ).all():
                texts[chosen[turn_id]].append(mask_personal_data(standalone or question))
    return cluster_labels(texts) if clusters else []


def _full(
    database: Database,
    assistant: str,
    model_id: str,
    previous: QuestionClusteringRow | None,
    distance_threshold: float,
) -> ClusteringUpdate:
    started = time.perf_counter()
    with database.session() as session:
        rows = session.execute(
            select(TurnInsightRow.turn_id, TurnInsightRow.question_vector)
            .where(TurnInsightRow.assistant == assistant, TurnInsightRow.model_id == model_id)
            .order_by(TurnInsightRow.turn_id)
        ).all()
    version = (previous.version + 1) if previous is not None else 1
    if not rows:
        return ClusteringUpdate(version - 1, True, 0, 0, time.perf_counter() - started)
    turn_ids = [row.turn_id for row in rows]
    vectors = _vectors(row.question_vector for row in rows)
    labels = cluster_questions(vectors, distance_threshold=distance_threshold)
    clusters = int(labels.max()) + 1
    centroids = np.zeros((clusters, vectors.shape[1]), dtype=np.float32)
    np.add.at(centroids, labels, vectors)
    centroids = unit_rows(centroids)
    names = _labels(database, turn_ids, labels)
    _store_assignments(database, turn_ids, labels, version)
    now = datetime.now(UTC)
    with database.session() as session:
        # Every hour's totals by cluster belong to the previous clustering.
        invalidate_assistant(session, assistant)
        row = session.get(QuestionClusteringRow, assistant)
        if row is None:
            row = QuestionClusteringRow(assistant=assistant, created_at=now)
            session.add(row)
        row.version = version
        row.model_id = model_id
        row.distance_threshold = distance_threshold
        row.dimension = int(vectors.shape[1])
        row.clusters = clusters
        row.centroids = centroids.tobytes()
        row.labels = names
        row.labels_model = ""
        row.clustered_turns = len(turn_ids)
        row.assigned_turns = 0
        row.created_at = now
        row.updated_at = now
    seconds = time.perf_counter() - started
    logger.info(
        "clustered %d questions of %r into %d clusters in %.1fs",
        len(turn_ids),
        assistant,
        clusters,
        seconds,
    )
    return ClusteringUpdate(version, True, len(turn_ids), clusters, seconds)


def _unassigned(assistant: str, model_id: str, version: int) -> tuple[ColumnElement[bool], ...]:
    return (
        TurnInsightRow.assistant == assistant,
        TurnInsightRow.model_id == model_id,
        or_(
            TurnInsightRow.clustering_version.is_(None),
            TurnInsightRow.clustering_version != version,
        ),
    )


def _incremental(database: Database, current: QuestionClusteringRow) -> ClusteringUpdate:
    started = time.perf_counter()
    centroids = np.frombuffer(current.centroids, dtype=np.float32).reshape(
        current.clusters, current.dimension
    )
    conditions = _unassigned(current.assistant, current.model_id, current.version)
    joined = 0
    while True:
        with database.session() as session:
            rows = session.execute(
                select(
                    TurnInsightRow.turn_id,
                    TurnInsightRow.question_vector,
                    TurnInsightRow.turn_created_at,
                )
                .where(*conditions)
                .order_by(TurnInsightRow.turn_id)
                .limit(_CHUNK)
            ).all()
        if not rows:
            break
        labels = np.argmax(_vectors(row.question_vector for row in rows) @ centroids.T, axis=1)
        _store_assignments(
            database, [row.turn_id for row in rows], labels.astype(np.int64), current.version
        )
        with database.session() as session:
            invalidate_hours(
                session,
                current.assistant,
                (row.turn_created_at for row in rows if row.turn_created_at is not None),
            )
        joined += len(rows)
    with database.session() as session:
        row = session.get(QuestionClusteringRow, current.assistant)
        if row is not None:
            row.assigned_turns += joined
            row.updated_at = datetime.now(UTC)
    return ClusteringUpdate(
        current.version, False, joined, current.clusters, time.perf_counter() - started
    )


def update_clusters(
    database: Database,
    assistant: str,
    model_id: str,
    *,
    full: bool = False,
    distance_threshold: float = DEFAULT_DISTANCE_THRESHOLD,
    recluster_share: float = RECLUSTER_SHARE,
) -> ClusteringUpdate:
    """Bring ``assistant``'s question clusters up to date with its stored insights.

    Args:
        model_id: the encoder whose question vectors are clustered (others are left out).
        full: cluster everything again, whatever changed.
        distance_threshold: the cut of the agglomerative merge (see ``cluster_questions``).
        recluster_share: new turns, as a share of the last full clustering's, from which
            everything is clustered again rather than joined to the nearest centroid.

    >>> update_clusters(database, "docs", encoder.model_id)  # doctest: +SKIP
    ClusteringUpdate(version=3, full=False, turns=120, clusters=41, seconds=0.04)
    """
    with database.session() as session:
        current = session.get(QuestionClusteringRow, assistant)
        if current is not None:
            session.expunge(current)
    if (
        full
        or current is None
        or current.model_id != model_id
        or current.distance_threshold != distance_threshold
    ):
        return _full(database, assistant, model_id, current, distance_threshold)
    with database.session() as session:
        new = int(
            session.scalar(
                select(func.count())
                .select_from(TurnInsightRow)
                .where(*_unassigned(assistant, model_id, current.version))
            )
            or 0
        )
    if new == 0:
        return ClusteringUpdate(current.version, False, 0, current.clusters, 0.0)
    seen = current.clustered_turns + current.assigned_turns + new
    if seen <= DIRECT_LIMIT or current.assigned_turns + new >= recluster_share * max(
        current.clustered_turns, 1
    ):
        return _full(database, assistant, model_id, current, distance_threshold)
    return _incremental(database, current)
