"""Turns a search result into a streamed, cited answer through a provider.

The top passages become numbered sources; the provider streams text; ``[n]`` markers in the
text become citations (markers for sources that were not given are dropped). With no passage
at all, the no-answer template is streamed instead of calling the provider.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Sequence

from assistant.chat.events import (
    Answer,
    Citation,
    CitationsEvent,
    DoneEvent,
    ErrorEvent,
    Source,
    SourcesEvent,
    StreamEvent,
    TextDelta,
    Usage,
)
from assistant.chat.prompts import PromptLibrary
from assistant.chat.provider import ChatProvider, ChatRequest, Message
from assistant.errors import AssistantError
from assistant.knowledge.retriever import SearchResult

__all__ = ["Answerer", "citations_from_markers", "drain"]

logger = logging.getLogger(__name__)

_MARKER = re.compile(r"\[(\d{1,3})\]")


def citations_from_markers(text: str, sources: tuple[Source, ...]) -> tuple[Citation, ...]:
    """Citations for the ``[n]`` markers in ``text`` that name a given source, in order."""
    by_number = {source.n: source for source in sources}
    cited: dict[int, Citation] = {}
    for match in _MARKER.finditer(text):
        source = by_number.get(int(match.group(1)))
        if source is not None and source.n not in cited:
            cited[source.n] = Citation(source.n, source.title, source.url, source.text[:300])
    return tuple(cited.values())


class Answerer:
    """Streams answers from one provider over the top ``context_k`` passages.

    >>> async for event in Answerer(provider).stream(result):  # doctest: +SKIP
    ...     print(event.type)
    """

    def __init__(
        self,
        provider: ChatProvider | Sequence[ChatProvider],
        *,
        prompts: PromptLibrary | None = None,
        context_k: int = 5,
        brand: str = "our product",
        assistant_name: str = "the assistant",
    ) -> None:
        # The first provider answers; the others, in order, if it fails before its first token.
        self.providers: tuple[ChatProvider, ...] = (
            tuple(provider) if isinstance(provider, Sequence) else (provider,)
        )
        if not self.providers:
            raise ValueError("an answerer needs at least one provider")
        self._prompts = prompts or PromptLibrary()
        self._context_k = context_k
        self._brand = brand
        self._assistant_name = assistant_name

    async def stream(self, result: SearchResult) -> AsyncIterator[StreamEvent]:
        """Yield ``sources``, text deltas, ``citations`` and ``done`` (or ``error``)."""
        started = time.perf_counter()
        sources = tuple(
            Source(
                n=index,
                chunk_id=hit.chunk_id,
                title=hit.title,
                url=hit.url,
                heading_path=hit.heading_path,
                text=hit.text,
                score=hit.score,
            )
            for index, hit in enumerate(result.hits[: self._context_k], start=1)
        )
        yield SourcesEvent(sources)
        timings = dict(result.trace.timings_ms)
        if not sources:
            yield TextDelta(self._prompts.render("no_answer"))
            yield CitationsEvent(())
            yield DoneEvent(Usage(), self.providers[0].name, timings)
            return
        request = ChatRequest(result.query, sources, self._messages(result.query, sources))
        for position, provider in enumerate(self.providers):
            text: list[str] = []
            citations: tuple[Citation, ...] | None = None
            try:
                async for event in provider.stream(request):
                    if isinstance(event, TextDelta):
                        text.append(event.text)
                        yield event
                    elif isinstance(event, CitationsEvent):
                        citations = event.citations
                    else:
                        timings["answer"] = round((time.perf_counter() - started) * 1000.0, 3)
                        yield CitationsEvent(
                            citations
                            if citations is not None
                            else citations_from_markers("".join(text), sources)
                        )
                        yield DoneEvent(event.usage, event.provider, timings)
                return
            except AssistantError as exc:
                # Before the first token the next provider can still answer; after it, the
                # client already holds a partial answer, so the stream ends with an error.
                if text or position == len(self.providers) - 1:
                    yield ErrorEvent(type(exc).__name__, str(exc))
                    return
                logger.warning(
                    "provider %s failed before answering (%s); falling back to %s",
                    provider.name,
                    type(exc).__name__,
                    self.providers[position + 1].name,
                )

    def _messages(self, question: str, sources: tuple[Source, ...]) -> tuple[Message, ...]:
        rendered = "\n".join(
            self._prompts.render("source", n=s.n, title=s.title, url=s.url, text=s.text)
            for s in sources
        )
        system = self._prompts.render(
            "system",
            assistant_name=self._assistant_name,
            brand=self._brand,
            tone="",
            custom_instructions="",
        )
        user = self._prompts.render("answer", sources=rendered, question=question)
        return (Message("system", system), Message("user", user))


async def drain(question: str, events: AsyncIterator[StreamEvent]) -> Answer:
    """Collect a stream into an ``Answer``."""
    text: list[str] = []
    sources: tuple[Source, ...] = ()
    citations: tuple[Citation, ...] = ()
    done: DoneEvent | None = None
    error: ErrorEvent | None = None
    async for event in events:
        if isinstance(event, SourcesEvent):
            sources = event.sources
        elif isinstance(event, TextDelta):
            text.append(event.text)
        elif isinstance(event, CitationsEvent):
            citations = event.citations
        elif isinstance(event, DoneEvent):
            done = event
        else:
            error = event
    return Answer(
        question=question,
        answer="".join(text).strip(),
        sources=sources,
        citations=citations,
        provider=done.provider if done else "",
        usage=done.usage if done else Usage(),
        timings_ms=done.timings_ms if done else {},
        error=error,
    )
