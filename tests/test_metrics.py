"""Ranking metrics against values worked out by hand."""

from __future__ import annotations

import doctest
import math

import pytest

import assistant.knowledge.ranking_metrics
from assistant.knowledge.ranking_metrics import mean, mrr_at_k, ndcg_at_k, recall_at_k


def test_docstring_examples_hold() -> None:
    outcome = doctest.testmod(assistant.knowledge.ranking_metrics)
    assert outcome.attempted >= 7
    assert outcome.failed == 0


def test_graded_ndcg_matches_the_hand_computed_value() -> None:
    # Ranked: a (grade 1), b (unjudged), c (grade 3); e (grade 2) is never retrieved.
    # DCG@3  = 1/log2(2) + 0/log2(3) + 3/log2(4)   = 1 + 0 + 1.5           = 2.5
    # IDCG@3 = 3/log2(2) + 2/log2(3) + 1/log2(4)   = 3 + 1.2618595 + 0.5   = 4.7618595
    relevance = {"a": 1, "c": 3, "e": 2}
    assert ndcg_at_k(["a", "b", "c", "d"], relevance, 3) == pytest.approx(0.525005, abs=1e-6)
    assert ndcg_at_k(["a", "b", "c", "d"], relevance, 3) == pytest.approx(
        2.5 / (3 + 2 / math.log2(3) + 0.5)
    )


def test_ndcg_is_one_for_the_ideal_order_and_rewards_the_better_grade_first() -> None:
    relevance = {"x": 3, "y": 1}
    assert ndcg_at_k(["x", "y", "z"], relevance, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["y", "x", "z"], relevance, 10) < 1.0
    # Swapped: DCG = 1 + 3/log2(3); ideal = 3 + 1/log2(3).
    assert ndcg_at_k(["y", "x"], relevance, 10) == pytest.approx(
        (1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3))
    )


def test_ndcg_ignores_documents_below_the_cutoff_and_non_positive_grades() -> None:
    ranking = [f"d{i}" for i in range(20)]
    assert ndcg_at_k(ranking, {"d10": 1}, 10) == 0.0
    assert ndcg_at_k(ranking, {"d9": 1}, 10) == pytest.approx(1 / math.log2(11))
    assert ndcg_at_k(ranking, {"d0": 0, "d1": 1}, 10) == pytest.approx(1 / math.log2(3))


def test_mrr_counts_the_first_document_with_grade_one_or_more() -> None:
    assert mrr_at_k(["a", "b", "c"], {"a": 0, "c": 2, "b": 0}, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(["a", "b", "c"], {"b": 1, "c": 4}, 10) == 0.5
    assert mrr_at_k(["a", "b", "c"], {"c": 1}, 2) == 0.0


def test_recall_is_the_fraction_of_relevant_documents_in_the_top_k() -> None:
    ranking = ["a", "b", "c", "d", "e"]
    relevance = {"b": 1, "e": 1, "x": 1, "y": 2, "c": 0}
    assert recall_at_k(ranking, relevance, 2) == pytest.approx(1 / 4)
    assert recall_at_k(ranking, relevance, 5) == pytest.approx(2 / 4)
    assert recall_at_k(ranking, relevance, 100) == pytest.approx(2 / 4)


def test_empty_cases_score_zero() -> None:
    for metric in (ndcg_at_k, mrr_at_k, recall_at_k):
        assert metric([], {"a": 1}, 10) == 0.0
        assert metric(["a", "b"], {}, 10) == 0.0
        assert metric(["a", "b"], {"a": 0}, 10) == 0.0
    assert mean([]) == 0.0
    assert mean([0.25, 0.75]) == 0.5


def test_a_cutoff_below_one_is_refused() -> None:
    for metric in (ndcg_at_k, mrr_at_k, recall_at_k):
        with pytest.raises(ValueError, match="at least 1"):
            metric(["a"], {"a": 1}, 0)
