"""Retention: conversations idle for longer than an assistant's ``retention_days`` are deleted
with their turns, feedback and analytics rows, so they leave every aggregate at once.

``apply_retention`` handles one assistant; ``apply_retention_everywhere`` every assistant with
a configured retention (the API's periodic maintenance and ``assistant report
--apply-retention`` call it).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select

from assistant.assistants import AssistantRegistry
from assistant.database.analytics_models import TurnInsightRow, TurnPageRow
from assistant.database.engine import Database
from assistant.database.models import ConversationRow, FeedbackRow, TurnRow
from assistant.database.rollup_models import invalidate_turns

__all__ = ["apply_retention", "apply_retention_everywhere"]

logger = logging.getLogger(__name__)

_CHUNK = 500


def apply_retention(
    database: Database, assistant: str, days: int, *, now: datetime | None = None
) -> int:
    """Delete ``assistant``'s conversations last active more than ``days`` days before
    ``now``, with everything derived from them. Returns how many conversations went.

    >>> apply_retention(database, "docs", 90)  # doctest: +SKIP
    12
    """
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    with database.session() as session:
        expired = list(
            session.scalars(
                select(ConversationRow.id).where(
                    ConversationRow.assistant == assistant, ConversationRow.updated_at < cutoff
                )
            ).all()
        )
    for start in range(0, len(expired), _CHUNK):
        chunk = expired[start : start + _CHUNK]
        turn_ids = select(TurnRow.id).where(TurnRow.conversation_id.in_(chunk))
        with database.session() as session:
            # Their hours of the analytics totals are counted again without them.
            invalidate_turns(session, list(session.scalars(turn_ids).all()))
            # Explicit deletes: SQLite applies ON DELETE CASCADE only with foreign keys on.
            session.execute(delete(TurnPageRow).where(TurnPageRow.turn_id.in_(turn_ids)))
            session.execute(delete(TurnInsightRow).where(TurnInsightRow.turn_id.in_(turn_ids)))
            session.execute(delete(FeedbackRow).where(FeedbackRow.turn_id.in_(turn_ids)))
            session.execute(delete(TurnRow).where(TurnRow.conversation_id.in_(chunk)))
            session.execute(delete(ConversationRow).where(ConversationRow.id.in_(chunk)))
    if expired:
        logger.info(
            "retention: deleted %d conversations of %r older than %d days",
            len(expired),
            assistant,
            days,
        )
    return len(expired)


def apply_retention_everywhere(
    database: Database, *, now: datetime | None = None
) -> dict[str, int]:
    """Apply every assistant's ``retention_days``; conversations deleted per assistant."""
    registry = AssistantRegistry(database)
    deleted = {}
    for name in registry.names():
        days = registry.get(name).retention_days
        if days is not None:
            deleted[name] = apply_retention(database, name, days, now=now)
    return deleted
