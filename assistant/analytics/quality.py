"""Conversation quality: answer rate, resolution, CSAT, groundedness, and re-asked questions.

A turn is *re-asked* when a later turn of the same conversation asks nearly the same thing
(question vectors at cosine ``≥ reask_similarity``): the visitor did not get what they needed.
A conversation is *resolved* when none of its turns was re-asked, handed off, declined,
failed or rated 👎 — the "assumed resolution" of support tools, measured on what is stored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from assistant.analytics.records import TurnFacts
from assistant.analytics.types import ConversationQuality

__all__ = ["REASK_SIMILARITY", "ConversationQuality", "conversation_quality", "reasked_turns"]

REASK_SIMILARITY = 0.8
"""Cosine between two questions of one conversation above which the later one re-asks the
earlier (MiniLM: rephrasings of one question score 0.8-0.95, follow-ups on one subject
0.5-0.75)."""

_UNRESOLVED_OUTCOMES = frozenset({"no_answer", "error", "handoff"})


def reasked_turns(turns: Sequence[TurnFacts], *, similarity: float = REASK_SIMILARITY) -> set[int]:
    """Ids of the turns that a later turn of the same conversation asks again."""
    by_conversation: dict[str, list[TurnFacts]] = defaultdict(list)
    for turn in turns:
        if turn.vector.size:
            by_conversation[turn.conversation_id].append(turn)
    reasked: set[int] = set()
    for members in by_conversation.values():
        if len(members) < 2:
            continue
        members.sort(key=lambda turn: turn.position)
        vectors = np.stack([turn.vector for turn in members])
        similarities = vectors @ vectors.T
        for earlier in range(len(members)):
            if (similarities[earlier, earlier + 1 :] >= similarity).any():
                reasked.add(members[earlier].id)
    return reasked


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def conversation_quality(turns: Sequence[TurnFacts], reasked: set[int]) -> ConversationQuality:
    """The quality figures of ``turns`` (one period), given the ids of re-asked turns."""
    unresolved: set[str] = set()
    conversations: set[str] = set()
    for turn in turns:
        conversations.add(turn.conversation_id)
        if turn.outcome in _UNRESOLVED_OUTCOMES or turn.rating == -1 or turn.id in reasked:
            unresolved.add(turn.conversation_id)
    up = sum(1 for turn in turns if turn.rating == 1)
    down = sum(1 for turn in turns if turn.rating == -1)
    grounded = [turn.groundedness for turn in turns if turn.groundedness is not None]
    return ConversationQuality(
        turns=len(turns),
        conversations=len(conversations),
        answer_rate=_rate(sum(1 for turn in turns if turn.outcome == "answered"), len(turns)),
        resolution_rate=_rate(len(conversations) - len(unresolved), len(conversations)),
        csat=_rate(up, up + down),
        groundedness=float(np.mean(grounded)) if grounded else None,
        thumbs_up=up,
        thumbs_down=down,
        reasked=len(reasked & {turn.id for turn in turns}),
    )
