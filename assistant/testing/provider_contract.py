"""The chat-provider contract: one pytest suite every provider (and every fake) must pass.

Subclass ``ProviderContract`` and give it a ``harness`` fixture: a ``ProviderHarness`` that
builds the provider under test and scripts what its server (or script) does next, in the
contract's own terms (``Answer``, ``Failure``, ``Stall``, ``Malformed``, ``Drop``, ``Hold``)::

    class TestMyProvider(ProviderContract):
        @pytest.fixture
        def harness(self) -> Iterator[ProviderHarness]:
            with MyHarness() as harness:
                yield harness

The suite checks the stream's shape and order (text deltas, then exactly one ``DoneEvent`` with
usage), the typed errors (auth, rate limit with retry-after, unavailable, timeout, malformed
and dropped streams), that a missing key names its variable, and that a consumer who stops
early or is cancelled closes the stream.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Literal, Protocol

import pytest

from assistant.chat.events import DoneEvent, TextDelta
from assistant.chat.provider import ChatProvider, ChatRequest, Message, ProviderEvent
from assistant.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderRateLimitError,
    ProviderUnavailableError,
)

__all__ = [
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


@dataclass(frozen=True, slots=True)
class Answer:
    """A complete answer streamed as ``pieces``, reporting the given token usage."""

    pieces: tuple[str, ...] = ("Two", " years", ".")
    input_tokens: int = 40
    output_tokens: int = 7


@dataclass(frozen=True, slots=True)
class Failure:
    """An error status: 401, 429 (with a retry-after of a few milliseconds) or 5xx."""

    kind: Literal["auth", "rate_limit", "unavailable"]


@dataclass(frozen=True, slots=True)
class Stall:
    """Accept the request and send nothing for longer than any test's timeout."""


@dataclass(frozen=True, slots=True)
class Malformed:
    """Stream ``pieces``, then something that is not the protocol's event."""

    pieces: tuple[str, ...] = ("Two", " years")


@dataclass(frozen=True, slots=True)
class Drop:
    """Stream ``pieces``, then cut the connection."""

    pieces: tuple[str, ...] = ("Two", " years")


@dataclass(frozen=True, slots=True)
class Hold:
    """Stream ``pieces``, then keep the stream open until the client goes away."""

    pieces: tuple[str, ...] = ("Two", " years")


Step = Answer | Failure | Stall | Malformed | Drop | Hold


class ProviderHarness(Protocol):
    """What the contract needs from the implementation under test."""

    key_variable: str
    """The variable a missing-key error must name."""
    secret: str
    """The key ``build`` uses; it must never appear in an error message."""

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
        assert harness.secret not in str(outcome.error)
        assert harness.attempts() == 1, "credentials are not retried"

    async def test_rate_limits_are_retried_as_retry_after_says_then_raised(
        self, harness: ProviderHarness
    ) -> None:
        harness.script(Failure("rate_limit"))
        started = time.monotonic()

        outcome = await consume(harness.build(max_retries=2))

        assert isinstance(outcome.error, ProviderRateLimitError)
        assert harness.attempts() == 3
        assert time.monotonic() - started < 2.0, "no long backoff when told to retry soon"

    async def test_a_rate_limit_that_clears_never_reaches_the_consumer(
        self, harness: ProviderHarness
    ) -> None:
        harness.script(Failure("rate_limit"), Answer())

        outcome = await consume(harness.build(max_retries=1))

        assert outcome.error is None and "".join(outcome.texts) == "Two years."
        assert harness.attempts() == 2

    async def test_server_errors_are_unavailable(self, harness: ProviderHarness) -> None:
        harness.script(Failure("unavailable"))

        outcome = await consume(harness.build(max_retries=0))

        assert isinstance(outcome.error, ProviderUnavailableError)
        assert harness.attempts() == 1

    async def test_a_read_timeout_is_unavailable_and_quick(self, harness: ProviderHarness) -> None:
        harness.script(Stall())
        started = time.monotonic()

        outcome = await consume(harness.build(timeout_seconds=0.3))

        assert isinstance(outcome.error, ProviderUnavailableError)
        assert time.monotonic() - started < 3.0

    async def test_a_malformed_stream_is_unavailable_after_the_good_part(
        self, harness: ProviderHarness
    ) -> None:
        harness.script(Malformed(("Two", " years")))

        outcome = await consume(harness.build())

        assert outcome.texts == ["Two", " years"]
        assert isinstance(outcome.error, ProviderUnavailableError)
        assert "malformed" in str(outcome.error)
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

        first = await anext(aiter(stream))
        assert first == TextDelta("Two")
        await stream.aclose()  # type: ignore[attr-defined]

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
