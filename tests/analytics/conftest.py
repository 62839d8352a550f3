"""Turns written through the real conversation store, for the analytics tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update

from assistant.chat.conversations import ConversationStore, NewTurn, Outcome
from assistant.chat.events import Citation, Source, Usage
from assistant.database.engine import Database
from assistant.database.models import ConversationRow, TurnRow
from assistant.database.rollup_models import invalidate_assistant

# The API tests' server fixtures, for the analytics routes.
from tests.api.conftest import admin_key, api_server  # noqa: F401

REFUNDS = Source(
    n=1,
    chunk_id="refunds-1",
    title="Refunds",
    url="https://help.example.com/refunds",
    heading_path=("Refunds",),
    text="Annual plans are refunded in full within 14 days of payment. Monthly plans can be "
    "cancelled at any time; the cancellation takes effect at the end of the billing period.",
    score=0.8,
)
PASSWORDS = Source(
    n=1,
    chunk_id="passwords-1",
    title="Passwords",
    url="https://help.example.com/passwords",
    heading_path=("Passwords",),
    text="To reset your password, open Settings, choose Security and click Reset password. "
    "A reset link is sent to your email address and stays valid for one hour.",
    score=0.8,
)


def trace_for(*candidates: tuple[str, float]) -> dict[str, object]:
    """A retrieval trace holding ``candidates`` as (url, late-interaction score)."""
    return {
        "candidates": [
            {"chunk_id": f"c{i}", "url": url, "late_interaction_score": score, "rank": i + 1}
            for i, (url, score) in enumerate(candidates)
        ],
        "timings_ms": {},
    }


def record_turn(
    store: ConversationStore,
    assistant: str,
    conversation_id: str,
    question: str,
    *,
    answer: str = "",
    sources: Sequence[Source] = (),
    outcome: Outcome = "answered",
    top_score: float | None = 0.8,
    trace: dict[str, object] | None = None,
    provider: str = "extractive",
    model: str | None = None,
    usage: Usage | None = None,
    cost_usd: float | None = None,
    timings_ms: dict[str, float] | None = None,
) -> int:
    """Store one turn; citations are the sources' numbers."""
    return store.record(
        assistant,
        conversation_id,
        NewTurn(
            question=question,
            standalone_question=question,
            answer=answer,
            sources=tuple(sources),
            citations=tuple(Citation(s.n, s.title, s.url, s.text[:40]) for s in sources),
            trace=trace or trace_for(*((s.url, top_score or 0.0) for s in sources)),
            provider=provider,
            model=model,
            usage=usage or Usage(),
            cost_usd=cost_usd,
            timings_ms=timings_ms or {"search": 10.0, "answer": 20.0},
            outcome=outcome,
            top_score=top_score,
        ),
    )


def backdate(database: Database, turn_ids: Sequence[int], moment: datetime) -> None:
    """Move turns into the past (the previous period of a report), with their conversations'
    start; the analytics totals are built again."""
    with database.session() as session:
        session.execute(update(TurnRow).where(TurnRow.id.in_(turn_ids)).values(created_at=moment))
        conversations = select(TurnRow.conversation_id).where(TurnRow.id.in_(turn_ids))
        session.execute(
            update(ConversationRow)
            .where(ConversationRow.id.in_(conversations))
            .values(started_at=moment)
        )
        for assistant in session.scalars(
            select(TurnRow.assistant).where(TurnRow.id.in_(turn_ids)).distinct()
        ).all():
            invalidate_assistant(session, assistant)
