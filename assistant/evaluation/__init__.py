"""Retrieval evaluation: BEIR test collections, website question sets, metrics and runners.

``evaluate`` ingests a collection in BEIR layout into its own knowledge base and measures every
run (dense, lexical, the shipped late-interaction ranking and its ablations) on its judged
queries. ``load_beir`` reads a collection; ``ndcg_at_k``, ``mrr_at_k`` and ``recall_at_k``
score one query's ranking.

``evaluate_site`` measures an existing knowledge base built from a website on a question set
(``load_question_set``) as visitors ask it: page-level hit@1, hit@5 and MRR@10 of every stage,
follow-ups through the chat path, no-answer decisions; ``rescore`` re-ranks its saved pools
with other fusion weights.

>>> report = evaluate(assistant, Path("../shared/eval/scifact"))  # doctest: +SKIP
>>> report.runs["late_interaction"].ndcg_at_10  # doctest: +SKIP
"""

from __future__ import annotations

from assistant.evaluation.beir import BeirDataset, CorpusDocument, load_beir
from assistant.evaluation.pools import STAGES, Pool
from assistant.evaluation.questions import QuestionFileError, QuestionSet, load_question_set
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
from assistant.evaluation.site import (
    SiteReport,
    StageMetrics,
    evaluate_site,
    load_pools,
    rescore,
)
from assistant.knowledge.ranking_metrics import mean, mrr_at_k, ndcg_at_k, recall_at_k

__all__ = [
    "METRIC_NAMES",
    "RUN_NAMES",
    "STAGES",
    "BeirDataset",
    "CorpusDocument",
    "EvaluationProgress",
    "EvaluationReport",
    "EvaluationStep",
    "Pool",
    "QueryRankings",
    "QuestionFileError",
    "QuestionSet",
    "RunMetrics",
    "SiteReport",
    "StageMetrics",
    "default_kb_name",
    "document_ranking",
    "evaluate",
    "evaluate_site",
    "load_beir",
    "load_pools",
    "load_question_set",
    "mean",
    "mrr_at_k",
    "ndcg_at_k",
    "recall_at_k",
    "rerank",
    "rescore",
    "run_rankings",
]
