"""Slack settings: channel rules, handoff mentions, questions, event claims."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from assistant.database import Database
from assistant.errors import ConfigError
from assistant.settings import Settings
from assistant.slack.config import SlackConfig
from assistant.slack.handlers import looks_like_question
from assistant.slack.store import DatabaseEventClaims, RedisEventClaims


def test_slack_settings_are_read_under_slacks_own_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-secret-value")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "signing-secret-value")
    monkeypatch.setenv("ASSISTANT_SLACK_HANDOFF", "S0HELP, U0LEAD")
    monkeypatch.setenv(
        "ASSISTANT_SLACK_CHANNELS", '{"C1": {"assistant": "docs", "ephemeral": true}}'
    )
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == "xoxb-secret-value"
    assert "xoxb-secret-value" not in repr(settings) and "signing-secret" not in repr(settings)
    config = SlackConfig.from_settings(settings)
    assert config.handoff_mentions() == "<!subteam^S0HELP> <@U0LEAD>"
    rules = config.for_channel("C1")
    assert (rules.assistant, rules.ephemeral, rules.answer) == ("docs", True, "mentions")
    assert config.for_channel("C2").assistant == "default"


def test_channel_settings_that_cannot_be_read_say_how_to_fix() -> None:
    settings = Settings(_env_file=None, slack_channels='{"C1": {"answer": "always"}}')  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="ASSISTANT_SLACK_CHANNELS"):
        SlackConfig.from_settings(settings)


def test_allowed_users_limit_who_is_answered() -> None:
    config = SlackConfig(allowed_users=("U1",))
    assert config.for_channel("C").allows("U1") and not config.for_channel("C").allows("U2")
    assert SlackConfig().for_channel("C").allows("U2")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("How do I reset my password", True),
        ("our plan renews in May?", True),
        ("<@U0BOT> can you export invoices", True),
        ("lunch at noon", False),
        ("why?", False),
    ],
)
def test_questions_are_recognised(text: str, expected: bool) -> None:
    assert looks_like_question(text) is expected


def test_database_claims_take_an_event_once_until_it_expires(tmp_path: Path) -> None:
    database = Database.open(f"sqlite:///{tmp_path / 'app.sqlite3'}")
    try:
        claims = DatabaseEventClaims(database)
        assert asyncio.run(claims.claim("Ev1")) is True
        assert asyncio.run(claims.claim("Ev1")) is False
        expired = DatabaseEventClaims(database, ttl=timedelta(seconds=-1))
        assert asyncio.run(expired.claim("Ev2")) is True
        assert asyncio.run(expired.claim("Ev2")) is True
    finally:
        database.close()


@pytest.mark.integration
def test_redis_claims_take_an_event_once(redis_url: str) -> None:
    claims = RedisEventClaims(redis_url, prefix=f"test:{uuid.uuid4().hex}:")

    async def claim_twice() -> list[bool]:
        try:
            return [await claims.claim("Ev1"), await claims.claim("Ev1"), await claims.claim("Ev2")]
        finally:
            await claims.aclose()

    assert asyncio.run(claim_twice()) == [True, False, True]
