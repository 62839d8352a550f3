"""Errors as ``application/problem+json`` (RFC 9457), mapped in one place.

Every failure of the API answers with the same shape::

    {"type": "https://assistant-rag.dev/problems/not_found", "title": "Not found",
     "status": 404, "detail": "no assistant named 'shop'", "code": "not_found"}

``code`` is stable and meant for programs; ``detail`` is for people. ``problem_for`` maps an
exception to its problem; ``install_problem_handlers`` registers it for the ``AssistantError``
tree, request validation, HTTP errors and anything unexpected (a 500 whose detail never holds
the exception's text, a traceback, a header or a key; the traceback goes to the server log).

The OpenAPI document says so too: routers declare their errors with ``error_responses``, and
``install_problem_handlers`` puts the ``Problem`` schema those declarations refer to in it::

    router = APIRouter(responses=error_responses(401, 403, 404, 422))
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.api.schemas import Problem
from assistant.errors import (
    AssistantError,
    AuthenticationError,
    BlockedURLError,
    ConflictError,
    ConnectorError,
    DatabaseError,
    InvalidInputError,
    NotFoundError,
    ParseError,
    PermissionDeniedError,
    ProviderError,
    RateLimitedError,
    StoreError,
    TooLargeError,
    UnsupportedContentError,
)

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "PROBLEM_SCHEMA_REF",
    "PROBLEM_TYPE_BASE",
    "ApiProblem",
    "OpenAPIResponses",
    "ProblemGuardMiddleware",
    "error_responses",
    "handle_exception",
    "install_problem_handlers",
    "problem_for",
    "problem_response",
]

logger = logging.getLogger(__name__)

PROBLEM_TYPE_BASE = "https://assistant-rag.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_SCHEMA_REF = "#/components/schemas/Problem"
"""Where the OpenAPI document keeps the schema of a problem document."""

OpenAPIResponses = dict[int | str, dict[str, Any]]
"""The ``responses=`` argument of FastAPI's routers and routes: OpenAPI response objects by
status, with FastAPI's ``model`` key for a pydantic model."""

_TITLES = {
    "invalid_input": "Invalid input",
    "authentication_failed": "Authentication failed",
    "permission_denied": "Permission denied",
    "not_found": "Not found",
    "method_not_allowed": "Method not allowed",
    "conflict": "Conflict",
    "payload_too_large": "Payload too large",
    "unsupported_media_type": "Unsupported media type",
    "rate_limited": "Too many requests",
    "provider_error": "Answer provider failed",
    "database_unavailable": "Database unavailable",
    "store_unavailable": "Vector store unavailable",
    "internal_error": "Internal error",
    "http_error": "HTTP error",
}

# Checked in order, so subclasses come before the classes they derive from.
_ERROR_STATUSES: tuple[tuple[type[AssistantError], int, str], ...] = (
    (InvalidInputError, 400, "invalid_input"),
    (AuthenticationError, 401, "authentication_failed"),
    (PermissionDeniedError, 403, "permission_denied"),
    (NotFoundError, 404, "not_found"),
    (ConflictError, 409, "conflict"),
    (RateLimitedError, 429, "rate_limited"),
    (TooLargeError, 413, "payload_too_large"),
    (UnsupportedContentError, 415, "unsupported_media_type"),
    (BlockedURLError, 400, "invalid_input"),
    (ParseError, 400, "invalid_input"),
    (ConnectorError, 400, "invalid_input"),
    (ProviderError, 502, "provider_error"),
    (DatabaseError, 503, "database_unavailable"),
    (StoreError, 503, "store_unavailable"),
)

_HTTP_CODES = {
    400: "invalid_input",
    401: "authentication_failed",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
}

# Said instead of the message of an error the caller should not see (server configuration,
# encoder, cache, or a bug): those messages can name settings, paths or hosts.
_INTERNAL_DETAIL = "the server failed to handle the request; the error is in its log"


@dataclass(frozen=True, slots=True)
class ApiProblem:
    """A problem document: ``status`` and stable ``code``; ``headers`` go on the response
    (``Retry-After``, ``WWW-Authenticate``); ``errors`` lists validation failures."""

    status: int
    code: str
    detail: str
    headers: dict[str, str] = field(default_factory=dict)
    errors: tuple[dict[str, object], ...] = ()

    @property
    def title(self) -> str:
        """A short, fixed summary of the code."""
        return _TITLES.get(self.code, "Error")

    def body(self) -> dict[str, object]:
        """The JSON body (``errors`` only for validation failures)."""
        document: dict[str, object] = {
            "type": PROBLEM_TYPE_BASE + self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if self.errors:
            document["errors"] = list(self.errors)
        return document


def _validation_errors(exc: RequestValidationError) -> tuple[dict[str, object], ...]:
    # The submitted values are left out: they may hold text the caller would not want logged
    # or echoed (a key pasted into the wrong field).
    return tuple(
        {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error.get("type")}
        for error in exc.errors()
    )


def problem_for(exc: BaseException) -> ApiProblem:
    """The problem that answers ``exc``; anything unexpected becomes a detail-free 500."""
    if isinstance(exc, RequestValidationError):
        errors = _validation_errors(exc)
        where = "; ".join(
            f"{'.'.join(str(part) for part in error.get('loc', ()))}: {error.get('msg', '')}"
            for error in exc.errors()[:3]
        )
        return ApiProblem(422, "invalid_input", f"the request is not valid: {where}", errors=errors)
    if isinstance(exc, HTTPException):
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES[code]
        return ApiProblem(exc.status_code, code, detail, dict(exc.headers or {}))
    if isinstance(exc, AssistantError):
        for error_type, status, code in _ERROR_STATUSES:
            if isinstance(exc, error_type):
                headers: dict[str, str] = {}
                if isinstance(exc, RateLimitedError):
                    headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
                elif isinstance(exc, AuthenticationError):
                    headers["WWW-Authenticate"] = "Bearer"
                return ApiProblem(status, code, str(exc), headers)
    return ApiProblem(500, "internal_error", _INTERNAL_DETAIL)


def problem_response(problem: ApiProblem) -> JSONResponse:
    """``problem`` as an ``application/problem+json`` response."""
    return JSONResponse(
        problem.body(),
        status_code=problem.status,
        headers=problem.headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def _log(request_method: str, request_path: str, exc: BaseException, problem: ApiProblem) -> None:
    # Only the method and path: headers (Authorization) and query strings stay out of logs.
    if problem.status == 500:
        logger.error("unexpected error on %s %s", request_method, request_path, exc_info=exc)
    elif problem.status >= 502:
        logger.warning("%s %s failed: %s", request_method, request_path, problem.detail)


async def handle_exception(request: Request, exc: Exception) -> JSONResponse:
    """The one exception handler of the API: every error becomes a problem document."""
    problem = problem_for(exc)
    _log(request.method, request.url.path, exc, problem)
    return problem_response(problem)


class ProblemGuardMiddleware:
    """Answers an exception that escaped every handler with a 500 problem, if nothing was sent.

    Starlette's last-resort handler answers too, but then re-raises, so the server logs the
    traceback a second time; catching here logs it once, without the request's headers.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the application; answer a 500 problem if it fails before responding."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception as exc:
            if started:
                raise
            problem = problem_for(exc)
            _log(scope.get("method", ""), scope.get("path", ""), exc, problem)
            await problem_response(problem)(scope, receive, send)


def install_problem_handlers(app: FastAPI) -> None:
    """Register ``handle_exception`` for every error the API can meet, and the ``Problem``
    schema (``PROBLEM_SCHEMA_REF``) in the application's OpenAPI document."""
    for error_type in (AssistantError, RequestValidationError, HTTPException, Exception):
        app.add_exception_handler(error_type, handle_exception)
    _document_problem_schema(app)


# OpenAPI ------------------------------------------------------------------------------------

_DESCRIPTIONS = {
    400: "The request cannot be used (``invalid_input``): a body that cannot be read, or a "
    "value the assistant refuses.",
    401: "No API key, or an unknown or revoked one (``authentication_failed``).",
    403: "The key may not do this (``permission_denied``): another assistant's key, a public "
    "key outside its allowed origins or outside chat, or a server key sent from a web page.",
    404: "No such assistant, or nothing with that id in it (``not_found``).",
    409: "It exists already (``conflict``).",
    413: "The body, or a file in it, is larger than accepted (``payload_too_large``).",
    415: "Content that is not a kind of document this reads (``unsupported_media_type``).",
    422: "The request does not match this document (``invalid_input``); ``errors`` lists where.",
    429: "Too many requests for the key or the visitor (``rate_limited``); retry after "
    "``Retry-After`` seconds.",
    502: "The answer provider failed (``provider_error``).",
    503: "The application database or the vector store is unavailable "
    "(``database_unavailable``, ``store_unavailable``).",
}

# Headers that problem_for always sets on these statuses.
_HEADERS: dict[int, dict[str, dict[str, object]]] = {
    401: {
        "WWW-Authenticate": {
            "description": "The authentication scheme to use: ``Bearer``.",
            "required": True,
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds to wait before the next request.",
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}


def error_responses(*statuses: int, model: type[BaseModel] | None = None) -> OpenAPIResponses:
    """Declarations of error ``statuses`` for a router's or route's ``responses=``.

    Each is a problem document (``application/problem+json``, the ``Problem`` schema), or with
    ``model`` that model as ``application/json`` (the OpenAI-compatible routes' error shape).
    Declaring 422 also keeps FastAPI from declaring its own validation error body, which this
    API never sends.

    >>> sorted(error_responses(401, 404))
    [401, 404]
    >>> list(error_responses(404)[404]["content"])
    ['application/problem+json']
    """
    responses: OpenAPIResponses = {}
    for status in statuses:
        response: dict[str, Any] = {"description": _DESCRIPTIONS[status]}
        if model is None:
            response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}}
        else:
            response["model"] = model
        if status in _HEADERS:
            response["headers"] = _HEADERS[status]
        responses[status] = response
    return responses


def _document_problem_schema(app: FastAPI) -> None:
    """Add the ``Problem`` schema to the document ``app`` builds.

    FastAPI registers the schemas of a response's ``model`` only, and declares a ``model`` as
    ``application/json``, which problem documents are not; so the declarations name the
    schema by reference, and it is added here.
    """
    build = app.openapi
    schema = Problem.model_json_schema(mode="serialization")

    def openapi() -> dict[str, Any]:
        document = build()  # FastAPI builds it once and keeps it
        components = document.setdefault("components", {})
        components.setdefault("schemas", {}).setdefault("Problem", schema)
        return document

    # FastAPI's documented way to change the document: replace the application's method.
    app.openapi = openapi  # type: ignore[method-assign]
