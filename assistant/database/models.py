"""Tables of the application database (the system of record; Chroma and Redis are rebuildable).

Every row that belongs to an assistant carries the assistant's name, and every query filters on
it: that name is the tenant boundary. JSON columns hold documents the database never queries
inside (brand settings, traces, citations), so one schema serves SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

__all__ = [
    "ApiKeyRow",
    "AssistantRow",
    "Base",
    "ConversationRow",
    "FeedbackRow",
    "HandoffMessageRow",
    "HandoffRow",
    "JobRow",
    "LeadRow",
    "ServerSecretRow",
    "TurnRow",
    "WebhookDeliveryRow",
    "new_id",
    "utcnow",
]


def utcnow() -> datetime:
    """The current time, timezone-aware (stored as UTC)."""
    return datetime.now(UTC)


def new_id() -> str:
    """A random 32-hex-digit identifier: unguessable, so it can be handed to browsers."""
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp on every database.

    PostgreSQL keeps the zone; SQLite keeps none and hands back naive values, which are UTC
    because only aware UTC values are written. Reading them back as aware keeps API responses
    valid RFC 3339 date-times whatever the database.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("store timezone-aware datetimes only")
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    """Declarative base of every table."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class AssistantRow(Base):
    """An assistant (tenant): its knowledge base has the same name; ``config`` is its settings."""

    __tablename__ = "assistants"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ConversationRow(Base):
    """A conversation with one assistant; ``visitor`` identifies the person where known."""

    __tablename__ = "conversations"
    # The conversations a report counts: started in its period, with visitor and resolution.
    __table_args__ = (
        Index(
            "ix_conversations_assistant_started_at",
            "assistant",
            "started_at",
            "visitor",
            "unresolved_turns",
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    assistant: Mapped[str] = mapped_column(String(64), index=True)
    visitor: Mapped[str | None] = mapped_column(String(128), default=None)
    title: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    """When its first turn was stored (``None``: no turn yet)."""
    unresolved_turns: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Turns of the conversation that leave it unresolved: declined, failed or handed off,
    rated 👎, or asked again. Kept as turns are stored, rated and analysed, so a report counts
    resolved conversations without reading their turns."""
    turns: Mapped[list[TurnRow]] = relationship(
        back_populates="conversation",
        order_by="TurnRow.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class TurnRow(Base):
    """One question and its answer, with what retrieval chose and what it cost.

    ``outcome`` is ``answered``, ``no_answer`` (a content gap: nothing relevant enough was
    found) or ``error``. ``trace`` holds every candidate with its dense, late-interaction and
    lexical scores and ranks, the chosen context and the time per stage.
    """

    __tablename__ = "turns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    assistant: Mapped[str] = mapped_column(String(64), index=True)
    position: Mapped[int] = mapped_column(Integer)
    question: Mapped[str] = mapped_column(Text)
    standalone_question: Mapped[str] = mapped_column(Text, default="")
    answer: Mapped[str] = mapped_column(Text, default="")
    sources: Mapped[list[Any]] = mapped_column(default=list)
    citations: Mapped[list[Any]] = mapped_column(default=list)
    trace: Mapped[dict[str, Any]] = mapped_column(default=dict)
    provider: Mapped[str] = mapped_column(String(64), default="")
    model: Mapped[str | None] = mapped_column(String(128), default=None)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float | None] = mapped_column(Float, default=None)
    timings_ms: Mapped[dict[str, Any]] = mapped_column(default=dict)
    outcome: Mapped[str] = mapped_column(String(16), default="answered", index=True)
    top_score: Mapped[float | None] = mapped_column(Float, default=None)
    error_code: Mapped[str | None] = mapped_column(String(64), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    conversation: Mapped[ConversationRow] = relationship(back_populates="turns")


class FeedbackRow(Base):
    """A visitor's thumbs up (+1) or down (-1) on a turn, with an optional comment."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    turn_id: Mapped[int] = mapped_column(ForeignKey("turns.id", ondelete="CASCADE"), index=True)
    assistant: Mapped[str] = mapped_column(String(64), index=True)
    rating: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ApiKeyRow(Base):
    """An assistant's key, stored as a hash; ``prefix`` is the part safe to show again.

    ``kind`` is ``secret`` (server to server) or ``public`` (the website widget, accepted only
    from the assistant's allowed origins).
    """

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    assistant: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(24))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class JobRow(Base):
    """A background ingestion job and what it has done so far.

    ``status`` goes ``queued`` → ``running`` → ``succeeded`` / ``failed`` (or ``cancelled``);
    ``report`` holds the per-document outcomes (added, updated, unchanged, removed, failed
    with the reason).
    """

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    assistant: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(Integer, default=None)
    report: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class ServerSecretRow(Base):
    """A secret the server generated once (e.g. the key that signs widget visitor tokens).

    Kept in the database so that every replica of the API signs and checks with the same one.
    """

    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class HandoffRow(Base):
    """A visitor's request to talk to a person, with the conversation so far.

    ``status`` goes ``open`` → ``answered`` (an agent replied) → ``closed``; ``transcript``
    is the conversation's turns when the request was made, so later edits cannot change what
    the agent was shown. ``channel`` says where it came from (``widget``, ``slack``, ``api``).
    """

    __tablename__ = "handoffs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    assistant: Mapped[str] = mapped_column(String(64), index=True)
    conversation_id: Mapped[str | None] = mapped_column(String(32), default=None)
    visitor: Mapped[str | None] = mapped_column(String(128), default=None)
    channel: Mapped[str] = mapped_column(String(16), default="widget")
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    message: Mapped[str] = mapped_column(Text, default="")
    transcript: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class HandoffMessageRow(Base):
    """A message in a handoff after the request: an agent's reply or the visitor's answer."""

    __tablename__ = "handoff_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    handoff_id: Mapped[str] = mapped_column(
        ForeignKey("handoffs.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    author: Mapped[str] = mapped_column(String(120), default="")
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LeadRow(Base):
    """Contact details a visitor left through the assistant's lead form.

    ``fields`` holds the validated values by field key; ``consent`` is the consent text the
    visitor agreed to, as it read at the time (empty when the form asks for none).
    """

    __tablename__ = "leads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    assistant: Mapped[str] = mapped_column(String(64), index=True)
    conversation_id: Mapped[str | None] = mapped_column(String(32), default=None)
    visitor: Mapped[str | None] = mapped_column(String(128), default=None)
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    consent: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class WebhookDeliveryRow(Base):
    """One event sent (or being sent) to an assistant's webhook.

    ``status`` goes ``pending`` → ``delivered`` / ``failed``; ``attempts`` counts requests
    made, ``last_status`` and ``last_error`` describe the latest one. ``subject`` is the id
    of what the event is about (a handoff, a lead).
    """

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    assistant: Mapped[str] = mapped_column(String(64), index=True)
    event: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(64), index=True)
    url: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
