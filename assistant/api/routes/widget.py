"""The website widget and the full-page assistant.

- ``/widget.js`` (the loader, short cache), ``/widget.mjs`` (its ES module build) and the
  content-hashed chunks under ``/widget/`` (cached for a year, immutable), from the files the
  front-end build writes to ``assistant/api/static/widget/``; any page may load them.
- ``GET /api/widget/config``: the public presentation of the assistant behind a public key
  (or, keyless on loopback, the ``assistant`` named), answered to any origin so that a page
  that may not use the key can still say why; issues the visitor's token.
- ``GET /api/assistants/{name}/widget``: the same for a known name.
- ``GET /api/assistants/{name}/widget/conversations/{id}``: the visitor's own conversation,
  read back after a reload (another visitor's is 404).
- ``POST /api/assistants/{name}/widget/feedback``: rate a turn by its public reference.
- ``/a/{name}`` (and ``/`` for ``default``): the widget as a full page, under a strict policy.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.api.auth import authenticate_chat
from assistant.api.brand import public_widget
from assistant.api.deps import ChatAccess, CoreDep
from assistant.api.keys import KeyStore
from assistant.api.problems import error_responses
from assistant.api.public_sources import public_base_url, visible_source
from assistant.api.routes.assistants import require_assistant
from assistant.api.schemas import ASSISTANT_NAME_PATTERN, WidgetPublic
from assistant.api.visitors import TOKEN_HEADER, check_conversation, tokens_of
from assistant.api.widget_schemas import (
    WidgetCitation,
    WidgetConversation,
    WidgetFeedback,
    WidgetTurn,
)
from assistant.core import Assistant
from assistant.errors import AuthenticationError, NotFoundError, PermissionDeniedError

__all__ = ["PublicAssetsCorsMiddleware", "router", "widget_dir"]

router = APIRouter(tags=["widget"])
pages = APIRouter(include_in_schema=False)

_STATIC = Path(__file__).resolve().parents[1] / "static"
_CHUNK = re.compile(r"^[a-z]+-[0-9a-f]{12}\.js$")
_NAME = re.compile(ASSISTANT_NAME_PATTERN)
_PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' https: data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_PUBLIC_PATHS = ("/widget.js", "/widget.mjs", "/widget/", "/api/widget/")
_PUBLIC_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": f"Retry-After, {TOKEN_HEADER}",
}
_PREFLIGHT = {
    "Access-Control-Allow-Methods": "GET, OPTIONS",
    "Access-Control-Allow-Headers": f"Authorization, Content-Type, {TOKEN_HEADER}",
    "Access-Control-Max-Age": "600",
}
_NAMED = error_responses(401, 403, 404, 422, 429, 503)


def widget_dir() -> Path:
    """Where the front-end build writes the widget (``npm run build`` in ``frontend/``)."""
    return _STATIC / "widget"


class PublicAssetsCorsMiddleware:
    """``Access-Control-Allow-Origin: *`` for the widget's files and ``/api/widget/`` (public
    data only, no credentials), preflights included. The chat routes keep their per-assistant
    allowed origins."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer preflights of public paths; add the CORS headers to their responses."""
        if scope["type"] != "http" or not scope["path"].startswith(_PUBLIC_PATHS):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            response = Response(status_code=204, headers=_PUBLIC_HEADERS | _PREFLIGHT)
            await response(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _PUBLIC_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_cors)


@lru_cache(maxsize=32)
def _read(path: Path, mtime: float) -> bytes:
    return path.read_bytes()


def _file(name: str, cache: str) -> Response:
    path = widget_dir() / name
    if not path.is_file():
        raise NotFoundError(
            f"the widget file {name!r} is not built: run `npm ci && npm run build` in frontend/ "
            "(pip install builds it too)"
        )
    return Response(
        _read(path, path.stat().st_mtime),
        media_type="text/javascript; charset=utf-8",
        headers={
            "Cache-Control": cache,
            "X-Content-Type-Options": "nosniff",
            "Cross-Origin-Resource-Policy": "cross-origin",
        },
    )


@pages.get("/widget.js")
def loader_script() -> Response:
    """The widget loader; short cache, as it names the current chunks."""
    return _file("widget.js", "public, max-age=300")


@pages.get("/widget.mjs")
def loader_module() -> Response:
    """The widget loader as an ES module."""
    return _file("widget.mjs", "public, max-age=300")


@pages.get("/widget/{file}")
def chunk(file: str) -> Response:
    """A content-hashed chunk: never changes, cached for a year."""
    if not _CHUNK.match(file):
        raise NotFoundError(f"no widget file {file!r}")
    return _file(file, "public, max-age=31536000, immutable")


def _page(name: str, key: str | None) -> Response:
    if not _NAME.match(name):
        raise NotFoundError(f"no assistant named {name!r}")
    key_attribute = f' data-assistant="{html.escape(key)}"' if key else ""
    body = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<title>{html.escape(name)}</title>
<link rel="stylesheet" href="/page.css">
</head>
<body>
<main id="assistant"></main>
<script src="/widget.js" data-name="{html.escape(name)}"{key_attribute} data-target="#assistant" async></script>
</body>
</html>
"""
    return Response(
        body,
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": _PAGE_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        },
    )


@pages.get("/")
def home(key: str | None = None) -> Response:
    """The full-page assistant of ``default``."""
    return _page("default", key)


@pages.get("/a/{name}")
def full_page(name: str, key: str | None = None) -> Response:
    """The widget as a full page: a shareable link (``?key=pk_...`` where keys are needed)."""
    return _page(name, key)


@pages.get("/page.css")
def page_styles() -> Response:
    """The full page's own few styles (the widget brings its own)."""
    css = (
        "html,body{margin:0;height:100%;background:Canvas;color:CanvasText;}"
        "main{height:100vh;height:100dvh;max-width:960px;margin:0 auto;}"
    )
    return Response(
        css, media_type="text/css; charset=utf-8", headers={"Cache-Control": "no-cache"}
    )


async def _assistant_of_key(request: Request, named: str | None) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip().startswith("pk_"):
        core: Assistant = request.app.state.core
        key = await run_in_threadpool(KeyStore(core.database).verify, token.strip())
        if key is None:
            raise AuthenticationError("unknown or revoked API key")
        if named and named != key.assistant:
            raise PermissionDeniedError(f"this key belongs to another assistant, not {named!r}")
        return key.assistant
    if not named:
        raise NotFoundError("name the assistant (?assistant=NAME) or send its public key")
    return named


@router.get("/api/widget/config", response_model=WidgetPublic, responses=_NAMED)
async def widget_config(
    request: Request,
    core: CoreDep,
    assistant: Annotated[str | None, Query(max_length=64)] = None,
) -> WidgetPublic:
    """The public presentation of the assistant behind the public key (or ``assistant``):
    name, greeting, suggested questions, logo, readable colours, position; issues the
    visitor's token (``X-Visitor-Token``) on a first call."""
    name = await _assistant_of_key(request, assistant)
    await authenticate_chat(request, name)
    await run_in_threadpool(require_assistant, core, name)
    config = await run_in_threadpool(core.config, name)
    return public_widget(name, config.brand, config.handoff, config.lead_form)


@router.get("/api/assistants/{name}/widget", response_model=WidgetPublic, responses=_NAMED)
def widget(name: str, core: CoreDep, caller: ChatAccess) -> WidgetPublic:
    """What the website widget shows: name, greeting, suggested questions, logo, colours."""
    require_assistant(core, name)
    config = core.config(name)
    return public_widget(name, config.brand, config.handoff, config.lead_form)


@router.get(
    "/api/assistants/{name}/widget/conversations/{conversation_id}",
    response_model=WidgetConversation,
    responses=_NAMED,
)
async def widget_conversation(
    request: Request, name: str, conversation_id: str, caller: ChatAccess, core: CoreDep
) -> WidgetConversation:
    """The visitor's own conversation (question, answer, citations per turn); any other is
    404. Keyless loopback and secret-key callers may read any of the assistant's."""
    await run_in_threadpool(check_conversation, core, name, conversation_id, caller)
    conversation = await run_in_threadpool(core.conversation, conversation_id, kb=name)
    tokens = await tokens_of(request)
    base_url = await run_in_threadpool(public_base_url, core, name)
    return WidgetConversation(
        id=conversation.id,
        turns=[
            WidgetTurn(
                question=turn.question,
                answer=turn.answer,
                citations=[
                    WidgetCitation(n=c.n, title=c.title, url=c.url, quote=c.quote)
                    for c in (
                        turn.citations
                        if caller.kind != "public"
                        else [visible_source(c, base_url) for c in turn.citations]
                    )
                ],
                outcome=turn.outcome,
                turn_ref=tokens.turn_ref(name, caller.visitor, turn.id),
            )
            for turn in conversation.turns
        ],
    )


@router.post(
    "/api/assistants/{name}/widget/feedback",
    status_code=204,
    responses=_NAMED | error_responses(400, 413),
)
async def widget_feedback(
    request: Request, name: str, body: WidgetFeedback, caller: ChatAccess, core: CoreDep
) -> Response:
    """Rate a turn by the reference its answer came with; a reference issued to another
    visitor, or made up from a turn id, is 404."""
    tokens = await tokens_of(request)
    turn_id = tokens.turn_id(name, caller.visitor, body.turn)
    if turn_id is None:
        raise NotFoundError(f"no turn {body.turn!r} for assistant {name!r}")
    await run_in_threadpool(core.feedback, turn_id, body.rating, body.comment, kb=name)
    return Response(status_code=204)
