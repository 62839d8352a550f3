"""Fixtures of the Slack tests: the real app (``create_app`` under uvicorn) answering Slack's
signed requests, with Slack's Web API played by ``FakeSlackServer``.

- ``bed``: one per module: the help centre ingested into ``harbor`` (answers in every channel
  by default), ``llm`` (a refunds note, answered through a local server speaking OpenAI's
  protocol) for channel ``CDOWN``, channel ``CASK`` answering every question, ``CPRIV``
  answering privately; "Talk to a person" tags group ``S0HELP`` and user ``U0LEAD``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from slack_sdk.signature import SignatureVerifier

from assistant.api import create_app
from assistant.core import Assistant
from assistant.knowledge.encoder import TransformerEncoder
from assistant.settings import Settings
from tests.api.conftest import HELP_CENTRE_PAGES, serving
from tests.chat.fake_openai import FakeOpenAIServer
from tests.slack.fake_slack import BOT_USER, TEAM, FakeSlackServer

SIGNING_SECRET = "test-signing-secret-0123456789abcdef"


@dataclass
class SlackBed:
    """The running app, Slack's stand-in and the ``Assistant`` behind the app."""

    url: str
    slack: FakeSlackServer
    openai: FakeOpenAIServer
    core: Assistant

    def post(
        self,
        body: str,
        content_type: str,
        *,
        timestamp: int | None = None,
        secret: str = SIGNING_SECRET,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST ``body`` to ``/slack/events`` signed as Slack signs it (with ``secret``)."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
        sent = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature,
            **(headers or {}),
        }
        return httpx.post(f"{self.url}/slack/events", content=body, headers=sent, timeout=30)

    def event(
        self, event: dict[str, Any], *, event_id: str | None = None, **options: Any
    ) -> httpx.Response:
        """Deliver an Events API callback wrapping ``event``."""
        envelope = {
            "token": "legacy",
            "team_id": TEAM,
            "api_app_id": "A0APP",
            "event": event,
            "type": "event_callback",
            "event_id": event_id or new_event_id(),
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
        }
        return self.post(json.dumps(envelope), "application/json", **options)

    def action(self, payload: dict[str, Any]) -> httpx.Response:
        """Deliver an interactive payload (a button click)."""
        from urllib.parse import urlencode

        body = urlencode({"payload": json.dumps(payload)})
        return self.post(body, "application/x-www-form-urlencoded")

    def command(self, text: str, *, channel: str, user: str = "U0ASKER") -> httpx.Response:
        """Deliver ``/assistant text`` typed by ``user`` in ``channel``."""
        from urllib.parse import urlencode

        body = urlencode(
            {
                "token": "legacy",
                "team_id": TEAM,
                "channel_id": channel,
                "user_id": user,
                "command": "/assistant",
                "text": text,
                "response_url": f"{self.slack.origin}/response/{uuid.uuid4().hex[:8]}",
                "trigger_id": "trigger",
                "api_app_id": "A0APP",
            }
        )
        return self.post(body, "application/x-www-form-urlencoded")


def new_event_id() -> str:
    """A fresh Events API id."""
    return "Ev" + uuid.uuid4().hex[:12].upper()


def new_ts() -> str:
    """A fresh message timestamp."""
    return f"{time.time():.6f}"


@pytest.fixture(scope="module")
def bed(
    tmp_path_factory: pytest.TempPathFactory, encoder: TransformerEncoder
) -> Iterator[SlackBed]:
    """The module's app, fake Slack and fake OpenAI."""
    with ExitStack() as stack:
        slack = stack.enter_context(FakeSlackServer())
        openai = stack.enter_context(FakeOpenAIServer())
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            data_dir=tmp_path_factory.mktemp("slack") / "data",
            slack_api_url=slack.url,
            slack_assistant="harbor",
            slack_handoff=("S0HELP", "U0LEAD"),
            slack_channels=json.dumps(
                {
                    "CDOWN": {"assistant": "llm"},
                    "CASK": {"answer": "questions"},
                    "CPRIV": {"ephemeral": True},
                }
            ),
            **{
                "SLACK_BOT_TOKEN": SecretStr("xoxb-test-token"),
                "SLACK_SIGNING_SECRET": SecretStr(SIGNING_SECRET),
                "OPENAI_API_KEY": SecretStr("sk-test"),
                "OPENAI_BASE_URL": openai.url,
            },
        )
        core = Assistant(settings, encoder=encoder)
        stack.callback(core.close)
        report = core.ingest([str(path) for path in HELP_CENTRE_PAGES], kb="harbor")
        assert not report.failures, report.failures
        notes = tmp_path_factory.mktemp("notes") / "refunds.md"
        notes.write_text(
            "# Refunds\n\nAnnual plans are refunded in full within 14 days of payment.\n",
            encoding="utf-8",
        )
        core.ingest([str(notes)], kb="llm")
        core.configure("llm", answering={"provider": "openai", "model": "gpt-drop"})
        url = stack.enter_context(serving(create_app(settings, core=core)))
        yield SlackBed(url, slack, openai, core)


__all__ = ["SIGNING_SECRET", "SlackBed", "new_event_id", "new_ts"]
