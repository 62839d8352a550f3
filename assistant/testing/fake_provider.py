"""A streaming chat provider that answers from a script, for tests of code that uses providers.

>>> import asyncio
>>> from assistant.chat.provider import ChatRequest
>>> provider = FakeProvider([FakeReply(deltas=("Two", " years."))])
>>> async def answer() -> list[object]:
...     return [event async for event in provider.stream(ChatRequest("How long?", ()))]
>>> [type(event).__name__ for event in asyncio.run(answer())]
['TextDelta', 'TextDelta', 'DoneEvent']
>>> provider.requests[0].question
'How long?'
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from assistant.chat.events import DoneEvent, TextDelta, Usage
from assistant.chat.provider import ChatRequest, ProviderEvent
from assistant.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderRateLimitError,
    ProviderUnavailableError,
)

__all__ = ["FakeProvider", "FakeReply"]

KEY_VARIABLE = "FAKE_PROVIDER_API_KEY"
"""The variable ``FakeProvider`` names when it is built without a key."""


@dataclass(frozen=True, slots=True)
class FakeReply:
    """One scripted answer.

    ``deltas`` are streamed after ``delay_seconds``, ``interval_seconds`` apart; then ``error``
    is raised if set (with no
    deltas: a failure before the first token), else the stream waits for the consumer to close
    it when ``hold`` is set, else it ends with a ``DoneEvent`` carrying ``usage``.
    """

    deltas: tuple[str, ...] = ("Hello", " world")
    usage: Usage = field(default_factory=lambda: Usage(10, 2))
    error: ProviderError | None = None
    delay_seconds: float = 0.0
    hold: bool = False
    interval_seconds: float = 0.0


class FakeProvider:
    """A ``ChatProvider`` that streams scripted replies and records every request.

    Each request takes the next reply (the last one repeats). A rate-limit or unavailable error
    before the first token is retried up to ``max_retries`` times with the next reply, as the
    vendor SDKs retry; a reply slower than ``timeout_seconds`` fails as unavailable.
    ``streams_closed_early`` counts streams their consumer closed before the end.
    """

    def __init__(
        self,
        replies: Sequence[FakeReply] = (FakeReply(),),
        *,
        model: str = "fake-model",
        api_key: str | None = "fake-key",
        timeout_seconds: float = 60.0,
        max_retries: int = 0,
        name: str = "fake",
    ) -> None:
        if not api_key:
            raise ProviderAuthError(f"No API key for the {name} provider: set {KEY_VARIABLE}.")
        self.name = name
        self.model = model
        self.timeout_seconds = timeout_seconds
        self.max_retries = max_retries
        self.requests: list[ChatRequest] = []
        self.attempts = 0
        self.streams_closed_early = 0
        self.closed = False
        self._replies = list(replies) or [FakeReply()]

    def script(self, *replies: FakeReply) -> None:
        """Replace the replies for the next requests (the last one repeats)."""
        self._replies = list(replies) or [FakeReply()]

    def _next_reply(self) -> FakeReply:
        self.attempts += 1
        return self._replies.pop(0) if len(self._replies) > 1 else self._replies[0]

    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
        """Yield the reply's deltas, then one ``DoneEvent`` (or raise its error)."""
        self.requests.append(request)
        reply = self._next_reply()
        for _ in range(self.max_retries):
            retryable = isinstance(reply.error, ProviderRateLimitError | ProviderUnavailableError)
            if not (retryable and not reply.deltas):
                break
            reply = self._next_reply()
        finished = False
        try:
            if reply.delay_seconds > self.timeout_seconds:
                await asyncio.sleep(self.timeout_seconds)
                raise ProviderUnavailableError(
                    f"{self.name} did not answer within {self.timeout_seconds:g} s; retry, or "
                    "raise the timeout."
                )
            await asyncio.sleep(reply.delay_seconds)
            for index, delta in enumerate(reply.deltas):
                if index and reply.interval_seconds:
                    await asyncio.sleep(reply.interval_seconds)
                yield TextDelta(delta)
            if reply.error is not None:
                finished = True
                raise reply.error
            if reply.hold:
                await asyncio.Event().wait()
            finished = True
            yield DoneEvent(reply.usage, f"{self.name}:{self.model}")
        finally:
            if not finished:
                self.streams_closed_early += 1

    async def aclose(self) -> None:
        """Nothing to release; recorded so tests can check the owner closed it."""
        self.closed = True
