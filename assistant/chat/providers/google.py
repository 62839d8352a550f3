"""Gemini answers through the official ``google-genai`` SDK, streamed.

System messages become the config's ``system_instruction``; assistant turns are sent with
Gemini's ``model`` role. Each streamed chunk is a ``GenerateContentResponse``: its non-thought
text parts are the answer, and its ``usage_metadata`` is the running total of the request, so the
last one seen is the usage.

The SDK would pick aiohttp for async requests whenever aiohttp is importable, and aiohttp applies
the timeout to the whole response, which would cut long answers. The provider therefore hands the
SDK its own ``httpx2.AsyncClient``, with a connect timeout and a read timeout that bounds each
wait for the next chunk.

Retries use the SDK's ``HttpRetryOptions`` (408, 429 and 5xx, timeouts, connection errors) with
exponential backoff; the SDK does not read ``retry-after``. Every SDK failure is translated in
``_map_error``.

>>> provider = GoogleProvider(ProviderOptions(api_key="AIza-example"))
>>> provider.model
'gemini-3.8-flash'
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextvars import ContextVar
from typing import Any, Final

import httpx2
import pydantic
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from assistant.chat.events import DoneEvent, TextDelta, Usage
from assistant.chat.provider import ChatRequest, ProviderEvent
from assistant.chat.providers.options import ProviderOptions
from assistant.errors import (
    ConfigError,
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderError,
    ProviderRateLimitError,
    ProviderUnavailableError,
)

__all__ = [
    "API_KEY_VARIABLES",
    "BASE_URL_VARIABLE",
    "DEFAULT_GOOGLE_MODEL",
    "GoogleProvider",
]

logger = logging.getLogger(__name__)

DEFAULT_GOOGLE_MODEL: Final = "gemini-3.8-flash"
"""The current stable Gemini Flash model: fast and inexpensive, strong at grounded answers."""

API_KEY_VARIABLES: Final = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
"""Environment variables holding the Gemini API key, the first one set wins."""

BASE_URL_VARIABLE: Final = "GOOGLE_GEMINI_BASE_URL"
"""Environment variable overriding the Gemini API's base URL (a proxy or gateway)."""

_DEFAULT_BASE_URL: Final = "https://generativelanguage.googleapis.com/"

_KEY_HINT: Final = f"set {API_KEY_VARIABLES[0]} (or {API_KEY_VARIABLES[1]})"

# Finish reasons that mean Gemini stopped the answer on purpose, not that it completed it.
_FILTERED_FINISH_REASONS: Final = frozenset(
    {
        genai_types.FinishReason.SAFETY,
        genai_types.FinishReason.RECITATION,
        genai_types.FinishReason.BLOCKLIST,
        genai_types.FinishReason.PROHIBITED_CONTENT,
        genai_types.FinishReason.SPII,
    }
)

# What the SDK can raise while a request or its stream is running: its API errors, the HTTP
# client's transport errors (a stream cut mid-body is not wrapped by the SDK), and ValueError,
# which covers its UnknownApiResponseError for data that is not JSON and pydantic's
# ValidationError should a chunk fail validation.
_SDK_FAILURES: Final = (genai_errors.APIError, httpx2.TransportError, ValueError)

# The HTTP responses opened by the stream running in this task; see ``_GeminiHttpClient``.
_opened_responses: ContextVar[list[httpx2.Response] | None] = ContextVar(
    "_opened_responses", default=None
)


class GoogleProvider:
    """Streams answers from a Gemini model.

    ``options.timeout_seconds`` bounds each wait for the next chunk of the stream, not the whole
    answer. ``options.max_retries`` is how many times the SDK
    retries a failed request, waiting ``retry_initial_delay_seconds`` (plus as much jitter)
    before the first retry and doubling after. The provider keeps one HTTP connection pool: use
    it from one event loop.

    >>> options = ProviderOptions(api_key="AIza-example", model="gemini-3.5-flash-lite")
    >>> provider = GoogleProvider(options)
    >>> provider.name, provider.model
    ('google', 'gemini-3.5-flash-lite')
    """

    name = "google"

    def __init__(
        self, options: ProviderOptions, *, retry_initial_delay_seconds: float = 1.0
    ) -> None:
        api_key = options.key()
        if not api_key:
            raise ProviderAuthError(
                f"no Gemini API key: {_KEY_HINT}, or pass api_key, to a key from "
                "https://aistudio.google.com/apikey"
            )
        if retry_initial_delay_seconds < 0:
            raise ConfigError(
                f"retry_initial_delay_seconds must be 0 or more, got {retry_initial_delay_seconds}"
            )
        self.model = options.model or DEFAULT_GOOGLE_MODEL
        self.temperature = options.temperature
        self.max_output_tokens = options.max_output_tokens
        self.max_retries = options.max_retries
        self._http_client = _GeminiHttpClient(
            timeout=httpx2.Timeout(options.timeout_seconds, connect=options.connect_timeout_seconds)
        )
        # ``vertexai=False`` and an explicit base URL keep the SDK from switching backend or
        # endpoint on GOOGLE_GENAI_USE_VERTEXAI or GOOGLE_GEMINI_BASE_URL in the process
        # environment; the settings read those variables instead.
        self._client = genai.Client(
            vertexai=False,
            api_key=api_key,
            http_options=genai_types.HttpOptions(
                base_url=options.base_url or _DEFAULT_BASE_URL,
                # The SDK adds up to ``jitter`` seconds to every wait; scaled with the first
                # delay, the default of 1.0 is the SDK's own.
                retry_options=genai_types.HttpRetryOptions(
                    attempts=options.max_retries + 1,
                    initial_delay=retry_initial_delay_seconds,
                    jitter=retry_initial_delay_seconds,
                ),
                httpx_async_client=self._http_client,
            ),
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
        """Yield the answer's text deltas, then one ``DoneEvent`` with the reported usage.

        Raises a ``ProviderError`` subclass when the request fails, the prompt is blocked or the
        stream breaks; the deltas already yielded stay with the consumer.
        """
        system, contents = _gemini_contents(request)
        config = genai_types.GenerateContentConfig(
            system_instruction=system or None,
            temperature=self.temperature,
            max_output_tokens=self.max_output_tokens,
            # No tools are offered, so the SDK's function-calling loop has nothing to do.
            automatic_function_calling=genai_types.AutomaticFunctionCallingConfig(disable=True),
        )
        usage = Usage()
        finish_reason: genai_types.FinishReason | None = None
        block_reason: genai_types.BlockedReason | None = None
        opened: list[httpx2.Response] = []
        _opened_responses.set(opened)
        try:
            chunks = await self._client.aio.models.generate_content_stream(
                model=self.model, contents=contents, config=config
            )
            try:
                async for chunk in chunks:
                    if chunk.usage_metadata is not None:
                        usage = _usage(chunk.usage_metadata)
                    if chunk.prompt_feedback is not None and chunk.prompt_feedback.block_reason:
                        block_reason = chunk.prompt_feedback.block_reason
                    if not chunk.candidates:
                        continue
                    candidate = chunk.candidates[0]
                    if candidate.content is not None:
                        for part in candidate.content.parts or ():
                            # Thought summaries are the model's reasoning, not the answer.
                            if part.text and not part.thought:
                                yield TextDelta(part.text)
                    if candidate.finish_reason is not None:
                        finish_reason = candidate.finish_reason
            finally:
                # Closed here, not by the SDK, so that a consumer that stops early hangs up now.
                for response in opened:
                    await response.aclose()
                aclose = getattr(chunks, "aclose", None)
                if aclose is not None:
                    await aclose()
        except _SDK_FAILURES as exc:
            raise _map_error(exc) from exc
        finally:
            if _opened_responses.get() is opened:
                _opened_responses.set(None)
        if block_reason is not None:
            raise ProviderBadRequestError(
                f"Gemini blocked the prompt ({block_reason.value}); rephrase the question or "
                "review the content sent as sources"
            )
        if finish_reason is None:
            raise ProviderUnavailableError(
                "the Gemini stream ended before a finish reason, so the answer is incomplete "
                "(the connection was probably cut); ask again"
            )
        _log_unusual_finish(finish_reason)
        yield DoneEvent(usage, f"{self.name}:{self.model}")

    async def aclose(self) -> None:
        """Close the SDK client and the HTTP connection pool."""
        await self._client.aio.aclose()
        await self._http_client.aclose()


class _GeminiHttpClient(httpx2.AsyncClient):
    """The HTTP client handed to the SDK: our timeouts, and the responses each stream opened.

    The SDK passes a single per-request timeout (or ``None``, meaning none at all) that would
    replace the client's separate connect and read limits, so it is dropped. Responses are
    recorded in ``_opened_responses`` because closing the SDK's stream generator early does not
    reach the HTTP response: its inner generators are left to the garbage collector, and the
    connection would stay open while the server keeps generating.
    """

    def build_request(self, *args: Any, **kwargs: Any) -> httpx2.Request:
        """Build the request with this client's timeouts."""
        kwargs.pop("timeout", None)
        return super().build_request(*args, **kwargs)

    async def send(self, request: httpx2.Request, **kwargs: Any) -> httpx2.Response:
        """Send the request and record the response for the stream that asked for it."""
        response = await super().send(request, **kwargs)
        opened = _opened_responses.get()
        if opened is not None:
            opened.append(response)
        return response


def _gemini_contents(request: ChatRequest) -> tuple[str, list[genai_types.Content]]:
    """Split the request into the system instruction and the user/model turns."""
    system = "\n\n".join(m.content for m in request.messages if m.role == "system")
    contents = [
        genai_types.Content(
            role="model" if message.role == "assistant" else "user",
            parts=[genai_types.Part(text=message.content)],
        )
        for message in request.messages
        if message.role != "system"
    ]
    if not contents:
        contents.append(
            genai_types.Content(role="user", parts=[genai_types.Part(text=request.question)])
        )
    return system, contents


def _usage(metadata: genai_types.GenerateContentResponseUsageMetadata) -> Usage:
    # Thinking tokens are billed as output, and tool-use prompt tokens as input.
    return Usage(
        input_tokens=(metadata.prompt_token_count or 0)
        + (metadata.tool_use_prompt_token_count or 0),
        output_tokens=(metadata.candidates_token_count or 0) + (metadata.thoughts_token_count or 0),
    )


def _log_unusual_finish(finish_reason: genai_types.FinishReason) -> None:
    if finish_reason == genai_types.FinishReason.MAX_TOKENS:
        logger.warning(
            "the Gemini answer was cut at max_output_tokens; raise it for longer answers"
        )
    elif finish_reason in _FILTERED_FINISH_REASONS:
        logger.warning("Gemini stopped the answer early (finish reason %s)", finish_reason.value)


def _map_error(exc: Exception) -> ProviderError:
    """Translate a google-genai SDK or transport failure into the assistant's provider errors."""
    if isinstance(exc, genai_errors.APIError):
        return _map_api_error(exc)
    if isinstance(exc, httpx2.TimeoutException):
        return ProviderUnavailableError(
            "Gemini did not answer within the timeout; try again, or raise timeout_seconds if "
            "answers are long to start"
        )
    if isinstance(exc, httpx2.TransportError):
        return ProviderUnavailableError(
            f"the connection to Gemini failed or was cut ({type(exc).__name__}); check the "
            f"network and {BASE_URL_VARIABLE}, then ask again"
        )
    if isinstance(exc, (genai_errors.UnknownApiResponseError, pydantic.ValidationError)):
        return ProviderUnavailableError(
            "Gemini sent a malformed stream (a chunk that is not a GenerateContentResponse); ask "
            f"again, and check {BASE_URL_VARIABLE} if a proxy sits in between"
        )
    return ProviderError(f"the Gemini request failed ({type(exc).__name__}: {exc})")


def _map_api_error(exc: genai_errors.APIError) -> ProviderError:
    code = exc.code if isinstance(exc.code, int) else 500
    detail = f"HTTP {code} {exc.status or ''}".strip()
    if exc.message:
        detail = f"{detail}: {exc.message}"
    # Gemini answers a wrong key with 400 INVALID_ARGUMENT; only the ErrorInfo reason tells.
    if code in (401, 403) or "API_KEY_INVALID" in _error_reasons(exc.details):
        return ProviderAuthError(
            f"Gemini refused the API key ({detail}); {_KEY_HINT} to a valid key with access to "
            "the Gemini API"
        )
    if code == 429:
        return ProviderRateLimitError(
            f"Gemini rate-limited the request or its quota is spent ({detail}); wait a moment "
            "and ask again, or raise the project's quota"
        )
    if code == 408 or code >= 500:
        return ProviderUnavailableError(f"Gemini is unavailable ({detail}); try again shortly")
    if code == 404:
        return ProviderBadRequestError(
            f"Gemini does not know the requested model or endpoint ({detail}); check the model "
            "name and the base URL"
        )
    return ProviderBadRequestError(
        f"Gemini rejected the request ({detail}); check the model name, max_output_tokens and "
        "the prompt size"
    )


def _error_reasons(details: object) -> set[str]:
    """The ``reason`` of each ``google.rpc.ErrorInfo`` in an error body."""
    error = details.get("error") if isinstance(details, dict) else None
    entries = error.get("details") if isinstance(error, dict) else None
    if not isinstance(entries, list):
        return set()
    return {
        entry["reason"]
        for entry in entries
        if isinstance(entry, dict) and isinstance(entry.get("reason"), str)
    }
