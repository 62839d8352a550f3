"""The count of unresolved turns each conversation keeps (``ConversationRow.unresolved_turns``).

A turn leaves its conversation unresolved when it was declined, failed or handed off, rated
👎, or asked again by a later turn. The conversation store adds the first kind as it stores a
turn; feedback and re-ask analysis call ``recount_unresolved`` for the conversations they
touched, which counts again from the turns (a handful per conversation).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm import Session

from assistant.database.analytics_models import TurnInsightRow
from assistant.database.models import ConversationRow, FeedbackRow, TurnRow

__all__ = ["UNRESOLVED_OUTCOMES", "recount_unresolved"]

UNRESOLVED_OUTCOMES = ("no_answer", "error", "handoff")
"""Turn outcomes that leave a conversation unresolved."""


def recount_unresolved(session: Session, conversation_ids: Iterable[str]) -> None:
    """Count again the unresolved turns of ``conversation_ids``, in ``session``."""
    wanted = sorted(set(conversation_ids))
    count = (
        select(func.count())
        .select_from(TurnRow)
        .where(
            TurnRow.conversation_id == ConversationRow.id,
            or_(
                TurnRow.outcome.in_(UNRESOLVED_OUTCOMES),
                exists().where(FeedbackRow.turn_id == TurnRow.id, FeedbackRow.rating < 0),
                exists().where(TurnInsightRow.turn_id == TurnRow.id, TurnInsightRow.reasked),
            ),
        )
        .correlate(ConversationRow)
        .scalar_subquery()
    )
    for start in range(0, len(wanted), 500):
        session.execute(
            update(ConversationRow)
            .where(ConversationRow.id.in_(wanted[start : start + 500]))
            .values(unresolved_turns=count)
        )
