"""Cluster names and answer grades from a language model (the fake provider), and the
c-TF-IDF names kept when it fails."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from assistant.analytics import build_report, period_from
from assistant.analytics.model_review import review_with_model
from assistant.analytics.stored_clusters import update_clusters
from assistant.chat.conversations import ConversationStore
from assistant.database.analytics_models import QuestionClusteringRow, TurnInsightRow
from assistant.database.engine import Database
from assistant.database.models import TurnRow
from assistant.errors import ProviderUnavailableError
from assistant.testing import FakeProvider, FakeReply
from tests.analytics.conftest import REFUNDS, record_turn

MODEL = "synthetic-model"
QUESTIONS = {0: "How do I get a refund for my plan?", 1: "How do I reset my password?"}


@pytest.fixture
def database(database_url: str) -> Database:
    opened = Database.open(database_url)
    yield opened  # type: ignore[misc]
    opened.close()


def _clustered(database: Database) -> list[str]:
    """Twelve answered turns of two subjects, clustered; their c-TF-IDF labels."""
    store = ConversationStore(database)
    generator = np.random.default_rng(0)
    rows = []
    for index in range(12):
        subject = index % 2
        turn_id = record_turn(
            store,
            "docs",
            store.start("docs"),
            QUESTIONS[subject],
            answer="Annual plans are refunded in full within 14 days. [1]",
            sources=[REFUNDS],
        )
        vector = np.eye(8)[subject] + generator.normal(0, 0.05, 8)
        rows.append((turn_id, vector))
    with database.session() as session:
        for turn_id, vector in rows:
            turn = session.get(TurnRow, turn_id)
            assert turn is not None
            session.add(
                TurnInsightRow(
                    turn_id=turn_id,
                    assistant="docs",
                    question_hash="",
                    model_id=MODEL,
                    question_vector=vector.astype(np.float16).tobytes(),
                    turn_created_at=turn.created_at,
                )
            )
    update_clusters(database, "docs", MODEL, full=True)
    with database.session() as session:
        stored = session.get(QuestionClusteringRow, "docs")
        assert stored is not None and stored.clusters == 2 and stored.labels_model == ""
        return list(stored.labels)


def test_a_model_names_the_clusters_and_grades_a_sample(database: Database) -> None:
    offline = _clustered(database)
    provider = FakeProvider(
        [
            FakeReply(deltas=("Refunds for ", "plans")),
            FakeReply(deltas=("Password resets",)),
            FakeReply(deltas=("4",)),
        ]
    )
    review = review_with_model(database, "docs", provider, period_from("30d"), grades=5)
    assert review.named == 2 and review.graded == 5
    assert "refund" in provider.requests[0].messages[0].content.lower()

    report = build_report(database, "docs", period_from("30d"), encoders=None)
    assert {cluster.label for cluster in report.top_questions} == {
        "Refunds for plans",
        "Password resets",
    }
    assert set(offline).isdisjoint(cluster.label for cluster in report.top_questions)
    assert report.labels_model == "fake/fake-model"
    assert report.quality.model_graded == 5 and report.quality.model_grade == 0.75

    # Named once per clustering: a second review only grades what is left.
    again = review_with_model(database, "docs", provider, period_from("30d"), grades=50)
    assert again.named == 0 and again.graded == 7
    # A new clustering brings back the offline names until the model names it again.
    update_clusters(database, "docs", MODEL, full=True)
    assert build_report(database, "docs", period_from("30d"), encoders=None).labels_model == ""


@pytest.mark.parametrize(
    "reply",
    [
        FakeReply(deltas=(), error=ProviderUnavailableError("fake provider down")),
        FakeReply(deltas=("Refunds\nand also\nmany other things",)),
    ],
    ids=["failure", "unusable"],
)
def test_a_failing_provider_leaves_the_offline_names(database: Database, reply: FakeReply) -> None:
    offline = _clustered(database)
    review = review_with_model(
        database, "docs", FakeProvider([reply]), period_from("30d"), grades=3
    )
    assert review.named == 0 and review.graded == 0
    with database.session() as session:
        labels = session.scalars(select(QuestionClusteringRow.labels)).one()
        grades = session.scalars(select(TurnInsightRow.model_grade)).all()
    assert labels == offline and set(grades) == {None}
    assert (
        build_report(database, "docs", period_from("30d"), encoders=None).quality.model_grade
        is None
    )
