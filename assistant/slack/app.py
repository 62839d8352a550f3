"""The Bolt app: Slack's requests verified, acknowledged, deduplicated and handed on.

``create_bolt_app`` builds an ``AsyncApp`` over an ``Assistant`` (given, or looked up at
request time, as the HTTP API builds its own in its lifespan). Bolt checks the HMAC-SHA256
signature and refuses timestamps older than five minutes (401), acknowledges events at once
and runs the handlers after the response, so Slack gets its answer within its 3 seconds.
Events are claimed by ``event_id`` before anything else, so a retry (``X-Slack-Retry-Num``)
or a second delivery is acknowledged and dropped. The Web API client retries Slack's 429s
after their ``Retry-After``.

>>> bolt = create_bolt_app(Settings(), core=Assistant.from_settings())  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt import BoltResponse
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    async_default_handlers,
)
from slack_sdk.web.async_client import AsyncWebClient

from assistant.core import Assistant
from assistant.errors import ConfigError
from assistant.settings import Settings
from assistant.slack.config import SlackConfig
from assistant.slack.handlers import SlackHandlers
from assistant.slack.store import DatabaseEventClaims, EventClaims, RedisEventClaims

__all__ = ["create_bolt_app", "slack_web_client"]

logger = logging.getLogger(__name__)

CoreLookup = Callable[[], Assistant]


def slack_web_client(token: str, base_url: str) -> AsyncWebClient:
    """Slack's Web API client at ``base_url``, retrying connection errors and 429s."""
    handlers = [*async_default_handlers(), AsyncRateLimitErrorRetryHandler(max_retry_count=3)]
    return AsyncWebClient(token=token, base_url=base_url, retry_handlers=handlers)


class _Lazy:
    """The handlers and event claims, built on first use from the ``Assistant`` of the time."""

    def __init__(
        self, core: CoreLookup, config: SlackConfig, redis_url: str | None, update_interval: float
    ) -> None:
        self._core = core
        self._config = config
        self._redis_url = redis_url
        self._update_interval = update_interval
        self._handlers: SlackHandlers | None = None
        self._claims: EventClaims | None = None

    @property
    def handlers(self) -> SlackHandlers:
        if self._handlers is None:
            self._handlers = SlackHandlers(
                self._core(), self._config, update_interval=self._update_interval
            )
        return self._handlers

    @property
    def claims(self) -> EventClaims:
        if self._claims is None:
            self._claims = (
                RedisEventClaims(self._redis_url)
                if self._redis_url
                else DatabaseEventClaims(self._core().database)
            )
        return self._claims


def create_bolt_app(
    settings: Settings,
    *,
    core: Assistant | CoreLookup,
    socket_mode: bool = False,
    update_interval: float = 1.0,
) -> AsyncApp:
    """The Slack app over ``core`` (an ``Assistant``, or a function returning the current one).

    ``settings`` is the ``Settings``: the bot token, the signing secret (HTTP events; not
    needed for ``socket_mode``), the Web API URL and the ``ASSISTANT_SLACK_*`` rules.

    Raises:
        ConfigError: the bot token or (for HTTP events) the signing secret is not set, or the
            channel settings cannot be read.
    """
    if settings.slack_bot_token is None:
        raise ConfigError("set SLACK_BOT_TOKEN (xoxb-…, from your Slack app's OAuth page)")
    if not socket_mode and settings.slack_signing_secret is None:
        raise ConfigError("set SLACK_SIGNING_SECRET (from your Slack app's Basic Information)")
    config = SlackConfig.from_settings(settings)
    lookup: CoreLookup = core if callable(core) else (lambda: core)
    redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
    parts = _Lazy(lookup, config, redis_url, update_interval)
    client = slack_web_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url)
    bolt = AsyncApp(
        client=client,
        signing_secret=(
            settings.slack_signing_secret.get_secret_value()
            if settings.slack_signing_secret is not None
            else None
        ),
        request_verification_enabled=not socket_mode,
        process_before_response=False,
        logger=logging.getLogger("assistant.slack.bolt"),
    )
    _register(bolt, parts)
    return bolt


def _register(bolt: AsyncApp, parts: _Lazy) -> None:
    @bolt.middleware
    async def answer_each_event_once(
        body: dict[str, Any], next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        event_id = body.get("event_id")
        if isinstance(event_id, str) and not await parts.claims.claim(event_id):
            logger.info("Slack event %s already taken; acknowledged again", event_id)
            return BoltResponse(status=200, body="")
        await next()
        return None

    @bolt.event("app_mention")
    async def on_mention(
        event: dict[str, Any], context: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await parts.handlers.mention(event, str(context.get("team_id") or ""), client)

    @bolt.event("message")
    async def on_message(
        event: dict[str, Any], context: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await parts.handlers.message(
            event, str(context.get("team_id") or ""), context.get("bot_user_id"), client
        )

    @bolt.action("assistant_feedback_up")
    async def on_thumbs_up(
        ack: Callable[[], Awaitable[None]], body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        await parts.handlers.feedback(body, 1, client)

    @bolt.action("assistant_feedback_down")
    async def on_thumbs_down(
        ack: Callable[[], Awaitable[None]], body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        await parts.handlers.feedback(body, -1, client)

    @bolt.action("assistant_handoff")
    async def on_handoff(
        ack: Callable[[], Awaitable[None]],
        body: dict[str, Any],
        context: dict[str, Any],
        client: AsyncWebClient,
    ) -> None:
        await ack()
        await parts.handlers.handoff(body, str(context.get("team_id") or ""), client)

    @bolt.command("/assistant")
    async def on_command(
        ack: Callable[..., Awaitable[None]],
        command: dict[str, Any],
        respond: Callable[..., Awaitable[Any]],
    ) -> None:
        text = str(command.get("text") or "").strip()
        await ack() if not text or text.lower() == "help" else await ack(text="Looking into it…")
        await parts.handlers.command(command, respond)
