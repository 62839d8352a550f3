"""The Python client of the assistant's HTTP API: ``Client`` and ``AsyncClient``.

Both have the methods of the in-process ``Assistant`` that the API can serve
(``SHARED_METHODS``), with the same parameters and the same return types, read back from
JSON into the package's own dataclasses and models. An application moves from in-process to
remote by changing the line that builds its assistant::

    bot = Assistant.from_settings()                          # in-process
    bot = Client("https://assistant.example.com", "sk_...")  # over HTTP

    answer = bot.chat("How do I reset my password?", kb="help-centre")
    for event in bot.stream("and on mobile?", kb="help-centre",
                            conversation_id=answer.conversation_id):
        ...

Errors derive from ``ClientError`` (an ``AssistantError``); those with an in-process
counterpart derive from it as well (``ApiNotFoundError`` is a ``NotFoundError``). Safe requests
are retried on connection failures, ``429`` (after ``Retry-After``) and ``502``–``504``.
"""

from __future__ import annotations

from assistant.client._async import AsyncClient
from assistant.client._base import (
    IN_PROCESS_ONLY_METHODS,
    LOCAL_ONLY_PARAMETERS,
    REMOTE_ONLY_PARAMETERS,
    SHARED_METHODS,
)
from assistant.client._errors import (
    ApiAuthenticationError,
    ApiConflictError,
    ApiConnectionError,
    ApiInvalidInputError,
    ApiNotFoundError,
    ApiPayloadTooLargeError,
    ApiPermissionDeniedError,
    ApiProviderError,
    ApiRateLimitedError,
    ApiServerError,
    ApiUnavailableError,
    ApiUnsupportedMediaTypeError,
    ClientError,
)
from assistant.client._ingest import IngestJob, IngestResult
from assistant.client._retry import MAX_RETRY_AFTER_SECONDS, RetryPolicy
from assistant.client._sync import Client

__all__ = [
    "IN_PROCESS_ONLY_METHODS",
    "LOCAL_ONLY_PARAMETERS",
    "MAX_RETRY_AFTER_SECONDS",
    "REMOTE_ONLY_PARAMETERS",
    "SHARED_METHODS",
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
    "AsyncClient",
    "Client",
    "ClientError",
    "IngestJob",
    "IngestResult",
    "RetryPolicy",
]
