"""An assistant's conversations: list, read, export (a JSON download) and delete.

Every route takes the assistant's name and the core filters on it, so a conversation of
another assistant is answered exactly like one that does not exist (404), and a key of
another assistant is refused before that (403). Reading conversations needs the admin key or
the assistant's secret key; widget (public) keys cannot list or read them.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from assistant.api.chat_schemas import (
    ConversationExport,
    ConversationList,
    ConversationPublic,
    ConversationSummaryPublic,
)
from assistant.api.deps import CoreDep, ManageAccess
from assistant.api.problems import error_responses

__all__ = ["router"]

router = APIRouter(
    prefix="/api/assistants",
    tags=["conversations"],
    responses=error_responses(401, 403, 404, 422, 429, 503),
)

# Past this an offset would skip every conversation any assistant could hold; the bound keeps
# the value within what the database's integers take.
_MAX_OFFSET = 1_000_000


@router.get("/{name}/conversations", response_model=ConversationList)
async def list_conversations(
    name: str,
    caller: ManageAccess,
    core: CoreDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=_MAX_OFFSET)] = 0,
) -> ConversationList:
    """Conversations with the assistant, most recently active first."""
    summaries = await run_in_threadpool(core.conversations, kb=name, limit=limit, offset=offset)
    return ConversationList(
        conversations=[ConversationSummaryPublic.model_validate(s) for s in summaries]
    )


@router.get(
    "/{name}/conversations/{conversation_id}",
    response_model=ConversationPublic,
)
async def get_conversation(
    name: str, conversation_id: str, caller: ManageAccess, core: CoreDep
) -> ConversationPublic:
    """One conversation with every turn: question, answer, citations, sources, usage."""
    conversation = await run_in_threadpool(core.conversation, conversation_id, kb=name)
    return ConversationPublic.model_validate(conversation)


@router.get(
    "/{name}/conversations/{conversation_id}/export",
    response_model=ConversationExport,
)
async def export_conversation(
    name: str, conversation_id: str, caller: ManageAccess, core: CoreDep
) -> Response:
    """The conversation as a JSON file, each turn with its retrieval trace."""
    conversation = await run_in_threadpool(core.conversation, conversation_id, kb=name)
    values = {field.name: getattr(conversation, field.name) for field in fields(conversation)}
    document = ConversationExport.model_validate({**values, "exported_at": datetime.now(UTC)})
    return Response(
        document.model_dump_json(indent=2),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="conversation-{conversation.id}.json"'
        },
    )


@router.delete("/{name}/conversations/{conversation_id}", status_code=204)
async def delete_conversation(
    name: str, conversation_id: str, caller: ManageAccess, core: CoreDep
) -> Response:
    """Delete the conversation, its turns and their feedback."""
    await run_in_threadpool(core.delete_conversation, conversation_id, kb=name)
    return Response(status_code=204)
