"""Conversation memory: turns stored in the application database, per assistant.

Every method takes the assistant's name and filters on it, so a conversation id from one
assistant never reads, extends or deletes another assistant's conversation: it is reported as
not found, exactly like an id that does not exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from assistant.chat.events import Citation, Source, Usage
from assistant.chat.history import HistoryTurn
from assistant.chat.records import Conversation, ConversationSummary, Outcome, TurnRecord
from assistant.control_characters import strip_control_characters
from assistant.database.engine import Database
from assistant.database.models import ConversationRow, FeedbackRow, TurnRow, utcnow
from assistant.database.rollup_models import invalidate_hours, invalidate_turns
from assistant.database.unresolved import UNRESOLVED_OUTCOMES, recount_unresolved
from assistant.errors import InvalidInputError, NotFoundError

__all__ = [
    "Conversation",
    "ConversationStore",
    "ConversationSummary",
    "NewTurn",
    "Outcome",
    "TurnRecord",
]


@dataclass(frozen=True, slots=True)
class NewTurn:
    """A finished turn, as the orchestrator hands it over to be stored."""

    question: str
    standalone_question: str
    answer: str
    sources: tuple[Source, ...]
    citations: tuple[Citation, ...]
    trace: Mapping[str, object]
    provider: str
    model: str | None
    usage: Usage
    cost_usd: float | None
    timings_ms: Mapping[str, float]
    outcome: Outcome
    top_score: float | None = None
    error_code: str | None = None
    error_message: str | None = None


def _source(data: Mapping[str, Any]) -> Source:
    return Source(
        n=int(data["n"]),
        chunk_id=str(data["chunk_id"]),
        title=str(data["title"]),
        url=str(data["url"]),
        heading_path=tuple(data.get("heading_path") or ()),
        text=str(data["text"]),
        score=float(data["score"]),
        chunk_ids=tuple(data.get("chunk_ids") or ()),
    )


def _record(row: TurnRow) -> TurnRecord:
    return TurnRecord(
        id=row.id,
        conversation_id=row.conversation_id,
        position=row.position,
        question=row.question,
        standalone_question=row.standalone_question,
        answer=row.answer,
        sources=tuple(_source(s) for s in row.sources),
        citations=tuple(Citation(**c) for c in row.citations),
        provider=row.provider,
        model=row.model,
        usage=Usage(row.input_tokens, row.output_tokens),
        cost_usd=row.cost_usd,
        timings_ms=dict(row.timings_ms),
        outcome=row.outcome,  # type: ignore[arg-type]
        top_score=row.top_score,
        error_code=row.error_code,
        created_at=row.created_at,
        trace=dict(row.trace),
    )


class ConversationStore:
    """Conversations and their turns in the application database.

    >>> store = ConversationStore(database)  # doctest: +SKIP
    >>> conversation_id = store.start("docs")  # doctest: +SKIP
    >>> store.history("docs", conversation_id)  # doctest: +SKIP
    []
    """

    def __init__(self, database: Database) -> None:
        self._database = database

    def start(self, assistant: str, *, visitor: str | None = None) -> str:
        """Create an empty conversation and return its id."""
        with self._database.session() as session:
            row = ConversationRow(assistant=assistant, visitor=visitor)
            session.add(row)
            session.flush()
            return row.id

    def _owned(self, session: Session, assistant: str, conversation_id: str) -> ConversationRow:
        row = session.get(ConversationRow, conversation_id)
        if row is None or row.assistant != assistant:
            raise NotFoundError(f"no conversation {conversation_id!r} for assistant {assistant!r}")
        return row

    def history(
        self, assistant: str, conversation_id: str, *, limit: int = 20
    ) -> list[HistoryTurn]:
        """The last ``limit`` answered turns, oldest first, for condensing and prompting.

        Raises:
            NotFoundError: the conversation does not exist for this assistant.
        """
        with self._database.session() as session:
            self._owned(session, assistant, conversation_id)
            rows = session.execute(
                select(TurnRow.question, TurnRow.answer, TurnRow.standalone_question)
                .where(TurnRow.conversation_id == conversation_id, TurnRow.outcome != "error")
                .order_by(TurnRow.position.desc())
                .limit(limit)
            ).all()
        return [HistoryTurn(q, a, s) for q, a, s in reversed(rows)]

    def record(self, assistant: str, conversation_id: str, turn: NewTurn) -> int:
        """Append ``turn`` to the conversation and return the new turn's id.

        The question (and its standalone form) lose terminal control characters here, the one
        place turns are stored, so nothing read back later can drive an operator's terminal.

        Raises:
            NotFoundError: the conversation does not exist for this assistant.
        """
        question = strip_control_characters(turn.question)
        with self._database.session() as session:
            conversation = self._owned(session, assistant, conversation_id)
            position = session.scalar(
                select(func.coalesce(func.max(TurnRow.position), 0)).where(
                    TurnRow.conversation_id == conversation_id
                )
            )
            now = utcnow()
            row = TurnRow(
                created_at=now,
                conversation_id=conversation_id,
                assistant=assistant,
                position=int(position or 0) + 1,
                question=question,
                standalone_question=strip_control_characters(turn.standalone_question),
                answer=turn.answer,
                sources=[asdict(source) for source in turn.sources],
                citations=[asdict(citation) for citation in turn.citations],
                trace=dict(turn.trace),
                provider=turn.provider,
                model=turn.model,
                input_tokens=turn.usage.input_tokens,
                output_tokens=turn.usage.output_tokens,
                cost_usd=turn.cost_usd,
                timings_ms=dict(turn.timings_ms),
                outcome=turn.outcome,
                top_score=turn.top_score,
                error_code=turn.error_code,
                error_message=turn.error_message,
            )
            session.add(row)
            if turn.outcome in UNRESOLVED_OUTCOMES:
                conversation.unresolved_turns += 1
            if conversation.started_at is None:
                conversation.started_at = now
            if not conversation.title:
                conversation.title = " ".join(question.split())[:200]
            conversation.updated_at = now
            session.flush()
            return row.id

    def get(self, assistant: str, conversation_id: str) -> Conversation:
        """The conversation with all its turns.

        Raises:
            NotFoundError: the conversation does not exist for this assistant.
        """
        with self._database.session() as session:
            row = self._owned(session, assistant, conversation_id)
            return Conversation(
                id=row.id,
                assistant=row.assistant,
                title=row.title,
                visitor=row.visitor,
                created_at=row.created_at,
                updated_at=row.updated_at,
                turns=tuple(_record(turn) for turn in row.turns),
            )

    def list_conversations(
        self,
        assistant: str,
        *,
        limit: int = 50,
        offset: int = 0,
        visitor: str | None = None,
    ) -> list[ConversationSummary]:
        """Conversations of ``assistant``, most recently active first."""
        counts = (
            select(TurnRow.conversation_id, func.count(TurnRow.id).label("turns"))
            .group_by(TurnRow.conversation_id)
            .subquery()
        )
        query = (
            select(ConversationRow, func.coalesce(counts.c.turns, 0))
            .outerjoin(counts, counts.c.conversation_id == ConversationRow.id)
            .where(ConversationRow.assistant == assistant)
            .order_by(ConversationRow.updated_at.desc(), ConversationRow.id)
            .limit(limit)
            .offset(offset)
        )
        if visitor is not None:
            query = query.where(ConversationRow.visitor == visitor)
        with self._database.session() as session:
            return [
                ConversationSummary(
                    row.id,
                    row.assistant,
                    row.title,
                    row.visitor,
                    int(turns),
                    row.created_at,
                    row.updated_at,
                )
                for row, turns in session.execute(query).all()
            ]

    def delete(self, assistant: str, conversation_id: str) -> None:
        """Delete the conversation, its turns and their feedback.

        Raises:
            NotFoundError: the conversation does not exist for this assistant.
        """
        with self._database.session() as session:
            self._owned(session, assistant, conversation_id)
            turn_ids = select(TurnRow.id).where(TurnRow.conversation_id == conversation_id)
            # Its hours of the analytics totals are counted again without it.
            invalidate_turns(session, list(session.scalars(turn_ids).all()))
            # Explicit deletes rather than relying on ON DELETE CASCADE, which SQLite applies
            # only when foreign keys are switched on for the connection.
            session.execute(delete(FeedbackRow).where(FeedbackRow.turn_id.in_(turn_ids)))
            session.execute(delete(TurnRow).where(TurnRow.conversation_id == conversation_id))
            session.execute(delete(ConversationRow).where(ConversationRow.id == conversation_id))

    def content_gaps(self, assistant: str, *, limit: int = 100) -> list[TurnRecord]:
        """Turns that got no answer because nothing relevant enough was found, newest first."""
        with self._database.session() as session:
            rows = session.scalars(
                select(TurnRow)
                .where(TurnRow.assistant == assistant, TurnRow.outcome == "no_answer")
                .order_by(TurnRow.id.desc())
                .limit(limit)
            ).all()
            return [_record(row) for row in rows]

    def add_feedback(self, assistant: str, turn_id: int, rating: int, comment: str = "") -> None:
        """Record thumbs up (``1``) or down (``-1``) with an optional comment on a turn.

        Raises:
            InvalidInputError: ``rating`` is not 1 or -1, or the comment is over 2,000 characters.
            NotFoundError: the turn does not exist for this assistant.
        """
        if rating not in (1, -1):
            raise InvalidInputError("rating must be 1 (thumbs up) or -1 (thumbs down)")
        if len(comment) > 2000:
            raise InvalidInputError("a feedback comment holds at most 2,000 characters")
        with self._database.session() as session:
            turn = session.get(TurnRow, turn_id)
            if turn is None or turn.assistant != assistant:
                raise NotFoundError(f"no turn {turn_id} for assistant {assistant!r}")
            session.add(
                FeedbackRow(
                    turn_id=turn_id,
                    assistant=assistant,
                    rating=rating,
                    comment=strip_control_characters(comment),
                )
            )
            session.flush()
            # The turn's hour of the analytics totals, and its conversation's resolution.
            invalidate_hours(session, assistant, [turn.created_at])
            if rating < 0:
                recount_unresolved(session, [turn.conversation_id])
