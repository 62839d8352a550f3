"""Top questions and content gaps: questions grouped by meaning, per period, with trends.

The questions of this period and the previous one are clustered together, so a cluster's
``previous_count`` is comparable with its ``count``. A content gap is a cluster of questions
that were not answered well: declined (no answer), answered from a weak best passage (best
late-interaction score under ``low_score``), rated 👎, or asked again in the same
conversation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from assistant.analytics.clustering import DEFAULT_DISTANCE_THRESHOLD, cluster_questions
from assistant.analytics.labels import cluster_labels
from assistant.analytics.period import Period
from assistant.analytics.records import TurnFacts
from assistant.analytics.types import QuestionCluster

__all__ = [
    "LOW_SCORE",
    "GapCluster",
    "QuestionCluster",
    "content_gaps",
    "gap_reasons",
    "top_questions",
]

LOW_SCORE = 0.6
"""Best late-interaction score under which an answered turn counts as weakly supported: just
above the default no-answer threshold (0.5), where answers are given from a passage that
barely matched."""


@dataclass(frozen=True, slots=True)
class GapCluster:
    """A cluster of questions not answered well, with why (reason → turns)."""

    label: str
    count: int
    previous_count: int
    questions: tuple[str, ...]
    reasons: dict[str, int]
    turn_ids: tuple[int, ...]


def gap_reasons(
    turn: TurnFacts, reasked: set[int], *, low_score: float = LOW_SCORE
) -> tuple[str, ...]:
    """Why ``turn`` counts as not answered well (empty: it was answered well)."""
    reasons = []
    if turn.outcome == "no_answer":
        reasons.append("no_answer")
    elif turn.outcome == "answered" and turn.top_score is not None and turn.top_score < low_score:
        reasons.append("low_score")
    if turn.rating == -1:
        reasons.append("thumbs_down")
    if turn.id in reasked:
        reasons.append("reasked")
    return tuple(reasons)


@dataclass(frozen=True, slots=True)
class _Group:
    current: list[TurnFacts]
    previous: int
    questions: tuple[str, ...]


def _groups(
    current: Sequence[TurnFacts],
    previous: Sequence[TurnFacts],
    render: Callable[[str], str],
    *,
    distance_threshold: float,
    examples: int,
) -> tuple[list[_Group], list[str]]:
    """Clusters over both periods with the questions of each; the largest first."""
    current = [turn for turn in current if turn.vector.size]
    previous = [turn for turn in previous if turn.vector.size]
    everything = [*current, *previous]
    if not current:
        return [], []
    labels = cluster_questions(
        np.stack([turn.vector for turn in everything]), distance_threshold=distance_threshold
    ).tolist()
    members: dict[int, list[TurnFacts]] = {}
    previous_counts: Counter[int] = Counter(labels[len(current) :])
    for turn, label in zip(current, labels, strict=False):
        members.setdefault(label, []).append(turn)
    ordered = sorted(members.items(), key=lambda item: (-len(item[1]), item[0]))
    groups = []
    texts = []
    for label, turns in ordered:
        asked = Counter(render(turn.question) for turn in turns)
        groups.append(
            _Group(turns, previous_counts[label], tuple(q for q, _ in asked.most_common(examples)))
        )
        texts.append([render(turn.question) for turn in turns])
    names = cluster_labels(texts) if texts else []
    return groups, names


def top_questions(
    current: Sequence[TurnFacts],
    previous: Sequence[TurnFacts],
    period: Period,
    *,
    render: Callable[[str], str] = str,
    limit: int = 20,
    examples: int = 5,
    buckets: int = 30,
    distance_threshold: float = DEFAULT_DISTANCE_THRESHOLD,
) -> list[QuestionCluster]:
    """The ``limit`` largest clusters of this period's questions (labels from all clusters)."""
    groups, names = _groups(
        current, previous, render, distance_threshold=distance_threshold, examples=examples
    )
    total = sum(len(group.current) for group in groups)
    clusters = []
    for group, name in list(zip(groups, names, strict=True))[:limit]:
        turns = group.current
        daily = [0] * buckets
        for turn in turns:
            daily[period.bucket_of(turn.created_at, buckets)] += 1
        clusters.append(
            QuestionCluster(
                label=name,
                count=len(turns),
                previous_count=group.previous,
                share=len(turns) / total,
                questions=group.questions,
                answer_rate=sum(turn.outcome == "answered" for turn in turns) / len(turns),
                thumbs_up=sum(turn.rating == 1 for turn in turns),
                thumbs_down=sum(turn.rating == -1 for turn in turns),
                daily=tuple(daily),
                turn_ids=tuple(turn.id for turn in turns),
            )
        )
    return clusters


def content_gaps(
    current: Sequence[TurnFacts],
    previous: Sequence[TurnFacts],
    reasked: set[int],
    *,
    render: Callable[[str], str] = str,
    limit: int = 20,
    examples: int = 5,
    low_score: float = LOW_SCORE,
    distance_threshold: float = DEFAULT_DISTANCE_THRESHOLD,
) -> list[GapCluster]:
    """The ``limit`` largest clusters of this period's questions that were not answered well."""
    reasons = {
        turn.id: why
        for turn in [*current, *previous]
        if (why := gap_reasons(turn, reasked, low_score=low_score))
    }
    groups, names = _groups(
        [turn for turn in current if turn.id in reasons],
        [turn for turn in previous if turn.id in reasons],
        render,
        distance_threshold=distance_threshold,
        examples=examples,
    )
    gaps = []
    for group, name in list(zip(groups, names, strict=True))[:limit]:
        counted: Counter[str] = Counter(
            reason for turn in group.current for reason in reasons[turn.id]
        )
        gaps.append(
            GapCluster(
                label=name,
                count=len(group.current),
                previous_count=group.previous,
                questions=group.questions,
                reasons=dict(counted.most_common()),
                turn_ids=tuple(turn.id for turn in group.current),
            )
        )
    return gaps
