"""Per-turn facts derived once for analytics, so a report never recomputes them.

A row is a cache: it can be deleted and rebuilt from its turn at any time. ``question_hash``
ties it to the question it was computed from, because SQLite may reuse the id of a deleted
turn, and ``model_id`` to the encoder that embedded it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from assistant.database.models import Base, UTCDateTime, utcnow

__all__ = ["TurnInsightRow"]


class TurnInsightRow(Base):
    """What analytics derived from one turn: its question's dense vector (float16 bytes), the
    groundedness of its answer, and the pages it used and cited."""

    __tablename__ = "turn_insights"

    turn_id: Mapped[int] = mapped_column(
        ForeignKey("turns.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    assistant: Mapped[str] = mapped_column(String(64), index=True)
    question_hash: Mapped[str] = mapped_column(String(64))
    model_id: Mapped[str] = mapped_column(String(200))
    question_vector: Mapped[bytes] = mapped_column(LargeBinary)
    groundedness: Mapped[float | None] = mapped_column(Float, default=None)
    sentences: Mapped[int] = mapped_column(Integer, default=0)
    context_pages: Mapped[list[Any]] = mapped_column(default=list)
    cited_urls: Mapped[list[Any]] = mapped_column(default=list)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
