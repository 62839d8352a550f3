"""Putting a head's MaxSim scores back on the base token vectors' scale, for the no-answer rule.

A turn is declined when the best plain MaxSim of its passages is under the knowledge base's
threshold (``retrieval.no_answer_threshold``, 0.5 by default), a number that was chosen for the
base encoder's token vectors. A projection head changes that scale: on Python's documentation
a head's scores ran higher, and the share of unanswerable questions declined fell from 96% to
79% at the same threshold (bench/README.md). So when a head is kept, ``tune`` records where its
best matches fall against the base vectors' on the same held-out queries (their quantiles), and
a search with the head reports its best match mapped back through them: the threshold, the
default or one a site owner set, keeps its meaning whatever head is active.

>>> scale = MatchScale.from_samples(np.array([0.6, 0.7, 0.8]), np.array([0.4, 0.5, 0.6]))
>>> round(scale.to_base(0.7), 6), round(scale.to_base(0.75), 6)
(0.5, 0.55)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MatchScale"]

_QUANTILES = np.linspace(0.0, 1.0, 21)
"""Every 5th percentile: 21 points, enough for a smooth map from a few hundred queries."""


@dataclass(frozen=True, slots=True)
class MatchScale:
    """A monotone map from a head's best-match scores to the base vectors' scale.

    ``head`` and ``base`` are matching quantiles (non-decreasing, the same length); a score
    between two head points is interpolated, one outside them moves by the same amount as the
    nearest point (so the map never clips: a question far below every held-out query stays
    far below the threshold).
    """

    head: np.ndarray
    base: np.ndarray

    def __post_init__(self) -> None:
        if self.head.shape != self.base.shape or self.head.ndim != 1 or len(self.head) < 2:
            raise ValueError("a match scale needs two 1-d arrays of the same length, at least 2")
        if np.any(np.diff(self.head) < 0) or np.any(np.diff(self.base) < 0):
            raise ValueError("a match scale's points must not decrease")

    @classmethod
    def from_samples(cls, head_scores: np.ndarray, base_scores: np.ndarray) -> MatchScale:
        """The quantile map between the best matches of the same queries under each stage."""
        if len(head_scores) < 2 or len(base_scores) < 2:
            raise ValueError("a match scale needs at least two scores under each stage")
        head = np.quantile(np.asarray(head_scores, dtype=np.float64), _QUANTILES)
        base = np.quantile(np.asarray(base_scores, dtype=np.float64), _QUANTILES)
        return cls(head, base)

    def to_base(self, score: float) -> float:
        """``score`` (a best match under the head) on the base vectors' scale."""
        if score < self.head[0]:
            return float(score - self.head[0] + self.base[0])
        if score > self.head[-1]:
            return float(score - self.head[-1] + self.base[-1])
        # Equal head points (a plateau) would make the interpolation ambiguous: np.interp takes
        # the last of them, which is still monotone.
        return float(np.interp(score, self.head, self.base))

    def to_array(self) -> np.ndarray:
        """(2, points) float32: the head points, then the base points (how a head file keeps it)."""
        return np.stack([self.head, self.base]).astype(np.float32)

    @classmethod
    def from_array(cls, values: np.ndarray) -> MatchScale:
        """The inverse of ``to_array``."""
        if values.ndim != 2 or values.shape[0] != 2:
            raise ValueError(f"a stored match scale is (2, points), got {values.shape}")
        return cls(values[0].astype(np.float64), values[1].astype(np.float64))
