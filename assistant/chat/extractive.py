"""The extractive answerer: the most relevant sentences of the top passages, cited. No LLM.

Each sentence of the given sources is scored by MaxSim between the question's token vectors and
the sentence's own token vectors (one small encoder batch), so the same late-interaction signal
that ranked the passages picks the sentences. The best sentence and those close to it are kept,
in the order of their sources, each group followed by its ``[n]`` marker.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from assistant.chat.events import Citation, CitationsEvent, DoneEvent, Source, TextDelta, Usage
from assistant.chat.provider import ChatRequest, ProviderEvent
from assistant.knowledge.encoder import Encoder
from assistant.knowledge.maxsim import maxsim_scores_ragged
from assistant.knowledge.text import split_sentences

__all__ = ["Extract", "ExtractiveProvider"]

# Bracketed numbers inside page text ("see [3]") would read as our citation markers.
_MARKER_LIKE = re.compile(r"\s*\[\d{1,3}\]")


@dataclass(frozen=True, slots=True)
class _Sentence:
    source: Source
    index: int
    text: str


@dataclass(frozen=True, slots=True)
class Extract:
    """The chosen answer text and the citation for each source it quotes."""

    text: str
    citations: tuple[Citation, ...]


class ExtractiveProvider:
    """Answers with the best sentences of the sources.

    ``max_sentences`` and ``max_words`` bound the answer; ``margin`` is how far below the best
    sentence's MaxSim another sentence may score and still be included.
    """

    name = "extractive"

    def __init__(
        self,
        encoder: Encoder,
        *,
        max_sources: int = 3,
        max_sentences: int = 4,
        max_words: int = 120,
        margin: float = 0.08,
    ) -> None:
        self._encoder = encoder
        self._max_sources = max_sources
        self._max_sentences = max_sentences
        self._max_words = max_words
        self._margin = margin

    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
        """Yield the extract sentence group by sentence group, its citations, then done."""
        extract = await asyncio.to_thread(self.extract, request.question, request.sources)
        for line in extract.text.split("\n"):
            if line:
                yield TextDelta(line + " ")
        yield CitationsEvent(extract.citations)
        yield DoneEvent(Usage(), self.name)

    def extract(self, question: str, sources: tuple[Source, ...]) -> Extract:
        """Choose the sentences that answer ``question`` best."""
        sentences = [
            _Sentence(source, index, text)
            for source in sources[: self._max_sources]
            for index, raw in enumerate(split_sentences(source.text))
            if (text := _MARKER_LIKE.sub("", raw).strip())
            and (len(text.split()) >= 3 or text.startswith(("-", "*")))
        ]
        if not sentences:
            return Extract("", ())
        query = self._encoder.encode_query(question)
        encoded = self._encoder.encode_documents([s.text for s in sentences])
        scores = maxsim_scores_ragged(query.tokens, [e.tokens for e in encoded]).tolist()
        ranked = sorted(range(len(sentences)), key=lambda i: -scores[i])
        best = scores[ranked[0]]
        chosen: list[_Sentence] = []
        words = 0
        for i in ranked:
            sentence_words = len(sentences[i].text.split())
            if chosen and (
                scores[i] < best - self._margin
                or len(chosen) >= self._max_sentences
                or words + sentence_words > self._max_words
            ):
                continue
            chosen.append(sentences[i])
            words += sentence_words
        chosen.sort(key=lambda s: (s.source.n, s.index))
        lines: list[str] = []
        citations: list[Citation] = []
        for source in dict.fromkeys(s.source for s in chosen):
            quoted = " ".join(s.text for s in chosen if s.source is source)
            lines.append(f"{quoted} [{source.n}]")
            citations.append(Citation(source.n, source.title, source.url, quoted))
        return Extract("\n".join(lines), tuple(citations))
