"""Tables of the Slack bot: which conversation a Slack thread is, and which events were seen.

A thread is keyed by workspace, channel and the ``ts`` of its root message; its row points at
the assistant's conversation, so follow-ups in the thread continue it. Seen events are kept for
an hour, long enough to cover Slack's retries (immediately, after about 1 and 5 minutes).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from assistant.database.models import Base, UTCDateTime, utcnow

__all__ = ["SlackEventRow", "SlackThreadRow"]


class SlackThreadRow(Base):
    """A Slack thread the assistant answers in, and the conversation it continues.

    ``handoff_by`` and ``handoff_at`` record who asked to talk to a person there, and when.
    """

    __tablename__ = "slack_threads"

    team: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    thread_ts: Mapped[str] = mapped_column(String(32), primary_key=True)
    assistant: Mapped[str] = mapped_column(String(64), index=True)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    handoff_by: Mapped[str | None] = mapped_column(String(32), default=None)
    handoff_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SlackEventRow(Base):
    """An event id already taken by a process, until ``expires_at``."""

    __tablename__ = "slack_events"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
