"""Page-level retrieval evaluation of a website's knowledge base, asked as visitors ask.

Every answerable question of a ``QuestionSet`` is searched once through the shipped search with
the whole candidate pool (``2 × recall_k`` chunks) and every signal's score. Each stage of
``STAGES`` orders that one pool; chunks map to pages (a page ranks where its best chunk ranks)
and a question is found at the rank of its first acceptable page. Per stage and per kind of
question (``direct``, ``paraphrased``, ``all``) the report gives hit@1, hit@5 and MRR@10, the
rank of every question in every stage, and the pools themselves, so another fusion can be
scored offline in seconds with ``rescore``.

>>> report = evaluate_site(assistant, load_question_set(Path("bench/sites/django")), kb="django")  # doctest: +SKIP
>>> report.metrics["fused"]["paraphrased"].mrr_at_10  # doctest: +SKIP
>>> rescore(report.pools(), FusionWeights(dense=1.0, late_interaction=0.0, lexical=0.0))  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from assistant.errors import NotFoundError
from assistant.evaluation.followups import FollowUpReport, evaluate_follow_ups
from assistant.evaluation.no_answer import NoAnswerReport, evaluate_no_answer
from assistant.evaluation.pools import (
    STAGES,
    Pool,
    first_acceptable_rank,
    fused_order,
    page_path,
    page_ranking,
    stage_orderings,
)
from assistant.evaluation.questions import ANSWERABLE_KINDS, Question, QuestionSet
from assistant.knowledge.fusion import FusionWeights
from assistant.knowledge.ranking_metrics import mean

if TYPE_CHECKING:
    from assistant.core import Assistant

__all__ = [
    "KINDS",
    "QuestionResult",
    "SiteProgress",
    "SiteReport",
    "StageMetrics",
    "evaluate_site",
    "load_pools",
    "metrics_by_kind",
    "rescore",
]

KINDS = (*ANSWERABLE_KINDS, "all")
_MRR_DEPTH = 10


@dataclass(frozen=True, slots=True)
class StageMetrics:
    """Page-level metrics of one stage over ``questions`` questions."""

    questions: int
    hit_at_1: float
    hit_at_5: float
    mrr_at_10: float

    @classmethod
    def of(cls, ranks: Sequence[int | None]) -> StageMetrics:
        """Metrics of the first-acceptable-page ranks (``None``: not in the pool)."""
        found = list(ranks)
        return cls(
            questions=len(found),
            hit_at_1=mean(1.0 if rank == 1 else 0.0 for rank in found),
            hit_at_5=mean(1.0 if rank is not None and rank <= 5 else 0.0 for rank in found),
            mrr_at_10=mean(
                1.0 / rank if rank is not None and rank <= _MRR_DEPTH else 0.0 for rank in found
            ),
        )

    def as_dict(self) -> dict[str, float]:
        """The metrics under their conventional names."""
        return {
            "questions": self.questions,
            "hit@1": round(self.hit_at_1, 4),
            "hit@5": round(self.hit_at_5, 4),
            "mrr@10": round(self.mrr_at_10, 4),
        }


@dataclass(frozen=True, slots=True)
class QuestionResult:
    """One question, the rank of its first acceptable page in every stage, and its pool."""

    question: Question
    ranks: dict[str, int | None]
    top_pages: tuple[str, ...]
    """The fused ranking's first pages (paths), to read what came up instead."""
    pool: Pool

    def to_json(self, *, with_pool: bool = True) -> dict[str, object]:
        """The question, its ranks and (with ``with_pool``) its pool as plain JSON."""
        data: dict[str, object] = {
            "kind": self.question.kind,
            "question": self.question.text,
            "acceptable": list(self.question.acceptable),
            "line": self.question.line,
            "ranks": self.ranks,
            "top_pages": list(self.top_pages),
        }
        if with_pool:
            data["pool"] = self.pool.to_json()
        return data


@dataclass(slots=True)
class SiteReport:
    """What ``evaluate_site`` measured."""

    name: str
    kb: str
    metrics: dict[str, dict[str, StageMetrics]]
    """Stage → kind (``direct``, ``paraphrased``, ``all``) → metrics."""
    results: list[QuestionResult]
    weights: dict[str, float]
    timings_ms: dict[str, float]
    candidate_pool: float
    pages: int
    chunks: int
    follow_ups: FollowUpReport | None = None
    no_answer: NoAnswerReport | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time of each part of the evaluation (``retrieval``, ``follow_ups``, ``no_answer``)."""

    def pools(self) -> list[tuple[Question, Pool]]:
        """Every question with its saved pool, for ``rescore``."""
        return [(result.question, result.pool) for result in self.results]

    def worst(self, count: int = 10, stage: str = "fused") -> list[QuestionResult]:
        """The questions ``stage`` ranks worst: not found first, then by rank, deepest first;
        only those not found at rank 1."""
        missed = [result for result in self.results if result.ranks[stage] != 1]
        missed.sort(key=lambda result: -(result.ranks[stage] or 1_000_000))
        return missed[:count]

    def to_json(self, *, with_pools: bool = True) -> dict[str, object]:
        """The ``eval --questions --json`` shape."""
        return {
            "question_set": self.name,
            "kb": self.kb,
            "questions": len(self.results),
            "stages": {
                stage: {kind: metrics.as_dict() for kind, metrics in by_kind.items()}
                for stage, by_kind in self.metrics.items()
            },
            "weights": self.weights,
            "tuning": "none: the knowledge base's fusion weights",
            "timings_ms": self.timings_ms,
            "candidate_pool": self.candidate_pool,
            "pages": self.pages,
            "chunks": self.chunks,
            "follow_ups": self.follow_ups.to_json() if self.follow_ups else None,
            "no_answer": self.no_answer.to_json() if self.no_answer else None,
            "seconds": self.seconds,
            "per_question": [result.to_json(with_pool=with_pools) for result in self.results],
        }


def metrics_by_kind(
    questions: Sequence[Question], ranks: Sequence[int | None]
) -> dict[str, StageMetrics]:
    """Metrics of one stage per kind of question and over all of them."""
    by_kind: dict[str, StageMetrics] = {}
    for kind in KINDS:
        selected = [
            rank
            for question, rank in zip(questions, ranks, strict=True)
            if kind == "all" or question.kind == kind
        ]
        by_kind[kind] = StageMetrics.of(selected)
    return by_kind


def _ranks(question: Question, pool: Pool) -> dict[str, int | None]:
    return {
        stage: first_acceptable_rank(page_ranking(ordering), question.acceptable)
        for stage, ordering in stage_orderings(pool).items()
    }


def rescore(
    pools: Sequence[tuple[Question, Pool]], weights: FusionWeights
) -> dict[str, StageMetrics]:
    """Metrics per kind of the saved ``pools`` ranked by fusing their signals with ``weights``
    (through ``rank_candidates``, as the retriever ranks); no model call, no search."""
    ranks = [
        first_acceptable_rank(page_ranking(fused_order(pool, weights)), question.acceptable)
        for question, pool in pools
    ]
    return metrics_by_kind([question for question, _ in pools], ranks)


SiteProgress = Callable[[str, int, int], None]
"""``progress(task, done, total)``; tasks: ``questions``, ``conversations``, ``asked``."""


def evaluate_site(
    assistant: Assistant,
    question_set: QuestionSet,
    *,
    kb: str,
    follow_ups: bool = True,
    no_answer: bool = True,
    progress: SiteProgress | None = None,
) -> SiteReport:
    """Measure ``kb`` on ``question_set``: retrieval of every answerable question by every
    stage, then (when the set has them and they are not turned off) the follow-ups of its
    conversations and the no-answer decisions (see ``followups`` and ``no_answer``).

    Raises ``NotFoundError`` when ``kb`` does not exist or holds nothing.
    """
    notify: SiteProgress = progress or (lambda task, done, total: None)
    started = time.perf_counter()
    report = _retrieval(assistant, question_set, kb, notify)
    report.seconds["retrieval"] = round(time.perf_counter() - started, 1)
    if follow_ups and question_set.conversations:
        started = time.perf_counter()
        report.follow_ups = evaluate_follow_ups(
            assistant,
            question_set.conversations,
            kb=kb,
            progress=lambda done, total: notify("conversations", done, total),
        )
        report.seconds["follow_ups"] = round(time.perf_counter() - started, 1)
    if no_answer and question_set.unanswerable:
        started = time.perf_counter()
        report.no_answer = evaluate_no_answer(
            assistant,
            question_set,
            kb=kb,
            progress=lambda done, total: notify("asked", done, total),
        )
        report.seconds["no_answer"] = round(time.perf_counter() - started, 1)
    return report


def _retrieval(
    assistant: Assistant, question_set: QuestionSet, kb: str, notify: SiteProgress
) -> SiteReport:
    if kb not in assistant.knowledge_bases():
        raise NotFoundError(
            f"no knowledge base {kb!r}; build it first with `assistant ingest <sitemap> --kb {kb}`"
        )
    stored = assistant.documents(kb=kb)
    if not stored:
        raise NotFoundError(f"knowledge base {kb!r} is empty; ingest the site into it first")
    # Dense and lexical recall each bring up to recall_k chunks: ask for the whole pool so every
    # stage orders the same candidates the fusion standardised over.
    pool_k = 2 * assistant.settings.recall_k
    results: list[QuestionResult] = []
    stage_ms: dict[str, list[float]] = {}
    weights: dict[str, float] = {}
    questions = question_set.questions
    for done, question in enumerate(questions, start=1):
        search = assistant.search(question.text, kb=kb, k=pool_k)
        weights = dict(search.trace.weights)
        for stage, milliseconds in search.trace.timings_ms.items():
            stage_ms.setdefault(stage, []).append(milliseconds)
        stage_ms.setdefault("total", []).append(sum(search.trace.timings_ms.values()))
        pool = Pool.of(search.candidates or search.hits, FusionWeights(**weights))
        fused_pages = page_ranking(sorted(pool.candidates, key=lambda c: c.fused_rank))
        results.append(
            QuestionResult(
                question,
                _ranks(question, pool),
                tuple(page_path(url) for url in fused_pages[:3]),
                pool,
            )
        )
        notify("questions", done, len(questions))
    return SiteReport(
        name=question_set.name,
        kb=kb,
        metrics=_metrics(results),
        results=results,
        weights=weights,
        timings_ms={stage: round(mean(values), 3) for stage, values in stage_ms.items()},
        candidate_pool=round(mean(float(len(r.pool.candidates)) for r in results), 1),
        pages=len(stored),
        chunks=sum(len(state.chunk_ids) for state in stored),
    )


def _metrics(results: Sequence[QuestionResult]) -> dict[str, dict[str, StageMetrics]]:
    questions = [result.question for result in results]
    return {
        stage: metrics_by_kind(questions, [result.ranks[stage] for result in results])
        for stage in STAGES
    }


def load_pools(data: Mapping[str, object]) -> list[tuple[Question, Pool]]:
    """The questions and pools of a report's JSON (``SiteReport.to_json``), for ``rescore``."""
    entries = data.get("per_question")
    if not isinstance(entries, list):
        raise ValueError("not a site evaluation report: no per_question list")
    pools: list[tuple[Question, Pool]] = []
    for entry in entries:
        pool = entry.get("pool")
        if pool is None:
            raise ValueError("this report was written without its pools")
        question = Question(
            str(entry["kind"]), str(entry["question"]), tuple(entry["acceptable"]), entry["line"]
        )
        pools.append((question, Pool.from_json(pool)))
    return pools
