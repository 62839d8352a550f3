"""Errors of the Python client, built from the API's problem documents in one place.

Every failure the client reports derives from ``ClientError``, itself an ``AssistantError``, so
one ``except AssistantError`` catches the in-process and the remote API alike. Where the core
has an error of the same meaning, the client's error derives from it too: code written against
``Assistant`` that catches ``NotFoundError`` keeps working against ``Client``.

::

    AssistantError
    └── ClientError                     status, code, detail (from the problem document)
        ├── ApiAuthenticationError      401 authentication_failed   (also AuthenticationError)
        ├── ApiPermissionDeniedError    403 permission_denied       (also PermissionDeniedError)
        ├── ApiNotFoundError            404 not_found               (also NotFoundError)
        ├── ApiInvalidInputError        400/422 invalid_input       (also InvalidInputError)
        ├── ApiConflictError            409 conflict                (also ConflictError)
        ├── ApiPayloadTooLargeError     413 payload_too_large
        ├── ApiUnsupportedMediaTypeError 415 unsupported_media_type
        ├── ApiRateLimitedError         429 rate_limited, .retry_after (also RateLimitedError)
        ├── ApiProviderError            502 provider_error          (also ProviderError)
        ├── ApiUnavailableError         503 database/store unavailable, 504
        ├── ApiServerError              500 and any other 5xx
        └── ApiConnectionError          no answer: connection refused, timeout, broken stream
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping

from assistant.errors import (
    AssistantError,
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    ProviderError,
    RateLimitedError,
)

__all__ = [
    "ApiAuthenticationError",
    "ApiConflictError",
    "ApiConnectionError",
    "ApiInvalidInputError",
    "ApiNotFoundError",
    "ApiPayloadTooLargeError",
    "ApiPermissionDeniedError",
    "ApiProviderError",
    "ApiRateLimitedError",
    "ApiServerError",
    "ApiUnavailableError",
    "ApiUnsupportedMediaTypeError",
    "ClientError",
    "error_from_response",
    "parse_retry_after",
]


class ClientError(AssistantError):
    """A request to the assistant's HTTP API failed.

    ``status`` is the HTTP status (0 when no answer came), ``code`` the problem's stable code
    (``not_found``, ``rate_limited``, …) and ``detail`` its explanation for people.
    """

    def __init__(self, detail: str, *, status: int = 0, code: str = "") -> None:
        # Not super().__init__: the core classes mixed in below take other arguments.
        AssistantError.__init__(self, f"{detail} (HTTP {status} {code})" if status else detail)
        self.status = status
        self.code = code
        self.detail = detail


class ApiAuthenticationError(ClientError, AuthenticationError):
    """No key was sent, or the key is unknown or revoked (401)."""


class ApiPermissionDeniedError(ClientError, PermissionDeniedError):
    """The key may not do this: another assistant, an admin-only route, or a browser origin
    (403)."""


class ApiNotFoundError(ClientError, NotFoundError):
    """The assistant, conversation, turn, source or job does not exist (404)."""


class ApiInvalidInputError(ClientError, InvalidInputError):
    """The request was refused as invalid (400, 422); ``detail`` says which field and why."""


class ApiConflictError(ClientError, ConflictError):
    """The thing to create exists already (409)."""


class ApiPayloadTooLargeError(ClientError):
    """The request body or an uploaded file is larger than the server accepts (413)."""


class ApiUnsupportedMediaTypeError(ClientError):
    """An uploaded file is not a kind of document the server reads (415)."""


class ApiRateLimitedError(ClientError, RateLimitedError):
    """Too many requests (429); ``retry_after`` is the wait in seconds the server asked for."""

    def __init__(
        self, detail: str, *, status: int = 429, code: str = "", retry_after: float
    ) -> None:
        super().__init__(detail, status=status, code=code)
        self.retry_after = retry_after


class ApiProviderError(ClientError, ProviderError):
    """The server's answer provider failed (502)."""


class ApiUnavailableError(ClientError):
    """The server cannot serve now: its database or vector store is down (503), or a gateway
    timed out (504). Retried automatically for safe requests."""


class ApiServerError(ClientError):
    """The server failed unexpectedly (500 or another 5xx); its log has the details."""


class ApiConnectionError(ClientError):
    """No answer came: the server could not be reached, timed out, or the connection broke."""


_BY_CODE: dict[str, type[ClientError]] = {
    "authentication_failed": ApiAuthenticationError,
    "invalid_api_key": ApiAuthenticationError,
    "permission_denied": ApiPermissionDeniedError,
    "not_found": ApiNotFoundError,
    "model_not_found": ApiNotFoundError,
    "invalid_input": ApiInvalidInputError,
    "conflict": ApiConflictError,
    "payload_too_large": ApiPayloadTooLargeError,
    "unsupported_media_type": ApiUnsupportedMediaTypeError,
    "provider_error": ApiProviderError,
    "database_unavailable": ApiUnavailableError,
    "store_unavailable": ApiUnavailableError,
    "internal_error": ApiServerError,
}

_BY_STATUS: dict[int, type[ClientError]] = {
    400: ApiInvalidInputError,
    401: ApiAuthenticationError,
    403: ApiPermissionDeniedError,
    404: ApiNotFoundError,
    409: ApiConflictError,
    413: ApiPayloadTooLargeError,
    415: ApiUnsupportedMediaTypeError,
    422: ApiInvalidInputError,
    502: ApiProviderError,
    503: ApiUnavailableError,
    504: ApiUnavailableError,
}


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: a number of seconds or an HTTP date.

    >>> parse_retry_after("3")
    3.0
    >>> parse_retry_after("soon") is None
    True
    """
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def _problem(body: bytes) -> tuple[str | None, str | None]:
    """The ``code`` and ``detail`` of a problem document or of an OpenAI-style error body."""
    try:
        document = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(document, dict):
        return None, None
    error = document.get("error")
    if isinstance(error, dict):  # the OpenAI-compatible routes' shape
        code, detail = error.get("code"), error.get("message")
    else:
        code, detail = document.get("code"), document.get("detail")
    return (
        code if isinstance(code, str) else None,
        detail if isinstance(detail, str) else None,
    )


def error_from_response(status: int, headers: Mapping[str, str], body: bytes) -> ClientError:
    """The error for a failed response: by the problem's ``code``, else by the status.

    >>> error = error_from_response(404, {}, b'{"code": "not_found", "detail": "no assistant"}')
    >>> type(error).__name__, error.detail
    ('ApiNotFoundError', 'no assistant')
    """
    code, detail = _problem(body)
    if detail is None:
        text = body.decode("utf-8", "replace").strip()[:200]
        detail = text or f"the server answered HTTP {status}"
    if status == 429 or code in ("rate_limited", "rate_limit_exceeded"):
        retry_after = parse_retry_after(headers.get("retry-after"))
        return ApiRateLimitedError(
            detail,
            status=status,
            code=code or "rate_limited",
            retry_after=1.0 if retry_after is None else retry_after,
        )
    error_type = _BY_CODE.get(code or "") or _BY_STATUS.get(status)
    if error_type is None:
        error_type = ApiServerError if status >= 500 else ClientError
    return error_type(detail, status=status, code=code or "")
