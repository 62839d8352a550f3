"""The OpenAI Chat Completions provider, also used for every OpenAI-compatible endpoint.

``OpenAIProvider`` streams an answer through the official ``openai`` SDK's async client: text
deltas as they arrive, then one ``DoneEvent`` with the token usage the stream reports (requested
with ``stream_options={"include_usage": True}``). Retries of 429, 5xx and timeouts are the SDK's
own (``max_retries``, honouring ``retry-after``); whatever still fails is translated to the
assistant's ``ProviderError`` tree in one place, ``_map_error``.

Usage::

    provider = OpenAIProvider(ProviderOptions(api_key=key))  # or provider_from_name("openai", ...)
    async for event in provider.stream(request):
        ...
    await provider.aclose()
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import openai
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam
from openai.types.chat.chat_completion_chunk import Choice, ChoiceDelta

from assistant.chat.events import DoneEvent, TextDelta, Usage
from assistant.chat.provider import ChatRequest, Message, ProviderEvent
from assistant.chat.providers.options import ProviderOptions
from assistant.chat.providers.presets import Preset, TokenLimitParameter
from assistant.errors import (
    ConfigError,
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderError,
    ProviderRateLimitError,
    ProviderUnavailableError,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MODEL",
    "OpenAIProvider",
]

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "gpt-4o-mini"
"""The model ``OpenAIProvider`` uses when none is configured."""

DEFAULT_BASE_URL = "https://api.openai.com/v1"
"""OpenAI's API root, used when ``OPENAI_BASE_URL`` is unset."""

# Local servers ignore the key, but the SDK refuses to send a request without one. Passing this
# also keeps the SDK from falling back to OPENAI_API_KEY, which must never reach another host.
_UNUSED_KEY = "unused"


@dataclass(frozen=True, slots=True)
class _Endpoint:
    """What an error message needs to say which provider failed and how to fix it."""

    provider: str
    base_url: str
    key_variable: str | None
    timeout_seconds: float


class OpenAIProvider:
    """Streams answers from an OpenAI Chat Completions endpoint.

    ``options.api_key`` is required unless ``key_variable`` is ``None`` (a local server); a
    missing key raises ``ProviderAuthError`` naming ``key_variable``. ``options.timeout_seconds``
    bounds each read (the wait for the next chunk). ``name`` is the
    provider's name in ``DoneEvent.provider`` (``"openai"`` or a preset's name).
    ``token_limit_parameter`` is the request field that carries ``max_output_tokens``.
    """

    def __init__(
        self,
        options: ProviderOptions,
        *,
        name: str = "openai",
        key_variable: str | None = "OPENAI_API_KEY",
        token_limit_parameter: TokenLimitParameter = "max_completion_tokens",
    ) -> None:
        api_key = options.key()
        if not api_key and key_variable is not None:
            raise ProviderAuthError(
                f"No API key for the {name} provider: set {key_variable} to your API key."
            )
        model = options.model or (DEFAULT_MODEL if name == "openai" else None)
        if not model:
            raise ConfigError(f"No model for the {name} provider: set ASSISTANT_MODEL.")
        self.name = name
        self.model = model
        self.base_url = options.base_url or DEFAULT_BASE_URL
        self.key_variable = key_variable
        self.max_retries = options.max_retries
        self._temperature = options.temperature
        self._max_output_tokens = options.max_output_tokens
        self._token_limit_parameter = token_limit_parameter
        self._endpoint = _Endpoint(name, self.base_url, key_variable, options.timeout_seconds)
        self._client = openai.AsyncOpenAI(
            api_key=api_key or _UNUSED_KEY,
            base_url=self.base_url,
            timeout=openai.Timeout(
                options.timeout_seconds, connect=options.connect_timeout_seconds
            ),
            max_retries=options.max_retries,
        )

    @classmethod
    def from_preset(cls, preset: Preset, options: ProviderOptions) -> OpenAIProvider:
        """Build a provider for an OpenAI-compatible preset.

        ``options.base_url`` (from the preset's base-URL variable) overrides the preset's URL
        and ``options.model`` its default model. Raises ``ProviderAuthError`` when the preset
        needs a key and ``options`` has none, and ``ConfigError`` when the preset has no
        default model and none is given.
        """
        chosen_model = options.model or preset.default_model
        if not chosen_model:
            raise ConfigError(
                f"The {preset.name} preset has no default model: set ASSISTANT_MODEL to the "
                "name of the model the server serves."
            )
        return cls(
            options.model_copy(
                update={
                    "model": chosen_model,
                    "base_url": options.base_url or preset.base_url,
                    # A local server needs no key; one configured for another vendor never goes.
                    "api_key": options.api_key if preset.key_variable else None,
                }
            ),
            name=preset.name,
            key_variable=preset.key_variable,
            token_limit_parameter=preset.token_limit_parameter,
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
        """Yield the answer's text deltas, then one ``DoneEvent`` with the reported usage.

        Raises a ``ProviderError`` subclass when the request fails or the stream breaks; text
        already yielded stays with the consumer. Closing the iterator closes the HTTP stream.
        """
        if not request.messages:
            raise ProviderBadRequestError(
                f"The {self.name} provider needs rendered messages; the request has none."
            )
        messages = [_message_param(message) for message in request.messages]
        limit = self._max_output_tokens if self._max_output_tokens is not None else openai.omit
        usage = Usage()
        finished = False
        try:
            chunks = await self._client.chat.completions.create(
                model=self.model,
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
                temperature=self._temperature if self._temperature is not None else openai.omit,
                max_completion_tokens=(
                    limit if self._token_limit_parameter == "max_completion_tokens" else openai.omit
                ),
                max_tokens=limit if self._token_limit_parameter == "max_tokens" else openai.omit,
            )
            # `async with` closes the HTTP response when the consumer stops early (aclose or
            # cancellation), so the server sees the disconnect and stops generating.
            async with chunks:
                async for chunk in chunks:
                    content = _read_chunk(chunk)
                    if content.usage is not None:
                        usage = content.usage
                    for text in content.texts:
                        yield TextDelta(text)
                    if content.finish_reason is not None:
                        finished = True
                        if content.finish_reason == "length":
                            logger.warning(
                                "%s:%s stopped at the output token limit", self.name, self.model
                            )
        except (openai.OpenAIError, ValueError) as exc:
            raise _map_error(exc, self._endpoint) from exc
        if not finished:
            # The SDK ends quietly when the body ends; without a finish reason the connection was
            # cut before the answer was complete.
            raise ProviderUnavailableError(
                f"The {self.name} stream ended before the answer was complete; retry the request."
            )
        if usage == Usage():
            logger.debug("%s:%s reported no token usage", self.name, self.model)
        yield DoneEvent(usage, f"{self.name}:{self.model}")

    async def aclose(self) -> None:
        """Close the HTTP client and its connections."""
        await self._client.close()


class _MalformedChunkError(ValueError):
    """A stream event that is JSON but not a chat completion chunk."""


@dataclass(frozen=True, slots=True)
class _ChunkContent:
    """What one stream chunk contributes to the answer."""

    texts: tuple[str, ...]
    finish_reason: str | None
    usage: Usage | None


def _read_chunk(chunk: object) -> _ChunkContent:
    """Check and extract one chunk.

    The SDK builds chunks without validating them, so a server that sends the wrong shapes would
    otherwise surface as attribute errors deep in the loop.
    """
    if not isinstance(chunk, ChatCompletionChunk) or not isinstance(chunk.choices, list):
        raise _MalformedChunkError("an event that is not a chat completion chunk")
    texts: list[str] = []
    finish_reason: str | None = None
    for choice in chunk.choices:
        if not isinstance(choice, Choice):
            raise _MalformedChunkError("a choice that is not an object")
        delta = choice.delta
        if delta is not None and not isinstance(delta, ChoiceDelta):
            raise _MalformedChunkError("a delta that is not an object")
        text = delta.content if delta is not None else None
        if text is not None and not isinstance(text, str):
            raise _MalformedChunkError("delta content that is not text")
        if text:
            texts.append(text)
        if choice.finish_reason is not None:
            finish_reason = str(choice.finish_reason)
    usage: Usage | None = None
    if chunk.usage is not None:
        prompt_tokens = getattr(chunk.usage, "prompt_tokens", None)
        completion_tokens = getattr(chunk.usage, "completion_tokens", None)
        if not isinstance(prompt_tokens, int) or not isinstance(completion_tokens, int):
            raise _MalformedChunkError("usage without token counts")
        usage = Usage(prompt_tokens, completion_tokens)
    return _ChunkContent(tuple(texts), finish_reason, usage)


def _message_param(message: Message) -> ChatCompletionMessageParam:
    """One of our messages in the SDK's request shape."""
    if message.role == "system":
        return {"role": "system", "content": message.content}
    if message.role == "assistant":
        return {"role": "assistant", "content": message.content}
    return {"role": "user", "content": message.content}


def _map_error(exc: Exception, endpoint: _Endpoint) -> ProviderError:
    """Translate an SDK (or malformed-stream) exception into the assistant's error tree.

    Auth messages never echo the vendor's text, which may quote part of the key.
    """
    provider = endpoint.provider
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status in (401, 403):
            fix = (
                f"check {endpoint.key_variable}"
                if endpoint.key_variable
                else f"check the server at {endpoint.base_url} accepts requests without a key"
            )
            return ProviderAuthError(f"{provider} refused the credentials (HTTP {status}): {fix}.")
        if status == 429:
            return ProviderRateLimitError(
                f"{provider} rate-limited the request (HTTP 429) after the client's retries; "
                "wait and retry, or raise the account's limits."
            )
        if status == 408 or status >= 500:
            return ProviderUnavailableError(
                f"{provider} failed with HTTP {status} after the client's retries; retry later."
            )
        return ProviderBadRequestError(
            f"{provider} rejected the request (HTTP {status}): {_vendor_message(exc)}. Check "
            "the model name and options."
        )
    if isinstance(exc, openai.APITimeoutError):
        return ProviderUnavailableError(
            f"{provider} did not answer within {endpoint.timeout_seconds:g} s; retry, or raise "
            "the timeout."
        )
    if isinstance(exc, openai.APIConnectionError):
        return ProviderUnavailableError(
            f"Lost or could not open the connection to {provider} at {endpoint.base_url}; check "
            "the server is running and reachable."
        )
    if isinstance(exc, openai.APIError):
        # An error event inside an otherwise successful stream.
        return ProviderUnavailableError(f"{provider} failed mid-stream: {_vendor_message(exc)}.")
    if isinstance(exc, ValueError):
        detail = "an event that is not JSON" if isinstance(exc, json.JSONDecodeError) else str(exc)
        return ProviderUnavailableError(
            f"{provider} sent a malformed stream ({detail}); check {endpoint.base_url} speaks "
            "the OpenAI Chat Completions protocol."
        )
    return ProviderError(f"{provider} failed: {type(exc).__name__}.")


def _vendor_message(exc: openai.APIError) -> str:
    """The vendor's own error message, trimmed to one short line."""
    text = " ".join(str(exc.message).split())
    return text[:300] if text else type(exc).__name__
