"""AnthropicProvider: the real SDK over real HTTP against a local fake of the Messages API."""

from __future__ import annotations

import doctest
import json
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

import assistant.chat.providers.anthropic as anthropic_module
from assistant.chat.events import DoneEvent, Usage
from assistant.chat.provider import ChatRequest
from assistant.chat.providers import provider_from_name
from assistant.chat.providers.anthropic import DEFAULT_ANTHROPIC_MODEL, AnthropicProvider
from assistant.errors import (
    ProviderRateLimitError,
    ProviderUnavailableError,
)
from assistant.testing.provider_contract import FOLLOW_UP, consume
from tests.chat.building import building
from tests.chat.fake_anthropic import (
    FakeAnthropic,
    Reply,
    anthropic_answer,
    anthropic_error,
    anthropic_event,
)
from tests.support.settings import vendor_settings

API_KEY = "sk-ant-api03-test-key"
ANSWER = anthropic_answer(["Two", " years", "."], input_tokens=40, output_tokens=7)


def frames_through(frames: tuple[bytes, ...], text: str) -> tuple[bytes, ...]:
    """The frames up to and including the text delta that carries ``text``."""
    marker = json.dumps({"type": "text_delta", "text": text}).encode()
    end = next(index for index, frame in enumerate(frames) if marker in frame)
    return frames[: end + 1]


FIRST_TWO_DELTAS = frames_through(ANSWER, " years")


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
async def connect(fake: FakeAnthropic) -> AsyncIterator[Callable[..., AnthropicProvider]]:
    """Build providers pointed at the fake; closed after the test."""
    async with building(AnthropicProvider, api_key=API_KEY, base_url=fake.base_url) as build:
        yield build


async def test_streams_the_text_deltas_then_the_reported_usage(
    fake: FakeAnthropic, connect: Callable[..., AnthropicProvider]
) -> None:
    fake.script(Reply(frames=anthropic_answer(["Two", " years", "."], input_tokens=40)))

    outcome = await consume(connect())

    assert outcome.error is None
    assert "".join(outcome.texts) == "Two years."
    assert outcome.texts == ["Two", " years", "."], "the thinking block is not part of the answer"
    assert outcome.done == [DoneEvent(Usage(40, 12), f"anthropic:{DEFAULT_ANTHROPIC_MODEL}")]


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
    outcome = await consume(provider, FOLLOW_UP)

    body = fake.requests[0].body
    assert [done.provider for done in outcome.done] == ["anthropic:claude-haiku-5-5"]
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

    assert [done.usage.input_tokens for done in outcome.done] == [100]


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


async def test_the_sdk_numbers_its_retries_of_a_rate_limit(
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


async def test_a_retry_waits_only_as_long_as_retry_after_ms_says(
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


async def test_an_overloaded_status_is_unavailable(
    fake: FakeAnthropic, connect: Callable[..., AnthropicProvider]
) -> None:
    # 529 is Anthropic's own "overloaded" status; the contract covers the standard 5xx ones.
    fake.script(anthropic_error(529, "overloaded_error", "Internal server error"))

    outcome = await consume(connect(max_retries=0))

    assert isinstance(outcome.error, ProviderUnavailableError)
    assert len(fake.requests) == 1


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
