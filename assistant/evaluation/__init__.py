"""Retrieval evaluation: BEIR test collections, ranking metrics and the eval runner.

``evaluate`` ingests a collection in BEIR layout into its own knowledge base and measures every
run (dense, lexical, the shipped late-interaction ranking and its ablations) on its judged
queries. ``load_beir`` reads a collection; ``ndcg_at_k``, ``mrr_at_k`` and ``recall_at_k``
score one query's ranking.

>>> report = evaluate(assistant, Path("../shared/eval/scifact"))  # doctest: +SKIP
>>> report.runs["late_interaction"].ndcg_at_10  # doctest: +SKIP
"""

from __future__ import annotations

from assistant.evaluation.beir import BeirDataset, CorpusDocument, load_beir
from assistant.evaluation.runner import (
    METRIC_NAMES,
    RUN_NAMES,
    EvaluationProgress,
    EvaluationReport,
    EvaluationStep,
    QueryRankings,
    RunMetrics,
    default_kb_name,
    document_ranking,
    evaluate,
    rerank,
    run_rankings,
)
from assistant.knowledge.ranking_metrics import mean, mrr_at_k, ndcg_at_k, recall_at_k

__all__ = [
    "METRIC_NAMES",
    "RUN_NAMES",
    "BeirDataset",
    "CorpusDocument",
    "EvaluationProgress",
    "EvaluationReport",
    "EvaluationStep",
    "QueryRankings",
    "RunMetrics",
    "default_kb_name",
    "document_ranking",
    "evaluate",
    "load_beir",
    "mean",
    "mrr_at_k",
    "ndcg_at_k",
    "recall_at_k",
    "rerank",
    "run_rankings",
]
