"""The provider contract, run against every adapter (each with its wire fake) and FakeProvider."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, Literal

import pytest

from assistant.chat.events import Usage
from assistant.chat.provider import ChatProvider
from assistant.chat.providers import ProviderOptions
from assistant.chat.providers.anthropic import AnthropicProvider
from assistant.chat.providers.google import GoogleProvider
from assistant.chat.providers.openai import OpenAIProvider
from assistant.errors import (
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderRateLimitError,
    ProviderUnavailableError,
)
from assistant.testing import FakeProvider, FakeReply
from assistant.testing.provider_contract import (
    REJECTION,
    Answer,
    Drop,
    Failure,
    Malformed,
    ProviderContract,
    ProviderHarness,
    Stall,
    Step,
    StreamError,
    Truncated,
    consume,
)
from tests.chat import fake_anthropic, fake_google, fake_openai

QUICK_RETRY = (("retry-after", "0"), ("retry-after-ms", "10"))


class _Built:
    """Providers built by a harness, closed after the test."""

    def __init__(self) -> None:
        self.providers: list[Any] = []

    def keep(self, provider: Any) -> Any:
        self.providers.append(provider)
        return provider

    async def close(self) -> None:
        for provider in self.providers:
            await provider.aclose()


class OpenAIHarness(_Built):
    key_variable = "OPENAI_API_KEY"
    secret = "sk-test-0123456789abcdef"
    stream_error_detail = "overloaded"
    incomplete_detail = "ended before the answer was complete"

    def __init__(self, server: fake_openai.FakeOpenAIServer) -> None:
        super().__init__()
        self.server = server

    def build(self, *, max_retries: int = 0, timeout_seconds: float = 5.0) -> ChatProvider:
        options = ProviderOptions(
            api_key=self.secret,
            base_url=self.server.url,
            max_retries=max_retries,
            timeout_seconds=timeout_seconds,
        )
        return self.keep(OpenAIProvider(options))  # type: ignore[no-any-return]

    def build_without_key(self) -> None:
        self.keep(OpenAIProvider(ProviderOptions(base_url=self.server.url)))

    def script(self, *steps: Step) -> None:
        self.server.script(*(self._behaviour(step) for step in steps))

    def _behaviour(self, step: Step) -> fake_openai.Behaviour:
        if isinstance(step, Answer):
            return fake_openai.Stream(
                step.pieces,
                step.input_tokens,
                step.output_tokens,
                interval_seconds=step.interval_seconds,
            )
        if isinstance(step, Failure):
            return {
                "auth": fake_openai.Fail(
                    401,
                    f"Incorrect API key provided: {self.secret[:8]}****",
                    "invalid_request_error",
                ),
                "rate_limit": fake_openai.Fail(429, "Rate limit reached", "requests", QUICK_RETRY),
                "unavailable": fake_openai.Fail(step.status or 500, headers=QUICK_RETRY),
                "bad_request": fake_openai.Fail(
                    step.status or 400, REJECTION, "invalid_request_error"
                ),
            }[step.kind]
        if isinstance(step, Stall):
            return fake_openai.Stall(10.0)
        if isinstance(step, Malformed):
            return fake_openai.Raw(step.pieces, b"data: {not json\n\n")
        if isinstance(step, StreamError):
            overloaded = b'data: {"error": {"message": "The engine is overloaded"}}\n\n'
            return fake_openai.Raw(step.pieces, overloaded)
        if isinstance(step, Truncated):
            return fake_openai.Drop(step.pieces, chunked=False)
        if isinstance(step, Drop):
            return fake_openai.Drop(step.pieces)
        return fake_openai.Trickle(deltas=step.pieces)

    def attempts(self) -> int:
        return len(self.server.requests)

    async def wait_disconnected(self, timeout_seconds: float) -> bool:
        return await asyncio.to_thread(self.server.disconnected.wait, timeout_seconds)


class _ScriptedHarness(_Built):
    """Shared by the Anthropic and Gemini fakes (both are ``ScriptedServer``s)."""

    server: fake_anthropic.ScriptedServer

    def script(self, *steps: Step) -> None:
        self.server.script(*(self._reply(step) for step in steps))

    def _reply(self, step: Step) -> fake_anthropic.Reply:
        raise NotImplementedError

    def attempts(self) -> int:
        return len(self.server.requests)

    async def wait_disconnected(self, timeout_seconds: float) -> bool:
        return await asyncio.to_thread(self.server.disconnected.wait, timeout_seconds)


class AnthropicHarness(_ScriptedHarness):
    key_variable = "ANTHROPIC_API_KEY"
    secret = "sk-ant-api03-test-key"
    stream_error_detail = "overloaded_error"
    incomplete_detail = "message_stop"

    def __init__(self, server: fake_anthropic.FakeAnthropic) -> None:
        super().__init__()
        self.server = server

    def build(self, *, max_retries: int = 0, timeout_seconds: float = 5.0) -> ChatProvider:
        options = ProviderOptions(
            api_key=self.secret,
            base_url=self.server.base_url,
            max_retries=max_retries,
            timeout_seconds=timeout_seconds,
        )
        return self.keep(AnthropicProvider(options))  # type: ignore[no-any-return]

    def build_without_key(self) -> None:
        self.keep(AnthropicProvider(ProviderOptions(base_url=self.server.base_url)))

    def _reply(self, step: Step) -> fake_anthropic.Reply:
        if isinstance(step, Answer):
            frames = fake_anthropic.anthropic_answer(
                list(step.pieces), input_tokens=step.input_tokens, output_tokens=step.output_tokens
            )
            return fake_anthropic.Reply(frames=frames, frame_interval_seconds=step.interval_seconds)
        if isinstance(step, Failure):
            return _anthropic_failure(step)
        if isinstance(step, Stall):
            return fake_anthropic.Reply(frames=(), delay_seconds=10.0)
        head = _frames_through(fake_anthropic.anthropic_answer(list(step.pieces)), step.pieces[-1])
        if isinstance(step, Malformed):
            garbage = b'event: content_block_delta\ndata: {"type": "content_block_delta", "ind\n\n'
            return fake_anthropic.Reply(frames=(*head, garbage))
        if isinstance(step, StreamError):
            overloaded = fake_anthropic.anthropic_stream_error("overloaded_error", "Overloaded")
            return fake_anthropic.Reply(frames=(*head, overloaded))
        return fake_anthropic.Reply(frames=head, after_frames=_after_frames(step))


def _anthropic_failure(step: Failure) -> fake_anthropic.Reply:
    quick = (("retry-after-ms", "10"),)
    if step.kind == "auth":
        return fake_anthropic.anthropic_error(401, "authentication_error", "invalid x-api-key")
    if step.kind == "rate_limit":
        return fake_anthropic.anthropic_error(429, "rate_limit_error", "slow down", headers=quick)
    if step.kind == "unavailable":
        status = step.status or 500
        return fake_anthropic.anthropic_error(status, "api_error", "Internal error", headers=quick)
    status = step.status or 400
    error_type = {404: "not_found_error", 413: "request_too_large"}.get(
        status, "invalid_request_error"
    )
    return fake_anthropic.anthropic_error(status, error_type, REJECTION)


def _after_frames(step: Step) -> Literal["end", "drop", "hold"]:
    """How a stream cut short after its first pieces ends, per contract step."""
    if isinstance(step, Truncated):
        return "end"
    return "drop" if isinstance(step, Drop) else "hold"


def _frames_through(frames: tuple[bytes, ...], text: str) -> tuple[bytes, ...]:
    marker = json.dumps({"type": "text_delta", "text": text}).encode()
    end = next(index for index, frame in enumerate(frames) if marker in frame)
    return frames[: end + 1]


class GeminiHarness(_ScriptedHarness):
    key_variable = "GEMINI_API_KEY"
    secret = "AIzaSy-test-key"
    stream_error_detail = "overloaded"
    incomplete_detail = "finish reason"

    def __init__(self, server: fake_google.FakeGemini) -> None:
        super().__init__()
        self.gemini = server
        self.server = server

    def build(self, *, max_retries: int = 0, timeout_seconds: float = 5.0) -> ChatProvider:
        options = ProviderOptions(
            api_key=self.secret,
            base_url=self.gemini.api_base_url,
            max_retries=max_retries,
            timeout_seconds=timeout_seconds,
        )
        provider = GoogleProvider(options, retry_initial_delay_seconds=0.01)
        return self.keep(provider)  # type: ignore[no-any-return]

    def build_without_key(self) -> None:
        self.keep(GoogleProvider(ProviderOptions(base_url=self.gemini.api_base_url)))

    def _reply(self, step: Step) -> fake_anthropic.Reply:
        if isinstance(step, Answer):
            frames = fake_google.gemini_answer(
                list(step.pieces),
                prompt_tokens=step.input_tokens,
                candidate_tokens=step.output_tokens,
                thought_tokens=0,
            )
            return fake_google.Reply(frames=frames, frame_interval_seconds=step.interval_seconds)
        if isinstance(step, Failure):
            return _gemini_failure(step)
        if isinstance(step, Stall):
            return fake_google.Reply(frames=(), delay_seconds=10.0)
        head = fake_google.gemini_answer(list(step.pieces))[: len(step.pieces)]
        if isinstance(step, Malformed):
            return fake_google.Reply(frames=(*head, b'data: {"candidates": [{"content\r\n\r\n'))
        if isinstance(step, StreamError):
            error = {"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}
            return fake_google.Reply(frames=(*head, fake_google.gemini_event(error)))
        return fake_google.Reply(frames=head, after_frames=_after_frames(step))


def _gemini_failure(step: Failure) -> fake_anthropic.Reply:
    if step.kind == "auth":
        return fake_google.gemini_error(401, "UNAUTHENTICATED", "invalid credentials")
    if step.kind == "rate_limit":
        return fake_google.gemini_error(
            429, "RESOURCE_EXHAUSTED", "quota", headers=(("retry-after", "0"),)
        )
    if step.kind == "unavailable":
        status = step.status or 500
        code = {503: "UNAVAILABLE"}.get(status, "INTERNAL")
        return fake_google.gemini_error(status, code, "The model is overloaded.")
    status = step.status or 400
    code = {404: "NOT_FOUND"}.get(status, "INVALID_ARGUMENT")
    return fake_google.gemini_error(status, code, REJECTION)


class FakeProviderHarness(_Built):
    """Scripts ``FakeProvider`` in the contract's terms."""

    key_variable = "FAKE_PROVIDER_API_KEY"
    secret = "fake-key"
    stream_error_detail = "overloaded"
    incomplete_detail = "the answer was complete"

    def __init__(self, provider_class: type[FakeProvider] = FakeProvider) -> None:
        super().__init__()
        self.provider_class = provider_class
        self.replies: list[FakeReply] = [FakeReply()]

    def build(self, *, max_retries: int = 0, timeout_seconds: float = 5.0) -> ChatProvider:
        provider = self.provider_class(
            self.replies, max_retries=max_retries, timeout_seconds=timeout_seconds
        )
        return self.keep(provider)  # type: ignore[no-any-return]

    def build_without_key(self) -> None:
        self.keep(self.provider_class(api_key=None))

    def script(self, *steps: Step) -> None:
        self.replies = [self._reply(step) for step in steps]
        for provider in self.providers:
            provider.script(*self.replies)

    @staticmethod
    def _reply(step: Step) -> FakeReply:
        if isinstance(step, Answer):
            usage = Usage(step.input_tokens, step.output_tokens)
            return FakeReply(step.pieces, usage, interval_seconds=step.interval_seconds)
        if isinstance(step, Failure):
            error = {
                "auth": ProviderAuthError("refused the key: check FAKE_PROVIDER_API_KEY"),
                "rate_limit": ProviderRateLimitError("rate-limited (HTTP 429)"),
                "unavailable": ProviderUnavailableError(f"failed with HTTP {step.status or 500}"),
                "bad_request": ProviderBadRequestError(
                    f"rejected the request (HTTP {step.status or 400}): {REJECTION}"
                ),
            }[step.kind]
            return FakeReply((), error=error)
        if isinstance(step, Stall):
            return FakeReply(delay_seconds=10.0)
        if isinstance(step, Malformed):
            return FakeReply(step.pieces, error=ProviderUnavailableError("a malformed stream"))
        if isinstance(step, StreamError):
            return FakeReply(step.pieces, error=ProviderUnavailableError("fake is overloaded"))
        if isinstance(step, Truncated):
            incomplete = "the fake stream ended before the answer was complete"
            return FakeReply(step.pieces, error=ProviderUnavailableError(incomplete))
        if isinstance(step, Drop):
            return FakeReply(step.pieces, error=ProviderUnavailableError("connection lost"))
        return FakeReply(step.pieces, hold=True)

    def attempts(self) -> int:
        return sum(provider.attempts for provider in self.providers)

    async def wait_disconnected(self, timeout_seconds: float) -> bool:
        deadline = asyncio.get_running_loop().time() + timeout_seconds
        while asyncio.get_running_loop().time() < deadline:
            if any(provider.streams_closed_early for provider in self.providers):
                return True
            await asyncio.sleep(0.01)
        return False


class TestOpenAI(ProviderContract):
    @pytest.fixture
    async def harness(self) -> AsyncIterator[ProviderHarness]:
        with fake_openai.FakeOpenAIServer() as server:
            harness = OpenAIHarness(server)
            yield harness
            await harness.close()


class TestAnthropic(ProviderContract):
    @pytest.fixture
    async def harness(self) -> AsyncIterator[ProviderHarness]:
        with fake_anthropic.FakeAnthropic() as server:
            harness = AnthropicHarness(server)
            yield harness
            await harness.close()


class TestGemini(ProviderContract):
    @pytest.fixture
    async def harness(self) -> AsyncIterator[ProviderHarness]:
        with fake_google.FakeGemini() as server:
            harness = GeminiHarness(server)
            yield harness
            await harness.close()


class TestFakeProvider(ProviderContract):
    @pytest.fixture
    async def harness(self) -> AsyncIterator[ProviderHarness]:
        harness = FakeProviderHarness()
        yield harness
        await harness.close()


class _ForgetsTheDoneEvent(FakeProvider):
    """A broken provider: its stream ends without a ``DoneEvent``."""

    async def stream(self, request: Any) -> AsyncIterator[Any]:
        async for event in super().stream(request):
            if type(event).__name__ != "DoneEvent":
                yield event


class _KeepsStreamsOpen(FakeProvider):
    """A broken provider: it swallows the consumer's close and never hangs up."""

    async def stream(self, request: Any) -> AsyncIterator[Any]:
        self.requests.append(request)
        yield await asyncio.sleep(0, result=_first_delta())
        while True:
            try:
                await asyncio.sleep(3600)
            except GeneratorExit:  # pragma: no cover - the point is to misbehave
                return


def _first_delta() -> Any:
    from assistant.chat.events import TextDelta

    return TextDelta("Two")


async def test_the_suite_catches_a_provider_without_a_done_event() -> None:
    harness = FakeProviderHarness(_ForgetsTheDoneEvent)
    try:
        with pytest.raises(AssertionError):
            await ProviderContract().test_streams_text_deltas_then_one_done_with_usage(harness)
    finally:
        await harness.close()


async def test_the_suite_catches_a_provider_that_never_closes_its_stream() -> None:
    harness = FakeProviderHarness(_KeepsStreamsOpen)
    try:
        with pytest.raises(AssertionError):
            await ProviderContract().test_a_consumer_that_stops_early_closes_the_stream(harness)
    finally:
        await harness.close()


async def test_consume_keeps_the_text_before_an_error() -> None:
    provider = FakeProvider([FakeReply(("a", "b"), error=ProviderUnavailableError("cut"))])

    outcome = await consume(provider)

    assert outcome.texts == ["a", "b"] and isinstance(outcome.error, ProviderUnavailableError)
