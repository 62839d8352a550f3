"""Sending an assistant's webhook events from the API, after the response has gone.

The delivery is recorded before the response (so it is visible at once as ``pending``) and
sent by a background task, so a slow or failing endpoint never delays the visitor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import BackgroundTasks, Request

from assistant.assistants import AssistantConfig
from assistant.core import Assistant
from assistant.settings import Settings
from assistant.webhooks import WebhookSender

__all__ = ["emit_event", "webhooks_of"]


def webhooks_of(request: Request) -> WebhookSender:
    """The application's ``WebhookSender`` (made on first use; tests may set their own)."""
    sender: WebhookSender | None = getattr(request.app.state, "webhooks", None)
    if sender is None:
        core: Assistant = request.app.state.core
        settings: Settings = request.app.state.settings
        sender = WebhookSender(core.database, settings.fetch_policy())
        request.app.state.webhooks = sender
    return sender


def emit_event(
    request: Request,
    background: BackgroundTasks,
    name: str,
    config: AssistantConfig,
    event: str,
    subject: str,
    data: Mapping[str, Any],
) -> None:
    """Record ``event`` for assistant ``name``'s webhook and send it in the background (blocking
    call: run it in a worker thread). Nothing happens when no webhook is configured."""
    sender = webhooks_of(request)
    recorded = sender.record(name, config.webhook, event, subject, data)
    if recorded is not None:
        delivery, body = recorded
        background.add_task(sender.send, delivery.id, config.webhook, body)
