"""The extractive answerer: the most relevant sentences of the top passages, cited. No LLM.

Each quotable unit of the given sources (a sentence, a list item, a table row: see
``assistant.chat.sentences``) is scored by MaxSim between the question's token vectors and the
unit's own token vectors, so the same late-interaction signal that ranked the passages picks the
sentences. Nothing is encoded again: the question's token vectors are the ones its search
computed (``ChatRequest.query_tokens``), and a unit's token vectors are the rows of its chunk's
cached token matrix (``ChatRequest.passage_tokens``) that read the unit's characters, found with
the tokenizer's offsets. Only a unit that no chunk matrix covers (a request without them, an
encoder that cannot tell offsets, text past the encoder's length) is encoded, in the executor
given (the bounded pool chat searches run in). A unit that is not a complete sentence scores a
little lower, so prose wins over fragments of equal relevance. The best unit and those close to
it are kept, in the order of their sources, each group followed by its ``[n]`` marker.
"""

from __future__ import annotations

import asyncio
import bisect
import re
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

import torch

from assistant.chat.events import Citation, CitationsEvent, DoneEvent, Source, TextDelta, Usage
from assistant.chat.provider import ChatRequest, PassageTokens, ProviderEvent
from assistant.chat.sentences import AnswerUnit, answer_units
from assistant.knowledge.encoder import TokenEncoder, TokenOffsets
from assistant.knowledge.maxsim import maxsim_span_scores

__all__ = ["Extract", "ExtractiveProvider"]

# Bracketed numbers inside page text ("see [3]") would read as our citation markers.
_MARKER_LIKE = re.compile(r"\s*\[\d{1,3}\]")


FRAGMENT_PENALTY = 0.03
"""Subtracted from the MaxSim of a unit that is not a complete sentence (a table row, a list
item or line without closing punctuation)."""


REPEAT_PENALTY = 0.05
"""Subtracted on a follow-up from a sentence the previous answer already quoted: it may still
be the answer, but something new that answers as well comes first."""
REPEATED_WORD_WEIGHT = 0.25
"""On a follow-up, the weight in MaxSim of the question's tokens whose word the previous answer
already holds (the others weigh 1)."""
_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class _Sentence:
    source: Source
    unit: AnswerUnit

    @property
    def text(self) -> str:
        return self.unit.text


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
            self._executor,
            self.extract,
            request.question,
            request.sources,
            request.query_tokens,
            request.passage_tokens,
            _last_answer(request),
        )
        for delta in _deltas(extract.text):
            yield TextDelta(delta)
        yield CitationsEvent(extract.citations)
        yield DoneEvent(Usage(), self.name)

    def extract(
        self,
        question: str,
        sources: tuple[Source, ...],
        query_tokens: torch.Tensor | None = None,
        passage_tokens: Sequence[PassageTokens] = (),
        said: str = "",
    ) -> Extract:
        """Choose the sentences that answer ``question`` best.

        ``query_tokens``: ``question``'s token vectors (n_tokens, token_dimension) from this
        provider's encoder, when already computed; otherwise the question is encoded here.
        ``passage_tokens``: the sources' chunks with their token vectors from the same encoder;
        units they cover are scored from them, any other unit is encoded. ``said``: the
        previous answer of the conversation; a follow-up asks for something new, so its
        words weigh less in the question and its sentences score ``REPEAT_PENALTY`` less.
        """
        sentences = [
            _Sentence(source, unit)
            for source in sources[: self._max_sources]
            for unit in answer_units(_MARKER_LIKE.sub("", source.text))
        ]
        if not sentences:
            return Extract("", ())
        if query_tokens is None:
            query_tokens = self._encoder.encode_query_tokens(question)
        weights = _novelty_weights(self._encoder, question, query_tokens, said)
        scores = self._scores(query_tokens, sentences, passage_tokens, weights)
        scores = [
            score
            - (0.0 if sentence.unit.complete else FRAGMENT_PENALTY)
            - (REPEAT_PENALTY if said and sentence.text in said else 0.0)
            for score, sentence in zip(scores, sentences, strict=True)
        ]
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
            if any(
                sentences[i].text == other.text or sentences[i].text in other.unit.block
                for other in chosen
            ):
                continue  # overlapping chunks repeat sentences; a block holds its code lines
            chosen.append(sentences[i])
            words += sentence_words
        chosen.sort(key=lambda s: (s.source.n, s.unit.index))
        lines: list[str] = []
        citations: list[Citation] = []
        for source in dict.fromkeys(s.source for s in chosen):
            group = [s for s in chosen if s.source is source]
            quoted = " ".join(s.text for s in group)
            lines.append(f"{quoted} [{source.n}]")
            # The code the group's last sentence introduces ("... would look like:") follows
            # it, as written on the page. Not where the passage holds bracketed numbers, which
            # the units are read without ("argv[1]" would show as "argv").
            if group[-1].unit.block and not _MARKER_LIKE.search(source.text):
                lines.append(f"```\n{group[-1].unit.block}\n```")
            citations.append(Citation(source.n, source.title, source.url, quoted))
        return Extract("\n".join(lines), tuple(citations))

    def _scores(
        self,
        query_tokens: torch.Tensor,
        sentences: Sequence[_Sentence],
        passages: Sequence[PassageTokens],
        query_weights: torch.Tensor | None = None,
    ) -> list[float]:
        """Each sentence's MaxSim: from its chunk's token rows where a chunk covers it, from
        its own encoding otherwise."""
        scores: list[float | None] = [None] * len(sentences)
        spans = _covering_spans(self._encoder, [s.unit.raw for s in sentences], passages)
        by_passage: dict[int, list[tuple[int, range]]] = {}
        for index, found in enumerate(spans):
            if found is not None:
                by_passage.setdefault(found[0], []).append((index, found[1]))
        for passage_index, items in by_passage.items():
            span_scores = maxsim_span_scores(
                query_tokens,
                passages[passage_index].tokens,
                [span for _, span in items],
                query_weights,
            ).tolist()
            for (index, _), score in zip(items, span_scores, strict=True):
                scores[index] = score
        # A unit whose passage text holds no word (a table row of symbols) has no row to
        # read there, and nothing to say.
        missing = [
            index
            for index, score in enumerate(scores)
            if score is None and _WORD.search(sentences[index].unit.raw)
        ]
        if missing:
            encoded = self._encoder.encode_document_tokens([sentences[i].text for i in missing])
            for index, matrix in zip(missing, encoded, strict=True):
                whole = [range(matrix.shape[0])]
                scores[index] = float(
                    maxsim_span_scores(query_tokens, matrix, whole, query_weights)[0]
                )
        return [score or 0.0 for score in scores]


def _deltas(text: str) -> list[str]:
    """``text`` (an ``Extract``'s) as streamed: its quoted groups run on in one paragraph, and a
    code block stands on lines of its own."""
    deltas: list[str] = []
    inside = False
    for line in text.split("\n"):
        if line.startswith("```"):
            deltas.append(f"\n{line}\n" if not inside else f"{line}\n")
            inside = not inside
        elif inside:
            deltas.append(f"{line}\n")
        elif line:
            deltas.append(f"{line} ")
    return deltas


def _novelty_weights(
    encoder: TokenEncoder, question: str, query_tokens: torch.Tensor, said: str
) -> torch.Tensor | None:
    """(n_query_tokens,) weights that make the question's words the previous answer already
    holds count ``REPEATED_WORD_WEIGHT``: a follow-up asks for what is new ("how much does it
    cost?" after the plans that include an integration wants the prices, not the integration
    again). ``None`` on a first turn, or when the encoder cannot map its rows to words."""
    if not said or not isinstance(encoder, TokenOffsets):
        return None
    offsets = encoder.query_token_offsets(question)
    if len(offsets) != query_tokens.shape[0]:
        return None
    said_words = {word.lower() for word in _WORD.findall(said)}
    words = list(_WORD.finditer(question))
    weights = torch.ones(len(offsets), dtype=torch.float32)
    for row, (start, end) in enumerate(offsets):
        if end > start:
            word = next((w for w in words if w.start() <= start < w.end()), None)
            if word is not None and word.group().lower() in said_words:
                weights[row] = REPEATED_WORD_WEIGHT
    return weights


def _last_answer(request: ChatRequest) -> str:
    """The conversation's previous answer in ``request``'s messages ("" on a first turn)."""
    answers = [message.content for message in request.messages if message.role == "assistant"]
    return answers[-1] if answers else ""


def _covering_spans(
    encoder: TokenEncoder, texts: Sequence[str], passages: Sequence[PassageTokens]
) -> list[tuple[int, range] | None]:
    """For each of ``texts``, a passage that holds it and the token rows that read it there.

    ``None`` where no passage holds the text, or its rows were cut off by the encoder's length,
    or the encoder cannot tell which rows read which characters.
    """
    if not passages or not isinstance(encoder, TokenOffsets):
        return [None] * len(texts)
    offsets = encoder.document_token_offsets([passage.encoded_text for passage in passages])
    # Row starts of the real (non-special) rows, to find a character span's rows by bisection.
    rows: list[tuple[list[int], list[int], list[int]] | None] = []
    for passage, passage_offsets in zip(passages, offsets, strict=True):
        if len(passage_offsets) != passage.tokens.shape[0]:
            rows.append(None)  # cached under another tokenization: do not guess
            continue
        real = [(i, start, end) for i, (start, end) in enumerate(passage_offsets) if end > start]
        rows.append(([i for i, _, _ in real], [s for _, s, _ in real], [e for _, _, e in real]))
    # The units were read from the sources' text without marker-like numbers ("[0]"): look
    # for them in the passages read the same way, and map back to the passages' characters.
    unmarked = [_without_markers(passage.text) for passage in passages]
    found: list[tuple[int, range] | None] = []
    for text in texts:
        span: tuple[int, range] | None = None
        # Punctuation has no row: the text is read to its last word, which a row must reach
        # (rows cut off at the encoder's length do not).
        last_word = max((m.end() for m in _WORD.finditer(text)), default=len(text))
        for passage_index, passage in enumerate(passages):
            table = rows[passage_index]
            plain, positions = unmarked[passage_index]
            at = plain.find(text)
            if table is None or at < 0 or not text:
                continue
            first_char = passage.text_start + positions[at]
            last_char = passage.text_start + positions[at + len(text) - 1] + 1
            word_end = passage.text_start + positions[at + last_word - 1] + 1
            indices, starts, ends = table
            low = bisect.bisect_right(ends, first_char)
            high = bisect.bisect_left(starts, last_char)
            if high > low and ends[-1] >= word_end:
                span = (passage_index, range(indices[low], indices[high - 1] + 1))
                break
        found.append(span)
    return found


def _without_markers(text: str) -> tuple[str, list[int]]:
    """``text`` without its marker-like numbers (as ``extract`` reads sources), and for each
    character left the position it had in ``text``.

    >>> _without_markers("sys.argv[0] is set")
    ('sys.argv is set', [0, 1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 14, 15, 16, 17])
    """
    parts: list[str] = []
    positions: list[int] = []
    kept_from = 0
    for match in _MARKER_LIKE.finditer(text):
        parts.append(text[kept_from : match.start()])
        positions.extend(range(kept_from, match.start()))
        kept_from = match.end()
    parts.append(text[kept_from:])
    positions.extend(range(kept_from, len(text)))
    return "".join(parts), positions
