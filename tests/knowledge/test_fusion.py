"""Fusion of standardised signals."""

from __future__ import annotations

import numpy as np

from assistant.knowledge.fusion import (
    DEFAULT_WEIGHTS,
    LEXICAL_FLOOR,
    LEXICAL_FULL_AGREEMENT,
    FusionWeights,
    fuse,
    lexical_agreement,
    zscore,
)


def test_zscore_standardises_and_handles_constant_and_tiny_pools() -> None:
    scores = np.array([2.0, 4.0, 6.0, 8.0])
    standardised = zscore(scores)
    assert abs(float(standardised.mean())) < 1e-12
    assert abs(float(standardised.std(ddof=1)) - 1.0) < 1e-12
    assert zscore(np.array([3.0, 3.0])).tolist() == [0.0, 0.0]
    assert zscore(np.array([5.0])).tolist() == [0.0]


def test_fuse_is_a_weighted_sum_of_zscores_and_skips_zero_weights() -> None:
    dense = np.array([0.9, 0.5, 0.1])
    late = np.array([0.2, 0.8, 0.5])
    fused = fuse({"dense": dense, "late_interaction": late}, FusionWeights(0.3, 0.7, 0.0))
    expected = 0.3 * zscore(dense) + 0.7 * zscore(late)
    assert np.allclose(fused, expected)
    only_dense = fuse({"dense": dense, "late_interaction": late}, FusionWeights(1.0, 0.0, 0.0))
    assert np.allclose(only_dense, zscore(dense))


def test_without_late_interaction_keeps_the_other_weights() -> None:
    weights = DEFAULT_WEIGHTS.without_late_interaction()
    assert weights.late_interaction == 0.0
    assert weights.dense == DEFAULT_WEIGHTS.dense and weights.lexical == DEFAULT_WEIGHTS.lexical


def test_fusion_is_deterministic() -> None:
    generator = np.random.default_rng(7)
    signals = {name: generator.random(100, dtype=np.float32) for name in ("dense", "lexical")}
    first = fuse(signals, DEFAULT_WEIGHTS)
    assert np.array_equal(first, fuse(signals, DEFAULT_WEIGHTS))


def test_bm25_weighs_fully_where_it_agrees_with_dense_and_little_where_not() -> None:
    """A pool where both recalls found the same chunks (lexical follows dense) and one where
    they found different ones (lexical runs against dense), as for a paraphrased question."""
    dense = np.array([0.9, 0.8, 0.7, 0.4, 0.3, 0.2])
    late = np.array([0.6, 0.9, 0.5, 0.4, 0.2, 0.3])
    agreeing = np.array([9.0, 7.0, 8.0, 2.0, 1.0, 0.5])
    against = np.array([0.5, 0.5, 1.0, 12.0, 3.0, 2.0])
    signals = {"dense": dense, "late_interaction": late}

    with_agreeing = fuse({**signals, "lexical": agreeing}, DEFAULT_WEIGHTS)
    assert np.allclose(with_agreeing, zscore(dense) + zscore(late) + zscore(agreeing))

    with_against = fuse({**signals, "lexical": against}, DEFAULT_WEIGHTS)
    assert np.allclose(with_against, zscore(dense) + zscore(late) + LEXICAL_FLOOR * zscore(against))
    # At full weight the chunk BM25 likes best (the fourth) would have climbed past the first.
    full = zscore(dense) + zscore(late) + zscore(against)
    assert full[3] > full[0] and with_against[3] < with_against[2] < with_against[0]


def test_lexical_agreement_rises_linearly_to_full_weight() -> None:
    generator = np.random.default_rng(3)
    dense = zscore(generator.random(400))
    noise = zscore(generator.random(400))
    # Noise made uncorrelated with ``dense``, so that each mix below correlates exactly.
    noise = zscore(noise - (noise * dense).sum() / (dense * dense).sum() * dense)
    for correlation, expected in ((-0.5, 0.25), (0.0, 0.25), (0.1, 0.4), (0.25, 1.0), (0.6, 1.0)):
        lexical = zscore(correlation * dense + (1 - correlation**2) ** 0.5 * noise)
        assert abs(lexical_agreement(dense, lexical) - expected) < 1e-4
    assert LEXICAL_FULL_AGREEMENT == LEXICAL_FLOOR == 0.25
    assert lexical_agreement(np.array([0.0]), np.array([1.0])) == 1.0


def test_tensors_fuse_as_their_arrays() -> None:
    """Evaluation and tuning pass CPU tensors; the retriever passes float32 arrays."""
    import torch

    generator = np.random.default_rng(11)
    arrays = {name: generator.random(50, dtype=np.float32) for name in ("dense", "lexical")}
    tensors = {name: torch.from_numpy(values) for name, values in arrays.items()}
    assert np.array_equal(fuse(tensors, DEFAULT_WEIGHTS), fuse(arrays, DEFAULT_WEIGHTS))
    assert fuse(arrays, DEFAULT_WEIGHTS).dtype == np.float64
