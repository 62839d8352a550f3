"""Ranking metrics for retrieval evaluation: nDCG, MRR and recall at a cut-off.

Each function scores one query: ``ranking`` is the list of document ids, best first (no
duplicates), and ``relevance`` maps a judged document id to its grade. A grade of 1 or more
means relevant; unjudged documents and grades of 0 or less count as not relevant. nDCG uses
the grade itself as the gain (linear gain) and ``log2(rank + 1)`` as the discount, the
convention of ``trec_eval`` and BEIR. A query with no relevant document scores 0 everywhere;
evaluators skip such queries instead of averaging them in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["mean", "mrr_at_k", "ndcg_at_k", "recall_at_k"]


def _check_cutoff(k: int) -> None:
    if k < 1:
        raise ValueError(f"the cut-off k must be at least 1, got {k}")


def _discounted_gain(grades: Iterable[float]) -> float:
    return sum(grade / math.log2(position + 2) for position, grade in enumerate(grades))


def ndcg_at_k(ranking: Sequence[str], relevance: Mapping[str, float], k: int) -> float:
    """Normalised discounted cumulative gain of the first ``k`` documents, in [0, 1].

    >>> round(ndcg_at_k(["a", "b", "c"], {"b": 1}, 10), 4)  # 1/log2(3) over the ideal 1/log2(2)
    0.6309
    >>> ndcg_at_k(["a", "b"], {"a": 2, "b": 1}, 10)
    1.0
    """
    _check_cutoff(k)
    gains = [max(0.0, float(relevance.get(document_id, 0.0))) for document_id in ranking[:k]]
    ideal = sorted((float(grade) for grade in relevance.values() if grade > 0), reverse=True)[:k]
    ideal_gain = _discounted_gain(ideal)
    if ideal_gain == 0.0:
        return 0.0
    return _discounted_gain(gains) / ideal_gain


def mrr_at_k(ranking: Sequence[str], relevance: Mapping[str, float], k: int) -> float:
    """Reciprocal rank of the first relevant document (grade ≥ 1) in the first ``k``, else 0.

    >>> mrr_at_k(["a", "b", "c"], {"c": 1}, 10)
    0.3333333333333333
    >>> mrr_at_k(["a", "b", "c"], {"c": 1}, 2)
    0.0
    """
    _check_cutoff(k)
    for position, document_id in enumerate(ranking[:k], start=1):
        if relevance.get(document_id, 0.0) >= 1:
            return 1.0 / position
    return 0.0


def recall_at_k(ranking: Sequence[str], relevance: Mapping[str, float], k: int) -> float:
    """Fraction of the relevant documents (grade ≥ 1) found in the first ``k``.

    >>> recall_at_k(["a", "b", "c"], {"a": 1, "c": 1, "d": 1, "e": 0}, 2)
    0.3333333333333333
    """
    _check_cutoff(k)
    relevant = {document_id for document_id, grade in relevance.items() if grade >= 1}
    if not relevant:
        return 0.0
    found = sum(1 for document_id in ranking[:k] if document_id in relevant)
    return found / len(relevant)


def mean(values: Iterable[float]) -> float:
    """Arithmetic mean; 0.0 for no values (an empty evaluation scores nothing).

    >>> mean([0.5, 1.0, 0.0])
    0.5
    >>> mean([])
    0.0
    """
    collected = list(values)
    return sum(collected) / len(collected) if collected else 0.0
