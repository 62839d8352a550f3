"""Declining what the site does not answer: unanswerable and answerable questions through ``ask``.

The product declines a turn (a content gap: no provider call, the brand's no-answer text) when
the best plain MaxSim score of its hits (``SearchResult.best_match``) is under the assistant's ``retrieval.no_answer_threshold``
(else ``ASSISTANT_NO_ANSWER_THRESHOLD``, 0.5 by default; see ``ChatOrchestrator.prepare``), or
when the question names something no chunk contains (``ASSISTANT_DECLINE_UNKNOWN_NAMES``; see
``assistant.knowledge.unknown_names``). The sweep reads the scores alone.
Every question is asked once with the offline answerer; the report gives the share of
unanswerable questions declined (per kind: ``off-topic``, ``near-domain``), the share of
answerable ones answered and answered citing an acceptable page, and every question's best
score, so other thresholds can be read off without asking again (``sweep``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assistant.evaluation.pools import is_acceptable
from assistant.evaluation.questions import QuestionSet

if TYPE_CHECKING:
    from assistant.chat.events import Answer
    from assistant.core import Assistant

__all__ = ["AskedQuestion", "NoAnswerReport", "evaluate_no_answer"]

SWEEP = (0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65)


@dataclass(frozen=True, slots=True)
class AskedQuestion:
    """One question asked: its kind, whether it was declined, its best score, what it cited."""

    kind: str
    text: str
    answerable: bool
    declined: bool
    top_score: float | None
    cited_acceptable: bool = False

    def to_json(self) -> dict[str, object]:
        """Plain JSON."""
        return {
            "kind": self.kind,
            "question": self.text,
            "declined": self.declined,
            "top_score": None if self.top_score is None else round(self.top_score, 4),
            "cited_acceptable": self.cited_acceptable,
        }


def _share(flags: Iterable[bool]) -> float:
    values = list(flags)
    return round(sum(1 for value in values if value) / len(values), 4) if values else 0.0


@dataclass(frozen=True, slots=True)
class NoAnswerReport:
    """Outcomes of asking every question of a set once, at ``threshold``."""

    threshold: float
    asked: list[AskedQuestion]

    def rates(self) -> dict[str, float]:
        """Declined share of unanswerable questions per kind; answered (and answered citing an
        acceptable page) share of answerable ones per kind."""
        rates: dict[str, float] = {}
        unanswerable = [q for q in self.asked if not q.answerable]
        answerable = [q for q in self.asked if q.answerable]
        for kind in sorted({q.kind for q in unanswerable}):
            rates[f"declined {kind}"] = _share(q.declined for q in unanswerable if q.kind == kind)
        rates["declined all unanswerable"] = _share(q.declined for q in unanswerable)
        for kind in sorted({q.kind for q in answerable}):
            rates[f"answered {kind}"] = _share(not q.declined for q in answerable if q.kind == kind)
        rates["answered all answerable"] = _share(not q.declined for q in answerable)
        rates["answered citing an acceptable page"] = _share(q.cited_acceptable for q in answerable)
        return rates

    def sweep(self, thresholds: Sequence[float] = SWEEP) -> list[dict[str, float]]:
        """What other thresholds would do, from the recorded best scores.

        A question declined although its score passed this report's threshold was declined
        for something else (a name no page holds), so it stays declined at every threshold.
        """
        rows = []
        for threshold in thresholds:

            def kept(question: AskedQuestion, cut: float = threshold) -> bool:
                score = question.top_score
                if score is None or score < cut:
                    return False
                return not (question.declined and score >= self.threshold)

            rows.append(
                {
                    "threshold": threshold,
                    "declined unanswerable": _share(
                        not kept(q) for q in self.asked if not q.answerable
                    ),
                    "answered answerable": _share(kept(q) for q in self.asked if q.answerable),
                }
            )
        return rows

    def to_json(self) -> dict[str, object]:
        """Rates, the sweep and every question."""
        return {
            "threshold": self.threshold,
            "rates": self.rates(),
            "sweep": self.sweep(),
            "per_question": [question.to_json() for question in self.asked],
        }


def _top_score(answer: Answer) -> float | None:
    return answer.retrieval.best_match if answer.retrieval is not None else None


def evaluate_no_answer(
    assistant: Assistant,
    question_set: QuestionSet,
    *,
    kb: str,
    progress: Callable[[int, int], None] | None = None,
) -> NoAnswerReport:
    """Ask every unanswerable and answerable question of ``question_set`` once in ``kb``."""
    configured = assistant.config(kb).retrieval.no_answer_threshold
    threshold = assistant.settings.no_answer_threshold if configured is None else configured
    total = len(question_set.unanswerable) + len(question_set.questions)
    asked: list[AskedQuestion] = []
    for question in question_set.unanswerable:
        answer = assistant.ask(question.text, kb=kb)
        asked.append(
            AskedQuestion(
                question.kind,
                question.text,
                answerable=False,
                declined=answer.outcome == "no_answer",
                top_score=_top_score(answer),
            )
        )
        if progress is not None:
            progress(len(asked), total)
    for answerable in question_set.questions:
        answer = assistant.ask(answerable.text, kb=kb)
        asked.append(
            AskedQuestion(
                answerable.kind,
                answerable.text,
                answerable=True,
                declined=answer.outcome == "no_answer",
                top_score=_top_score(answer),
                cited_acceptable=any(
                    is_acceptable(citation.url, answerable.acceptable)
                    for citation in answer.citations
                ),
            )
        )
        if progress is not None:
            progress(len(asked), total)
    return NoAnswerReport(threshold, asked)
