"""Stored clusters, background analysis and retention, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import func, select, update

from assistant.analytics import InsightEncoders, build_report, period_from
from assistant.analytics.insights import pending_insights, refresh_insights
from assistant.analytics.period import Period
from assistant.analytics.report import AnalyticsOptions
from assistant.analytics.retention import apply_retention, apply_retention_everywhere
from assistant.analytics.stored_clusters import update_clusters
from assistant.assistants import AssistantRegistry
from assistant.chat.conversations import ConversationStore
from assistant.database.analytics_models import (
    QuestionClusteringRow,
    TurnInsightRow,
    TurnPageRow,
)
from assistant.database.engine import Database
from assistant.database.models import ConversationRow, FeedbackRow, TurnRow
from assistant.knowledge.encoder import TransformerEncoder
from tests.analytics.conftest import PASSWORDS, REFUNDS, record_turn

MODEL = "synthetic-model"


@pytest.fixture
def database(database_url: str) -> Database:
    opened = Database.open(database_url)
    yield opened  # type: ignore[misc]
    opened.close()


def _synthetic(database: Database, vectors: np.ndarray, start: int = 0) -> list[int]:
    """Turns with given question vectors written straight into their insights."""
    store = ConversationStore(database)
    ids = []
    for index in range(len(vectors)):
        conversation = store.start("docs")
        turn_id = record_turn(store, "docs", conversation, f"question {start + index}")
        ids.append(turn_id)
    with database.session() as session:
        created = dict(
            session.execute(select(TurnRow.id, TurnRow.created_at).where(TurnRow.id.in_(ids))).all()
        )
        session.add_all(
            TurnInsightRow(
                turn_id=turn_id,
                assistant="docs",
                question_hash="",
                model_id=MODEL,
                question_vector=vector.astype(np.float16).tobytes(),
                turn_created_at=created[turn_id],
            )
            for turn_id, vector in zip(ids, vectors, strict=True)
        )
    return ids


def _two_subjects(count: int, seed: int) -> np.ndarray:
    generator = np.random.default_rng(seed)
    centres = np.eye(8, dtype=np.float32)[:2]
    picks = generator.integers(0, 2, size=count)
    return centres[picks] + generator.normal(0, 0.05, size=(count, 8)).astype(np.float32)


def _clusters(database: Database) -> dict[int, tuple[int | None, int | None]]:
    with database.session() as session:
        return {
            row.turn_id: (row.cluster, row.clustering_version)
            for row in session.execute(
                select(
                    TurnInsightRow.turn_id,
                    TurnInsightRow.cluster,
                    TurnInsightRow.clustering_version,
                )
            ).all()
        }


def test_new_turns_join_the_nearest_stored_cluster_until_a_full_clustering_is_due(
    database: Database,
) -> None:
    first = _synthetic(database, _two_subjects(1100, seed=1))
    full = update_clusters(database, "docs", MODEL)
    assert full.full and full.turns == 1100 and full.clusters == 2 and full.version == 1
    before = _clusters(database)

    # 50 new turns: fewer than the recluster share, so they join the nearest centroid and
    # nothing already clustered moves.
    vectors = _two_subjects(50, seed=2)
    added = _synthetic(database, vectors, start=1100)
    joined = update_clusters(database, "docs", MODEL)
    assert not joined.full and joined.turns == 50 and joined.version == 1
    after = _clusters(database)
    assert all(after[turn_id] == before[turn_id] for turn_id in first)
    # Each new turn sits with the old turns of its subject.
    subject_of_cluster = {}
    for turn_id, vector in zip(first, _two_subjects(1100, seed=1), strict=True):
        subject_of_cluster[after[turn_id][0]] = int(np.argmax(vector[:2]))
    assert len(subject_of_cluster) == 2
    for turn_id, vector in zip(added, vectors, strict=True):
        assert subject_of_cluster[after[turn_id][0]] == int(np.argmax(vector[:2]))
    assert update_clusters(database, "docs", MODEL).turns == 0  # nothing new, nothing done

    # Past the share of new turns, everything is clustered again under a new version.
    _synthetic(database, _two_subjects(300, seed=3), start=1150)
    again = update_clusters(database, "docs", MODEL)
    assert again.full and again.version == 2 and again.turns == 1450
    assert {version for _, version in _clusters(database).values()} == {2}
    with database.session() as session:
        stored = session.get(QuestionClusteringRow, "docs")
        assert stored is not None and stored.clustered_turns == 1450
        assert stored.assigned_turns == 0 and len(stored.labels) == stored.clusters == 2
    # On demand, whatever changed.
    assert update_clusters(database, "docs", MODEL, full=True).version == 3


def _conversation(
    store: ConversationStore, question: str, source: object, rating: int | None = None
) -> tuple[str, int]:
    conversation = store.start("docs", visitor=f"v-{question}")
    turn_id = record_turn(
        store,
        "docs",
        conversation,
        question,
        answer="See the page. [1]",
        sources=[source],  # type: ignore[list-item]
    )
    if rating is not None:
        store.add_feedback("docs", turn_id, rating)
    return conversation, turn_id


def test_retention_removes_old_conversations_from_every_aggregate(
    database: Database, encoder: TransformerEncoder
) -> None:
    store = ConversationStore(database)
    old, old_turn = _conversation(store, "How do I get a refund?", REFUNDS, rating=-1)
    _conversation(store, "How do I reset my password?", PASSWORDS, rating=1)
    encoders = InsightEncoders(encoder, encoder)
    before = build_report(database, "docs", period_from("30d"), encoders=encoders)
    assert before.volume.turns == 2 and before.quality.thumbs_down == 1
    assert {use.url for use in before.source_usage} == {REFUNDS.url, PASSWORDS.url}

    # The refund conversation was last active 40 days ago, but its turn is still in the
    # report's period (the conversation's activity decides, not the turn).
    with database.session() as session:
        session.execute(
            update(ConversationRow)
            .where(ConversationRow.id == old)
            .values(updated_at=datetime.now(UTC) - timedelta(days=40))
        )
    assert apply_retention(database, "docs", 60) == 0
    AssistantRegistry(database).update("docs", {"retention_days": 30})
    assert apply_retention_everywhere(database) == {"docs": 1}

    with database.session() as session:
        for table, column in (
            (TurnRow, TurnRow.id),
            (TurnInsightRow, TurnInsightRow.turn_id),
            (TurnPageRow, TurnPageRow.turn_id),
            (FeedbackRow, FeedbackRow.turn_id),
        ):
            left = session.scalar(select(func.count()).select_from(table).where(column == old_turn))
            assert left == 0, table
    after = build_report(database, "docs", period_from("30d"), encoders=encoders)
    assert after.volume.turns == 1 and after.volume.conversations == 1
    assert after.quality.thumbs_down == 0 and after.quality.csat == 1.0
    assert [use.url for use in after.source_usage] == [PASSWORDS.url]
    assert sum(cluster.count for cluster in after.top_questions) == 1
    assert all(old_turn not in cluster.turn_ids for cluster in after.top_questions)


def test_a_large_backlog_is_left_to_the_background_and_counted(
    database: Database, encoder: TransformerEncoder
) -> None:
    store = ConversationStore(database)
    for question in ("How do I get a refund?", "Refund my annual plan", "Reset my password"):
        _conversation(store, question, REFUNDS)
    encoders = InsightEncoders(encoder, encoder)
    period = period_from("30d")
    options = AnalyticsOptions(inline_refresh=2)
    waiting = build_report(database, "docs", period, encoders=encoders, options=options)
    assert waiting.pending_turns == 3 and waiting.refreshed_turns == 0
    assert waiting.top_questions == () and waiting.volume.turns == 3  # volume needs no insight

    both = Period(period.previous().since, period.until)
    assert refresh_insights(database, "docs", both, encoders, limit=2) == 2
    assert pending_insights(database, "docs", both, encoder.model_id) == 1
    done = build_report(database, "docs", period, encoders=encoders, options=options)
    assert done.pending_turns == 0 and done.refreshed_turns == 1
    assert sum(cluster.count for cluster in done.top_questions) == 3
