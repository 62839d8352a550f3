"""Fusion of standardised signals."""

from __future__ import annotations

import torch

from assistant.knowledge.fusion import DEFAULT_WEIGHTS, FusionWeights, fuse, zscore


def test_zscore_standardises_and_handles_constant_and_tiny_pools() -> None:
    scores = torch.tensor([2.0, 4.0, 6.0, 8.0])
    standardised = zscore(scores)
    assert abs(float(standardised.mean())) < 1e-6
    assert abs(float(standardised.std()) - 1.0) < 1e-6
    assert zscore(torch.tensor([3.0, 3.0])).tolist() == [0.0, 0.0]
    assert zscore(torch.tensor([5.0])).tolist() == [0.0]


def test_fuse_is_a_weighted_sum_of_zscores_and_skips_zero_weights() -> None:
    dense = torch.tensor([0.9, 0.5, 0.1])
    late = torch.tensor([0.2, 0.8, 0.5])
    fused = fuse({"dense": dense, "late_interaction": late}, FusionWeights(0.3, 0.7, 0.0))
    expected = 0.3 * zscore(dense) + 0.7 * zscore(late)
    assert torch.allclose(fused, expected)
    only_dense = fuse({"dense": dense, "late_interaction": late}, FusionWeights(1.0, 0.0, 0.0))
    assert torch.allclose(only_dense, zscore(dense))


def test_without_late_interaction_keeps_the_other_weights() -> None:
    weights = DEFAULT_WEIGHTS.without_late_interaction()
    assert weights.late_interaction == 0.0
    assert weights.dense == DEFAULT_WEIGHTS.dense and weights.lexical == DEFAULT_WEIGHTS.lexical


def test_fusion_is_deterministic() -> None:
    generator = torch.Generator().manual_seed(7)
    signals = {name: torch.rand(100, generator=generator) for name in ("dense", "lexical")}
    first = fuse(signals, DEFAULT_WEIGHTS)
    assert torch.equal(first, fuse(signals, DEFAULT_WEIGHTS))
