"""OpenAI-compatible routes: any Chat Completions client can talk to an assistant.

``GET /v1/models`` lists the assistants the key may use; ``POST /v1/chat/completions`` answers
with ``model`` naming the assistant. The bearer is the admin key or the assistant's secret key.

Usage with the ``openai`` package::

    client = openai.OpenAI(base_url="https://assistant.example.com/v1", api_key="sk_...")
    completion = client.chat.completions.create(
        model="help-centre", messages=[{"role": "user", "content": "How do refunds work?"}]
    )
    completion.choices[0].message.content
    completion.model_extra["assistant_sources"]  # [{"n", "title", "url", "quote", "cited"}]

The last message is the question; the user and assistant messages before it are the
conversation so far (``system`` messages are not used: the assistant's brand sets its
instructions). Nothing is stored unless ``conversation_id`` names a stored conversation.
Streaming sends OpenAI's chunks: the role first, one chunk per piece of text, a chunk with
``finish_reason: "stop"`` that also carries ``assistant_sources``, a usage chunk when
``stream_options.include_usage`` is set, then ``data: [DONE]``. Errors on these routes use
OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, which its clients parse.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sse_starlette import ServerSentEvent
from starlette.concurrency import run_in_threadpool

from assistant.api.auth import authenticate_admin, authenticate_manager
from assistant.api.chat_schemas import (
    AssistantSource,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChunkChoice,
    ChunkDelta,
    CompletionChoice,
    CompletionMessage,
    CompletionUsage,
    InputMessage,
    ModelList,
    ModelPublic,
    OpenAIError,
    OpenAIErrorBody,
)
from assistant.api.deps import CoreDep
from assistant.api.problems import error_responses, problem_for
from assistant.api.prometheus import observed
from assistant.api.public_sources import public_base_url, visible_events
from assistant.api.sse import close_stream, first_event, sse_message, sse_response, stream_failure
from assistant.chat.answerer import drain
from assistant.chat.events import (
    Citation,
    CitationsEvent,
    DoneEvent,
    ErrorEvent,
    Source,
    SourcesEvent,
    StreamEvent,
    TextDelta,
)
from assistant.chat.history import HistoryTurn
from assistant.core import Assistant
from assistant.errors import InvalidInputError, NotFoundError, PermissionDeniedError

__all__ = [
    "ModelNotFoundError",
    "OpenAIRoute",
    "assistant_sources",
    "conversation_from_messages",
    "openai_error",
    "router",
]

logger = logging.getLogger(__name__)

_QUOTE_CHARS = 300


class ModelNotFoundError(NotFoundError):
    """The ``model`` of a request names no assistant (OpenAI's ``model_not_found``)."""


def openai_error(exc: BaseException) -> JSONResponse:
    """``exc`` as OpenAI's error body, with the status and headers of its problem document."""
    problem = problem_for(exc)
    # OpenAI answers an invalid request with 400; its clients have no special case for 422.
    status = 400 if problem.status == 422 else problem.status
    error_type = "server_error" if status >= 500 else "invalid_request_error"
    code: str = problem.code
    if isinstance(exc, ModelNotFoundError):
        code = "model_not_found"
    elif status == 401:
        code = "invalid_api_key"
    elif status == 429:
        error_type, code = "requests", "rate_limit_exceeded"
    body = OpenAIError(error=OpenAIErrorBody(message=problem.detail, type=error_type, code=code))
    return JSONResponse(body.model_dump(), status_code=status, headers=problem.headers)


class OpenAIRoute(APIRoute):
    """A route whose failures (authentication, validation, the core's errors) are answered in
    OpenAI's error shape instead of a problem document."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler, wrapped so that every error becomes ``openai_error``."""
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                if problem_for(exc).status == 500:
                    logger.error(
                        "unexpected error on %s %s", request.method, request.url.path, exc_info=exc
                    )
                return openai_error(exc)

        return handle


router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute)

# Authentication reads the application database, and secret keys are rate-limited.
_MODELS_ERRORS = error_responses(401, 403, 429, 503, model=OpenAIError)
_COMPLETIONS_ERRORS = error_responses(
    400, 401, 403, 404, 413, 422, 429, 502, 503, model=OpenAIError
)
_COMPLETIONS_ERRORS[400]["description"] = (
    "The request is not valid (``invalid_input``): it does not match this document, or its "
    "messages end without the user's question."
)
_COMPLETIONS_ERRORS[422]["description"] = (
    "Not sent: an invalid request is answered with 400, as OpenAI answers it."
)


async def _names(core: Assistant) -> list[str]:
    return await run_in_threadpool(core.knowledge_bases)


@router.get("/models", response_model=ModelList, responses=_MODELS_ERRORS)
async def list_models(request: Request, core: CoreDep) -> ModelList:
    """The assistants the key may use: all of them for the admin key, its own for a secret
    key."""
    names = await _names(core)
    try:
        await authenticate_admin(request)
        return ModelList(data=[ModelPublic(id=name) for name in names])
    except PermissionDeniedError:
        pass
    # Not the admin: a secret key is accepted by its own assistant only.
    for name in names:
        try:
            await authenticate_manager(request, name)
        except PermissionDeniedError:
            continue
        return ModelList(data=[ModelPublic(id=name)])
    raise PermissionDeniedError(
        "the OpenAI-compatible API takes the admin key or an assistant's secret key (sk_...), "
        "sent from a server (no Origin header)"
    )


async def _authorize_model(request: Request, core: Assistant, name: str) -> None:
    """Check the key may use assistant ``name`` and that it exists.

    Raises ``ModelNotFoundError`` for an assistant that does not exist, whatever key is sent
    (a valid one: an invalid key is 401 first).
    """
    missing = ModelNotFoundError(
        f"The model {name!r} does not exist or you do not have access to it; "
        "GET /v1/models lists the assistants this key may use."
    )
    try:
        await authenticate_manager(request, name)
    except NotFoundError:
        raise missing from None
    except PermissionDeniedError:
        if name not in await _names(core):
            raise missing from None
        raise
    if name not in await _names(core):
        raise missing


def _text(message: InputMessage) -> str:
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content.strip()
    pieces = []
    for part in content:
        if part.type != "text":
            raise InvalidInputError(
                f"only text content is accepted; a {part.type!r} part cannot be answered from "
                "the assistant's knowledge base"
            )
        pieces.append(part.text or "")
    return "".join(pieces).strip()


def conversation_from_messages(messages: Sequence[InputMessage]) -> tuple[str, list[HistoryTurn]]:
    """The question (the last message, the user's) and the exchanges before it.

    User messages in a row are joined; an assistant message answers the user messages before
    it. System, developer and tool messages are not used.

    Raises:
        InvalidInputError: the last user or assistant message is not a user message with text.
    """
    spoken = [message for message in messages if message.role in ("user", "assistant")]
    if not spoken or spoken[-1].role != "user" or not _text(spoken[-1]):
        raise InvalidInputError("the last message must be the user's question, with text")
    turns: list[HistoryTurn] = []
    pending: list[str] = []
    for message in spoken:
        text = _text(message)
        if message.role == "user":
            if text:
                pending.append(text)
        elif pending and text:
            turns.append(HistoryTurn("\n\n".join(pending), text))
            pending = []
    return "\n\n".join(pending), turns


def assistant_sources(
    sources: Sequence[Source], citations: Sequence[Citation]
) -> list[AssistantSource]:
    """The ``assistant_sources`` field: every source the answer was built from, with the
    supporting sentence where the answer cites it."""
    cited = {citation.n: citation for citation in citations}
    listed = []
    for source in sources:
        citation = cited.get(source.n)
        quote = citation.quote if citation else " ".join(source.text.split())[:_QUOTE_CHARS]
        listed.append(
            AssistantSource(
                n=source.n,
                title=source.title,
                url=source.url,
                quote=quote,
                cited=citation is not None,
            )
        )
    return listed


def _error_message(code: str, message: str) -> ServerSentEvent:
    # OpenAI's clients raise on a data line holding {"error": ...}.
    body = OpenAIErrorBody(message=message, type="server_error", code=code)
    return sse_message(OpenAIError(error=body).model_dump_json())


async def _chunks(
    first: StreamEvent,
    events: AsyncIterator[StreamEvent],
    template: ChatCompletionChunk,
    include_usage: bool,
) -> AsyncIterator[ServerSentEvent]:
    """The answer stream as Chat Completions chunks; ``events`` is closed at the end."""

    def chunk(**fields: Any) -> ServerSentEvent:
        return sse_message(template.model_copy(update=fields).model_dump_json())

    sources = first.sources if isinstance(first, SourcesEvent) else ()
    citations: tuple[Citation, ...] = ()
    try:
        yield chunk(choices=[ChunkChoice(delta=ChunkDelta(role="assistant", content=""))])
        async for event in events:
            if isinstance(event, TextDelta) and event.text:
                yield chunk(choices=[ChunkChoice(delta=ChunkDelta(content=event.text))])
            elif isinstance(event, CitationsEvent):
                citations = event.citations
            elif isinstance(event, DoneEvent):
                yield chunk(
                    choices=[ChunkChoice(delta=ChunkDelta(), finish_reason="stop")],
                    assistant_sources=assistant_sources(sources, citations),
                    conversation_id=event.conversation_id,
                )
                if include_usage:
                    yield chunk(choices=[], usage=CompletionUsage.from_usage(event.usage))
            elif isinstance(event, ErrorEvent):
                yield _error_message(event.code, event.message)
                return
        yield sse_message("[DONE]")
    except Exception as exc:
        failure = stream_failure(exc)
        yield _error_message(failure.code, failure.message)
    finally:
        await close_stream(events)


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={
        200: {
            "description": "A ``chat.completion``, or with ``stream`` its chunks as events.",
            "content": {"text/event-stream": {}},
        },
        **_COMPLETIONS_ERRORS,
    },
)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, core: CoreDep
) -> ChatCompletion | Response:
    """Answer the last user message from assistant ``model``'s knowledge base, with sources."""
    name = body.model
    await _authorize_model(request, core, name)
    question, history = conversation_from_messages(body.messages)
    remember = body.conversation_id is not None
    base_url = await run_in_threadpool(public_base_url, core, name)
    observed_events = observed(
        request,
        name,
        core.stream(
            question,
            kb=name,
            conversation_id=body.conversation_id,
            visitor=body.user,
            remember=remember,
            # A stored conversation continued with just the new message uses its stored turns.
            history=None if remember and not history else history,
        ),
    )
    # Apps show ``assistant_sources`` to their own users: no server paths.
    events = visible_events(observed_events, base_url)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if body.stream:
        first = await first_event(events)
        template = ChatCompletionChunk(id=completion_id, created=created, model=name, choices=[])
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        return sse_response(_chunks(first, events, template, include_usage))
    answer = await drain(question, events)
    if answer.error is not None:
        body_error = OpenAIErrorBody(
            message=answer.error.message, type="server_error", code=answer.error.code
        )
        return JSONResponse(OpenAIError(error=body_error).model_dump(), status_code=502)
    return ChatCompletion(
        id=completion_id,
        created=created,
        model=name,
        choices=[CompletionChoice(message=CompletionMessage(content=answer.answer))],
        usage=CompletionUsage.from_usage(answer.usage),
        assistant_sources=assistant_sources(answer.sources, answer.citations),
        conversation_id=answer.conversation_id,
    )
