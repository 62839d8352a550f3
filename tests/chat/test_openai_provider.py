"""OpenAIProvider against a local server that speaks the Chat Completions streaming protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from assistant.chat.events import DoneEvent, TextDelta, Usage
from assistant.chat.provider import ChatRequest, Message, ProviderEvent
from assistant.chat.providers import provider_from_name
from assistant.chat.providers.openai import OpenAIProvider
from assistant.errors import (
    ProviderBadRequestError,
    ProviderUnavailableError,
)
from tests.chat.building import building
from tests.chat.fake_openai import FakeOpenAIServer, Raw
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
    async with building(
        OpenAIProvider,
        api_key=API_KEY,
        base_url=fake.url,
        max_retries=0,
        timeout_seconds=5.0,
        connect_timeout_seconds=2.0,
    ) as build:
        yield build


async def collect(
    provider: OpenAIProvider, received: list[ProviderEvent], request: ChatRequest = REQUEST
) -> None:
    """Drain the stream into ``received`` so events survive an exception."""
    async for event in provider.stream(request):
        received.append(event)


def text_of(events: list[ProviderEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


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


async def test_refused_connection_is_unavailable(
    make_provider: Callable[..., OpenAIProvider],
) -> None:
    closed_port_url = f"http://127.0.0.1:{free_loopback_port()}/v1"

    with pytest.raises(ProviderUnavailableError, match="connection"):
        await collect(make_provider(base_url=closed_port_url), [])


@pytest.mark.parametrize(
    "tail",
    [
        b"data: 42\n\n",
        b'data: {"choices": 5}\n\n',
        b'data: {"choices": [{"index": 0, "delta": {"content": 7}}]}\n\n',
    ],
    ids=["not-an-object", "choices-not-a-list", "content-not-text"],
)
async def test_malformed_stream_is_unavailable_after_the_good_part(
    tail: bytes, fake: FakeOpenAIServer, make_provider: Callable[..., OpenAIProvider]
) -> None:
    fake.script(Raw(("Partial ",), tail))
    received: list[ProviderEvent] = []

    with pytest.raises(ProviderUnavailableError, match="malformed stream"):
        await collect(make_provider(), received)

    assert text_of(received) == "Partial "


async def test_request_without_messages_is_refused_before_any_call(
    fake: FakeOpenAIServer, make_provider: Callable[..., OpenAIProvider]
) -> None:
    with pytest.raises(ProviderBadRequestError, match="messages"):
        await collect(make_provider(), [], ChatRequest("A question", ()))

    assert fake.requests == []
