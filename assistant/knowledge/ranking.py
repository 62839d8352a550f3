"""The one ranking of a candidate pool, shared by search, evaluation and tuning.

A pool is the union of dense recall and lexical (BM25) recall (``recall_union``); each candidate
carries a dense score, a MaxSim score and, with a lexical index, a BM25 score.
``rank_candidates`` fuses the standardised signals with the knowledge base's weights, lowers the
chunks of pages much longer than the knowledge base's usual page (``page_breadth``) and orders
the pool. The retriever ranks every search with it, ``assistant.evaluation`` re-ranks a pool
with other weights through it, and tuning judges a head by it, so what is measured is exactly
what ships.

>>> ranked = rank_candidates(
...     torch.tensor([0.9, 0.5, 0.1]), torch.tensor([0.2, 0.9, 0.4]), FusionWeights(1.0, 1.0)
... )
>>> ranked.order
[1, 0, 2]
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

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
    dense_scores: torch.Tensor,
    late_interaction_scores: torch.Tensor,
    weights: FusionWeights,
    lexical_scores: torch.Tensor | None = None,
    breadth: torch.Tensor | None = None,
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

    Returns:
        The order of the N positions: highest fused score first; equal fused scores by higher
        dense score, then by earlier position in the pool.

    With equal weights, opposite dense and MaxSim signals cancel and the dense order decides:

    >>> rank_candidates(
    ...     torch.tensor([0.75, 0.5, 0.25]), torch.tensor([0.25, 0.5, 0.75]), FusionWeights(1.0, 1.0)
    ... ).order
    [0, 1, 2]
    """
    # Sorted in numpy: Python's sort with a key function costs tens of microseconds per pool.
    dense = dense_scores.detach().cpu().numpy()
    # Standardise in one canonical order (dense order, ties by position), whatever order the
    # pool came in: float sums depend on their order, and a pool re-ranked from search hits
    # must score bit for bit as the retriever scored it.
    canonical = np.argsort(-dense, kind="stable")
    positions = torch.from_numpy(canonical)
    signals = {
        "dense": dense_scores[positions],
        "late_interaction": late_interaction_scores[positions],
    }
    if lexical_scores is not None:
        signals["lexical"] = lexical_scores[positions]
    fused = fuse(signals, weights)
    if breadth is not None and len(dense) > 1 and bool(breadth.any()):
        fused = fused - LONG_PAGE_PENALTY * fused.std() * breadth[positions].to(torch.float32)
    final = np.empty(len(dense), dtype=np.float64)
    final[canonical] = fused.detach().cpu().numpy()
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
