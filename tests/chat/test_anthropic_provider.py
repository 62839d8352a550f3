"""AnthropicProvider: the real SDK over real HTTP against a local fake of the Messages API."""

from __future__ import annotations

import asyncio
import doctest
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

import assistant.chat.providers.anthropic as anthropic_module
from assistant.chat.events import DoneEvent, TextDelta, Usage
from assistant.chat.provider import ChatRequest, Message
from assistant.chat.providers import ProviderOptions, provider_from_name
from assistant.chat.providers.anthropic import DEFAULT_ANTHROPIC_MODEL, AnthropicProvider
from assistant.errors import (
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderError,
    ProviderRateLimitError,
    ProviderUnavailableError,
)
from tests.chat.fake_anthropic import (
    FakeAnthropic,
    Reply,
    anthropic_answer,
    anthropic_error,
    anthropic_event,
    anthropic_stream_error,
)
from tests.support.settings import vendor_settings

API_KEY = "sk-ant-api03-test-key"
REQUEST = ChatRequest(
    question="How long is the warranty?",
    sources=(),
    messages=(
        Message("system", "Answer from the sources."),
        Message("user", "Sources: [1] Two years.\n\nQuestion: How long is the warranty?"),
    ),
)
ANSWER = anthropic_answer(["Two", " years", "."], input_tokens=40, output_tokens=7)


def frames_through(frames: tuple[bytes, ...], text: str) -> tuple[bytes, ...]:
    """The frames up to and including the text delta that carries ``text``."""
    marker = json.dumps({"type": "text_delta", "text": text}).encode()
    end = next(index for index, frame in enumerate(frames) if marker in frame)
    return frames[: end + 1]


FIRST_TWO_DELTAS = frames_through(ANSWER, " years")


@dataclass
class Outcome:
    """What a consumer of the stream saw."""

    texts: list[str] = field(default_factory=list)
    done: DoneEvent | None = None
    error: ProviderError | None = None


async def consume(provider: AnthropicProvider, request: ChatRequest = REQUEST) -> Outcome:
    outcome = Outcome()
    try:
        async for event in provider.stream(request):
            if isinstance(event, TextDelta):
                outcome.texts.append(event.text)
            elif isinstance(event, DoneEvent):
                outcome.done = event
    except ProviderError as exc:
        outcome.error = exc
    return outcome


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
async def connect(fake: FakeAnthropic) -> AsyncIterator[Callable[..., AnthropicProvider]]:
    """Build providers pointed at the fake; closed after the test."""
    built: list[AnthropicProvider] = []

    def build(**overrides: Any) -> AnthropicProvider:
        options: dict[str, Any] = {"api_key": API_KEY, "base_url": fake.base_url}
        provider = AnthropicProvider(ProviderOptions(**(options | overrides)))
        built.append(provider)
        return provider

    yield build
    for provider in built:
        await provider.aclose()


async def test_streams_the_text_deltas_then_the_reported_usage(
    fake: FakeAnthropic, connect: Callable[..., AnthropicProvider]
) -> None:
    fake.script(Reply(frames=anthropic_answer(["Two", " years", "."], input_tokens=40)))

    outcome = await consume(connect())

    assert outcome.error is None
    assert "".join(outcome.texts) == "Two years."
    assert outcome.texts == ["Two", " years", "."], "the thinking block is not part of the answer"
    assert outcome.done == DoneEvent(Usage(40, 12), f"anthropic:{DEFAULT_ANTHROPIC_MODEL}")


async def test_sends_the_system_prompt_apart_and_streams(
    fake: FakeAnthropic, connect: Callable[..., AnthropicProvider]
) -> None:
    await consume(connect())

    (request,) = fake.requests
    assert request.path == "/v1/messages"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert "anthropic-version" in request.headers
    assert request.body == {
        "model": DEFAULT_ANTHROPIC_MODEL,
        "max_tokens": 4096,
        "stream": True,
        "system": "Answer from the sources.",
        "messages": [
            {
                "role": "user",
                "content": "Sources: [1] Two years.\n\nQuestion: How long is the warranty?",
            }
        ],
    }


async def test_sends_conversation_turns_temperature_and_token_limit(
    fake: FakeAnthropic, connect: Callable[..., AnthropicProvider]
) -> None:
    provider = connect(model="claude-haiku-5-5", temperature=0.2, max_output_tokens=300)
    conversation = ChatRequest(
        "And in France?",
        (),
        (
            Message("user", "How long is the warranty?"),
            Message("assistant", "Two years [1]."),
            Message("user", "And in France?"),
        ),
    )

    outcome = await consume(provider, conversation)

    body = fake.requests[0].body
    assert outcome.done is not None and outcome.done.provider == "anthropic:claude-haiku-5-5"
    assert body["model"] == "claude-haiku-5-5"
    assert body["temperature"] == 0.2
    assert body["max_tokens"] == 300
    assert "system" not in body
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]


async def test_a_request_without_messages_asks_the_question(
    fake: FakeAnthropic, connect: Callable[..., AnthropicProvider]
) -> None:
    await consume(connect(), ChatRequest("What is the refund policy?", ()))

    assert fake.requests[0].body["messages"] == [
        {"role": "user", "content": "What is the refund policy?"}
    ]


async def test_cached_prompt_tokens_count_as_input(
    fake: FakeAnthropic, connect: Callable[..., AnthropicProvider]
) -> None:
    fake.script(Reply(frames=anthropic_answer(["Hi"], input_tokens=10, cache_read_input_tokens=90)))

    outcome = await consume(connect())

    assert outcome.done is not None and outcome.done.usage.input_tokens == 100


async def test_the_settings_give_the_vendor_variables(fake: FakeAnthropic) -> None:
    environ = {"ANTHROPIC_API_KEY": "sk-ant-from-env", "ANTHROPIC_BASE_URL": fake.base_url}
    provider = provider_from_name(
        "anthropic", vendor_settings(environ), model="claude-opus-5-5", max_output_tokens=64
    )
    assert isinstance(provider, AnthropicProvider)
    try:
        outcome = await consume(provider)
    finally:
        await provider.aclose()

    assert outcome.error is None
    assert fake.requests[0].headers["authorization"] == "Bearer sk-ant-from-env"
    assert fake.requests[0].body["model"] == "claude-opus-5-5"
    assert fake.requests[0].body["max_tokens"] == 64


async def test_the_registry_builds_it_by_name(fake: FakeAnthropic) -> None:
    environ = {"ANTHROPIC_API_KEY": API_KEY, "ANTHROPIC_BASE_URL": fake.base_url}
    provider = provider_from_name("anthropic", vendor_settings(environ), model=None, max_retries=0)

    assert isinstance(provider, AnthropicProvider)
    assert provider.model == DEFAULT_ANTHROPIC_MODEL
    assert provider.max_retries == 0
    await provider.aclose()


@pytest.mark.parametrize("environ", [{}, {"ANTHROPIC_API_KEY": ""}])
def test_a_missing_key_fails_at_construction_naming_the_variable(
    environ: dict[str, str],
) -> None:
    with pytest.raises(ProviderAuthError, match="ANTHROPIC_API_KEY"):
        provider_from_name("anthropic", vendor_settings(environ), model=None)


async def test_a_rejected_key_is_an_auth_error_without_retries(
    fake: FakeAnthropic, connect: Callable[..., AnthropicProvider]
) -> None:
    fake.script(anthropic_error(401, "authentication_error", "invalid x-api-key"))

    outcome = await consume(connect())

    assert isinstance(outcome.error, ProviderAuthError)
    assert "ANTHROPIC_API_KEY" in str(outcome.error)
    assert API_KEY not in str(outcome.error)
    assert len(fake.requests) == 1


async def test_rate_limits_are_retried_by_the_sdk_then_raised(
    fake: FakeAnthropic, connect: Callable[..., AnthropicProvider]
) -> None:
    fake.script(
        anthropic_error(
            429,
            "rate_limit_error",
            "Number of requests has exceeded your rate limit",
            headers=(("retry-after", "0"),),
        )
    )

    outcome = await consume(connect(max_retries=2))

    assert isinstance(outcome.error, ProviderRateLimitError)
    assert len(fake.requests) == 3
    retry_counts = [r.headers["x-stainless-retry-count"] for r in fake.requests]
    assert retry_counts == ["0", "1", "2"]


async def test_a_rate_limit_that_clears_never_reaches_the_consumer(
    fake: FakeAnthropic, connect: Callable[..., AnthropicProvider]
) -> None:
    fake.script(
        anthropic_error(429, "rate_limit_error", "slow down", headers=(("retry-after-ms", "10"),)),
        Reply(frames=ANSWER),
    )

    outcome = await consume(connect(max_retries=1))

    assert outcome.error is None and "".join(outcome.texts) == "Two years."
    first, second = fake.requests
    # Without the header the SDK would back off for at least 0.375 s.
    assert second.received_at - first.received_at < 0.3, "the 10 ms retry-after-ms was honoured"


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(500, "api_error"), (503, "api_error"), (529, "overloaded_error")],
)
async def test_server_errors_are_unavailable(
    fake: FakeAnthropic, connect: Callable[..., AnthropicProvider], status: int, error_type: str
) -> None:
    fake.script(anthropic_error(status, error_type, "Internal server error"))

    outcome = await consume(connect(max_retries=0))

    assert isinstance(outcome.error, ProviderUnavailableError)
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(400, "invalid_request_error"), (404, "not_found_error"), (413, "request_too_large")],
)
async def test_rejected_requests_are_bad_requests(
    fake: FakeAnthropic, connect: Callable[..., AnthropicProvider], status: int, error_type: str
) -> None:
    fake.script(anthropic_error(status, error_type, "model: claude-nonexistent"))

    outcome = await consume(connect())

    assert isinstance(outcome.error, ProviderBadRequestError)
    assert len(fake.requests) == 1, "the SDK does not retry a rejected request"


async def test_an_overloaded_error_inside_the_stream_keeps_the_text_already_sent(
    fake: FakeAnthropic, connect: Callable[..., AnthropicProvider]
) -> None:
    frames = (*FIRST_TWO_DELTAS, anthropic_stream_error("overloaded_error", "Overloaded"))
    fake.script(Reply(frames=frames))

    outcome = await consume(connect())

    assert outcome.texts == ["Two", " years"]
    assert isinstance(outcome.error, ProviderUnavailableError)
    assert "overloaded_error" in str(outcome.error)


async def test_a_read_timeout_is_unavailable_and_quick(
    fake: FakeAnthropic, connect: Callable[..., AnthropicProvider]
) -> None:
    fake.script(Reply(frames=ANSWER, delay_seconds=5.0))

    started = time.monotonic()
    outcome = await consume(connect(timeout_seconds=0.3, max_retries=0))

    assert isinstance(outcome.error, ProviderUnavailableError)
    assert "timeout" in str(outcome.error)
    assert time.monotonic() - started < 2.0


async def test_a_slow_but_steady_stream_is_not_cut_by_the_read_timeout(
    fake: FakeAnthropic, connect: Callable[..., AnthropicProvider]
) -> None:
    fake.script(Reply(frames=ANSWER, frame_interval_seconds=0.05))

    started = time.monotonic()
    outcome = await consume(connect(timeout_seconds=0.3, max_retries=0))

    assert outcome.error is None and "".join(outcome.texts) == "Two years."
    assert time.monotonic() - started > 0.3, "the whole answer took longer than the timeout"


async def test_a_malformed_stream_is_unavailable(
    fake: FakeAnthropic, connect: Callable[..., AnthropicProvider]
) -> None:
    garbage = b'event: content_block_delta\ndata: {"type": "content_block_delta", "ind\n\n'
    fake.script(Reply(frames=(*FIRST_TWO_DELTAS, garbage)))

    outcome = await consume(connect())

    assert outcome.texts == ["Two", " years"]
    assert isinstance(outcome.error, ProviderUnavailableError)
    assert "malformed" in str(outcome.error)


async def test_a_connection_cut_mid_stream_keeps_the_text_then_raises(
    fake: FakeAnthropic, connect: Callable[..., AnthropicProvider]
) -> None:
    fake.script(Reply(frames=FIRST_TWO_DELTAS, after_frames="drop"))

    outcome = await consume(connect())

    assert outcome.texts == ["Two", " years"]
    assert isinstance(outcome.error, ProviderUnavailableError)
    assert outcome.done is None


async def test_a_stream_that_ends_before_message_stop_is_incomplete(
    fake: FakeAnthropic, connect: Callable[..., AnthropicProvider]
) -> None:
    fake.script(Reply(frames=FIRST_TWO_DELTAS, after_frames="end"))

    outcome = await consume(connect())

    assert outcome.texts == ["Two", " years"]
    assert isinstance(outcome.error, ProviderUnavailableError)
    assert "message_stop" in str(outcome.error)


async def test_a_consumer_that_stops_early_closes_the_request(
    fake: FakeAnthropic, connect: Callable[..., AnthropicProvider]
) -> None:
    fake.script(Reply(frames=FIRST_TWO_DELTAS, after_frames="hold"))
    stream = connect().stream(REQUEST)
    assert isinstance(stream, AsyncGenerator)

    first = await anext(stream)
    assert first == TextDelta("Two")
    assert not fake.disconnected.is_set()
    await stream.aclose()

    assert await asyncio.to_thread(fake.disconnected.wait, 3.0)


async def test_unknown_events_and_deltas_are_ignored(
    fake: FakeAnthropic, connect: Callable[..., AnthropicProvider]
) -> None:
    novel_event = anthropic_event("future_event", {"type": "future_event", "detail": 1})
    novel_delta = anthropic_event(
        "content_block_delta",
        {"type": "content_block_delta", "index": 1, "delta": {"type": "future_delta", "n": 1}},
    )
    fake.script(
        Reply(
            frames=(
                ANSWER[0],
                novel_event,
                *FIRST_TWO_DELTAS[1:],
                novel_delta,
                *ANSWER[len(FIRST_TWO_DELTAS) :],
            )
        )
    )

    outcome = await consume(connect())

    assert outcome.error is None and "".join(outcome.texts) == "Two years."


def test_the_module_examples_run() -> None:
    assert doctest.testmod(anthropic_module).failed == 0
