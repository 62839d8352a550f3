"""The provider contract, run against every adapter (each with its wire fake) and FakeProvider."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from assistant.chat.events import Usage
from assistant.chat.provider import ChatProvider
from assistant.chat.providers import ProviderOptions
from assistant.chat.providers.anthropic import AnthropicProvider
from assistant.chat.providers.google import GoogleProvider
from assistant.chat.providers.openai import OpenAIProvider
from assistant.errors import ProviderAuthError, ProviderRateLimitError, ProviderUnavailableError
from assistant.testing import FakeProvider, FakeReply
from assistant.testing.provider_contract import (
    Answer,
    Drop,
    Failure,
    Malformed,
    ProviderContract,
    ProviderHarness,
    Stall,
    Step,
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
            return fake_openai.Stream(step.pieces, step.input_tokens, step.output_tokens)
        if isinstance(step, Failure):
            return {
                "auth": fake_openai.Fail(
                    401,
                    f"Incorrect API key provided: {self.secret[:8]}****",
                    "invalid_request_error",
                ),
                "rate_limit": fake_openai.Fail(429, "Rate limit reached", "requests", QUICK_RETRY),
                "unavailable": fake_openai.Fail(500, headers=QUICK_RETRY),
            }[step.kind]
        if isinstance(step, Stall):
            return fake_openai.Stall(10.0)
        if isinstance(step, Malformed):
            return fake_openai.Raw(step.pieces, b"data: {not json\n\n")
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
            return fake_anthropic.Reply(frames=frames)
        if isinstance(step, Failure):
            return {
                "auth": fake_anthropic.anthropic_error(
                    401, "authentication_error", "invalid x-api-key"
                ),
                "rate_limit": fake_anthropic.anthropic_error(
                    429, "rate_limit_error", "slow down", headers=(("retry-after-ms", "10"),)
                ),
                "unavailable": fake_anthropic.anthropic_error(500, "api_error", "Internal error"),
            }[step.kind]
        if isinstance(step, Stall):
            return fake_anthropic.Reply(frames=(), delay_seconds=10.0)
        head = _frames_through(fake_anthropic.anthropic_answer(list(step.pieces)), step.pieces[-1])
        if isinstance(step, Malformed):
            garbage = b'event: content_block_delta\ndata: {"type": "content_block_delta", "ind\n\n'
            return fake_anthropic.Reply(frames=(*head, garbage))
        return fake_anthropic.Reply(
            frames=head, after_frames="drop" if isinstance(step, Drop) else "hold"
        )


def _frames_through(frames: tuple[bytes, ...], text: str) -> tuple[bytes, ...]:
    marker = json.dumps({"type": "text_delta", "text": text}).encode()
    end = next(index for index, frame in enumerate(frames) if marker in frame)
    return frames[: end + 1]


class GeminiHarness(_ScriptedHarness):
    key_variable = "GEMINI_API_KEY"
    secret = "AIzaSy-test-key"

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
            return fake_google.Reply(frames=frames)
        if isinstance(step, Failure):
            return {
                "auth": fake_google.gemini_error(401, "UNAUTHENTICATED", "invalid credentials"),
                "rate_limit": fake_google.gemini_error(
                    429, "RESOURCE_EXHAUSTED", "quota", headers=(("retry-after", "0"),)
                ),
                "unavailable": fake_google.gemini_error(500, "INTERNAL", "overloaded"),
            }[step.kind]
        if isinstance(step, Stall):
            return fake_google.Reply(frames=(), delay_seconds=10.0)
        head = fake_google.gemini_answer(list(step.pieces))[: len(step.pieces)]
        if isinstance(step, Malformed):
            return fake_google.Reply(frames=(*head, b'data: {"candidates": [{"content\r\n\r\n'))
        return fake_google.Reply(
            frames=head, after_frames="drop" if isinstance(step, Drop) else "hold"
        )


class FakeProviderHarness(_Built):
    """Scripts ``FakeProvider`` in the contract's terms."""

    key_variable = "FAKE_PROVIDER_API_KEY"
    secret = "fake-key"

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
            return FakeReply(step.pieces, Usage(step.input_tokens, step.output_tokens))
        if isinstance(step, Failure):
            error = {
                "auth": ProviderAuthError("refused the key: check FAKE_PROVIDER_API_KEY"),
                "rate_limit": ProviderRateLimitError("rate-limited (HTTP 429)"),
                "unavailable": ProviderUnavailableError("failed with HTTP 500"),
            }[step.kind]
            return FakeReply((), error=error)
        if isinstance(step, Stall):
            return FakeReply(delay_seconds=10.0)
        if isinstance(step, Malformed):
            return FakeReply(step.pieces, error=ProviderUnavailableError("a malformed stream"))
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
