"""Score fusion: z-score each signal across the candidate pool, then a weighted sum.

Signals live on different scales (cosine, MaxSim, BM25); standardising each over the pool
that is being reranked makes them comparable without per-dataset tuning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

__all__ = ["FusionWeights", "fuse", "zscore"]


@dataclass(frozen=True, slots=True)
class FusionWeights:
    """Weights of the standardised signals in the final score."""

    dense: float = 0.3
    late_interaction: float = 0.7
    lexical: float = 0.0

    def without_late_interaction(self) -> FusionWeights:
        """The same ranking with the MaxSim signal removed (to measure what it adds)."""
        return FusionWeights(dense=self.dense, late_interaction=0.0, lexical=self.lexical)

    def as_dict(self) -> dict[str, float]:
        """The weights by signal name, as stored with a knowledge base and shown in traces."""
        return {
            "dense": self.dense,
            "late_interaction": self.late_interaction,
            "lexical": self.lexical,
        }


# Measured defaults over a fixed pool (no per-dataset tuning): with a lexical signal the three
# standardised signals weigh the same; without one, MaxSim carries most of the weight.
DEFAULT_WEIGHTS = FusionWeights(dense=1.0, late_interaction=1.0, lexical=1.0)
DEFAULT_WEIGHTS_WITHOUT_LEXICAL = FusionWeights(dense=0.3, late_interaction=0.7, lexical=0.0)


def zscore(scores: torch.Tensor) -> torch.Tensor:
    """Standardise ``scores`` (N,) to mean 0, standard deviation 1; constant input gives 0.

    >>> zscore(torch.tensor([1.0, 2.0, 3.0])).tolist()
    [-1.0, 0.0, 1.0]
    """
    if scores.numel() < 2:
        return torch.zeros_like(scores)
    spread = scores.std()  # sample standard deviation
    if float(spread) < 1e-12:
        return torch.zeros_like(scores)
    return (scores - scores.mean()) / spread


def fuse(signals: Mapping[str, torch.Tensor], weights: FusionWeights) -> torch.Tensor:
    """Weighted sum of the z-scored signals; signals absent or weighted 0 are skipped.

    ``signals`` maps ``"dense"``, ``"late_interaction"``, ``"lexical"`` to (N,) tensors over the
    same candidates.
    """
    by_name = weights.as_dict()
    total: torch.Tensor | None = None
    for name, scores in signals.items():
        weight = by_name.get(name, 0.0)
        if weight == 0.0:
            continue
        part = weight * zscore(scores.to(torch.float32))
        total = part if total is None else total + part
    if total is None:
        first = next(iter(signals.values()))
        return torch.zeros_like(first, dtype=torch.float32)
    return total
