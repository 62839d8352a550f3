"""Handoffs to a person over HTTP.

Visitors (the widget; ``ChatAccess``):

- ``POST /api/assistants/{name}/widget/handoffs``: ask for a person about the visitor's own
  conversation; the assistant's webhook gets ``handoff.created`` with the transcript.
- ``GET /api/assistants/{name}/widget/handoffs/{id}``: its status and the agents' replies
  (the widget polls this); a public key reads only its own visitor's handoffs (else 404).

Owners (admin or the assistant's secret key; ``ManageAccess``):

- ``GET /api/assistants/{name}/handoffs[?status=open]``, ``GET .../handoffs/{id}`` (with
  the transcript and the webhook deliveries);
- ``POST .../handoffs/{id}/replies``: an agent's reply, shown in the widget;
- ``PATCH .../handoffs/{id}``: set the status (``open``, ``answered``, ``closed``);
- ``GET /api/assistants/{name}/webhooks/deliveries``: every webhook delivery and its outcome.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Request
from starlette.concurrency import run_in_threadpool

from assistant.api.deps import Caller, ChatAccess, CoreDep, ManageAccess
from assistant.api.engagement_schemas import (
    DeliveryPublic,
    HandoffCreate,
    HandoffList,
    HandoffPublic,
    HandoffReply,
    HandoffUpdate,
    HandoffVisitorPublic,
    delivery_public,
    handoff_public,
    handoff_visitor_public,
)
from assistant.api.problems import error_responses
from assistant.api.routes.assistants import require_assistant
from assistant.api.visitors import check_conversation
from assistant.api.webhook_events import emit_event, webhooks_of
from assistant.core import Assistant
from assistant.errors import NotFoundError, PermissionDeniedError
from assistant.handoff import Handoff, HandoffStatus, HandoffStore, handoff_payload

__all__ = ["router"]

router = APIRouter(
    prefix="/api/assistants",
    tags=["handoffs"],
    responses=error_responses(401, 403, 404, 422, 429, 503),
)


def _store(core: Assistant) -> HandoffStore:
    return HandoffStore(core.database)


def _visible(handoff: Handoff, caller: Caller) -> Handoff:
    # A public key's visitor sees only their own; to anyone else it does not exist.
    if caller.kind == "public" and handoff.visitor != caller.visitor:
        raise NotFoundError(f"no handoff {handoff.id!r} for assistant {handoff.assistant!r}")
    return handoff


@router.post(
    "/{name}/widget/handoffs",
    status_code=201,
    response_model=HandoffVisitorPublic,
    responses=error_responses(400, 413),
)
async def create_handoff(
    request: Request,
    background: BackgroundTasks,
    name: str,
    body: HandoffCreate,
    caller: ChatAccess,
    core: CoreDep,
) -> HandoffVisitorPublic:
    """Ask for a person; the transcript so far goes to the assistant's webhook."""
    await run_in_threadpool(require_assistant, core, name)
    config = await run_in_threadpool(core.config, name)
    if not config.handoff.enabled:
        raise PermissionDeniedError(
            f"assistant {name!r} does not hand conversations to people; "
            "switch it on with handoff.enabled"
        )
    if body.conversation_id is not None:
        await run_in_threadpool(check_conversation, core, name, body.conversation_id, caller)
    handoff = await run_in_threadpool(
        lambda: _store(core).create(
            name,
            conversation_id=body.conversation_id,
            visitor=caller.visitor,
            channel="widget",
            message=body.message,
        )
    )
    await run_in_threadpool(
        emit_event,
        request,
        background,
        name,
        config,
        "handoff.created",
        handoff.id,
        handoff_payload(handoff),
    )
    return handoff_visitor_public(handoff)


@router.get("/{name}/widget/handoffs/{handoff_id}", response_model=HandoffVisitorPublic)
async def read_own_handoff(
    name: str, handoff_id: str, caller: ChatAccess, core: CoreDep
) -> HandoffVisitorPublic:
    """The handoff's status and the replies so far (the widget polls this)."""
    handoff = await run_in_threadpool(_store(core).get, name, handoff_id)
    return handoff_visitor_public(_visible(handoff, caller))


@router.get("/{name}/handoffs", response_model=HandoffList)
async def list_handoffs(
    name: str,
    caller: ManageAccess,
    core: CoreDep,
    status: HandoffStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> HandoffList:
    """The assistant's handoffs, newest first, optionally of one status."""
    handoffs = await run_in_threadpool(
        lambda: _store(core).list(name, status=status, limit=limit, offset=offset)
    )
    return HandoffList(handoffs=[handoff_public(handoff) for handoff in handoffs])


@router.get("/{name}/handoffs/{handoff_id}", response_model=HandoffPublic)
async def read_handoff(
    request: Request, name: str, handoff_id: str, caller: ManageAccess, core: CoreDep
) -> HandoffPublic:
    """One handoff with its transcript, messages and webhook deliveries."""
    handoff = await run_in_threadpool(_store(core).get, name, handoff_id)
    deliveries = await run_in_threadpool(
        lambda: webhooks_of(request).deliveries(name, subject=handoff_id)
    )
    return handoff_public(handoff, deliveries)


@router.post(
    "/{name}/handoffs/{handoff_id}/replies",
    status_code=201,
    response_model=HandoffPublic,
    responses=error_responses(400, 413),
)
async def reply_to_handoff(
    name: str, handoff_id: str, body: HandoffReply, caller: ManageAccess, core: CoreDep
) -> HandoffPublic:
    """An agent's reply: the visitor's widget shows it; an open handoff becomes answered."""
    handoff = await run_in_threadpool(
        lambda: _store(core).reply(name, handoff_id, body.text, author=body.author)
    )
    return handoff_public(handoff)


@router.patch(
    "/{name}/handoffs/{handoff_id}",
    response_model=HandoffPublic,
    responses=error_responses(400, 413),
)
async def update_handoff(
    name: str, handoff_id: str, body: HandoffUpdate, caller: ManageAccess, core: CoreDep
) -> HandoffPublic:
    """Set the handoff's status."""
    handoff = await run_in_threadpool(_store(core).set_status, name, handoff_id, body.status)
    return handoff_public(handoff)


@router.get("/{name}/webhooks/deliveries", response_model=list[DeliveryPublic])
async def list_deliveries(
    request: Request,
    name: str,
    caller: ManageAccess,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DeliveryPublic]:
    """The assistant's webhook deliveries, newest first, with their attempts and errors."""
    deliveries = await run_in_threadpool(lambda: webhooks_of(request).deliveries(name, limit=limit))
    return [delivery_public(delivery) for delivery in deliveries]
