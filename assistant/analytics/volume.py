"""Volume and cost: conversations, turns, visitors, tokens and estimated cost by provider and
model, and latency percentiles per stage from the stored timings."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from assistant.analytics.period import Period
from assistant.analytics.records import TurnFacts
from assistant.analytics.types import ModelUsage, StageLatency, Volume

__all__ = ["ModelUsage", "StageLatency", "Volume", "volume"]


def _by_model(turns: Sequence[TurnFacts]) -> tuple[ModelUsage, ...]:
    groups: dict[tuple[str, str | None], list[TurnFacts]] = defaultdict(list)
    for turn in turns:
        if turn.provider:
            groups[(turn.provider, turn.model)].append(turn)
    usages = []
    for (provider, model), members in groups.items():
        costs = [turn.cost_usd for turn in members if turn.cost_usd is not None]
        usages.append(
            ModelUsage(
                provider=provider,
                model=model,
                turns=len(members),
                input_tokens=sum(turn.input_tokens for turn in members),
                output_tokens=sum(turn.output_tokens for turn in members),
                cost_usd=round(sum(costs), 6) if costs else None,
            )
        )
    return tuple(sorted(usages, key=lambda usage: (-usage.turns, usage.provider)))


def _latency(turns: Sequence[TurnFacts]) -> tuple[StageLatency, ...]:
    stages: dict[str, list[float]] = defaultdict(list)
    for turn in turns:
        for stage, milliseconds in turn.timings_ms.items():
            if isinstance(milliseconds, int | float):
                stages[stage].append(float(milliseconds))
    result = []
    for stage, values in sorted(stages.items()):
        p50, p90, p99 = np.percentile(np.asarray(values), [50, 90, 99])
        result.append(StageLatency(stage, len(values), round(p50, 3), round(p90, 3), round(p99, 3)))
    return tuple(result)


def volume(turns: Sequence[TurnFacts], period: Period, *, buckets: int = 30) -> Volume:
    """The volume, cost and latency figures of ``turns`` (all within ``period``)."""
    daily = [0] * buckets
    for turn in turns:
        daily[period.bucket_of(turn.created_at, buckets)] += 1
    return Volume(
        conversations=len({turn.conversation_id for turn in turns}),
        turns=len(turns),
        visitors=len({turn.visitor for turn in turns if turn.visitor}),
        input_tokens=sum(turn.input_tokens for turn in turns),
        output_tokens=sum(turn.output_tokens for turn in turns),
        cost_usd=round(sum(turn.cost_usd or 0.0 for turn in turns), 6),
        by_model=_by_model(turns),
        latency_ms=_latency(turns),
        daily_turns=tuple(daily),
    )
