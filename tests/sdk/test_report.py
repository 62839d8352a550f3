"""``Client.report`` and ``AsyncClient.report`` give the report ``Assistant.report`` gives for
the same stored conversations, read from the analytics route of a real server."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from assistant.analytics.types import AnalyticsReport, ConversationQuality
from assistant.client import ApiInvalidInputError, AsyncClient, Client
from tests.sdk.conftest import Remote

QUESTIONS = (
    "How do I reset my password?",
    "How can I reset my password?",
    "Can I pay yearly?",
    "Do you ship to the moon? Write to jane.doe@example.com",
)


@pytest.fixture(scope="module")
def asked(remote: Remote) -> Remote:
    """``harbor`` with a few conversations stored, and their insights computed."""
    with Client(remote.url, remote.secret_key, backoff=0.01) as bot:
        answer = bot.chat(QUESTIONS[0], kb="harbor")
        bot.chat(QUESTIONS[1], kb="harbor", conversation_id=answer.conversation_id)
        assert answer.turn_id is not None
        bot.feedback(answer.turn_id, -1, kb="harbor")
        for question in QUESTIONS[2:]:
            bot.chat(question, kb="harbor")
    # The first report computes the insights; the ones compared below read them.
    remote.server.core.report("harbor")
    return remote


def _rounded(quality: ConversationQuality) -> ConversationQuality:
    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 4)

    return dataclasses.replace(
        quality,
        answer_rate=rounded(quality.answer_rate),
        resolution_rate=rounded(quality.resolution_rate),
        csat=rounded(quality.csat),
        groundedness=rounded(quality.groundedness),
    )


def _as_sent(report: AnalyticsReport) -> AnalyticsReport:
    """``report`` as the route sends it: rates and shares to four decimals, no turn ids."""
    return dataclasses.replace(
        report,
        top_questions=tuple(
            dataclasses.replace(
                cluster,
                share=round(cluster.share, 4),
                answer_rate=round(cluster.answer_rate, 4),
                turn_ids=(),
            )
            for cluster in report.top_questions
        ),
        quality=_rounded(report.quality),
        previous_quality=_rounded(report.previous_quality),
    )


def _same_report(remote_report: AnalyticsReport, local: AnalyticsReport) -> None:
    assert isinstance(remote_report, AnalyticsReport)
    # Computed moments apart: the periods end at slightly different times.
    assert abs(remote_report.period.until - local.period.until) < timedelta(minutes=1)
    assert remote_report.period.length == local.period.length == timedelta(days=30)
    assert remote_report.previous_period.until == remote_report.period.since
    periods = {"period": local.period, "previous_period": local.previous_period}
    assert dataclasses.replace(remote_report, **periods) == _as_sent(local)


def test_the_client_reads_the_in_process_report(asked: Remote) -> None:
    with Client(asked.url, asked.secret_key, backoff=0.01) as bot:
        remote_report = bot.report("harbor")
    local = asked.server.core.report("harbor")
    assert local.volume.turns >= len(QUESTIONS) and local.top_questions
    assert local.volume.by_model and local.quality.turns >= len(QUESTIONS)
    _same_report(remote_report, local)


def test_the_async_client_reads_the_in_process_report(asked: Remote) -> None:
    async def read() -> AnalyticsReport:
        async with AsyncClient(asked.url, asked.admin_key, backoff=0.01) as bot:
            return await bot.report("harbor", since="7d")

    remote_report = asyncio.run(read())
    local = asked.server.core.report("harbor", since="7d")
    assert remote_report.period.length == timedelta(days=7)
    periods = {"period": local.period, "previous_period": local.previous_period}
    assert dataclasses.replace(remote_report, **periods) == _as_sent(local)


def test_mask_is_sent(asked: Remote) -> None:
    def questions(report: AnalyticsReport) -> str:
        return " ".join(q for use in report.source_usage for q in use.questions) + " ".join(
            q for cluster in report.top_questions for q in cluster.questions
        )

    with Client(asked.url, asked.admin_key, backoff=0.01) as bot:
        masked = questions(bot.report("harbor"))
        shown = questions(bot.report("harbor", mask=False))
    assert "jane.doe@example.com" in shown
    assert "jane.doe@example.com" not in masked


def test_an_unreadable_since_is_invalid_input(asked: Remote) -> None:
    with (
        Client(asked.url, asked.admin_key, backoff=0.01) as bot,
        pytest.raises(ApiInvalidInputError),
    ):
        bot.report("harbor", since="yesterday-ish")
