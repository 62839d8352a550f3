"""Report figures of one period: volume, cost, latency and quality, from hourly totals.

Turn figures come from ``period_totals`` (stored hourly totals, the turns of the part-hours).
Conversation figures count the conversations *started* in the period (their first turn falls
in it): how many, by how many visitors, and how many stayed unresolved, which each
conversation keeps count of (``ConversationRow.unresolved_turns``). Latency percentiles read
the stage timings of the period's newest ``LATENCY_SAMPLE`` turns.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from sqlalchemy import case, distinct, func, select

from assistant.analytics.period import Period
from assistant.analytics.period_totals import PeriodTotals
from assistant.analytics.quality import ConversationQuality
from assistant.analytics.volume import ModelUsage, StageLatency, Volume
from assistant.database.engine import Database
from assistant.database.models import ConversationRow, TurnRow

__all__ = [
    "LATENCY_SAMPLE",
    "ConversationFigures",
    "conversation_figures",
    "in_period",
    "quality_of",
    "volume_of",
]

LATENCY_SAMPLE = 500
"""Newest turns of a period whose stage timings give the latency percentiles."""


def in_period(assistant: str, period: Period) -> Any:
    """The turns of ``assistant`` created in ``period``, as a SQL condition."""
    return (
        (TurnRow.assistant == assistant)
        & (TurnRow.created_at >= period.since)
        & (TurnRow.created_at < period.until)
    )


ConversationFigures = tuple[int, int, int]
"""Conversations started in a period, their distinct visitors, those left unresolved."""


def conversation_figures(database: Database, assistant: str, period: Period) -> ConversationFigures:
    """Conversations whose first turn falls in ``period``: how many, their visitors, and how
    many have a declined, failed, handed-off, 👎 or re-asked turn."""
    query = select(
        func.count(),
        func.count(distinct(ConversationRow.visitor)),
        func.coalesce(func.sum(case((ConversationRow.unresolved_turns > 0, 1), else_=0)), 0),
    ).where(
        ConversationRow.assistant == assistant,
        ConversationRow.started_at >= period.since,
        ConversationRow.started_at < period.until,
    )
    with database.session() as session:
        conversations, visitors, unresolved = session.execute(query).one()
    return int(conversations), int(visitors), int(unresolved)


def _latency(
    database: Database, assistant: str, period: Period, turns: int
) -> tuple[StageLatency, ...]:
    query = (
        select(TurnRow.timings_ms)
        .where(in_period(assistant, period))
        .order_by(TurnRow.created_at.desc())
        .limit(LATENCY_SAMPLE)
    )
    with database.session() as session:
        timings = session.scalars(query).all()
    if not timings:
        return ()
    stages: dict[str, list[float]] = {}
    for timing in timings:
        for stage, milliseconds in (timing or {}).items():
            if isinstance(milliseconds, int | float):
                stages.setdefault(stage, []).append(float(milliseconds))
    scale = turns / len(timings)
    result = []
    for stage, values in sorted(stages.items()):
        p50, p90, p99 = np.percentile(np.asarray(values), [50, 90, 99])
        count = round(len(values) * scale)
        result.append(StageLatency(stage, count, round(p50, 3), round(p90, 3), round(p99, 3)))
    return tuple(result)


def volume_of(
    database: Database,
    assistant: str,
    period: Period,
    totals: PeriodTotals,
    conversations: ConversationFigures,
    *,
    buckets: int = 30,
) -> Volume:
    """Volume, cost and latency of ``period`` from its totals.

    Latency percentiles come from the newest ``LATENCY_SAMPLE`` turns; each stage's
    ``count`` is the number of turns of the period that sample stands for.
    """
    daily = [0] * buckets
    by_model: dict[tuple[str, str | None], list[Any]] = defaultdict(lambda: [0, 0, 0, None])
    turns = input_tokens = output_tokens = 0
    cost = 0.0
    for (bucket, provider, model), values in totals.totals.items():
        count, tokens_in, tokens_out, spent = values[0], values[7], values[8], values[9]
        daily[int(bucket)] += int(count)
        turns += int(count)
        input_tokens += int(tokens_in)
        output_tokens += int(tokens_out)
        cost += float(spent or 0.0)
        if provider:
            usage = by_model[(provider, model)]
            usage[0] += int(count)
            usage[1] += int(tokens_in)
            usage[2] += int(tokens_out)
            if spent is not None:
                usage[3] = (usage[3] or 0.0) + float(spent)
    usages = [
        ModelUsage(
            provider=provider,
            model=model,
            turns=count,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cost_usd=round(spent, 6) if spent is not None else None,
        )
        for (provider, model), (count, tokens_in, tokens_out, spent) in by_model.items()
    ]
    return Volume(
        conversations=conversations[0],
        turns=turns,
        visitors=conversations[1],
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=round(cost, 6),
        by_model=tuple(sorted(usages, key=lambda usage: (-usage.turns, usage.provider))),
        latency_ms=_latency(database, assistant, period, turns) if turns else (),
        daily_turns=tuple(daily),
    )


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def quality_of(totals: PeriodTotals, conversations: ConversationFigures) -> ConversationQuality:
    """Answer rate, resolution, CSAT, groundedness and re-asks from a period's totals (re-asks
    and groundedness from the turns' stored insights; resolution over the conversations
    started in the period)."""
    sums = [0, 0, 0, 0, 0, 0.0, 0]
    graded_sum, graded = 0.0, 0
    for values in totals.totals.values():
        for index in range(7):
            sums[index] += values[index]
        graded_sum += float(values[11] or 0.0)
        graded += int(values[12] or 0)
    turns, answered, up, down, reasked, grounded_sum, grounded_turns = sums
    started, _, unresolved = conversations
    return ConversationQuality(
        turns=int(turns),
        conversations=started,
        answer_rate=_rate(int(answered), int(turns)),
        resolution_rate=_rate(started - unresolved, started),
        csat=_rate(int(up), int(up + down)),
        groundedness=float(grounded_sum) / grounded_turns if grounded_turns else None,
        thumbs_up=int(up),
        thumbs_down=int(down),
        reasked=int(reasked),
        model_grade=graded_sum / graded if graded else None,
        model_graded=graded,
    )
