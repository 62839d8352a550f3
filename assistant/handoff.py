"""Handing a conversation to a person: requests, agents' replies and their status.

A visitor who wants a person (the widget's "talk to a person", offered also when no answer was
found; the Slack bot makes the same request) opens a handoff. It keeps the conversation's
transcript as it was at that moment, so the agent reads what the visitor saw. Agents answer
through the API (or whatever the assistant's webhook feeds); their replies are messages the
visitor's widget polls for. Status goes ``open`` → ``answered`` on the first reply →
``closed``; an agent may set any status at any time (reopening included).

>>> store = HandoffStore(database)  # doctest: +SKIP
>>> handoff = store.create("docs", conversation_id=cid, visitor="w:abc", channel="widget")  # doctest: +SKIP
>>> store.reply("docs", handoff.id, "Hi, Sam here. Let me check.", author="Sam")  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from assistant.database.engine import Database
from assistant.database.models import (
    ConversationRow,
    HandoffMessageRow,
    HandoffRow,
    TurnRow,
    utcnow,
)
from assistant.engagement_config import HandoffConfig
from assistant.errors import NotFoundError

__all__ = [
    "HANDOFF_STATUSES",
    "Handoff",
    "HandoffConfig",
    "HandoffMessage",
    "HandoffStatus",
    "HandoffStore",
    "TranscriptEntry",
    "handoff_payload",
]

HandoffStatus = Literal["open", "answered", "closed"]
HANDOFF_STATUSES: tuple[HandoffStatus, ...] = ("open", "answered", "closed")

# The transcript is what an agent reads first; past this many turns the oldest are dropped.
_TRANSCRIPT_TURNS = 50


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    """One turn of the conversation before the request."""

    question: str
    answer: str
    outcome: str


@dataclass(frozen=True, slots=True)
class HandoffMessage:
    """A message after the request: ``role`` is ``agent`` or ``visitor``."""

    id: int
    role: str
    author: str
    text: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Handoff:
    """A request to talk to a person, with its transcript and the messages since."""

    id: str
    assistant: str
    conversation_id: str | None
    visitor: str | None
    channel: str
    status: HandoffStatus
    message: str
    transcript: tuple[TranscriptEntry, ...]
    messages: tuple[HandoffMessage, ...]
    created_at: datetime
    updated_at: datetime


def handoff_payload(handoff: Handoff) -> dict[str, Any]:
    """The ``data`` of a ``handoff.created`` webhook event (JSON-ready)."""
    data = asdict(handoff)
    data.pop("visitor")
    for key in ("created_at", "updated_at"):
        data[key] = getattr(handoff, key).isoformat()
    data["messages"] = [
        {**asdict(message), "created_at": message.created_at.isoformat()}
        for message in handoff.messages
    ]
    return data


def _message(row: HandoffMessageRow) -> HandoffMessage:
    return HandoffMessage(row.id, row.role, row.author, row.text, row.created_at)


class HandoffStore:
    """Handoffs in the application database; every call is scoped to one assistant."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def create(
        self,
        assistant: str,
        *,
        conversation_id: str | None = None,
        visitor: str | None = None,
        channel: str = "widget",
        message: str = "",
    ) -> Handoff:
        """Open a handoff for ``conversation_id`` (its turns become the transcript).

        Raises:
            NotFoundError: ``conversation_id`` is not a conversation of ``assistant``.
        """
        with self._database.session() as session:
            transcript: list[dict[str, str]] = []
            if conversation_id is not None:
                conversation = session.get(ConversationRow, conversation_id)
                if conversation is None or conversation.assistant != assistant:
                    raise NotFoundError(
                        f"no conversation {conversation_id!r} for assistant {assistant!r}"
                    )
                turns = session.scalars(
                    select(TurnRow)
                    .where(TurnRow.conversation_id == conversation_id)
                    .order_by(TurnRow.position.desc())
                    .limit(_TRANSCRIPT_TURNS)
                ).all()
                transcript = [
                    {"question": turn.question, "answer": turn.answer, "outcome": turn.outcome}
                    for turn in reversed(turns)
                ]
            now = utcnow()
            row = HandoffRow(
                assistant=assistant,
                conversation_id=conversation_id,
                visitor=visitor,
                channel=channel,
                status="open",
                message=message,
                transcript=transcript,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            return self._handoff(session, row)

    def get(self, assistant: str, handoff_id: str) -> Handoff:
        """One handoff with its messages.

        Raises:
            NotFoundError: no such handoff for ``assistant``.
        """
        with self._database.session() as session:
            return self._handoff(session, self._row(session, assistant, handoff_id))

    def list(
        self,
        assistant: str,
        *,
        status: HandoffStatus | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Handoff]:
        """``assistant``'s handoffs (of ``status`` when given), newest first."""
        query = select(HandoffRow).where(HandoffRow.assistant == assistant)
        if status is not None:
            query = query.where(HandoffRow.status == status)
        query = query.order_by(HandoffRow.created_at.desc()).limit(limit).offset(offset)
        with self._database.session() as session:
            return [self._handoff(session, row) for row in session.scalars(query).all()]

    def reply(self, assistant: str, handoff_id: str, text: str, *, author: str = "") -> Handoff:
        """Add an agent's reply; an ``open`` handoff becomes ``answered``.

        Raises:
            NotFoundError: no such handoff for ``assistant``.
        """
        return self._add(assistant, handoff_id, "agent", text, author)

    def add_visitor_message(self, assistant: str, handoff_id: str, text: str) -> Handoff:
        """Add a message from the visitor (status unchanged).

        Raises:
            NotFoundError: no such handoff for ``assistant``.
        """
        return self._add(assistant, handoff_id, "visitor", text, "")

    def set_status(self, assistant: str, handoff_id: str, status: HandoffStatus) -> Handoff:
        """Set the status (``open``, ``answered`` or ``closed``).

        Raises:
            NotFoundError: no such handoff for ``assistant``.
        """
        with self._database.session() as session:
            row = self._row(session, assistant, handoff_id)
            row.status = status
            row.updated_at = utcnow()
            return self._handoff(session, row)

    def _add(self, assistant: str, handoff_id: str, role: str, text: str, author: str) -> Handoff:
        with self._database.session() as session:
            row = self._row(session, assistant, handoff_id)
            now = utcnow()
            session.add(
                HandoffMessageRow(
                    handoff_id=row.id, role=role, author=author, text=text, created_at=now
                )
            )
            if role == "agent" and row.status == "open":
                row.status = "answered"
            row.updated_at = now
            session.flush()
            return self._handoff(session, row)

    @staticmethod
    def _row(session: Session, assistant: str, handoff_id: str) -> HandoffRow:
        row = session.get(HandoffRow, handoff_id)
        if row is None or row.assistant != assistant:
            raise NotFoundError(f"no handoff {handoff_id!r} for assistant {assistant!r}")
        return row

    @staticmethod
    def _handoff(session: Session, row: HandoffRow) -> Handoff:
        messages = session.scalars(
            select(HandoffMessageRow)
            .where(HandoffMessageRow.handoff_id == row.id)
            .order_by(HandoffMessageRow.id)
        ).all()
        return Handoff(
            id=row.id,
            assistant=row.assistant,
            conversation_id=row.conversation_id,
            visitor=row.visitor,
            channel=row.channel,
            status=row.status,  # type: ignore[arg-type]
            message=row.message,
            transcript=tuple(TranscriptEntry(**entry) for entry in row.transcript),
            messages=tuple(_message(message) for message in messages),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
