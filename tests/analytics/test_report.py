"""The report over turns stored through the real conversation store, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from assistant.analytics import (
    AnalyticsOptions,
    InsightEncoders,
    Page,
    build_report,
    gaps_csv,
    page_questions,
    period_from,
)
from assistant.analytics.records import load_turns
from assistant.chat.conversations import ConversationStore
from assistant.chat.events import Usage
from assistant.database.analytics_models import TurnInsightRow
from assistant.database.engine import Database
from assistant.knowledge.encoder import TransformerEncoder
from tests.analytics.conftest import PASSWORDS, REFUNDS, backdate, record_turn, trace_for

REFUND_QUESTIONS = [
    "How do I get a refund for my annual plan?",
    "Can I get my money back on a yearly subscription?",
    "refund annual plan please, my email is jo@example.com",
]
PASSWORD_QUESTIONS = [
    "How do I reset my password?",
    "I forgot my password, how can I reset it?",
]
GAP_QUESTIONS = [
    "Do you have an office in Berlin?",
    "Where is your Berlin office located?",
]


@pytest.fixture
def database(database_url: str) -> Database:
    opened = Database.open(database_url)
    yield opened  # type: ignore[misc]
    opened.close()


def _populate(database: Database) -> dict[str, list[int]]:
    store = ConversationStore(database)
    ids: dict[str, list[int]] = {"refund": [], "password": [], "gap": [], "old": []}
    for question in REFUND_QUESTIONS:
        conversation = store.start("docs", visitor=f"v-{question[:5]}")
        ids["refund"].append(
            record_turn(
                store,
                "docs",
                conversation,
                question,
                answer="Annual plans are refunded in full within 14 days of payment. [1]",
                sources=[REFUNDS],
                provider="openai",
                model="gpt-4o-mini",
                usage=Usage(100, 20),
                cost_usd=0.001,
            )
        )
    conversation = store.start("docs", visitor="v-password")
    for question in PASSWORD_QUESTIONS:  # asked twice in one conversation: a re-ask
        ids["password"].append(
            record_turn(
                store,
                "docs",
                conversation,
                question,
                answer="Open Settings, choose Security and click Reset password. [1]",
                sources=[PASSWORDS],
            )
        )
    for question in GAP_QUESTIONS:
        conversation = store.start("docs")
        ids["gap"].append(
            record_turn(
                store,
                "docs",
                conversation,
                question,
                outcome="no_answer",
                top_score=0.3,
                trace=trace_for((REFUNDS.url, 0.31), (PASSWORDS.url, 0.25)),
            )
        )
    store.add_feedback("docs", ids["refund"][0], 1)
    store.add_feedback("docs", ids["password"][0], -1)
    # A refund question of the previous period, for the trend.
    conversation = store.start("docs")
    ids["old"].append(
        record_turn(
            store,
            "docs",
            conversation,
            "How do I get a refund for my annual subscription?",
            sources=[REFUNDS],
        )
    )
    backdate(database, ids["old"], datetime.now(UTC) - timedelta(days=40))
    # Another assistant's turn must never show up.
    record_turn(store, "other", store.start("other"), "How do I get a refund?", sources=[REFUNDS])
    return ids


def test_the_report_groups_questions_finds_gaps_and_measures_quality(
    database: Database, encoder: TransformerEncoder
) -> None:
    ids = _populate(database)
    encoders = InsightEncoders(encoder, encoder)
    documents = [
        Page(REFUNDS.url, "Refunds"),
        Page(PASSWORDS.url, "Passwords"),
        Page("https://help.example.com/pricing", "Pricing"),
    ]
    report = build_report(
        database, "docs", period_from("30d"), encoders=encoders, documents=documents
    )
    assert report.refreshed_turns == 8

    clusters = {frozenset(c.turn_ids): c for c in report.top_questions}
    refund = clusters[frozenset(ids["refund"])]
    assert refund.count == 3 and refund.previous_count == 1
    assert refund.thumbs_up == 1 and refund.answer_rate == 1.0
    assert "refund" in refund.label
    assert frozenset(ids["password"]) in clusters
    assert frozenset(ids["gap"]) in clusters
    # Masked by default: the email never appears, in examples or labels.
    shown = [q for c in report.top_questions for q in c.questions] + [
        c.label for c in report.top_questions
    ]
    assert not any("jo@example.com" in text for text in shown)
    assert any("[email]" in text for text in shown)

    gaps = {frozenset(g.questions): g for g in report.content_gaps}
    berlin = next(g for g in report.content_gaps if "berlin" in g.label)
    assert berlin.count == 2 and berlin.reasons == {"no_answer": 2}
    assert berlin.nearest_sources[0].url == REFUNDS.url
    assert berlin.nearest_sources[0].title == "Refunds"
    assert "berlin" in berlin.suggestion.lower()
    assert "2 questions like" in berlin.suggestion
    password_gap = next(g for g in report.content_gaps if "password" in g.label)
    assert password_gap.reasons == {"thumbs_down": 1, "reasked": 1}
    assert password_gap.count == 1 and "1 question like" in password_gap.suggestion
    assert len(gaps) == 2

    usage = {s.url: s for s in report.source_usage}
    assert usage[REFUNDS.url].cited == 3 and usage[REFUNDS.url].in_context == 3
    assert usage[PASSWORDS.url].cited_in_thumbs_down == 1
    assert [p.url for p in report.unused_pages] == ["https://help.example.com/pricing"]
    turns = load_turns(database, "docs", report.period)
    assert [q for q, _ in page_questions(turns, PASSWORDS.url)] == PASSWORD_QUESTIONS

    quality = report.quality
    assert quality.answer_rate == pytest.approx(5 / 7)
    # Resolved: the three refund conversations; not the re-asked one nor the two declined.
    assert quality.resolution_rate == pytest.approx(3 / 6)
    assert quality.csat == pytest.approx(0.5)
    assert quality.reasked == 1
    assert quality.groundedness == pytest.approx(1.0)  # every answer quotes its source
    assert report.previous_quality.turns == 1

    volume = report.volume
    assert (volume.turns, volume.conversations, volume.visitors) == (7, 6, 4)
    assert volume.input_tokens == 300 and volume.cost_usd == pytest.approx(0.003)
    openai = next(m for m in volume.by_model if m.provider == "openai")
    assert (openai.model, openai.turns) == ("gpt-4o-mini", 3)
    search = next(s for s in volume.latency_ms if s.stage == "search")
    assert search.p50 == 10.0 and search.count == 7
    assert sum(volume.daily_turns) == 7 and report.previous_volume.turns == 1

    csv_text = gaps_csv(report.content_gaps)
    assert csv_text.splitlines()[0].startswith("label,count,previous_count")
    assert len(csv_text.strip().splitlines()) == 3

    # Insights are stored once: the second report computes nothing.
    again = build_report(database, "docs", period_from("30d"), encoders=encoders)
    assert again.refreshed_turns == 0
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(TurnInsightRow)) == 8

    unmasked = build_report(
        database,
        "docs",
        period_from("30d"),
        encoders=encoders,
        options=AnalyticsOptions(mask=False),
    )
    assert any("jo@example.com" in q for c in unmasked.top_questions for q in c.questions)


def test_a_report_re_reads_its_lists_when_the_questions_were_re_clustered_meanwhile(
    database: Database, encoder: TransformerEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import assistant.analytics.report as report_module
    from assistant.analytics.stored_clusters import update_clusters

    _populate(database)
    encoders = InsightEncoders(encoder, encoder)
    build_report(database, "docs", period_from("30d"), encoders=encoders)  # insights, clusters
    calls: list[int] = []
    read_top = report_module.top_questions

    def re_clustered_by_another_report(*args: object, **kwargs: object) -> object:
        if not calls:
            # Another report's refresh clusters anew while this one reads its lists: the
            # turns now carry the new clustering's cluster ids.
            update_clusters(database, "docs", encoder.model_id, full=True)
        calls.append(1)
        return read_top(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(report_module, "top_questions", re_clustered_by_another_report)
    report = build_report(database, "docs", period_from("30d"), encoders=encoders)

    assert len(calls) == 2, "the lists were read again under the new clustering"
    assert report.top_questions
    assert all(cluster.questions for cluster in report.top_questions)
    assert all(gap.questions for gap in report.content_gaps)
