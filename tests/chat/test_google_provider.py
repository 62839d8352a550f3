"""GoogleProvider: the real google-genai SDK over real HTTP against a local fake of Gemini."""

from __future__ import annotations

import doctest
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator

import pytest

import assistant.chat.providers.google as google_module
from assistant.chat.events import DoneEvent, Usage
from assistant.chat.provider import ChatRequest
from assistant.chat.providers import ProviderOptions, provider_from_name
from assistant.chat.providers.google import DEFAULT_GOOGLE_MODEL, GoogleProvider
from assistant.errors import (
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderUnavailableError,
)
from assistant.testing.provider_contract import FOLLOW_UP, REQUEST, consume
from tests.chat.building import building
from tests.chat.fake_google import (
    FakeGemini,
    Reply,
    gemini_answer,
    gemini_chunk,
    gemini_error,
    gemini_event,
)
from tests.support.settings import vendor_settings

API_KEY = "AIzaSy-test-key"
ANSWER = gemini_answer(["Two", " years", "."])
FIRST_TWO_CHUNKS = ANSWER[:2]
STREAM_PATH = f"/v1/models/{DEFAULT_GOOGLE_MODEL}:streamGenerateContent?alt=sse"


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        yield server


@pytest.fixture
async def connect(fake: FakeGemini) -> AsyncIterator[Callable[..., GoogleProvider]]:
    """Build providers pointed at the fake, retrying without long waits; closed after the test."""

    def quick_retries(options: ProviderOptions) -> GoogleProvider:
        return GoogleProvider(options, retry_initial_delay_seconds=0.01)

    async with building(quick_retries, api_key=API_KEY, base_url=fake.api_base_url) as build:
        yield build


async def test_streams_the_text_deltas_then_the_reported_usage(
    fake: FakeGemini, connect: Callable[..., GoogleProvider]
) -> None:
    fake.script(Reply(frames=gemini_answer(["Two", " years", "."], prompt_tokens=40)))

    outcome = await consume(connect())

    assert outcome.error is None
    assert outcome.texts == ["Two", " years", "."], "the empty signature part is not yielded"
    # Output counts the answer's 9 tokens and the 4 thinking tokens, both billed as output.
    assert outcome.done == [DoneEvent(Usage(40, 13), f"google:{DEFAULT_GOOGLE_MODEL}")]


async def test_sends_the_system_instruction_apart_with_the_key_header(
    fake: FakeGemini, connect: Callable[..., GoogleProvider]
) -> None:
    await consume(connect())

    (request,) = fake.requests
    assert request.path == STREAM_PATH
    assert request.headers["x-goog-api-key"] == API_KEY
    assert request.body["systemInstruction"]["parts"] == [{"text": "Answer from the sources."}]
    assert request.body["contents"] == [
        {
            "role": "user",
            "parts": [{"text": "Sources: [1] Two years.\n\nQuestion: How long is the warranty?"}],
        }
    ]
    assert request.body.get("generationConfig", {}) == {}


async def test_sends_conversation_turns_temperature_and_token_limit(
    fake: FakeGemini, connect: Callable[..., GoogleProvider]
) -> None:
    provider = connect(model="gemini-3.5-flash-lite", temperature=0.2, max_output_tokens=300)
    outcome = await consume(provider, FOLLOW_UP)

    request = fake.requests[0]
    assert [done.provider for done in outcome.done] == ["google:gemini-3.5-flash-lite"]
    assert request.path.startswith("/v1/models/gemini-3.5-flash-lite:streamGenerateContent")
    assert request.body["generationConfig"] == {"temperature": 0.2, "maxOutputTokens": 300}
    assert "systemInstruction" not in request.body
    assert [c["role"] for c in request.body["contents"]] == ["user", "model", "user"]


async def test_a_request_without_messages_asks_the_question(
    fake: FakeGemini, connect: Callable[..., GoogleProvider]
) -> None:
    await consume(connect(), ChatRequest("What is the refund policy?", ()))

    assert fake.requests[0].body["contents"] == [
        {"role": "user", "parts": [{"text": "What is the refund policy?"}]}
    ]


async def test_thought_summaries_are_not_part_of_the_answer(
    fake: FakeGemini, connect: Callable[..., GoogleProvider]
) -> None:
    thought = gemini_event(gemini_chunk([{"text": "Checking source 1.", "thought": True}]))
    fake.script(Reply(frames=(thought, *ANSWER)))

    outcome = await consume(connect())

    assert "".join(outcome.texts) == "Two years."


@pytest.mark.parametrize(
    "environ",
    [
        {"GEMINI_API_KEY": "AIza-from-env"},
        {"GOOGLE_API_KEY": "AIza-from-env"},
        {"GEMINI_API_KEY": "AIza-from-env", "GOOGLE_API_KEY": "AIza-other"},
    ],
)
async def test_the_settings_give_the_vendor_variables(
    fake: FakeGemini, environ: dict[str, str]
) -> None:
    settings = vendor_settings(environ | {"GOOGLE_GEMINI_BASE_URL": fake.api_base_url})
    provider = provider_from_name("google", settings, model="gemini-3.6-flash")
    assert isinstance(provider, GoogleProvider)
    try:
        outcome = await consume(provider)
    finally:
        await provider.aclose()

    assert outcome.error is None
    assert fake.requests[0].headers["x-goog-api-key"] == "AIza-from-env"
    assert fake.requests[0].path.startswith("/v1/models/gemini-3.6-flash:")


@pytest.mark.parametrize(
    "reply",
    [
        gemini_error(
            400,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.",
            reason="API_KEY_INVALID",
        ),
        gemini_error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers."),
    ],
    ids=["400-api-key-invalid", "403"],
)
async def test_a_key_gemini_rejects_its_own_ways_is_an_auth_error_without_retries(
    fake: FakeGemini, connect: Callable[..., GoogleProvider], reply: Reply
) -> None:
    fake.script(reply)

    outcome = await consume(connect())

    assert isinstance(outcome.error, ProviderAuthError)
    assert "GEMINI_API_KEY" in str(outcome.error)
    assert API_KEY not in str(outcome.error)
    assert len(fake.requests) == 1


async def test_a_blocked_prompt_is_a_bad_request(
    fake: FakeGemini, connect: Callable[..., GoogleProvider]
) -> None:
    blocked = gemini_event(
        {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 8}}
    )
    fake.script(Reply(frames=(blocked,)))

    outcome = await consume(connect())

    assert isinstance(outcome.error, ProviderBadRequestError)
    assert "SAFETY" in str(outcome.error)


async def test_a_chunk_of_the_wrong_shape_leaves_the_answer_incomplete(
    fake: FakeGemini, connect: Callable[..., GoogleProvider]
) -> None:
    # The SDK drops a field of the wrong type, so the answer just never finishes.
    fake.script(Reply(frames=(*FIRST_TWO_CHUNKS, b'data: {"candidates": "none today"}\r\n\r\n')))

    outcome = await consume(connect())

    assert outcome.texts == ["Two", " years"]
    assert isinstance(outcome.error, ProviderUnavailableError)
    assert "incomplete" in str(outcome.error)


async def test_the_provider_keeps_working_after_a_consumer_stops_early(
    fake: FakeGemini, connect: Callable[..., GoogleProvider]
) -> None:
    fake.script(Reply(frames=FIRST_TWO_CHUNKS, after_frames="hold"), Reply(frames=ANSWER))
    provider = connect()
    stream = provider.stream(REQUEST)
    assert isinstance(stream, AsyncGenerator)
    await anext(stream)
    await stream.aclose()

    outcome = await consume(provider)

    assert outcome.error is None and "".join(outcome.texts) == "Two years."


def test_the_module_examples_run() -> None:
    assert doctest.testmod(google_module).failed == 0
