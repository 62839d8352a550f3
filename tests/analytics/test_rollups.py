"""Stored hourly and daily totals agree with the turns they sum, after every kind of change."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from assistant.analytics import rollups
from assistant.analytics.aggregates import conversation_figures
from assistant.analytics.period import Period
from assistant.analytics.period_totals import period_totals
from assistant.analytics.rollups import HOUR
from assistant.chat.conversations import ConversationStore
from assistant.chat.events import Usage
from assistant.database.engine import Database
from assistant.database.models import ConversationRow, TurnRow
from assistant.database.rollup_models import AnalyticsHourRow, invalidate_assistant
from tests.analytics.conftest import record_turn

NOW = datetime(2026, 5, 20, 10, 17, tzinfo=UTC)
PERIOD = Period(NOW - timedelta(days=30), NOW)


@pytest.fixture
def database(database_url: str) -> Database:
    opened = Database.open(database_url)
    yield opened  # type: ignore[misc]
    opened.close()


def _spread(database: Database, store: ConversationStore) -> list[tuple[str, int]]:
    """Twelve conversations of two turns, spread over the period."""
    made = []
    for index in range(12):
        conversation = store.start("docs", visitor=f"v{index % 5}")
        first = record_turn(
            store, "docs", conversation, f"question {index}", usage=Usage(10, 2), cost_usd=0.01
        )
        second = record_turn(
            store,
            "docs",
            conversation,
            f"again {index}",
            outcome="no_answer" if index % 3 == 0 else "answered",
        )
        moment = NOW - timedelta(days=index * 2.7 + 0.1, minutes=index * 7)
        with database.session() as session:
            for turn_id, offset in ((first, 0), (second, 40)):
                session.execute(
                    update(TurnRow)
                    .where(TurnRow.id == turn_id)
                    .values(created_at=moment + timedelta(minutes=offset))
                )
            session.execute(
                update(ConversationRow)
                .where(ConversationRow.id == conversation)
                .values(started_at=moment)
            )
            invalidate_assistant(session, "docs")
        made.append((conversation, first))
    return made


def _summed(totals: dict[tuple[object, ...], list[object]]) -> dict[object, list[float]]:
    """Per key without its slice, the measures summed over the slices (slices of stored
    hours and days may differ by part of a day from the turns' own)."""
    sums: dict[object, list[float]] = {}
    for key, values in totals.items():
        current = sums.setdefault(key[1:], [0.0] * len(values))
        for index, value in enumerate(values):
            current[index] += float(value or 0)
    return {key: [round(value, 6) for value in values] for key, values in sums.items()}


def _same(database: Database) -> None:
    stored = period_totals(database, "docs", PERIOD, version=None, now=NOW)
    read = period_totals(database, "docs", PERIOD, version=None, now=NOW, stored=False)
    assert _summed(stored.totals) == _summed(read.totals)
    # Each turn lands within a day of its own slice.
    for slice_, *_ in stored.totals:
        assert 0 <= int(slice_) < 30


def test_stored_totals_match_the_turns_after_feedback_and_deletion(database: Database) -> None:
    store = ConversationStore(database)
    made = _spread(database, store)
    _same(database)
    with database.session() as session:
        built = session.scalar(select(func.count()).select_from(AnalyticsHourRow))
    assert built and built > 24 * 20  # hours and days were stored, not only read

    # Feedback on a turn of a stored hour rebuilds that hour.
    store.add_feedback("docs", made[3][1], -1)
    _same(database)
    stored = period_totals(database, "docs", PERIOD, version=None, now=NOW)
    assert sum(values[3] for values in stored.totals.values()) == 1  # one 👎

    # A deleted conversation leaves every total and the conversation counts.
    started, _, unresolved = conversation_figures(database, "docs", PERIOD)
    store.delete("docs", made[3][0])
    _same(database)
    after = period_totals(database, "docs", PERIOD, version=None, now=NOW)
    assert sum(values[0] for values in after.totals.values()) == 2 * len(made) - 2
    assert sum(values[3] for values in after.totals.values()) == 0
    assert conversation_figures(database, "docs", PERIOD)[0] == started - 1
    # Conversation 3 had a declined turn and a 👎: one unresolved conversation fewer.
    assert conversation_figures(database, "docs", PERIOD)[2] == unresolved - 1


def test_a_report_gives_way_to_another_that_built_the_same_hours_first(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second of two reports read the hours as missing before the first stored them:
    its insert collides, it rolls back, looks again and finds nothing left to build."""
    _spread(database, ConversationStore(database))
    _same(database)  # the first report built every hour and day
    real = rollups._missing
    looked: list[int] = []

    def stale_then_real(
        database_: Database, assistant: str, start: datetime, end: datetime, hours: int
    ) -> list[datetime]:
        looked.append(1)
        if len(looked) == 1:  # what the slower report saw before the other committed
            return [start + timedelta(hours=hours) * i for i in range((end - start) // HOUR)]
        return real(database_, assistant, start, end, hours)

    monkeypatch.setattr(rollups, "_missing", stale_then_real)
    first_hour = rollups.floor_hour(PERIOD.since) + HOUR
    rollups.build_missing(database, "docs", first_hour, rollups.sealed_until(NOW), None)
    assert len(looked) >= 2  # it looked again after giving way
    monkeypatch.setattr(rollups, "_missing", real)
    _same(database)


def test_reports_asked_at_once_all_answer(database: Database) -> None:
    """Several reports at once over hours nobody built yet: each answers, with the same sums."""
    _spread(database, ConversationStore(database))
    start = threading.Barrier(4)
    results: list[dict[object, list[float]]] = []
    errors: list[BaseException] = []

    def report() -> None:
        start.wait()
        try:
            totals = period_totals(database, "docs", PERIOD, version=None, now=NOW).totals
            results.append(_summed(totals))
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=report) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    read = _summed(
        period_totals(database, "docs", PERIOD, version=None, now=NOW, stored=False).totals
    )
    assert results == [read] * 4
