"""What the bot does with each kind of Slack event, button and command.

Every handler is reached after Bolt has verified the request and acknowledged it, so work here
may take as long as an answer takes. Messages from bots (this one included) and message
edits or joins (any ``subtype``) are never answered; a message that mentions the bot is left to
the ``app_mention`` event, so it is answered once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from assistant.core import Assistant
from assistant.errors import AssistantError
from assistant.handoff import HandoffStore
from assistant.slack.config import ChannelRules, SlackConfig
from assistant.slack.responder import EphemeralSink, RespondSink, SlackAnswerer, ThreadSink
from assistant.slack.store import ThreadKey, ThreadStore, request_handoff

__all__ = ["HELP_TEXT", "SlackHandlers", "looks_like_question"]

logger = logging.getLogger(__name__)

HELP_TEXT = (
    "*Ask me about our documentation.*\n"
    "• Mention me in a channel (`@assistant how do refunds work?`) and I answer in the thread; "
    "reply in that thread to ask a follow-up.\n"
    "• Send me a direct message.\n"
    "• `/assistant your question` answers privately; `/assistant help` shows this."
)
NOT_ALLOWED = "Sorry, you're not on the list of people I answer here."

_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
_QUESTION_START = re.compile(
    r"^(how|what|why|when|where|who|which|can|could|is|are|does|do|did|should|will|would|"
    r"may|has|have|any(one|body)?)\b",
    re.IGNORECASE,
)

Respond = Callable[..., Awaitable[Any]]


def looks_like_question(text: str) -> bool:
    """Whether a channel message reads as a question (ends with ``?`` or opens like one).

    >>> looks_like_question("How do I reset my password"), looks_like_question("lunch at 1")
    (True, False)
    """
    text = _MENTION.sub("", text).strip()
    return len(text.split()) >= 3 and (
        text.endswith("?") or _QUESTION_START.match(text) is not None
    )


def _question(text: str) -> str:
    return _MENTION.sub("", text).strip()


class SlackHandlers:
    """The bot's behaviour over one ``Assistant``, independent of the transport."""

    def __init__(
        self,
        core: Assistant,
        config: SlackConfig,
        *,
        update_interval: float = 1.0,
    ) -> None:
        self.core = core
        self.config = config
        self.threads = ThreadStore(core.database)
        self.handoffs = HandoffStore(core.database)
        self.answerer = SlackAnswerer(core, self.threads, handoff=bool(config.handoff))
        self.update_interval = update_interval

    async def mention(self, event: Mapping[str, Any], team: str, client: AsyncWebClient) -> None:
        """``@assistant question`` in a channel: answer in the message's thread."""
        if event.get("bot_id") or event.get("subtype"):
            return
        await self._answer(event, team, client, self.config.for_channel(str(event["channel"])))

    async def message(
        self, event: Mapping[str, Any], team: str, bot_user: str | None, client: AsyncWebClient
    ) -> None:
        """A message: a DM, a follow-up in one of the bot's threads, or a channel question."""
        user = event.get("user")
        if event.get("bot_id") or event.get("subtype") or not user:
            return
        channel = str(event["channel"])
        text = str(event.get("text") or "")
        rules = self.config.for_channel(channel)
        if event.get("channel_type") == "im":
            await self._answer(event, team, client, rules.model_copy(update={"ephemeral": False}))
            return
        if bot_user and f"<@{bot_user}" in text:
            return  # the app_mention event answers it
        thread_ts = event.get("thread_ts")
        if thread_ts and thread_ts != event.get("ts"):
            key = ThreadKey(team, channel, str(thread_ts))
            if await asyncio.to_thread(self.threads.conversation, key) is not None:
                await self._answer(event, team, client, rules)
            return
        if rules.answer == "questions" and looks_like_question(text):
            await self._answer(event, team, client, rules)

    async def _answer(
        self,
        event: Mapping[str, Any],
        team: str,
        client: AsyncWebClient,
        rules: ChannelRules,
    ) -> None:
        channel = str(event["channel"])
        user = str(event.get("user") or "")
        ts = str(event["ts"])
        thread_ts = str(event.get("thread_ts") or ts)
        if not rules.allows(user):
            await self._quietly(
                client.chat_postEphemeral(
                    channel=channel, user=user, thread_ts=thread_ts, text=NOT_ALLOWED
                )
            )
            return
        question = _question(str(event.get("text") or ""))
        # The instant sign that the question was seen, while the answer is being prepared.
        await self._quietly(client.reactions_add(channel=channel, timestamp=ts, name="eyes"))
        if not question:
            await self._quietly(
                client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=HELP_TEXT)
            )
            return
        sink = (
            EphemeralSink(client, channel, user, thread_ts)
            if rules.ephemeral
            else ThreadSink(client, channel, thread_ts, update_interval=self.update_interval)
        )
        await self.answerer.answer(
            question,
            sink,
            assistant=rules.assistant,
            user=user,
            thread=ThreadKey(team, channel, thread_ts),
        )

    async def feedback(self, body: Mapping[str, Any], rating: int, client: AsyncWebClient) -> None:
        """👍/👎 on an answer: stored on its turn, thanked privately."""
        target = _button_target(body)
        if target is None:
            return
        assistant, turn_id = target
        user = str(body["user"]["id"])
        try:
            await asyncio.to_thread(self.core.feedback, turn_id, rating, kb=assistant)
        except AssistantError as exc:
            logger.warning("Slack feedback not stored: %s", exc)
            return
        channel, thread_ts = _message_place(body)
        if channel:
            await self._quietly(
                client.chat_postEphemeral(
                    channel=channel, user=user, thread_ts=thread_ts, text="Thanks for the feedback."
                )
            )

    async def handoff(self, body: Mapping[str, Any], team: str, client: AsyncWebClient) -> None:
        """ "Talk to a person": tag the configured people in the thread and record the request."""
        channel, thread_ts = _message_place(body)
        if not channel or not thread_ts:
            return
        user = str(body["user"]["id"])
        await asyncio.to_thread(
            request_handoff,
            self.threads,
            self.handoffs,
            ThreadKey(team, channel, thread_ts),
            user,
        )
        people = self.config.handoff_mentions() or "Someone from the team"
        await self._quietly(
            client.chat_postMessage(
                channel=channel,
                thread_ts=thread_ts,
                text=f"{people}: <@{user}> would like to talk to a person about this question.",
            )
        )

    async def command(self, command: Mapping[str, Any], respond: Respond) -> None:
        """``/assistant question`` answered privately; ``/assistant help`` (or nothing): help."""
        text = str(command.get("text") or "").strip()
        if not text or text.lower() == "help":
            await respond(text=HELP_TEXT, response_type="ephemeral")
            return
        rules = self.config.for_channel(str(command.get("channel_id") or ""))
        user = str(command.get("user_id") or "")
        if not rules.allows(user):
            await respond(text=NOT_ALLOWED, response_type="ephemeral")
            return
        await self.answerer.answer(text, RespondSink(respond), assistant=rules.assistant, user=user)

    @staticmethod
    async def _quietly(call: Awaitable[Any]) -> None:
        """A courtesy call (reaction, notice) whose failure must not stop the answer."""
        try:
            await call
        except SlackApiError as exc:
            logger.info("Slack refused a call: %s", exc.response.get("error"))


def _button_target(body: Mapping[str, Any]) -> tuple[str, int] | None:
    try:
        value = json.loads(body["actions"][0]["value"])
        return str(value["assistant"]), int(value["turn"])
    except (KeyError, IndexError, TypeError, ValueError):
        logger.warning("a Slack button carried an unreadable value")
        return None


def _message_place(body: Mapping[str, Any]) -> tuple[str, str]:
    """The channel and thread of the message a button was clicked on."""
    channel = str((body.get("channel") or {}).get("id") or "")
    message = body.get("message") or {}
    thread_ts = str(message.get("thread_ts") or message.get("ts") or "")
    return channel, thread_ts
