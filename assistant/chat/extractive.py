"""The extractive answerer: the most relevant sentences of the top passages, cited. No LLM.

Each sentence of the given sources is scored by MaxSim between the question's token vectors and
the sentence's own token vectors (one small encoder batch), so the same late-interaction signal
that ranked the passages picks the sentences. The question's token vectors are the ones its
search already computed (``ChatRequest.query_tokens``); the question is encoded again only when
a request comes without them. The encoding runs in the executor given (the bounded pool chat
searches run in), so it never competes with searches from the default thread pool. The best sentence and those close to it are kept,
in the order of their sources, each group followed by its ``[n]`` marker.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from dataclasses import dataclass

import torch

from assistant.chat.events import Citation, CitationsEvent, DoneEvent, Source, TextDelta, Usage
from assistant.chat.provider import ChatRequest, ProviderEvent
from assistant.knowledge.encoder import TokenEncoder
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

    ``encoder`` makes the sentences' token vectors; it must be the one that made the query's
    token vectors of the requests (the retriever's late-interaction encoder), so both live in
    one space. ``executor`` runs the encoding (default: the event loop's default pool).
    ``max_sentences`` and ``max_words`` bound the answer; ``margin`` is how far below the best
    sentence's MaxSim another sentence may score and still be included.
    """

    name = "extractive"

    def __init__(
        self,
        encoder: TokenEncoder,
        *,
        executor: Executor | None = None,
        max_sources: int = 3,
        max_sentences: int = 4,
        max_words: int = 120,
        margin: float = 0.08,
    ) -> None:
        self._encoder = encoder
        self._executor = executor
        self._max_sources = max_sources
        self._max_sentences = max_sentences
        self._max_words = max_words
        self._margin = margin

    async def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
        """Yield the extract sentence group by sentence group, its citations, then done."""
        extract = await asyncio.get_running_loop().run_in_executor(
            self._executor, self.extract, request.question, request.sources, request.query_tokens
        )
        for line in extract.text.split("\n"):
            if line:
                yield TextDelta(line + " ")
        yield CitationsEvent(extract.citations)
        yield DoneEvent(Usage(), self.name)

    def extract(
        self,
        question: str,
        sources: tuple[Source, ...],
        query_tokens: torch.Tensor | None = None,
    ) -> Extract:
        """Choose the sentences that answer ``question`` best.

        ``query_tokens``: ``question``'s token vectors (n_tokens, token_dimension) from this
        provider's encoder, when already computed; otherwise the question is encoded here.
        """
        sentences = [
            _Sentence(source, index, text)
            for source in sources[: self._max_sources]
            for index, raw in enumerate(split_sentences(source.text))
            if (text := _MARKER_LIKE.sub("", raw).strip())
            and (len(text.split()) >= 3 or text.startswith(("-", "*")))
        ]
        if not sentences:
            return Extract("", ())
        if query_tokens is None:
            query_tokens = self._encoder.encode_query_tokens(question)
        sentence_tokens = self._encoder.encode_document_tokens([s.text for s in sentences])
        scores = maxsim_scores_ragged(query_tokens, sentence_tokens).tolist()
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
