"""OpenAIProvider against a local server that speaks the Chat Completions streaming protocol."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from assistant.chat.events import DoneEvent, TextDelta, Usage
from assistant.chat.provider import ChatRequest, Message, ProviderEvent
from assistant.chat.providers import ProviderOptions, provider_from_name
from assistant.chat.providers.openai import OpenAIProvider
from assistant.errors import (
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderRateLimitError,
    ProviderUnavailableError,
)
from tests.chat.fake_openai import Drop, Fail, FakeOpenAIServer, Raw, Stall, Stream, Trickle
from tests.support.servers import free_loopback_port
from tests.support.settings import vendor_settings

API_KEY = "sk-test-0123456789abcdef"

REQUEST = ChatRequest(
    question="How much does the Team plan cost?",
    sources=(),
    messages=(
        Message("system", "Answer from the numbered sources."),
        Message("user", "How much does the Team plan cost?"),
        Message("assistant", "Which currency?"),
        Message("user", "Euros."),
    ),
)

# Error responses ask for a 10 ms wait, so the SDK's retries run in milliseconds; `retry-after: 0`
# alone would leave the SDK to its own (half-second) backoff.
QUICK_RETRY = (("retry-after", "0"), ("retry-after-ms", "10"))


@pytest.fixture
def fake() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
async def make_provider(
    fake: FakeOpenAIServer,
) -> AsyncIterator[Callable[..., OpenAIProvider]]:
    built: list[OpenAIProvider] = []

    def build(**overrides: Any) -> OpenAIProvider:
        values: dict[str, Any] = {
            "api_key": API_KEY,
            "base_url": fake.url,
            "max_retries": 0,
            "timeout_seconds": 5.0,
            "connect_timeout_seconds": 2.0,
        }
        values.update(overrides)
        provider = OpenAIProvider(ProviderOptions(**values))
        built.append(provider)
        return provider

    yield build
    for provider in built:
        await provider.aclose()


async def collect(
    provider: OpenAIProvider, received: list[ProviderEvent], request: ChatRequest = REQUEST
) -> None:
    """Drain the stream into ``received`` so events survive an exception."""
    async for event in provider.stream(request):
        received.append(event)


def text_of(events: list[ProviderEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


async def test_streams_deltas_then_one_done_with_usage(
    fake: FakeOpenAIServer, make_provider: Callable[..., OpenAIProvider]
) -> None:
    fake.script(Stream(("The Team plan ", "costs €12 ", "per seat [1]."), 812, 9))
    provider = make_provider(temperature=0.2, max_output_tokens=300)
    received: list[ProviderEvent] = []

    await collect(provider, received)

    assert text_of(received) == "The Team plan costs €12 per seat [1]."
    assert all(isinstance(event, TextDelta) for event in received[:-1])
    assert received[-1] == DoneEvent(Usage(812, 9), "openai:gpt-4o-mini")


async def test_request_carries_model_messages_stream_flag_and_key(
    fake: FakeOpenAIServer, make_provider: Callable[..., OpenAIProvider]
) -> None:
    provider = make_provider(model="gpt-4.1-mini", temperature=0.2, max_output_tokens=300)

    await collect(provider, [])

    [sent] = fake.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.body["model"] == "gpt-4.1-mini"
    assert sent.body["messages"] == [
        {"role": "system", "content": "Answer from the numbered sources."},
        {"role": "user", "content": "How much does the Team plan cost?"},
        {"role": "assistant", "content": "Which currency?"},
        {"role": "user", "content": "Euros."},
    ]
    assert sent.body["stream"] is True
    assert sent.body["stream_options"] == {"include_usage": True}
    assert sent.body["temperature"] == 0.2
    assert sent.body["max_completion_tokens"] == 300
    assert "max_tokens" not in sent.body


async def test_unset_options_are_left_out_of_the_request(
    fake: FakeOpenAIServer, make_provider: Callable[..., OpenAIProvider]
) -> None:
    await collect(make_provider(), [])

    [sent] = fake.requests
    assert not {"temperature", "max_completion_tokens", "max_tokens"} & set(sent.body)


async def test_the_settings_give_the_vendor_variables(fake: FakeOpenAIServer) -> None:
    environ = {"OPENAI_API_KEY": "sk-from-env", "OPENAI_BASE_URL": fake.url}
    provider = provider_from_name("openai", vendor_settings(environ), model=None)
    assert isinstance(provider, OpenAIProvider)
    received: list[ProviderEvent] = []
    try:
        await collect(provider, received)
    finally:
        await provider.aclose()

    assert provider.base_url == fake.url
    assert fake.requests[0].headers["authorization"] == "Bearer sk-from-env"
    assert received[-1] == DoneEvent(Usage(), "openai:gpt-4o-mini")


@pytest.mark.parametrize("environ", [{}, {"OPENAI_API_KEY": ""}])
def test_missing_key_fails_at_construction_naming_the_variable(environ: dict[str, str]) -> None:
    with pytest.raises(ProviderAuthError, match="OPENAI_API_KEY"):
        provider_from_name("openai", vendor_settings(environ), model=None)


async def test_rejected_key_is_an_auth_error_that_does_not_echo_the_key(
    fake: FakeOpenAIServer, make_provider: Callable[..., OpenAIProvider]
) -> None:
    fake.script(
        Fail(401, f"Incorrect API key provided: {API_KEY[:8]}****", "invalid_request_error")
    )

    with pytest.raises(ProviderAuthError, match="OPENAI_API_KEY") as caught:
        await collect(make_provider(max_retries=2), [])

    assert API_KEY[:8] not in str(caught.value)
    assert len(fake.requests) == 1  # credentials are not retried


async def test_rate_limit_is_retried_by_the_sdk_then_raised(
    fake: FakeOpenAIServer, make_provider: Callable[..., OpenAIProvider]
) -> None:
    fake.script(Fail(429, "Rate limit reached", "requests", QUICK_RETRY))
    started = time.monotonic()

    with pytest.raises(ProviderRateLimitError):
        await collect(make_provider(max_retries=2), [])

    assert len(fake.requests) == 3
    assert time.monotonic() - started < 1.0  # waited as retry-after said, not the default backoff


async def test_rate_limit_then_success_streams_normally(
    fake: FakeOpenAIServer, make_provider: Callable[..., OpenAIProvider]
) -> None:
    fake.script(Fail(429, "Rate limit reached", "requests", QUICK_RETRY), Stream(("ok",)))
    received: list[ProviderEvent] = []

    await collect(make_provider(max_retries=2), received)

    assert text_of(received) == "ok"
    assert len(fake.requests) == 2


async def test_server_error_is_retried_then_unavailable(
    fake: FakeOpenAIServer, make_provider: Callable[..., OpenAIProvider]
) -> None:
    fake.script(Fail(500, headers=QUICK_RETRY))

    with pytest.raises(ProviderUnavailableError, match="HTTP 500"):
        await collect(make_provider(max_retries=1), [])

    assert len(fake.requests) == 2


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_rejected_request_is_a_bad_request_with_the_vendor_message(
    status: int, fake: FakeOpenAIServer, make_provider: Callable[..., OpenAIProvider]
) -> None:
    fake.script(Fail(status, "The model `gpt-nope` does not exist", "invalid_request_error"))

    with pytest.raises(ProviderBadRequestError, match="gpt-nope"):
        await collect(make_provider(max_retries=2), [])

    assert len(fake.requests) == 1


async def test_read_timeout_is_unavailable_quickly(
    fake: FakeOpenAIServer, make_provider: Callable[..., OpenAIProvider]
) -> None:
    fake.script(Stall(10.0))
    started = time.monotonic()

    with pytest.raises(ProviderUnavailableError, match="did not answer"):
        await collect(make_provider(timeout_seconds=0.3), [])

    assert time.monotonic() - started < 3.0


async def test_refused_connection_is_unavailable(
    make_provider: Callable[..., OpenAIProvider],
) -> None:
    closed_port_url = f"http://127.0.0.1:{free_loopback_port()}/v1"

    with pytest.raises(ProviderUnavailableError, match="connection"):
        await collect(make_provider(base_url=closed_port_url), [])


@pytest.mark.parametrize(
    "tail",
    [
        b"data: {not json\n\n",
        b"data: 42\n\n",
        b'data: {"choices": 5}\n\n',
        b'data: {"choices": [{"index": 0, "delta": {"content": 7}}]}\n\n',
    ],
    ids=["not-json", "not-an-object", "choices-not-a-list", "content-not-text"],
)
async def test_malformed_stream_is_unavailable_after_the_good_part(
    tail: bytes, fake: FakeOpenAIServer, make_provider: Callable[..., OpenAIProvider]
) -> None:
    fake.script(Raw(("Partial ",), tail))
    received: list[ProviderEvent] = []

    with pytest.raises(ProviderUnavailableError, match="malformed stream"):
        await collect(make_provider(), received)

    assert text_of(received) == "Partial "


async def test_error_event_inside_the_stream_is_unavailable(
    fake: FakeOpenAIServer, make_provider: Callable[..., OpenAIProvider]
) -> None:
    fake.script(Raw(("Partial ",), b'data: {"error": {"message": "The engine is overloaded"}}\n\n'))

    with pytest.raises(ProviderUnavailableError, match="overloaded"):
        await collect(make_provider(), [])


async def test_connection_dropped_mid_stream_keeps_the_text_then_raises(
    fake: FakeOpenAIServer, make_provider: Callable[..., OpenAIProvider]
) -> None:
    fake.script(Drop(("The Team plan ", "costs")))
    received: list[ProviderEvent] = []

    with pytest.raises(ProviderUnavailableError):
        await collect(make_provider(), received)

    assert text_of(received) == "The Team plan costs"
    assert not any(isinstance(event, DoneEvent) for event in received)


async def test_body_ending_before_the_finish_reason_is_unavailable(
    fake: FakeOpenAIServer, make_provider: Callable[..., OpenAIProvider]
) -> None:
    fake.script(Drop(("The Team plan ",), chunked=False))
    received: list[ProviderEvent] = []

    with pytest.raises(ProviderUnavailableError, match="ended before the answer was complete"):
        await collect(make_provider(), received)

    assert text_of(received) == "The Team plan "


async def test_closing_the_stream_disconnects_from_the_server(
    fake: FakeOpenAIServer, make_provider: Callable[..., OpenAIProvider]
) -> None:
    fake.script(Trickle())
    events = make_provider().stream(REQUEST)

    first = await anext(events)
    await events.aclose()  # type: ignore[attr-defined]

    assert first == TextDelta("tick ")
    assert await asyncio.to_thread(fake.disconnected.wait, 5.0)


async def test_cancelling_the_consumer_disconnects_from_the_server(
    fake: FakeOpenAIServer, make_provider: Callable[..., OpenAIProvider]
) -> None:
    fake.script(Trickle())
    provider = make_provider()
    received: list[ProviderEvent] = []
    consumer = asyncio.create_task(collect(provider, received))
    while not received:
        await asyncio.sleep(0.01)

    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer

    assert await asyncio.to_thread(fake.disconnected.wait, 5.0)


async def test_request_without_messages_is_refused_before_any_call(
    fake: FakeOpenAIServer, make_provider: Callable[..., OpenAIProvider]
) -> None:
    with pytest.raises(ProviderBadRequestError, match="messages"):
        await collect(make_provider(), [], ChatRequest("A question", ()))

    assert fake.requests == []
