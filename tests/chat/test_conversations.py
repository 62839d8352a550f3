"""Conversation memory in the application database, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from assistant.chat.conversations import ConversationStore, NewTurn
from assistant.chat.events import Citation, Source, Usage
from assistant.database import Database
from assistant.database.models import FeedbackRow
from assistant.errors import InvalidInputError, NotFoundError


@pytest.fixture
def store(database_url: str) -> Iterator[ConversationStore]:
    database = Database.open(database_url)
    yield ConversationStore(database)
    database.close()


def _turn(question: str, answer: str = "An answer [1].", outcome: str = "answered") -> NewTurn:
    source = Source(1, "c1", "Billing", "https://help.example/billing", ("Refunds",), "text", 0.7)
    return NewTurn(
        question=question,
        standalone_question=question.upper(),
        answer=answer,
        sources=(source,),
        citations=(Citation(1, "Billing", "https://help.example/billing", "text"),),
        trace={"candidates": [{"chunk_id": "c1", "dense_score": 0.5}], "context": ["c1"]},
        provider="extractive",
        model=None,
        usage=Usage(12, 5),
        cost_usd=None,
        timings_ms={"total": 12.5},
        outcome=outcome,  # type: ignore[arg-type]
        top_score=0.42,
    )


def test_turns_are_kept_in_order_with_their_trace(store: ConversationStore) -> None:
    conversation_id = store.start("docs", visitor="v-1")
    first = store.record("docs", conversation_id, _turn("How do refunds work?"))
    second = store.record("docs", conversation_id, _turn("and for monthly plans?"))
    assert second > first
    history = store.history("docs", conversation_id)
    assert [turn.question for turn in history] == ["How do refunds work?", "and for monthly plans?"]
    assert history[0].standalone_question == "HOW DO REFUNDS WORK?"
    conversation = store.get("docs", conversation_id)
    assert conversation.title == "How do refunds work?" and conversation.visitor == "v-1"
    # Aware on every database (SQLite stores none): valid RFC 3339 in API responses.
    assert conversation.created_at.utcoffset() is not None
    turn = conversation.turns[1]
    assert turn.position == 2 and turn.usage == Usage(12, 5)
    assert turn.sources[0].heading_path == ("Refunds",)
    assert turn.citations[0].url == "https://help.example/billing"
    assert turn.trace["context"] == ["c1"]
    summaries = store.list_conversations("docs")
    assert [(s.id, s.turns) for s in summaries] == [(conversation_id, 2)]


def test_history_is_limited_to_the_latest_turns_and_skips_errors(store: ConversationStore) -> None:
    conversation_id = store.start("docs")
    for index in range(5):
        store.record("docs", conversation_id, _turn(f"question {index}"))
    store.record("docs", conversation_id, _turn("broken", outcome="error"))
    history = store.history("docs", conversation_id, limit=2)
    assert [turn.question for turn in history] == ["question 3", "question 4"]


def test_one_assistant_cannot_reach_another_assistants_conversation(
    store: ConversationStore,
) -> None:
    conversation_id = store.start("alpha")
    turn_id = store.record("alpha", conversation_id, _turn("secret question"))
    for action in (
        lambda: store.history("beta", conversation_id),
        lambda: store.get("beta", conversation_id),
        lambda: store.record("beta", conversation_id, _turn("intrusion")),
        lambda: store.delete("beta", conversation_id),
        lambda: store.add_feedback("beta", turn_id, 1),
    ):
        with pytest.raises(NotFoundError):
            action()
    assert store.list_conversations("beta") == []
    assert len(store.get("alpha", conversation_id).turns) == 1


def test_deleting_a_conversation_removes_its_turns_and_feedback(store: ConversationStore) -> None:
    conversation_id = store.start("docs")
    turn_id = store.record("docs", conversation_id, _turn("q"))
    store.add_feedback("docs", turn_id, -1, "wrong plan")
    store.delete("docs", conversation_id)
    with pytest.raises(NotFoundError):
        store.get("docs", conversation_id)
    with pytest.raises(NotFoundError):
        store.add_feedback("docs", turn_id, 1)


def test_content_gaps_are_the_turns_without_an_answer(store: ConversationStore) -> None:
    conversation_id = store.start("docs")
    store.record("docs", conversation_id, _turn("answered one"))
    store.record("docs", conversation_id, _turn("what is the weather?", outcome="no_answer"))
    gaps = store.content_gaps("docs")
    assert [gap.question for gap in gaps] == ["what is the weather?"]
    assert gaps[0].top_score == pytest.approx(0.42)


def test_feedback_is_validated(store: ConversationStore) -> None:
    conversation_id = store.start("docs")
    turn_id = store.record("docs", conversation_id, _turn("q"))
    with pytest.raises(InvalidInputError):
        store.add_feedback("docs", turn_id, 5)
    with pytest.raises(InvalidInputError):
        store.add_feedback("docs", turn_id, 1, "x" * 2001)
    store.add_feedback("docs", turn_id, 1, "helpful")


def test_stored_questions_and_feedback_lose_terminal_control_characters(
    store: ConversationStore,
) -> None:
    hostile = "Refunds?\x1b]0;owned\x07\x1b[2J\x00 tab\tok\u202eevil\x9b31m\nline"
    conversation_id = store.start("docs")
    turn_id = store.record("docs", conversation_id, _turn(hostile))
    turn = store.get("docs", conversation_id).turns[0]
    clean = "Refunds?]0;owned[2J tab\tokevil31m\nline"
    assert turn.question == clean
    assert turn.standalone_question == clean.upper()
    assert store.get("docs", conversation_id).title == "Refunds?]0;owned[2J tab okevil31m line"
    assert store.history("docs", conversation_id)[0].question == clean
    store.add_feedback("docs", turn_id, -1, "bad\x1b[31m answer")
    with store._database.session() as session:
        assert session.scalars(select(FeedbackRow.comment)).all() == ["bad[31m answer"]
