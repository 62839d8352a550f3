"""Grouping questions by meaning: agglomerative clustering on cosine, in two stages at scale.

Up to ``DIRECT_LIMIT`` questions are clustered directly (average linkage, cosine distance cut
at ``distance_threshold``). Above that, MiniBatchKMeans first summarises the questions into
``micro_clusters`` centroids and the same agglomerative cut merges the centroids; each question
takes the cluster of its centroid. That keeps 100,000 questions within seconds on two cores
while the merge still decides by meaning, not by a fixed number of topics.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from sklearn.cluster import AgglomerativeClustering, MiniBatchKMeans

from assistant.knowledge.vectors import unit_rows

__all__ = [
    "DEFAULT_DISTANCE_THRESHOLD",
    "DIRECT_LIMIT",
    "cluster_questions",
    "pair_recall",
    "random_pair_recall",
]

DEFAULT_DISTANCE_THRESHOLD = 0.55
"""Average cosine distance under which two groups of questions are merged (MiniLM vectors):
paraphrases of one question sit at 0.1-0.4, questions on one subject around 0.4-0.6."""

DIRECT_LIMIT = 1000
"""Largest number of questions clustered point by point (memory and time grow as n²)."""


def _agglomerate(vectors: NDArray[np.float32], threshold: float) -> NDArray[np.int64]:
    if len(vectors) == 1:
        return np.zeros(1, dtype=np.int64)
    model = AgglomerativeClustering(
        n_clusters=None, metric="cosine", linkage="average", distance_threshold=threshold
    )
    return np.asarray(model.fit_predict(vectors), dtype=np.int64)


def cluster_questions(
    vectors: NDArray[np.float32],
    *,
    distance_threshold: float = DEFAULT_DISTANCE_THRESHOLD,
    micro_clusters: int | None = None,
    seed: int = 0,
) -> NDArray[np.int64]:
    """A cluster number for each question, numbered by cluster size (0 is the largest).

    Args:
        vectors: (N, d) question vectors; rows are L2-normalised here.
        distance_threshold: cosine distance at which average linkage stops merging.
        micro_clusters: centroids of the first stage above ``DIRECT_LIMIT`` questions
            (default ``2·√N``, at most 500; three passes over the data).
        seed: seed of the first stage.

    Returns:
        (N,) int64 cluster numbers.

    >>> labels = cluster_questions(np.array([[1, 0], [0.99, 0.1], [0, 1]], dtype=np.float32))
    >>> labels.tolist()
    [0, 0, 1]
    """
    count = len(vectors)
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    unit = unit_rows(np.asarray(vectors, dtype=np.float32))
    if count <= DIRECT_LIMIT:
        labels = _agglomerate(unit, distance_threshold)
    else:
        centres = micro_clusters or min(500, int(2 * math.sqrt(count)))
        # Random initial centres: k-means++ seeding alone costs minutes at this size, and the
        # first stage only summarises; the merge that follows decides the clusters.
        kmeans = MiniBatchKMeans(
            n_clusters=centres,
            init="random",
            batch_size=4096,
            n_init=1,
            max_iter=3,
            random_state=seed,
        )
        micro = kmeans.fit_predict(unit)
        merged = _agglomerate(
            unit_rows(kmeans.cluster_centers_.astype(np.float32)), distance_threshold
        )
        labels = merged[micro]
    # Renumber by size, so cluster 0 is the largest and numbers are stable for equal input.
    order = [label for label, _ in Counter(labels.tolist()).most_common()]
    renumber = np.empty(int(labels.max()) + 1, dtype=np.int64)
    renumber[order] = np.arange(len(order))
    return renumber[labels]


def _same_cluster_pairs(labels: Sequence[int], groups: Sequence[Sequence[int]]) -> tuple[int, int]:
    together = total = 0
    for members in groups:
        for position, first in enumerate(members):
            for second in members[position + 1 :]:
                total += 1
                together += labels[first] == labels[second]
    return together, total


def pair_recall(labels: Sequence[int], groups: Sequence[Sequence[int]]) -> float:
    """The share of question pairs that belong together (same ``groups`` entry) and share a
    cluster; ``groups`` holds question indices, e.g. the questions judged on one document."""
    together, total = _same_cluster_pairs(labels, groups)
    return together / total if total else 0.0


def random_pair_recall(
    labels: Sequence[int], groups: Sequence[Sequence[int]], *, trials: int = 200, seed: int = 0
) -> float:
    """``pair_recall`` of random assignments with the same cluster sizes (mean of ``trials``)."""
    generator = np.random.default_rng(seed)
    shuffled = np.asarray(labels)
    scores = []
    for _ in range(trials):
        scores.append(pair_recall(generator.permutation(shuffled).tolist(), groups))
    return float(np.mean(scores))
