"""The chat-provider contract: one pytest suite every provider (and every fake) must pass.

Subclass ``ProviderContract`` and give it a ``harness`` fixture: a ``ProviderHarness`` that
builds the provider under test and scripts what its server (or script) does next, in the
contract's own terms (``Answer``, ``Failure``, ``Stall``, ``Malformed``, ``StreamError``,
``Truncated``, ``Drop``, ``Hold``)::

    class TestMyProvider(ProviderContract):
        @pytest.fixture
        def harness(self) -> Iterator[ProviderHarness]:
            with MyHarness() as harness:
                yield harness

The suite checks the stream's shape and order (text deltas, then exactly one ``DoneEvent`` with
usage), that a slow but steady stream is not cut by the read timeout, the typed errors (auth,
rate limit with retry-after, server errors and rejected requests by status, timeout, malformed,
failed, truncated and dropped streams), that a missing key names its variable, and that a
consumer who stops early or is cancelled closes the stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Literal, Protocol

import pytest

from assistant.chat.events import DoneEvent, TextDelta
from assistant.chat.provider import ChatProvider, ChatRequest, Message, ProviderEvent
from assistant.errors import (
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderError,
    ProviderRateLimitError,
    ProviderUnavailableError,
)

__all__ = [
    "FOLLOW_UP",
    "REJECTION",
    "REQUEST",
    "Answer",
    "Drop",
    "Failure",
    "Hold",
    "Malformed",
    "Outcome",
    "ProviderContract",
    "ProviderHarness",
    "Stall",
    "Step",
    "StreamError",
    "Truncated",
    "consume",
]

REQUEST = ChatRequest(
    question="How long is the warranty?",
    sources=(),
    messages=(
        Message("system", "Answer from the sources."),
        Message("user", "Sources: [1] Two years.\n\nQuestion: How long is the warranty?"),
    ),
)
"""The request every contract test sends."""

FOLLOW_UP = ChatRequest(
    question="And in France?",
    sources=(),
    messages=(
        Message("user", "How long is the warranty?"),
        Message("assistant", "Two years [1]."),
        Message("user", "And in France?"),
    ),
)
"""A follow-up turn with no system message, for tests of how an adapter sends turns."""

REJECTION = "model contract-nonexistent is not known"
"""The vendor's message in a ``Failure("bad_request")``; the provider's error must relay it."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A complete answer streamed as ``pieces``, reporting the given token usage, with
    ``interval_seconds`` between two pieces (or two protocol events)."""

    pieces: tuple[str, ...] = ("Two", " years", ".")
    input_tokens: int = 40
    output_tokens: int = 7
    interval_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Failure:
    """An error status: 401, 429 (with a retry-after of a few milliseconds), a 5xx
    (``status``, 500 if unset) or a rejected request (``status``, 400 if unset, whose vendor
    message is ``REJECTION``)."""

    kind: Literal["auth", "rate_limit", "unavailable", "bad_request"]
    status: int | None = None


@dataclass(frozen=True, slots=True)
class Stall:
    """Accept the request and send nothing for longer than any test's timeout."""


@dataclass(frozen=True, slots=True)
class Malformed:
    """Stream ``pieces``, then something that is not the protocol's event."""

    pieces: tuple[str, ...] = ("Two", " years")


@dataclass(frozen=True, slots=True)
class StreamError:
    """Stream ``pieces``, then the protocol's own error event saying the service is overloaded."""

    pieces: tuple[str, ...] = ("Two", " years")


@dataclass(frozen=True, slots=True)
class Truncated:
    """Stream ``pieces``, then end the body cleanly without the protocol's closing event."""

    pieces: tuple[str, ...] = ("Two", " years")


@dataclass(frozen=True, slots=True)
class Drop:
    """Stream ``pieces``, then cut the connection."""

    pieces: tuple[str, ...] = ("Two", " years")


@dataclass(frozen=True, slots=True)
class Hold:
    """Stream ``pieces``, then keep the stream open until the client goes away."""

    pieces: tuple[str, ...] = ("Two", " years")


Step = Answer | Failure | Stall | Malformed | StreamError | Truncated | Drop | Hold


class ProviderHarness(Protocol):
    """What the contract needs from the implementation under test."""

    key_variable: str
    """The variable a missing-key error must name."""
    secret: str
    """The key ``build`` uses; not even its first characters may appear in an error message."""
    stream_error_detail: str
    """What the error after a ``StreamError`` must say (the vendor's error type or message)."""
    incomplete_detail: str
    """What the error after a ``Truncated`` stream must name as missing."""

    def build(self, *, max_retries: int = 0, timeout_seconds: float = 5.0) -> ChatProvider:
        """A provider (with ``aclose``) talking to this harness; closed by the harness."""
        ...

    def build_without_key(self) -> None:
        """Build the provider with no key configured (expected to raise)."""
        ...

    def script(self, *steps: Step) -> None:
        """What the next requests get, one step each; the last one repeats."""
        ...

    def attempts(self) -> int:
        """Requests received so far (retries included)."""
        ...

    async def wait_disconnected(self, timeout_seconds: float) -> bool:
        """Whether the client closed a held stream within ``timeout_seconds``."""
        ...


@dataclass
class Outcome:
    """What a consumer of the stream saw, in order."""

    events: list[ProviderEvent] = field(default_factory=list)
    error: ProviderError | None = None

    @property
    def texts(self) -> list[str]:
        """The text deltas."""
        return [event.text for event in self.events if isinstance(event, TextDelta)]

    @property
    def done(self) -> list[DoneEvent]:
        """The done events (at most one, and last)."""
        return [event for event in self.events if isinstance(event, DoneEvent)]


async def consume(provider: ChatProvider, request: ChatRequest = REQUEST) -> Outcome:
    """Drain a stream, keeping the events that arrived before any ``ProviderError``."""
    outcome = Outcome()
    try:
        async for event in provider.stream(request):
            outcome.events.append(event)
    except ProviderError as exc:
        outcome.error = exc
    return outcome


class ProviderContract:
    """The provider contract; subclasses supply the ``harness`` fixture."""

    async def test_streams_text_deltas_then_one_done_with_usage(
        self, harness: ProviderHarness
    ) -> None:
        harness.script(Answer(("Two", " years", "."), input_tokens=40, output_tokens=7))
        provider = harness.build()

        outcome = await consume(provider)

        assert outcome.error is None
        assert outcome.texts == ["Two", " years", "."]
        assert all(isinstance(event, TextDelta) for event in outcome.events[:-1])
        assert len(outcome.done) == 1, "exactly one done event"
        done = outcome.done[0]
        assert outcome.events[-1] is done, "the done event comes last"
        assert (done.usage.input_tokens, done.usage.output_tokens) == (40, 7)
        assert done.provider.startswith(f"{provider.name}:")

    def test_a_missing_key_names_the_variable(self, harness: ProviderHarness) -> None:
        with pytest.raises(ProviderAuthError, match=harness.key_variable):
            harness.build_without_key()

    async def test_a_rejected_key_is_an_auth_error_without_retries(
        self, harness: ProviderHarness
    ) -> None:
        harness.script(Failure("auth"))

        outcome = await consume(harness.build(max_retries=2))

        assert isinstance(outcome.error, ProviderAuthError)
        assert harness.key_variable in str(outcome.error)
        assert harness.secret[:8] not in str(outcome.error), "not even the key's prefix"
        assert harness.attempts() == 1, "credentials are not retried"

    async def test_rate_limits_are_retried_as_retry_after_says_then_raised(
        self, harness: ProviderHarness
    ) -> None:
        harness.script(Failure("rate_limit"))
        started = time.monotonic()

        outcome = await consume(harness.build(max_retries=2))

        assert isinstance(outcome.error, ProviderRateLimitError)
        assert harness.attempts() == 3
        assert time.monotonic() - started < 1.0, "no long backoff when told to retry soon"

    async def test_a_rate_limit_that_clears_never_reaches_the_consumer(
        self, harness: ProviderHarness
    ) -> None:
        harness.script(Failure("rate_limit"), Answer())

        outcome = await consume(harness.build(max_retries=1))

        assert outcome.error is None and "".join(outcome.texts) == "Two years."
        assert harness.attempts() == 2

    @pytest.mark.parametrize("status", [500, 503])
    async def test_server_errors_are_retried_then_unavailable(
        self, harness: ProviderHarness, status: int
    ) -> None:
        harness.script(Failure("unavailable", status))

        once = await consume(harness.build(max_retries=0))
        assert harness.attempts() == 1
        retried = await consume(harness.build(max_retries=1))

        assert isinstance(once.error, ProviderUnavailableError)
        assert isinstance(retried.error, ProviderUnavailableError)
        assert f"HTTP {status}" in str(retried.error)
        assert harness.attempts() == 3, "server errors are retried too"

    @pytest.mark.parametrize("status", [400, 404, 413, 422])
    async def test_rejected_requests_are_bad_requests_relaying_the_vendor_message(
        self, harness: ProviderHarness, status: int
    ) -> None:
        harness.script(Failure("bad_request", status))

        outcome = await consume(harness.build(max_retries=2))

        assert isinstance(outcome.error, ProviderBadRequestError)
        assert REJECTION in str(outcome.error)
        assert harness.attempts() == 1, "a rejected request is not retried"

    async def test_a_read_timeout_is_unavailable_and_quick(self, harness: ProviderHarness) -> None:
        harness.script(Stall())
        started = time.monotonic()

        outcome = await consume(harness.build(timeout_seconds=0.3))

        assert isinstance(outcome.error, ProviderUnavailableError)
        assert "did not answer" in str(outcome.error) and "timeout" in str(outcome.error)
        assert time.monotonic() - started < 2.0

    async def test_a_slow_but_steady_stream_is_not_cut_by_the_read_timeout(
        self, harness: ProviderHarness
    ) -> None:
        pieces = ("Two", " years", " from", " the", " purchase", ".")
        harness.script(Answer(pieces, interval_seconds=0.1))
        started = time.monotonic()

        outcome = await consume(harness.build(timeout_seconds=0.3))

        assert outcome.error is None and outcome.texts == list(pieces)
        assert time.monotonic() - started > 0.3, "the whole answer took longer than the timeout"

    async def test_a_malformed_stream_is_unavailable_after_the_good_part(
        self, harness: ProviderHarness
    ) -> None:
        harness.script(Malformed(("Two", " years")))

        outcome = await consume(harness.build())

        assert outcome.texts == ["Two", " years"]
        assert isinstance(outcome.error, ProviderUnavailableError)
        assert "malformed" in str(outcome.error)
        assert not outcome.done

    async def test_an_error_inside_the_stream_keeps_the_text_already_sent(
        self, harness: ProviderHarness
    ) -> None:
        harness.script(StreamError(("Two", " years")))

        outcome = await consume(harness.build())

        assert outcome.texts == ["Two", " years"]
        assert isinstance(outcome.error, ProviderUnavailableError)
        assert harness.stream_error_detail in str(outcome.error)
        assert not outcome.done

    async def test_a_stream_that_ends_without_its_closing_event_is_incomplete(
        self, harness: ProviderHarness
    ) -> None:
        harness.script(Truncated(("Two", " years")))

        outcome = await consume(harness.build())

        assert outcome.texts == ["Two", " years"]
        assert isinstance(outcome.error, ProviderUnavailableError)
        assert "ended before" in str(outcome.error)
        assert harness.incomplete_detail in str(outcome.error)
        assert not outcome.done

    async def test_a_dropped_connection_keeps_the_text_then_raises(
        self, harness: ProviderHarness
    ) -> None:
        harness.script(Drop(("Two", " years")))

        outcome = await consume(harness.build())

        assert outcome.texts == ["Two", " years"]
        assert isinstance(outcome.error, ProviderUnavailableError)
        assert not outcome.done

    async def test_a_consumer_that_stops_early_closes_the_stream(
        self, harness: ProviderHarness
    ) -> None:
        harness.script(Hold(("Two", " years")))
        stream = harness.build().stream(REQUEST)
        assert isinstance(stream, AsyncGenerator)

        first = await anext(stream)
        assert first == TextDelta("Two")
        assert not await harness.wait_disconnected(0.0), "connected while the consumer reads"
        await stream.aclose()

        assert await harness.wait_disconnected(3.0)

    async def test_cancelling_the_consumer_closes_the_stream(
        self, harness: ProviderHarness
    ) -> None:
        harness.script(Hold(("Two", " years")))
        provider = harness.build()
        received: list[ProviderEvent] = []

        async def collect() -> None:
            async for event in provider.stream(REQUEST):
                received.append(event)

        consumer = asyncio.create_task(collect())
        while len(received) < 2 and not consumer.done():
            await asyncio.sleep(0.01)
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer

        assert received == [TextDelta("Two"), TextDelta(" years")]
        assert await harness.wait_disconnected(3.0)
