"""The FastAPI application: ``create_app(settings)`` wires the routers over one ``Assistant``.

The lifespan builds the ``Assistant`` (unless one is given), opens its database (a failure is
logged and reported by ``/readyz``, so the process still starts and says what is wrong), opens
the ingestion job queue (``app.state.job_queue``, resuming unfinished jobs) and closes what it
opened. Around the routers sit, outermost first: request metrics, CORS for the assistants'
widget routes, a last-resort problem answer for unexpected errors, and the body size limit:
``MAX_JSON_BODY_BYTES`` (413 problem) unless a route sets its own ``max_body_size`` (uploads).

>>> app = create_app(Settings())  # doctest: +SKIP
>>> uvicorn.run(app, host="127.0.0.1", port=8000)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.analytics.maintenance import MAINTENANCE_INTERVAL_S, maintenance_loop
from assistant.api.auth import VISITOR_HEADER, normalise_origin
from assistant.api.domains import CustomDomainMiddleware
from assistant.api.problems import (
    ProblemGuardMiddleware,
    install_problem_handlers,
    problem_for,
    problem_response,
)
from assistant.api.prometheus import ApiMetrics, MetricsMiddleware
from assistant.api.ratelimit import RateLimiter
from assistant.api.routes import (
    admin,
    analytics,
    assistants,
    chat,
    conversations,
    handoffs,
    health,
    leads,
    openai_compat,
    sources,
    widget,
)
from assistant.api.schemas import ASSISTANT_NAME_PATTERN
from assistant.api.visitors import TOKEN_HEADER, VisitorTokenMiddleware
from assistant.core import Assistant
from assistant.errors import AssistantError
from assistant.jobs.queue import open_job_queue
from assistant.knowledge.long_lived import freeze_after_loading
from assistant.settings import Settings

__all__ = [
    "MAX_JSON_BODY_BYTES",
    "AssistantCorsMiddleware",
    "BodyLimitMiddleware",
    "PayloadTooLargeError",
    "app_from_environment",
    "create_app",
]

logger = logging.getLogger(__name__)

MAX_JSON_BODY_BYTES = 1024 * 1024
"""Largest request body accepted by routes that do not set their own ``max_body_size``."""

_ASSISTANT_PATH = re.compile(r"^/api/assistants/([^/]+)/")
_NAME = re.compile(ASSISTANT_NAME_PATTERN)
_PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": (
        f"Authorization, Content-Type, Last-Event-ID, {VISITOR_HEADER}, {TOKEN_HEADER}"
    ),
    "Access-Control-Max-Age": "600",
}
_EXPOSED_HEADERS = f"Retry-After, Content-Disposition, {TOKEN_HEADER}"

_OriginLookup = Callable[[str], Awaitable[list[str]]]


class PayloadTooLargeError(HTTPException):
    """The request body is larger than the route accepts (answered as a 413 problem)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            status_code=413,
            detail=f"the request body is larger than this endpoint accepts ({limit:,} bytes)",
        )


class BodyLimitMiddleware:
    """Refuses request bodies over ``max_body_size`` bytes with a 413 problem.

    A route may declare its own limit (``@router.post(..., max_body_size=...)``, as uploads
    do); FastAPI puts it in the scope before the route reads its body, and it wins over
    ``max_body_size``. A declared ``Content-Length`` over the limit is refused before a byte is
    read; a chunked body is counted as it arrives. FastAPI's own application-wide limit is not
    used because it answers in plain text.
    """

    def __init__(self, app: ASGIApp, max_body_size: int) -> None:
        self.app = app
        self.max_body_size = max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the application with a body reader that stops at the limit."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        declared_size = int(declared) if declared and declared.isdigit() else None
        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            limit = scope.get(MAX_BODY_SIZE_SCOPE_KEY) or self.max_body_size
            if declared_size is not None and declared_size > limit:
                raise PayloadTooLargeError(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLargeError(limit)
            return message

        replaced = False

        async def send_problems(message: Message) -> None:
            # A route's own limit is enforced by FastAPI too, which answers in plain text;
            # that answer becomes the same problem document as ours.
            nonlocal replaced
            if message["type"] == "http.response.start" and message["status"] == 413:
                content_type = Headers(raw=message.get("headers", [])).get("content-type", "")
                if content_type.startswith("text/plain"):
                    replaced = True
                    limit = scope.get(MAX_BODY_SIZE_SCOPE_KEY) or self.max_body_size
                    response = problem_response(problem_for(PayloadTooLargeError(limit)))
                    await response(scope, receive, send)
                    return
            if replaced:
                return
            await send(message)

        await self.app(scope, receive_limited, send_problems)


class AssistantCorsMiddleware:
    """CORS for ``/api/assistants/{name}/...``: only ``name``'s ``allowed_origins`` get an
    ``Access-Control-Allow-Origin`` (the origin itself, never ``*``; no credentials, as keys
    travel in the ``Authorization`` header, not cookies). Preflights are answered here: 204
    with the allowed methods and headers for an allowed origin, 403 without CORS headers for
    any other, so the browser never sends the request.
    """

    def __init__(self, app: ASGIApp, allowed_origins: _OriginLookup) -> None:
        self.app = app
        self.allowed_origins = allowed_origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer preflights; add CORS headers to responses for allowed origins."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        match = _ASSISTANT_PATH.match(scope["path"])
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if match is None or origin is None:
            await self.app(scope, receive, send)
            return
        name = match.group(1)
        allowed = _NAME.match(name) is not None and await self._allowed(name, origin)
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            vary = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
            if allowed:
                response = Response(
                    status_code=204,
                    headers={"Access-Control-Allow-Origin": origin, "Vary": vary}
                    | _PREFLIGHT_HEADERS,
                )
            else:
                response = Response(status_code=403, headers={"Vary": vary})
            await response(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                response_headers.add_vary_header("Origin")
                if allowed:
                    response_headers["Access-Control-Allow-Origin"] = origin
                    response_headers["Access-Control-Expose-Headers"] = _EXPOSED_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _allowed(self, name: str, origin: str) -> bool:
        try:
            origins = await self.allowed_origins(name)
        except AssistantError as exc:
            # No CORS header then; the request itself fails with the same error, as a problem.
            logger.warning("cannot read the allowed origins of %r: %s", name, type(exc).__name__)
            return False
        return normalise_origin(origin) in origins


def _include_routers(app: FastAPI) -> None:
    app.include_router(health.router)
    app.include_router(assistants.router)
    app.include_router(widget.router)
    app.include_router(widget.pages)
    app.include_router(chat.router)
    app.include_router(conversations.router)
    app.include_router(handoffs.router)
    app.include_router(leads.router)
    app.include_router(openai_compat.router)
    app.include_router(sources.router)
    app.include_router(analytics.router)
    app.include_router(admin.router)


def _open_database(core: Assistant) -> None:
    try:
        core.database.ping()
    except AssistantError as exc:
        logger.warning("the application database is not available yet: %s", exc)


async def _start_jobs(app: FastAPI, core: Assistant) -> None:
    """Open the ingestion job queue and put back the jobs an earlier process left unfinished."""
    try:
        queue = await run_in_threadpool(open_job_queue, core)
        app.state.job_queue = queue
        await queue.recover()
    except AssistantError as exc:
        # The sources routes open the queue on first use; until then jobs wait in the database.
        logger.warning("ingestion jobs were not resumed: %s", exc)


async def _stop_jobs(app: FastAPI) -> None:
    queue = getattr(app.state, "job_queue", None)
    if queue is not None:
        app.state.job_queue = None
        await queue.close()


def create_app(
    settings: Settings,
    *,
    core: Assistant | None = None,
    maintenance_interval_s: float | None = MAINTENANCE_INTERVAL_S,
) -> FastAPI:
    """The HTTP API over ``core`` (built from ``settings`` in the lifespan when omitted).

    A given ``core`` is left open at shutdown (its owner closes it); one built here is closed.
    Every ``maintenance_interval_s`` seconds (``None``: never) a background task applies
    retention and computes analytics insights and clusters (``analytics.maintenance``).
    ``app.state`` holds ``core``, ``settings``, ``rate_limiter`` and ``metrics``.
    """
    owns_core = core is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        assistant = core if core is not None else Assistant.from_settings(settings)
        app.state.core = assistant
        await run_in_threadpool(_open_database, assistant)
        await _start_jobs(app, assistant)
        upkeep = (
            asyncio.create_task(maintenance_loop(assistant, interval_s=maintenance_interval_s))
            if maintenance_interval_s is not None
            else None
        )
        logger.info("assistant API ready")
        try:
            yield
        finally:
            if upkeep is not None:
                upkeep.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await upkeep
            # Jobs first: they use the core. Provider clients are bound to this event loop,
            # so they are closed on it.
            await _stop_jobs(app)
            await assistant.aclose()
            await app.state.rate_limiter.aclose()
            if owns_core:
                await run_in_threadpool(assistant.close)

    app = FastAPI(
        title="assistant-rag",
        summary="Answers questions from your website and documents, with sources.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    if core is not None:
        app.state.core = core
    app.state.rate_limiter = RateLimiter.from_settings(settings)
    metrics = ApiMetrics(core=lambda: getattr(app.state, "core", None))
    app.state.metrics = metrics

    async def allowed_origins(name: str) -> list[str]:
        assistant: Assistant = app.state.core
        config = await run_in_threadpool(assistant.config, name)
        return config.allowed_origins

    install_problem_handlers(app)
    # add_middleware wraps: the last added runs first.
    app.add_middleware(BodyLimitMiddleware, max_body_size=MAX_JSON_BODY_BYTES)
    app.add_middleware(ProblemGuardMiddleware)
    app.add_middleware(VisitorTokenMiddleware)
    app.add_middleware(AssistantCorsMiddleware, allowed_origins=allowed_origins)
    app.add_middleware(widget.PublicAssetsCorsMiddleware)
    app.add_middleware(CustomDomainMiddleware, settings=settings, core=lambda: app.state.core)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    _include_routers(app)
    if settings.slack_bot_token is not None and settings.slack_signing_secret is not None:
        # Slack's events, buttons and slash command: a surface over the same ``Assistant``.
        from assistant.slack.transports import mount_slack

        mount_slack(app, settings)
    return app


def app_from_environment() -> FastAPI:
    """``create_app`` over the settings of this process's environment: the factory each of
    ``assistant serve --workers N``'s processes imports. Such a process serves for its life, so
    what it loads is frozen out of the collector's passes (``knowledge.long_lived``)."""
    freeze_after_loading()
    return create_app(Settings())
