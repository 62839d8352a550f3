"""Turns chosen passages into a streamed, cited answer through a chain of providers.

The passages become numbered sources inside delimiters that their content cannot close; the
provider streams text; ``[n]`` markers in the text become citations with the sentence of the
source that best supports the claim. Markers naming a source that was not given never reach
the client: the stream holds back a possible marker until it is complete and drops it if its
number is unknown. Links and images to addresses other than the sources' are removed the same
way (``assistant.chat.links``): text a page planted for the model cannot send the visitor, or
their browser, anywhere else.
"""

from __future__ import annotations

import contextlib
import html
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

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
from assistant.chat.history import HistoryTurn
from assistant.chat.links import LinkFilter
from assistant.chat.prompts import PromptLibrary
from assistant.chat.provider import (
    ChatProvider,
    ChatRequest,
    Message,
    PassageTokens,
    ProviderEvent,
)
from assistant.errors import AssistantError
from assistant.knowledge.text import split_sentences

if TYPE_CHECKING:
    import torch

    from assistant.knowledge.retriever import SearchResult

__all__ = ["Answerer", "Brand", "MarkerFilter", "citations_from_markers", "drain"]

logger = logging.getLogger(__name__)

_MARKER = re.compile(r"\[(\d{1,3})\]")
# A "[", "[1" or "[12" at the very end of a delta may be the start of a marker.
_PARTIAL_MARKER = re.compile(r"\[\d{0,3}$")
_WORD = re.compile(r"\w+", re.UNICODE)
_DELIMITER = re.compile(r"<(/?)(source)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Brand:
    """Who the assistant is in its prompts."""

    assistant_name: str = "the assistant"
    company: str = "the site owner"
    tone: str = ""
    custom_instructions: str = ""
    language: str = "auto"
    no_answer_message: str = ""
    """Said when nothing relevant was found; empty means ``prompts/no_answer.txt``."""


def _supporting_quote(claim: str, text: str, limit: int = 300) -> str:
    """The sentence of ``text`` sharing most words with ``claim`` (the span that supports it)."""
    claim_words = {word.lower() for word in _WORD.findall(claim) if len(word) > 2}
    best, best_overlap = "", -1
    for sentence in split_sentences(text):
        overlap = len(claim_words & {w.lower() for w in _WORD.findall(sentence)})
        if overlap > best_overlap:
            best, best_overlap = sentence, overlap
    return (best or text)[:limit]


def citations_from_markers(text: str, sources: tuple[Source, ...]) -> tuple[Citation, ...]:
    """Citations for the ``[n]`` markers in ``text`` that name a given source, in order.

    Each citation quotes the sentence of its source closest to the sentence of the answer that
    carries the marker.
    """
    by_number = {source.n: source for source in sources}
    cited: dict[int, Citation] = {}
    for sentence in split_sentences(text) or [text]:
        claim = _MARKER.sub("", sentence)
        for match in _MARKER.finditer(sentence):
            source = by_number.get(int(match.group(1)))
            if source is not None and source.n not in cited:
                quote = _supporting_quote(claim, source.text)
                cited[source.n] = Citation(source.n, source.title, source.url, quote)
    return tuple(cited.values())


class MarkerFilter:
    """Removes ``[n]`` markers whose ``n`` is not a given source from streamed text.

    >>> markers = MarkerFilter({1, 2})
    >>> markers.feed("Yes [1]. See [") + markers.feed("7] too [2].") + markers.flush()
    'Yes [1]. See  too [2].'
    """

    def __init__(self, numbers: set[int]) -> None:
        self._numbers = numbers
        self._held = ""

    def _keep(self, match: re.Match[str]) -> str:
        return match.group(0) if int(match.group(1)) in self._numbers else ""

    def feed(self, delta: str) -> str:
        """The part of ``held + delta`` that is safe to send now."""
        text = self._held + delta
        partial = _PARTIAL_MARKER.search(text)
        cut = partial.start() if partial else len(text)
        self._held = text[cut:]
        return _MARKER.sub(self._keep, text[:cut])

    def flush(self) -> str:
        """Whatever is still held at the end of the stream."""
        text, self._held = self._held, ""
        return _MARKER.sub(self._keep, text)


async def _closable(events: AsyncIterator[ProviderEvent]) -> AsyncGenerator[ProviderEvent, None]:
    """``events`` as a generator with ``aclose``, closing the provider's own stream with it."""
    try:
        async for event in events:
            yield event
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()


def _quoted(text: str) -> str:
    """Content made unable to open or close the ``<source>`` delimiters around it."""
    return _DELIMITER.sub(lambda m: f"&lt;{m.group(1)}{m.group(2)}", text)


class Answerer:
    """Streams answers over numbered sources from the first provider that can answer.

    A failure before the first token moves on to the next provider; after it, the stream ends
    with an ``error`` event and the client keeps the partial answer.

    >>> async for event in Answerer([provider]).stream("refunds?", sources):  # doctest: +SKIP
    ...     print(event.type)
    """

    def __init__(
        self,
        provider: ChatProvider | Sequence[ChatProvider],
        *,
        prompts: PromptLibrary | None = None,
        brand: Brand | None = None,
    ) -> None:
        self.providers: tuple[ChatProvider, ...] = (
            tuple(provider) if isinstance(provider, Sequence) else (provider,)
        )
        if not self.providers:
            raise ValueError("an answerer needs at least one provider")
        self.prompts = prompts or PromptLibrary()
        self.brand = brand or Brand()

    def no_answer_text(self) -> str:
        """What the assistant says when nothing relevant was found, in the brand's words."""
        return self.brand.no_answer_message or self.prompts.render(
            "no_answer", company=self.brand.company, assistant_name=self.brand.assistant_name
        )

    async def stream(
        self,
        question: str,
        sources: tuple[Source, ...],
        *,
        history: Sequence[HistoryTurn] = (),
        message: str | None = None,
        query_tokens: torch.Tensor | None = None,
        passage_tokens: tuple[PassageTokens, ...] = (),
    ) -> AsyncIterator[StreamEvent]:
        """Yield text deltas, ``citations`` and ``done`` (or ``error``).

        ``question`` is the standalone question the sources were found for; ``message`` is
        what the user actually wrote (its language is the answer's), ``question`` when omitted.
        ``query_tokens`` are ``question``'s token vectors from the search, passed on to
        providers that score text against the question (the extractive one), with
        ``passage_tokens``, the token vectors of the chunks the sources are made of.
        With no source, the no-answer text is streamed without calling any provider.
        """
        if not sources:
            yield TextDelta(self.no_answer_text())
            yield CitationsEvent(())
            yield DoneEvent(Usage(), "none", outcome="no_answer")
            return
        request = ChatRequest(
            question,
            sources,
            self.messages(message or question, sources, history),
            query_tokens=query_tokens,
            passage_tokens=passage_tokens,
        )
        numbers = {source.n for source in sources}
        for position, provider in enumerate(self.providers):
            markers = MarkerFilter(numbers)
            links = LinkFilter(source.url for source in sources)
            text: list[str] = []
            citations: tuple[Citation, ...] | None = None
            try:
                # Closed as soon as this stream is: a client gone mid-answer frees the
                # provider's connection at once.
                async with contextlib.aclosing(_closable(provider.stream(request))) as events:
                    async for event in events:
                        if isinstance(event, TextDelta):
                            safe = links.feed(markers.feed(event.text))
                            text.append(event.text)
                            if safe:
                                yield TextDelta(safe)
                        elif isinstance(event, CitationsEvent):
                            citations = event.citations
                        else:
                            rest = links.feed(markers.flush()) + links.flush()
                            if rest:
                                yield TextDelta(rest)
                            yield CitationsEvent(
                                tuple(c for c in citations if c.n in numbers)
                                if citations is not None
                                else citations_from_markers("".join(text), sources)
                            )
                            yield DoneEvent(
                                event.usage, event.provider, model=getattr(provider, "model", None)
                            )
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

    def messages(
        self,
        message: str,
        sources: tuple[Source, ...],
        history: Sequence[HistoryTurn] = (),
    ) -> tuple[Message, ...]:
        """The system prompt, the conversation so far, and the sources with the question."""
        brand = self.brand
        language = (
            self.prompts.render("language_auto")
            if brand.language in ("", "auto")
            else self.prompts.render("language_fixed", language=brand.language)
        )
        system = self.prompts.render(
            "system",
            assistant_name=brand.assistant_name,
            company=brand.company,
            tone=brand.tone,
            custom_instructions=brand.custom_instructions,
            language_instruction=language,
        )
        rendered = "\n".join(
            self.prompts.render(
                "source",
                n=s.n,
                title=html.escape(s.title),
                url=html.escape(s.url),
                text=_quoted(s.text),
            )
            for s in sources
        )
        conversation: list[Message] = []
        for turn in history:
            conversation.append(Message("user", turn.question))
            conversation.append(Message("assistant", turn.answer))
        user = self.prompts.render("answer", sources=rendered, question=message)
        return (Message("system", system), *conversation, Message("user", user))


async def drain(
    question: str, events: AsyncIterator[StreamEvent], *, retrieval: SearchResult | None = None
) -> Answer:
    """Collect a stream into an ``Answer``; ``retrieval`` is the search that chose its sources."""
    text: list[str] = []
    sources: tuple[Source, ...] = ()
    citations: tuple[Citation, ...] = ()
    standalone = ""
    conversation_id: str | None = None
    done: DoneEvent | None = None
    error: ErrorEvent | None = None
    async for event in events:
        if isinstance(event, SourcesEvent):
            sources = event.sources
            standalone = event.question
            conversation_id = event.conversation_id
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
        standalone_question=standalone or question,
        model=done.model if done else None,
        cost_usd=done.cost_usd if done else None,
        outcome="error" if error else (done.outcome if done else "answered"),
        conversation_id=done.conversation_id if done and done.conversation_id else conversation_id,
        turn_id=done.turn_id if done else None,
        retrieval=retrieval,
    )
