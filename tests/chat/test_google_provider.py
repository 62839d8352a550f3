"""GoogleProvider: the real google-genai SDK over real HTTP against a local fake of Gemini."""

from __future__ import annotations

import asyncio
import doctest
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

import assistant.chat.providers.google as google_module
from assistant.chat.events import DoneEvent, TextDelta, Usage
from assistant.chat.provider import ChatRequest, Message
from assistant.chat.providers import ProviderOptions, provider_from_name
from assistant.chat.providers.google import DEFAULT_GOOGLE_MODEL, GoogleProvider
from assistant.errors import (
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderError,
    ProviderRateLimitError,
    ProviderUnavailableError,
)
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
REQUEST = ChatRequest(
    question="How long is the warranty?",
    sources=(),
    messages=(
        Message("system", "Answer from the sources."),
        Message("user", "Sources: [1] Two years.\n\nQuestion: How long is the warranty?"),
    ),
)
ANSWER = gemini_answer(["Two", " years", "."])
FIRST_TWO_CHUNKS = ANSWER[:2]
STREAM_PATH = f"/v1/models/{DEFAULT_GOOGLE_MODEL}:streamGenerateContent?alt=sse"


@dataclass
class Outcome:
    """What a consumer of the stream saw."""

    texts: list[str] = field(default_factory=list)
    done: DoneEvent | None = None
    error: ProviderError | None = None


async def consume(provider: GoogleProvider, request: ChatRequest = REQUEST) -> Outcome:
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
def fake() -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        yield server


@pytest.fixture
async def connect(fake: FakeGemini) -> AsyncIterator[Callable[..., GoogleProvider]]:
    """Build providers pointed at the fake, retrying without long waits; closed after the test."""
    built: list[GoogleProvider] = []

    def build(**overrides: Any) -> GoogleProvider:
        options: dict[str, Any] = {"api_key": API_KEY, "base_url": fake.api_base_url}
        provider = GoogleProvider(
            ProviderOptions(**(options | overrides)), retry_initial_delay_seconds=0.01
        )
        built.append(provider)
        return provider

    yield build
    for provider in built:
        await provider.aclose()


async def test_streams_the_text_deltas_then_the_reported_usage(
    fake: FakeGemini, connect: Callable[..., GoogleProvider]
) -> None:
    fake.script(Reply(frames=gemini_answer(["Two", " years", "."], prompt_tokens=40)))

    outcome = await consume(connect())

    assert outcome.error is None
    assert outcome.texts == ["Two", " years", "."], "the empty signature part is not yielded"
    # Output counts the answer's 9 tokens and the 4 thinking tokens, both billed as output.
    assert outcome.done == DoneEvent(Usage(40, 13), f"google:{DEFAULT_GOOGLE_MODEL}")


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

    request = fake.requests[0]
    assert outcome.done is not None and outcome.done.provider == "google:gemini-3.5-flash-lite"
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


async def test_the_registry_builds_it_by_name(fake: FakeGemini) -> None:
    environ = {"GEMINI_API_KEY": API_KEY, "GOOGLE_GEMINI_BASE_URL": fake.api_base_url}
    provider = provider_from_name("google", vendor_settings(environ), model=None, max_retries=0)

    assert isinstance(provider, GoogleProvider)
    assert provider.model == DEFAULT_GOOGLE_MODEL
    assert provider.max_retries == 0
    await provider.aclose()


@pytest.mark.parametrize("environ", [{}, {"GEMINI_API_KEY": "", "GOOGLE_API_KEY": ""}])
async def test_a_missing_key_fails_at_construction_naming_the_variable(
    environ: dict[str, str],
) -> None:
    with pytest.raises(ProviderAuthError, match="GEMINI_API_KEY"):
        provider_from_name("google", vendor_settings(environ), model=None)


@pytest.mark.parametrize(
    "reply",
    [
        gemini_error(
            400,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.",
            reason="API_KEY_INVALID",
        ),
        gemini_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."),
        gemini_error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers."),
    ],
    ids=["400-api-key-invalid", "401", "403"],
)
async def test_a_rejected_key_is_an_auth_error_without_retries(
    fake: FakeGemini, connect: Callable[..., GoogleProvider], reply: Reply
) -> None:
    fake.script(reply)

    outcome = await consume(connect())

    assert isinstance(outcome.error, ProviderAuthError)
    assert "GEMINI_API_KEY" in str(outcome.error)
    assert API_KEY not in str(outcome.error)
    assert len(fake.requests) == 1


async def test_rate_limits_are_retried_by_the_sdk_then_raised(
    fake: FakeGemini, connect: Callable[..., GoogleProvider]
) -> None:
    fake.script(
        gemini_error(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota.",
            headers=(("retry-after", "0"),),
        )
    )

    outcome = await consume(connect(max_retries=2))

    assert isinstance(outcome.error, ProviderRateLimitError)
    assert len(fake.requests) == 3


async def test_a_rate_limit_that_clears_never_reaches_the_consumer(
    fake: FakeGemini, connect: Callable[..., GoogleProvider]
) -> None:
    fake.script(gemini_error(429, "RESOURCE_EXHAUSTED", "quota"), Reply(frames=ANSWER))

    outcome = await consume(connect(max_retries=1))

    assert outcome.error is None and "".join(outcome.texts) == "Two years."
    assert len(fake.requests) == 2


@pytest.mark.parametrize(("code", "status"), [(500, "INTERNAL"), (503, "UNAVAILABLE")])
async def test_server_errors_are_unavailable(
    fake: FakeGemini, connect: Callable[..., GoogleProvider], code: int, status: str
) -> None:
    fake.script(gemini_error(code, status, "The model is overloaded. Please try again later."))

    outcome = await consume(connect(max_retries=1))

    assert isinstance(outcome.error, ProviderUnavailableError)
    assert len(fake.requests) == 2, "server errors are retried too"


@pytest.mark.parametrize(("code", "status"), [(400, "INVALID_ARGUMENT"), (404, "NOT_FOUND")])
async def test_rejected_requests_are_bad_requests(
    fake: FakeGemini, connect: Callable[..., GoogleProvider], code: int, status: str
) -> None:
    fake.script(gemini_error(code, status, "models/gemini-nonexistent is not found"))

    outcome = await consume(connect())

    assert isinstance(outcome.error, ProviderBadRequestError)
    assert len(fake.requests) == 1, "the SDK does not retry a rejected request"


async def test_an_error_inside_the_stream_keeps_the_text_already_sent(
    fake: FakeGemini, connect: Callable[..., GoogleProvider]
) -> None:
    error = gemini_event({"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}})
    fake.script(Reply(frames=(*FIRST_TWO_CHUNKS, error)))

    outcome = await consume(connect())

    assert outcome.texts == ["Two", " years"]
    assert isinstance(outcome.error, ProviderUnavailableError)


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


async def test_a_read_timeout_is_unavailable_and_quick(
    fake: FakeGemini, connect: Callable[..., GoogleProvider]
) -> None:
    fake.script(Reply(frames=ANSWER, delay_seconds=5.0))

    started = time.monotonic()
    outcome = await consume(connect(timeout_seconds=0.3, max_retries=0))

    assert isinstance(outcome.error, ProviderUnavailableError)
    assert "timeout" in str(outcome.error)
    assert time.monotonic() - started < 2.0


async def test_a_slow_but_steady_stream_is_not_cut_by_the_read_timeout(
    fake: FakeGemini, connect: Callable[..., GoogleProvider]
) -> None:
    fake.script(Reply(frames=ANSWER, frame_interval_seconds=0.15))

    started = time.monotonic()
    outcome = await consume(connect(timeout_seconds=0.3, max_retries=0))

    assert outcome.error is None and "".join(outcome.texts) == "Two years."
    assert time.monotonic() - started > 0.3, "the whole answer took longer than the timeout"


@pytest.mark.parametrize(
    ("garbage", "explanation"),
    [
        (b'data: {"candidates": [{"content\r\n\r\n', "malformed"),
        # The SDK drops a field of the wrong type, so the answer just never finishes.
        (b'data: {"candidates": "none today"}\r\n\r\n', "incomplete"),
    ],
    ids=["not-json", "wrong-shape"],
)
async def test_a_malformed_stream_is_unavailable(
    fake: FakeGemini, connect: Callable[..., GoogleProvider], garbage: bytes, explanation: str
) -> None:
    fake.script(Reply(frames=(*FIRST_TWO_CHUNKS, garbage)))

    outcome = await consume(connect())

    assert outcome.texts == ["Two", " years"]
    assert isinstance(outcome.error, ProviderUnavailableError)
    assert explanation in str(outcome.error)


async def test_a_connection_cut_mid_stream_keeps_the_text_then_raises(
    fake: FakeGemini, connect: Callable[..., GoogleProvider]
) -> None:
    fake.script(Reply(frames=FIRST_TWO_CHUNKS, after_frames="drop"))

    outcome = await consume(connect())

    assert outcome.texts == ["Two", " years"]
    assert isinstance(outcome.error, ProviderUnavailableError)
    assert outcome.done is None


async def test_a_stream_that_ends_without_a_finish_reason_is_incomplete(
    fake: FakeGemini, connect: Callable[..., GoogleProvider]
) -> None:
    fake.script(Reply(frames=FIRST_TWO_CHUNKS, after_frames="end"))

    outcome = await consume(connect())

    assert outcome.texts == ["Two", " years"]
    assert isinstance(outcome.error, ProviderUnavailableError)
    assert "finish reason" in str(outcome.error)


async def test_a_consumer_that_stops_early_closes_the_request(
    fake: FakeGemini, connect: Callable[..., GoogleProvider]
) -> None:
    fake.script(Reply(frames=FIRST_TWO_CHUNKS, after_frames="hold"))
    stream = connect().stream(REQUEST)
    assert isinstance(stream, AsyncGenerator)

    first = await anext(stream)
    assert first == TextDelta("Two")
    assert not fake.disconnected.is_set()
    await stream.aclose()

    assert await asyncio.to_thread(fake.disconnected.wait, 3.0)


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
