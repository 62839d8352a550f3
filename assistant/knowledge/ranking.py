"""The one ranking of a candidate pool, shared by search, evaluation and tuning.

A pool is the union of dense recall and lexical (BM25) recall (``recall_union``); each candidate
carries a dense score, a MaxSim score and, with a lexical index, a BM25 score.
``rank_candidates`` fuses the standardised signals with the knowledge base's weights, lowers the
chunks of pages much longer than the knowledge base's usual page (``page_breadth``) and orders
the pool. The retriever ranks every search with it, ``assistant.evaluation`` re-ranks a pool
with other weights through it, and tuning judges a head by it, so what is measured is exactly
what ships.

>>> ranked = rank_candidates(
...     [0.9, 0.5, 0.1], [0.2, 0.9, 0.4], FusionWeights(1.0, 1.0)
... )
>>> ranked.order
[1, 0, 2]
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from numpy.typing import ArrayLike

from assistant.knowledge.fusion import FusionWeights, fuse
from assistant.knowledge.page_breadth import LONG_PAGE_PENALTY

__all__ = ["RankedPool", "rank_candidates", "recall_union", "signal_ranks"]

Key = TypeVar("Key", bound=Hashable)


def recall_union(dense: Sequence[Key], lexical: Sequence[Key]) -> list[Key]:
    """The candidate pool: dense recall in its order, then lexical recall not already in it.

    >>> recall_union(["a", "b"], ["c", "a", "d"])
    ['a', 'b', 'c', 'd']
    """
    pool = dict.fromkeys(dense)
    for key in lexical:
        pool.setdefault(key, None)
    return list(pool)


@dataclass(frozen=True, slots=True)
class RankedPool:
    """A ranked pool: ``order`` holds candidate positions, best first; ``scores`` the fused
    score of each candidate, by position (not in ``order``)."""

    order: list[int]
    scores: list[float]


def rank_candidates(
    dense_scores: ArrayLike,
    late_interaction_scores: ArrayLike,
    weights: FusionWeights,
    lexical_scores: ArrayLike | None = None,
    breadth: ArrayLike | None = None,
) -> RankedPool:
    """Fuse the signals of a candidate pool and order it; deterministic for equal inputs.

    Args:
        dense_scores: (N,) cosine similarity of each candidate's dense vector to the query.
        late_interaction_scores: (N,) MaxSim of the query's token vectors against each
            candidate's.
        weights: the weight of each standardised signal (see ``fusion.fuse``).
        lexical_scores: (N,) BM25 score of each candidate, or ``None`` without a lexical index.
        breadth: (N,) how much longer than usual each candidate's page is
            (``PageSizes.breadth``); the fused score falls by ``LONG_PAGE_PENALTY`` standard
            deviations of the pool's fused scores per unit. ``None``: no page is long.

    Scores are float32 (arrays, or CPU tensors), as the retriever computes them; fusion is
    done in float64.

    Returns:
        The order of the N positions: highest fused score first; equal fused scores by higher
        dense score, then by earlier position in the pool.

    With equal weights, opposite dense and MaxSim signals cancel and the dense order decides:

    >>> rank_candidates(
    ...     [0.75, 0.5, 0.25], [0.25, 0.5, 0.75], FusionWeights(1.0, 1.0)
    ... ).order
    [0, 1, 2]
    """
    # In numpy: a pool is ~160 numbers, and each torch call costs more than the arithmetic.
    dense = np.asarray(dense_scores, dtype=np.float32)
    # Standardise in one canonical order (dense order, ties by position), whatever order the
    # pool came in: float sums depend on their order, and a pool re-ranked from search hits
    # must score bit for bit as the retriever scored it.
    canonical = np.argsort(-dense, kind="stable")
    signals = {
        "dense": dense[canonical],
        "late_interaction": np.asarray(late_interaction_scores, dtype=np.float32)[canonical],
    }
    if lexical_scores is not None:
        signals["lexical"] = np.asarray(lexical_scores, dtype=np.float32)[canonical]
    fused = fuse(signals, weights)
    if breadth is not None and len(dense) > 1:
        widths = np.asarray(breadth, dtype=np.float32)[canonical]
        if widths.any():
            fused = fused - LONG_PAGE_PENALTY * fused.std(ddof=1) * widths
    final = np.empty(len(dense), dtype=np.float64)
    final[canonical] = fused
    # Highest fused score first, then higher dense score, then earlier position (lexsort is
    # stable and sorts by its last key first).
    order = np.lexsort((-dense, -final))
    return RankedPool(order.tolist(), final.tolist())


def signal_ranks(scores: Sequence[float]) -> list[int]:
    """1-based rank of every position by one signal, best score first, ties by position.

    >>> signal_ranks([0.2, 0.9, 0.2])
    [2, 1, 3]
    """
    # A stable sort of the negated scores: equal scores keep their order.
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.arange(1, len(order) + 1)
    return ranks.tolist()
