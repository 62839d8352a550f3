"""Stream events of an answer: frozen dataclasses discriminated by ``type``.

An answer streams as ``sources`` (first), ``text`` deltas, ``citations``, then ``done`` — or an
``error`` event once streaming has started. Surfaces encode them (JSON lines, SSE) only at
their edge; ``Answer`` is what draining a stream produces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from assistant.knowledge.results import SearchResult

__all__ = [
    "Answer",
    "Citation",
    "CitationsEvent",
    "DoneEvent",
    "ErrorEvent",
    "Source",
    "SourcesEvent",
    "StreamEvent",
    "TextDelta",
    "Usage",
]


@dataclass(frozen=True, slots=True)
class Source:
    """A passage given to the answerer, numbered as it is cited (``[n]``)."""

    n: int
    chunk_id: str
    title: str
    url: str
    heading_path: tuple[str, ...]
    text: str
    score: float
    chunk_ids: tuple[str, ...] = ()
    """Every chunk merged into this passage (overlapping neighbours of one document), best first;
    empty means just ``chunk_id``."""


@dataclass(frozen=True, slots=True)
class Citation:
    """A source the answer cites, with the span of it that supports the answer."""

    n: int
    title: str
    url: str
    quote: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens spent by the provider (zero for the extractive answerer)."""

    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True, slots=True)
class SourcesEvent:
    """The passages the answer is built from; always the first event.

    ``question`` is the standalone question they were retrieved for (a follow-up condensed
    with the conversation), ``conversation_id`` the conversation the turn belongs to.
    """

    sources: tuple[Source, ...]
    question: str = ""
    conversation_id: str | None = None
    type: Literal["sources"] = "sources"


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of answer text."""

    text: str
    type: Literal["text"] = "text"


@dataclass(frozen=True, slots=True)
class CitationsEvent:
    """The sources the finished answer actually cites."""

    citations: tuple[Citation, ...]
    type: Literal["citations"] = "citations"


@dataclass(frozen=True, slots=True)
class DoneEvent:
    """The end of a successful answer: usage, cost, provider and time spent per stage.

    ``cost_usd`` is an estimate from published prices, ``None`` where the price is unknown.
    ``outcome`` is ``no_answer`` when nothing relevant enough was found (a content gap).
    ``turn_id`` identifies the stored turn (for feedback); ``None`` when it was not stored.
    """

    usage: Usage
    provider: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    model: str | None = None
    cost_usd: float | None = None
    outcome: Literal["answered", "no_answer"] = "answered"
    conversation_id: str | None = None
    turn_id: int | None = None
    cache_hits: int = 0
    """Candidates whose token embeddings came from the cache; ``cache_misses`` were recomputed."""
    cache_misses: int = 0
    type: Literal["done"] = "done"


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """A failure after streaming started; the partial answer stays with the client."""

    code: str
    message: str
    type: Literal["error"] = "error"


StreamEvent = SourcesEvent | TextDelta | CitationsEvent | DoneEvent | ErrorEvent


@dataclass(frozen=True, slots=True)
class Answer:
    """A drained answer stream."""

    question: str
    answer: str
    sources: tuple[Source, ...]
    citations: tuple[Citation, ...]
    provider: str
    usage: Usage
    timings_ms: dict[str, float]
    error: ErrorEvent | None = None
    retrieval: SearchResult | None = None
    """The search that chose the sources: every candidate with its scores, stage timings."""
    standalone_question: str = ""
    model: str | None = None
    cost_usd: float | None = None
    outcome: Literal["answered", "no_answer", "error"] = "answered"
    conversation_id: str | None = None
    turn_id: int | None = None
