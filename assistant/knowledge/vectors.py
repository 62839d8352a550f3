"""Small numpy helpers for embedding vectors, shared by the encoder and the analytics."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["unit_rows"]


def unit_rows(vectors: NDArray[np.floating]) -> NDArray[np.float32]:
    """``vectors`` scaled to unit norm along the last axis, in float32 (a zero row stays zero,
    as ``torch.nn.functional.normalize`` leaves it).

    >>> unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
    [[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]
    """
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    unit: NDArray[np.float32] = (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
    return unit
