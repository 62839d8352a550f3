"""Retrieval evaluation on a test collection in BEIR layout, through the shipped search path.

The corpus is ingested into its own knowledge base with the normal ingestor (so what is measured
is what ships, and a second run finds every document unchanged). Each judged query is searched
once; the whole candidate pool comes back with every signal's score, so the runs compared here
are orderings of that one pool and cost no extra encoding:

- ``dense``: by dense cosine similarity;
- ``lexical``: by BM25 score;
- ``late_interaction``: the shipped final ranking (fused dense, MaxSim and BM25);
- ``without_late_interaction``: the same fusion with the MaxSim weight set to 0;
- ``maxsim_only``: by MaxSim score alone (an ablation).

Chunks map back to corpus documents through their source ``beir://<dataset>/<doc id>``; a
document ranks where its best chunk ranks. Fusion weights are the fixed defaults: nothing is
tuned on the queries being measured.

>>> report = evaluate(assistant, Path("../shared/eval/scifact"))  # doctest: +SKIP
>>> report.runs["late_interaction"].ndcg_at_10  # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch

from assistant.evaluation.beir import load_beir
from connectors.beir import BeirConnector

if TYPE_CHECKING:
    from assistant.core import Assistant
from assistant.knowledge.fusion import FusionWeights
from assistant.knowledge.ingest import IngestReport, ProgressEvent
from assistant.knowledge.ranking import rank_candidates
from assistant.knowledge.ranking_metrics import mean, mrr_at_k, ndcg_at_k, recall_at_k
from assistant.knowledge.retriever import SearchHit

__all__ = [
    "METRIC_NAMES",
    "RUN_NAMES",
    "EvaluationProgress",
    "EvaluationReport",
    "EvaluationStep",
    "QueryRankings",
    "RunMetrics",
    "default_kb_name",
    "document_ranking",
    "evaluate",
    "rerank",
    "run_rankings",
]

RUN_NAMES = ("dense", "lexical", "late_interaction", "without_late_interaction", "maxsim_only")
METRIC_NAMES = ("ndcg@10", "mrr@10", "recall@10", "recall@100")
TUNING = "none: fixed fusion weights"
_DEPTH = 100  # the deepest cut-off of any metric (recall@100)


@dataclass(frozen=True, slots=True)
class RunMetrics:
    """Mean metrics of one run over the evaluated queries."""

    ndcg_at_10: float
    mrr_at_10: float
    recall_at_10: float
    recall_at_100: float

    def as_dict(self) -> dict[str, float]:
        """The metrics under their conventional names (``ndcg@10``, …)."""
        return {
            "ndcg@10": self.ndcg_at_10,
            "mrr@10": self.mrr_at_10,
            "recall@10": self.recall_at_10,
            "recall@100": self.recall_at_100,
        }


@dataclass(frozen=True, slots=True)
class QueryRankings:
    """The top-100 corpus document ids of every run for one query."""

    query_id: str
    rankings: dict[str, tuple[str, ...]]


@dataclass(slots=True)
class EvaluationReport:
    """What ``evaluate`` measured, with what it took to measure it."""

    dataset: str
    kb: str
    queries: int
    runs: dict[str, RunMetrics]
    weights: dict[str, float]
    timings_ms: dict[str, float]
    candidate_pool: float
    documents: int
    chunks: int
    ingest: IngestReport
    skipped_documents: int = 0
    unjudged_queries: int = 0
    tuning: str = TUNING
    per_query: list[QueryRankings] = field(default_factory=list)

    def title(self) -> str:
        """One line naming what was measured, for the head of a results table."""
        return (
            f"{self.dataset}: {self.queries} queries, {self.documents} documents "
            f"({self.chunks} chunks)"
        )

    def notes(self) -> list[str]:
        """Plain-text lines on how the numbers were obtained, shown under the table."""
        ingest = self.ingest
        stages = ", ".join(f"{stage} {ms:.1f}" for stage, ms in self.timings_ms.items())
        weights = ", ".join(f"{name} {value:g}" for name, value in self.weights.items())
        lines = [
            f"knowledge base {self.kb}: {ingest.count('added') + ingest.count('updated')} "
            f"documents embedded, {ingest.count('unchanged')} unchanged, "
            f"{len(ingest.failures)} failed ({ingest.seconds:.1f}s)",
            f"queries: {self.queries} judged (skipped {self.unjudged_queries} without "
            f"judgements); candidate pool: {self.candidate_pool:.1f} chunks per query",
            f"mean latency per query (ms): {stages}",
            f"nothing was tuned on these queries; fixed default fusion weights: {weights}",
        ]
        if self.skipped_documents:
            lines.append(f"{self.skipped_documents} empty documents (no title, no text) skipped")
        return lines

    def to_json(self) -> dict[str, object]:
        """The ``eval --json`` shape (per-query rankings are left out)."""
        ingest = self.ingest
        return {
            "dataset": self.dataset,
            "kb": self.kb,
            "queries": self.queries,
            "runs": {name: metrics.as_dict() for name, metrics in self.runs.items()},
            "weights": self.weights,
            "tuning": self.tuning,
            "timings_ms": self.timings_ms,
            "candidate_pool": self.candidate_pool,
            "documents": self.documents,
            "chunks": self.chunks,
            "skipped_documents": self.skipped_documents,
            "unjudged_queries": self.unjudged_queries,
            "ingest": {
                **{
                    s: ingest.count(s)
                    for s in ("added", "updated", "unchanged", "removed", "failed")
                },
                "chunks_embedded": ingest.chunks_embedded,
                "seconds": round(ingest.seconds, 3),
            },
        }


@dataclass(frozen=True, slots=True)
class EvaluationStep:
    """Progress of an evaluation: ``advance`` more of ``task`` done (``total`` when known)."""

    task: Literal["documents", "chunks", "failed", "queries"]
    advance: int
    total: int | None = None


EvaluationProgress = Callable[[EvaluationStep], None]


def rerank(hits: Sequence[SearchHit], weights: FusionWeights) -> list[SearchHit]:
    """Re-fuse a whole candidate pool with other ``weights``, exactly as the retriever ranks it.

    The hits carry every signal's raw score, so this needs no model call; given the weights the
    retriever used, it reproduces the retriever's order (both call ``rank_candidates``; the pool
    is put in dense order first, so equal scores fall as they do in the retriever).
    """
    pool = sorted(hits, key=lambda hit: hit.dense_rank)
    lexical: torch.Tensor | None = None
    if pool and all(hit.lexical_score is not None for hit in pool):
        lexical = torch.tensor([float(hit.lexical_score or 0.0) for hit in pool])
    ranked = rank_candidates(
        torch.tensor([hit.dense_score for hit in pool]),
        torch.tensor([hit.late_interaction_score for hit in pool]),
        weights,
        lexical,
        torch.tensor([hit.page_breadth for hit in pool]),
    )
    return [pool[index] for index in ranked.order]


def run_rankings(hits: Sequence[SearchHit], weights: FusionWeights) -> dict[str, list[SearchHit]]:
    """Every run's ordering of one query's candidate pool (``weights``: the shipped ones)."""
    return {
        "dense": sorted(hits, key=lambda hit: hit.dense_rank),
        "lexical": sorted(
            hits, key=lambda hit: (hit.lexical_rank is None, hit.lexical_rank or 0, hit.dense_rank)
        ),
        "late_interaction": sorted(hits, key=lambda hit: hit.rank),
        "without_late_interaction": rerank(hits, weights.without_late_interaction()),
        "maxsim_only": sorted(hits, key=lambda hit: hit.late_interaction_rank),
    }


def document_ranking(hits: Sequence[SearchHit], prefix: str) -> tuple[str, ...]:
    """Corpus ids in the order of their best chunk, cut at ``_DEPTH``."""
    ranking: dict[str, None] = {}
    for hit in hits:
        doc_id = hit.url[len(prefix) :] if hit.url.startswith(prefix) else hit.url
        ranking.setdefault(doc_id, None)
        if len(ranking) == _DEPTH:
            break
    return tuple(ranking)


def _query_metrics(ranking: Sequence[str], relevance: dict[str, int]) -> dict[str, float]:
    """One query's metrics, keyed like ``METRIC_NAMES``."""
    return {
        "ndcg@10": ndcg_at_k(ranking, relevance, 10),
        "mrr@10": mrr_at_k(ranking, relevance, 10),
        "recall@10": recall_at_k(ranking, relevance, 10),
        "recall@100": recall_at_k(ranking, relevance, 100),
    }


def default_kb_name(dataset: str) -> str:
    """``eval-<dataset>``, folded to the characters a knowledge-base name may hold."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", dataset.lower()).strip("-_")
    return f"eval-{slug}"[:63].rstrip("-_")


def _ingest(
    assistant: Assistant, kb: str, connector: BeirConnector, notify: EvaluationProgress
) -> IngestReport:
    kinds: dict[str, Literal["documents", "chunks", "failed"]] = {
        "loaded": "documents",
        "embedded": "chunks",
        "failed": "failed",
    }

    def forward(event: ProgressEvent) -> None:
        notify(EvaluationStep(kinds[event.kind], event.count))

    return assistant.ingest_connectors([connector], kb=kb, progress=forward)


def evaluate(
    assistant: Assistant,
    dataset_dir: Path,
    *,
    kb: str | None = None,
    max_queries: int | None = None,
    progress: EvaluationProgress | None = None,
) -> EvaluationReport:
    """Ingest a BEIR collection (reused when already there) and measure every run on it.

    ``kb`` defaults to ``eval-<dataset folder name>``; ``max_queries`` keeps the first judged
    queries only. Raises ``NotFoundError``/``ConfigError`` for a missing or malformed folder.
    """
    notify: EvaluationProgress = progress or (lambda step: None)
    dataset = load_beir(dataset_dir)
    kb = kb or default_kb_name(dataset.name)
    connector = BeirConnector(dataset)
    notify(EvaluationStep("documents", 0, total=len(dataset.corpus)))
    ingest_report = _ingest(assistant, kb, connector, notify)
    stored = [s for s in assistant.documents(kb=kb) if s.source == connector.source]

    judged = dataset.judged_queries()
    selected = judged[:max_queries] if max_queries is not None else judged
    notify(EvaluationStep("queries", 0, total=len(selected)))
    # Dense and lexical recall each bring up to recall_k chunks: ask for the whole pool so every
    # run orders the same candidates the fusion standardised over.
    pool_k = 2 * assistant.settings.recall_k
    scores: dict[str, dict[str, list[float]]] = {run: {} for run in RUN_NAMES}
    stage_ms: dict[str, list[float]] = {}
    pool_sizes: list[float] = []
    weights: dict[str, float] = {}
    per_query: list[QueryRankings] = []
    for query_id, text in selected:
        result = assistant.search(text, kb=kb, k=pool_k)
        weights = dict(result.trace.weights)
        pool_sizes.append(float(result.trace.candidates))
        for stage, milliseconds in result.trace.timings_ms.items():
            stage_ms.setdefault(stage, []).append(milliseconds)
        stage_ms.setdefault("total", []).append(sum(result.trace.timings_ms.values()))
        relevance = dataset.qrels[query_id]
        orderings = run_rankings(result.hits, FusionWeights(**weights))
        rankings = {
            run: document_ranking(hits, connector.source + "/") for run, hits in orderings.items()
        }
        per_query.append(QueryRankings(query_id, rankings))
        for run, ranking in rankings.items():
            for name, value in _query_metrics(ranking, relevance).items():
                scores[run].setdefault(name, []).append(value)
        notify(EvaluationStep("queries", 1))

    return EvaluationReport(
        dataset=dataset.name,
        kb=kb,
        queries=len(selected),
        runs={
            run: RunMetrics(*(mean(values.get(name, [])) for name in METRIC_NAMES))
            for run, values in scores.items()
        },
        weights=weights,
        timings_ms={stage: round(mean(values), 3) for stage, values in stage_ms.items()},
        candidate_pool=round(mean(pool_sizes), 1),
        documents=len(stored),
        chunks=sum(len(state.chunk_ids) for state in stored),
        ingest=ingest_report,
        skipped_documents=connector.skipped,
        unjudged_queries=len(dataset.queries) - len(judged),
        per_query=per_query,
    )
