"""Unit-norm rows, shared by the encoder and the analytics."""

from __future__ import annotations

import doctest

import numpy as np
import torch

from assistant.knowledge import vectors
from assistant.knowledge.vectors import unit_rows


def test_doctests() -> None:
    assert doctest.testmod(vectors).failed == 0


def test_rows_match_torch_normalize_on_any_leading_shape() -> None:
    batch = np.random.default_rng(0).normal(size=(2, 5, 8)).astype(np.float32)
    batch[1, 3] = 0.0

    unit = unit_rows(batch)

    assert unit.dtype == np.float32 and unit.shape == batch.shape
    expected = torch.nn.functional.normalize(torch.from_numpy(batch), dim=-1).numpy()
    np.testing.assert_allclose(unit, expected, atol=1e-6)
    assert not unit[1, 3].any()
