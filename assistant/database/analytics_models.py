"""Per-turn facts derived once for analytics, so a report never recomputes them.

A ``turn_insights`` row is a cache: it can be deleted and rebuilt from its turn at any time.
``turn_created_at`` ties it to the turn it was computed from (SQLite may give the id of a
deleted turn to a new one) and lets a report filter insights by period without reading turns;
``model_id`` ties it to the encoder that embedded the question. ``cluster`` is the turn's
question cluster in the assistant's stored clustering (``question_clusterings``), whose
``version`` the row records. ``turn_pages`` holds, per turn, the pages it used as context, the
pages it cited and the pages that came nearest to answering it (from the retrieval trace),
so page figures are SQL aggregates rather than a pass over every trace.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from assistant.database.models import Base, TurnRow, UTCDateTime, utcnow

__all__ = ["QuestionClusteringRow", "TurnInsightRow", "TurnPageRow"]

# Every report filters turns by assistant and period and aggregates these light columns; an
# index that holds them all answers without reading the turns' wide JSON columns.

Index(
    "ix_turns_assistant_created_at",
    TurnRow.assistant,
    TurnRow.created_at,
    TurnRow.id,
    TurnRow.conversation_id,
    TurnRow.outcome,
    TurnRow.top_score,
    TurnRow.provider,
    TurnRow.model,
    TurnRow.input_tokens,
    TurnRow.output_tokens,
    TurnRow.cost_usd,
)


class TurnInsightRow(Base):
    """What analytics derived from one turn: its question's dense vector (float16 bytes), the
    groundedness of its answer, the pages it used and cited, whether a later turn of its
    conversation asked it again, and its question cluster."""

    __tablename__ = "turn_insights"
    __table_args__ = (
        Index("ix_turn_insights_assistant_created_at", "assistant", "turn_created_at"),
        # A cluster's newest turns (examples, drill-down) straight from the index.
        Index(
            "ix_turn_insights_cluster_created_at",
            "assistant",
            "clustering_version",
            "cluster",
            "turn_created_at",
            "turn_id",
        ),
        Index(
            "ix_turn_insights_facts",
            "turn_id",
            "clustering_version",
            "cluster",
            "reasked",
            "groundedness",
        ),
    )

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
    turn_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    conversation_id: Mapped[str] = mapped_column(String(32), default="", index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    reasked: Mapped[bool] = mapped_column(Boolean, default=False)
    cluster: Mapped[int | None] = mapped_column(Integer, default=None)
    clustering_version: Mapped[int | None] = mapped_column(Integer, default=None)
    model_grade: Mapped[float | None] = mapped_column(Float, default=None)
    """How well the answer served the question, 0-1, as graded by a language model (only for
    a sample of turns, and only when the assistant has a provider)."""


class TurnPageRow(Base):
    """One page of one turn: given as context, cited, and/or among the pages nearest to
    answering it (``nearest_score``: its best late-interaction score in the trace)."""

    __tablename__ = "turn_pages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    turn_id: Mapped[int] = mapped_column(
        ForeignKey("turn_insights.turn_id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text, default="")
    in_context: Mapped[bool] = mapped_column(Boolean, default=False)
    cited: Mapped[bool] = mapped_column(Boolean, default=False)
    nearest_score: Mapped[float | None] = mapped_column(Float, default=None)


class QuestionClusteringRow(Base):
    """An assistant's current question clustering: one centroid per cluster (unit float32
    rows, ``clusters`` × ``dimension``) and its label, so new questions join the nearest
    cluster without clustering everything again."""

    __tablename__ = "question_clusterings"

    assistant: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    model_id: Mapped[str] = mapped_column(String(200))
    distance_threshold: Mapped[float] = mapped_column(Float)
    dimension: Mapped[int] = mapped_column(Integer)
    clusters: Mapped[int] = mapped_column(Integer)
    centroids: Mapped[bytes] = mapped_column(LargeBinary)
    labels: Mapped[list[Any]] = mapped_column(default=list)
    labels_model: Mapped[str] = mapped_column(String(200), default="", server_default="")
    """The language model that wrote ``labels``; empty: they are c-TF-IDF terms."""
    clustered_turns: Mapped[int] = mapped_column(Integer, default=0)
    """Questions the last full clustering saw."""
    assigned_turns: Mapped[int] = mapped_column(Integer, default=0)
    """Questions joined to their nearest centroid since then."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
