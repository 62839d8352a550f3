"""Claude answers through Anthropic's Messages API, streamed.

The request's system messages become the top-level ``system`` parameter (the Messages API has no
system role); user and assistant messages are sent as they are. Text arrives as ``text_delta``
events; thinking blocks, which current Claude models produce on their own, are not part of the
answer and are skipped. Input tokens come from ``message_start``, output tokens from the last
``message_delta``.

Retries (429, 5xx, 529 overloaded, timeouts, connection errors) are the SDK's own, which honour
``retry-after``; every SDK failure is translated in ``_map_error``.

>>> provider = AnthropicProvider(ProviderOptions(api_key="sk-ant-example"))
>>> provider.model
'claude-sonnet-5-5'
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Final

import anthropic
import httpx2
from anthropic.types import MessageParam, RawMessageDeltaEvent, RawMessageStartEvent

from assistant.chat.events import DoneEvent, TextDelta, Usage
from assistant.chat.provider import ChatRequest, ProviderEvent
from assistant.chat.providers.options import ProviderOptions
from assistant.errors import (
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderError,
    ProviderRateLimitError,
    ProviderUnavailableError,
)

__all__ = [
    "API_KEY_VARIABLE",
    "BASE_URL_VARIABLE",
    "DEFAULT_ANTHROPIC_MODEL",
    "AnthropicProvider",
]

logger = logging.getLogger(__name__)

DEFAULT_ANTHROPIC_MODEL: Final = "claude-sonnet-5-5"
"""The current Sonnet: Anthropic's balance of speed and quality for everyday answers."""

API_KEY_VARIABLE: Final = "ANTHROPIC_API_KEY"
"""Environment variable holding the Anthropic API key."""

BASE_URL_VARIABLE: Final = "ANTHROPIC_BASE_URL"
"""Environment variable overriding the API's base URL (a proxy or gateway)."""

_DEFAULT_BASE_URL: Final = "https://api.anthropic.com"

# Current Claude models think before answering and the thinking tokens count against
# ``max_tokens``, so a tight budget could end the answer before its first word.
_DEFAULT_MAX_OUTPUT_TOKENS: Final = 4096

# An ``event: error`` inside a 200 stream carries only an error type; these are the statuses
# the API gives the same types when it can still answer with a status line.
_STATUS_OF_ERROR_TYPE: Final[Mapping[str, int]] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

# What the SDK can raise while a request or its stream is running: its own errors, the HTTP
# client's transport errors (a stream cut mid-body is not wrapped by the SDK), and ValueError
# for an event whose data is not JSON.
_SDK_FAILURES: Final = (anthropic.AnthropicError, httpx2.TransportError, ValueError)


class AnthropicProvider:
    """Streams answers from a Claude model.

    ``options.timeout_seconds`` bounds each wait for the next piece of the stream, not the whole
    answer; ``options.max_retries`` is how many times the SDK retries a failed request before
    the error is raised. ``temperature`` is sent only when given: current Claude models accept
    only their default sampling, older ones honour it. Without ``max_output_tokens`` the answer
    may use 4096 tokens.

    >>> options = ProviderOptions(api_key="sk-ant-example", model="claude-haiku-5-5")
    >>> provider = AnthropicProvider(options)
    >>> provider.name, provider.model
    ('anthropic', 'claude-haiku-5-5')
    """

    name = "anthropic"

    def __init__(self, options: ProviderOptions) -> None:
        api_key = options.key()
        if not api_key:
            raise ProviderAuthError(
                f"no Anthropic API key: set {API_KEY_VARIABLE} (or pass api_key) to a key from "
                "https://platform.claude.com/settings/keys"
            )
        self.model = options.model or DEFAULT_ANTHROPIC_MODEL
        self.temperature = options.temperature
        self.max_output_tokens = options.max_output_tokens or _DEFAULT_MAX_OUTPUT_TOKENS
        self.max_retries = options.max_retries
        # The base URL is always passed so the SDK never falls back to reading the process
        # environment behind the caller's back.
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=options.base_url or _DEFAULT_BASE_URL,
            timeout=anthropic.Timeout(
                options.timeout_seconds, connect=options.connect_timeout_seconds
            ),
            max_retries=options.max_retries,
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
        """Yield the answer's text deltas, then one ``DoneEvent`` with the reported usage.

        Raises a ``ProviderError`` subclass when the request fails or the stream breaks; the
        deltas already yielded stay with the consumer.
        """
        system, conversation = _anthropic_messages(request)
        tokens = _TokenCount()
        finished = False
        try:
            events = await self._client.messages.create(
                model=self.model,
                max_tokens=self.max_output_tokens,
                messages=conversation,
                system=system if system else anthropic.omit,
                stream=True,
                # The SDK dropped its ``temperature`` argument with the models that ignore it.
                extra_body=None if self.temperature is None else {"temperature": self.temperature},
            )
            # ``async with`` closes the HTTP response when the consumer stops early.
            async with events:
                async for event in events:
                    # Dispatch on ``type``: the SDK does not validate events, and one of an
                    # unknown type arrives as an instance of the union's first class.
                    if event.type == "content_block_delta":
                        text = _text_of(event.delta)
                        if text:
                            yield TextDelta(text)
                    elif event.type == "message_start":
                        tokens.start(event)
                    elif event.type == "message_delta":
                        tokens.update(event)
                        _log_unusual_stop(getattr(event.delta, "stop_reason", None))
                    elif event.type == "message_stop":
                        finished = True
        except _SDK_FAILURES as exc:
            raise _map_error(exc) from exc
        if not finished:
            raise ProviderUnavailableError(
                "the Anthropic stream ended before message_stop, so the answer is incomplete "
                "(the connection was probably cut); ask again"
            )
        yield DoneEvent(tokens.usage(), f"{self.name}:{self.model}")

    async def aclose(self) -> None:
        """Close the SDK client and its connection pool."""
        await self._client.close()


@dataclass(slots=True)
class _TokenCount:
    """Token counts as the stream reports them: input at the start, output cumulatively."""

    input_tokens: int = 0
    output_tokens: int = 0

    def start(self, event: RawMessageStartEvent) -> None:
        usage = getattr(event.message, "usage", None)
        self.input_tokens = _input_tokens(usage)
        self.output_tokens = _int(getattr(usage, "output_tokens", None))

    def update(self, event: RawMessageDeltaEvent) -> None:
        usage = getattr(event, "usage", None)
        self.output_tokens = _int(getattr(usage, "output_tokens", None))
        # Counts in message_delta are cumulative; when present they supersede the start's.
        if getattr(usage, "input_tokens", None) is not None:
            self.input_tokens = _input_tokens(usage)

    def usage(self) -> Usage:
        return Usage(input_tokens=self.input_tokens, output_tokens=self.output_tokens)


def _int(value: object) -> int:
    """A token count, or 0 for a missing or malformed one (the SDK does not validate events)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _text_of(delta: object) -> str:
    """The text of a ``text_delta``; empty for thinking, signature and unknown deltas."""
    if getattr(delta, "type", None) != "text_delta":
        return ""
    text = getattr(delta, "text", None)
    return text if isinstance(text, str) else ""


def _input_tokens(usage: object) -> int:
    # Cached prompt tokens are billed input too; the API reports them apart from input_tokens.
    return sum(
        _int(getattr(usage, name, None))
        for name in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )


def _log_unusual_stop(stop_reason: str | None) -> None:
    if stop_reason == "max_tokens":
        logger.warning(
            "the Claude answer was cut at max_output_tokens; raise it for longer answers"
        )
    elif stop_reason == "refusal":
        logger.warning("Claude declined to answer this request")


def _anthropic_messages(request: ChatRequest) -> tuple[str, list[MessageParam]]:
    """Split the request into the ``system`` text and the user/assistant turns."""
    system = "\n\n".join(m.content for m in request.messages if m.role == "system")
    conversation: list[MessageParam] = []
    for message in request.messages:
        if message.role == "user":
            conversation.append({"role": "user", "content": message.content})
        elif message.role == "assistant":
            conversation.append({"role": "assistant", "content": message.content})
    if not conversation:
        conversation.append({"role": "user", "content": request.question})
    return system, conversation


def _map_error(exc: Exception) -> ProviderError:
    """Translate an Anthropic SDK or transport failure into the assistant's provider errors."""
    if isinstance(exc, anthropic.APIStatusError):
        return _map_status_error(exc)
    if isinstance(exc, (anthropic.APITimeoutError, httpx2.TimeoutException)):
        return ProviderUnavailableError(
            "Anthropic did not answer within the timeout; try again, or raise timeout_seconds "
            "if answers are long to start"
        )
    if isinstance(exc, (anthropic.APIConnectionError, httpx2.TransportError)):
        return ProviderUnavailableError(
            f"the connection to Anthropic failed or was cut ({type(exc).__name__}); check the "
            f"network and {BASE_URL_VARIABLE}, then ask again"
        )
    if isinstance(exc, ValueError):
        return ProviderUnavailableError(
            "Anthropic sent a malformed stream (an event that is not valid JSON); ask again, and "
            f"check {BASE_URL_VARIABLE} if a proxy sits in between"
        )
    return ProviderError(f"the Anthropic request failed ({type(exc).__name__}: {exc})")


def _map_status_error(exc: anthropic.APIStatusError) -> ProviderError:
    status = exc.status_code
    in_stream = status < 400
    if in_stream:
        status = _STATUS_OF_ERROR_TYPE.get(exc.type or "", 500)
    what = f"error type {exc.type}" if in_stream else f"HTTP {status}"
    detail = f"{what}: {exc.api_message}" if exc.api_message else what
    if status in (401, 403):
        return ProviderAuthError(
            f"Anthropic refused the credentials ({detail}); check {API_KEY_VARIABLE} and the "
            "key's workspace permissions"
        )
    if status == 402:
        return ProviderAuthError(
            f"Anthropic refused the request for billing reasons ({detail}); add credit to the "
            f"account behind {API_KEY_VARIABLE}"
        )
    if status == 429:
        return ProviderRateLimitError(
            f"Anthropic rate-limited the request ({detail}); wait a moment and ask again, or "
            "raise the account's rate limits"
        )
    if status in (408, 409) or status >= 500:
        return ProviderUnavailableError(
            f"Anthropic is unavailable or overloaded ({detail}); try again shortly"
        )
    if status == 404:
        return ProviderBadRequestError(
            f"Anthropic does not know the requested model or endpoint ({detail}); check the "
            "model name and the base URL"
        )
    return ProviderBadRequestError(
        f"Anthropic rejected the request ({detail}); check the model name, max_output_tokens "
        "and the prompt size"
    )
