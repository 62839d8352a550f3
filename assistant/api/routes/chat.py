"""Chat with an assistant (streamed or whole), feedback on turns, content gaps and search.

``POST /api/assistants/{name}/chat`` streams ``text/event-stream`` by default: one SSE event
per stream event (``sources``, ``text``…, ``citations``, ``done`` or ``error``), each named by
its type with the event as JSON. An unknown assistant or conversation, or an invalid message,
is answered with an ordinary problem response, because the first event is pulled before the
response is chosen; a provider failing after that ends the stream with an ``error`` event.
With ``"stream": false`` the same stream is drained into one ``AnswerPublic``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from assistant.api.chat_schemas import (
    AnswerPublic,
    ChatCreate,
    FeedbackCreate,
    GapList,
    GapPublic,
    SearchRequest,
    SearchResultPublic,
)
from assistant.api.deps import ChatAccess, CoreDep, ManageAccess
from assistant.api.problems import error_responses
from assistant.api.prometheus import observed
from assistant.api.public_sources import public_base_url, visible_events
from assistant.api.sse import encode_stream, first_event, sse_response
from assistant.api.visitors import (
    check_conversation,
    public_events,
    tokens_of,
    without_turn_ids,
)
from assistant.chat.answerer import drain
from assistant.chat.events import StreamEvent
from assistant.errors import NotFoundError

__all__ = ["router"]

router = APIRouter(
    prefix="/api/assistants",
    tags=["chat"],
    responses=error_responses(401, 403, 404, 422, 429, 503),
)

_EVENT_STREAM_EXAMPLE = (
    'event: sources\ndata: {"sources":[...],"question":"...","conversation_id":"...",'
    '"type":"sources"}\n\n'
    'event: text\ndata: {"text":"You can ","type":"text"}\n\n'
    'event: citations\ndata: {"citations":[{"n":1,"title":"...","url":"...","quote":"..."}],'
    '"type":"citations"}\n\n'
    'event: done\ndata: {"usage":{"input_tokens":0,"output_tokens":0},"provider":"extractive",'
    '"timings_ms":{...},"conversation_id":"...","turn_id":1,"type":"done"}\n\n'
)

# The routes that read a JSON body: unreadable or refused (400), too large (413).
_JSON_BODY = error_responses(400, 413)
# Turn ids are the database's 64-bit integers; a larger one is invalid, not a lookup.
_MAX_TURN_ID = 2**63 - 1


@router.post(
    "/{name}/chat",
    response_model=AnswerPublic,
    responses={
        200: {
            "description": "The answer: an event stream (``stream: true``) or one JSON object.",
            "content": {"text/event-stream": {"example": _EVENT_STREAM_EXAMPLE}},
        },
        # A provider that fails before the first event (502).
        **error_responses(400, 413, 502),
    },
)
async def chat(
    request: Request, name: str, body: ChatCreate, caller: ChatAccess, core: CoreDep
) -> AnswerPublic | Response:
    """Answer ``message`` as the next turn of ``conversation_id`` (a new conversation if none).

    The widget's public key may chat only from the assistant's allowed origins.
    """
    if body.conversation_id is not None:
        await run_in_threadpool(check_conversation, core, name, body.conversation_id, caller)
    stream = core.stream(
        body.message,
        kb=name,
        conversation_id=body.conversation_id,
        # A widget's visitor id comes with its key's checks; a server names its own users.
        visitor=caller.visitor or body.visitor,
        remember=body.remember,
    )
    events: AsyncIterator[StreamEvent] = observed(request, name, stream)
    if caller.kind == "public":
        # Visitors see sources' titles and public URLs, never the server's file paths.
        base_url = await run_in_threadpool(public_base_url, core, name)
        events = visible_events(events, base_url)
    if not body.stream:
        if caller.kind == "public":
            events = without_turn_ids(events)
        return AnswerPublic.model_validate(await drain(body.message, events))
    # Turn references let the widget rate turns; a public key never sees turn ids.
    events = public_events(events, await tokens_of(request), name, caller)
    first = await first_event(events)
    return sse_response(encode_stream(first, events))


@router.post("/{name}/turns/{turn_id}/feedback", status_code=204, responses=_JSON_BODY)
async def feedback(
    name: str,
    turn_id: Annotated[int, Path(ge=1, le=_MAX_TURN_ID)],
    body: FeedbackCreate,
    caller: ChatAccess,
    core: CoreDep,
) -> Response:
    """Record thumbs up (``1``) or down (``-1``) on a turn, with an optional comment.

    Public keys rate turns by their reference instead (``POST .../widget/feedback``), so that
    sequential turn ids cannot be rated from a web page.
    """
    if caller.kind == "public":
        raise NotFoundError(f"no turn {turn_id} for assistant {name!r}")
    await run_in_threadpool(core.feedback, turn_id, body.rating, body.comment, kb=name)
    return Response(status_code=204)


@router.get("/{name}/gaps", response_model=GapList)
async def content_gaps(
    name: str,
    caller: ManageAccess,
    core: CoreDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> GapList:
    """Questions the assistant declined because its content had nothing relevant, newest
    first: what to write next."""
    turns = await run_in_threadpool(core.content_gaps, kb=name, limit=limit)
    return GapList(gaps=[GapPublic.from_turn(turn) for turn in turns])


@router.post("/{name}/search", response_model=SearchResultPublic, responses=_JSON_BODY)
async def search(
    name: str, body: SearchRequest, caller: ManageAccess, core: CoreDep
) -> SearchResultPublic:
    """The ``k`` best passages for ``query`` with every signal's rank and score (the shape of
    ``assistant search --json``)."""
    result = await run_in_threadpool(core.search, body.query, kb=name, k=body.k)
    return SearchResultPublic.from_result(result)
