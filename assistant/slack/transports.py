"""How Slack reaches the bot: HTTP events on the API server, or a Socket Mode connection.

``mount_slack`` adds ``POST /slack/events`` (events, buttons and the slash command share it)
to the FastAPI app when ``SLACK_BOT_TOKEN`` and ``SLACK_SIGNING_SECRET`` are set.
``run_socket_mode`` connects out with ``SLACK_APP_TOKEN`` instead, for workspaces without a
public URL (``assistant slack``).
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response

from assistant.core import Assistant
from assistant.errors import ConfigError
from assistant.settings import Settings
from assistant.slack.app import create_bolt_app

__all__ = ["SLACK_EVENTS_PATH", "mount_slack", "run_socket_mode", "slack_http_enabled"]

SLACK_EVENTS_PATH = "/slack/events"


def slack_http_enabled(settings: Settings) -> bool:
    """Whether the settings hold what HTTP events need (bot token and signing secret)."""
    return settings.slack_bot_token is not None and settings.slack_signing_secret is not None


def mount_slack(app: FastAPI, settings: Settings, *, update_interval: float = 1.0) -> None:
    """Answer Slack's requests at ``/slack/events`` with the ``Assistant`` of ``app.state``."""
    from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler

    bolt = create_bolt_app(settings, core=lambda: app.state.core, update_interval=update_interval)
    handler = AsyncSlackRequestHandler(bolt)

    async def slack_events(request: Request) -> Response:
        """Slack's events, interactive buttons and slash commands (signed by Slack)."""
        return await handler.handle(request)

    app.add_api_route(SLACK_EVENTS_PATH, slack_events, methods=["POST"], include_in_schema=False)
    app.state.slack = bolt


async def run_socket_mode(settings: Settings, core: Assistant) -> None:
    """Connect to Slack by Socket Mode and answer until cancelled.

    Raises:
        ConfigError: ``SLACK_APP_TOKEN`` or ``SLACK_BOT_TOKEN`` is not set.
    """
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    if settings.slack_app_token is None:
        raise ConfigError(
            "set SLACK_APP_TOKEN (xapp-…, an app-level token with connections:write, from your "
            "Slack app's Basic Information) to connect by Socket Mode"
        )
    bolt = create_bolt_app(settings, core=core, socket_mode=True)
    handler = AsyncSocketModeHandler(bolt, settings.slack_app_token.get_secret_value())
    try:
        await handler.start_async()  # type: ignore[no-untyped-call]
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]
