"""``assistant slack``: the Slack bot by Socket Mode, registered on the main ``assistant`` app.

For workspaces where Slack cannot reach a public URL: the bot connects out with the app-level
token (``SLACK_APP_TOKEN``) and answers until stopped. With a public URL, ``assistant serve``
answers Slack's HTTP events at ``/slack/events`` instead.
"""

from __future__ import annotations

import asyncio
import logging

from assistant.cli.common import KbOption, app, errors, open_assistant, run

__all__ = ["slack"]


@app.command()
def slack(kb: KbOption = "") -> None:
    """Answer in Slack by Socket Mode (needs SLACK_BOT_TOKEN and SLACK_APP_TOKEN)."""
    from assistant.slack.transports import run_socket_mode

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    assistant = open_assistant()
    settings = assistant.settings
    if kb:
        settings = settings.model_copy(update={"slack_assistant": kb})
    errors.print(
        f"Answering in Slack by Socket Mode with assistant {settings.slack_assistant!r}; "
        "Ctrl+C stops.",
        highlight=False,
        markup=False,
    )
    try:
        run(lambda: asyncio.run(run_socket_mode(settings, assistant)))
    finally:
        assistant.close()
