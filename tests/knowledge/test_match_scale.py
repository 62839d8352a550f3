"""A kept head's best matches mapped back to the base vectors' scale for the no-answer rule."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.knowledge.training.match_scale import MatchScale


def test_quantiles_of_the_same_queries_map_one_scale_onto_the_other() -> None:
    generator = np.random.default_rng(0)
    base = generator.normal(0.55, 0.08, size=300)
    # The head scores the same queries higher and more spread out, in the same order.
    head = 0.2 + 1.3 * base
    scale = MatchScale.from_samples(head, base)
    for score in (0.5, 0.55, 0.6):
        assert scale.to_base(0.2 + 1.3 * score) == pytest.approx(score, abs=0.01)
    # Monotone: a better match under the head is never a worse one on the base scale.
    points = np.linspace(head.min() - 0.2, head.max() + 0.2, 200)
    mapped = [scale.to_base(float(point)) for point in points]
    assert np.all(np.diff(mapped) >= 0)


def test_scores_outside_the_sample_move_with_the_nearest_point() -> None:
    scale = MatchScale.from_samples(np.array([0.6, 0.7, 0.8]), np.array([0.4, 0.5, 0.6]))
    assert scale.to_base(0.5) == pytest.approx(0.3)  # far below stays far below the threshold
    assert scale.to_base(0.95) == pytest.approx(0.75)
    assert scale.to_base(0.7) == pytest.approx(0.5)


def test_equal_scales_change_nothing_and_round_trip() -> None:
    scores = np.linspace(0.3, 0.9, 40)
    scale = MatchScale.from_samples(scores, scores)
    assert scale.to_base(0.42) == pytest.approx(0.42)
    again = MatchScale.from_array(scale.to_array())
    assert again.to_base(0.42) == pytest.approx(0.42, abs=1e-6)


def test_malformed_scales_are_refused() -> None:
    with pytest.raises(ValueError, match="at least two"):
        MatchScale.from_samples(np.array([0.5]), np.array([0.5, 0.6]))
    with pytest.raises(ValueError, match="same length"):
        MatchScale(np.array([0.1, 0.2]), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="must not decrease"):
        MatchScale(np.array([0.3, 0.2]), np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match=r"\(2, points\)"):
        MatchScale.from_array(np.zeros((3, 4)))
