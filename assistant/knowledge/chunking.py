"""Heading-aware chunking bounded by the encoder's own tokenizer.

A chunk never crosses a section boundary, so every chunk has one heading path. Inside a
section, paragraphs and then sentences are packed into windows of at most ``max_tokens``
tokens (title and heading prefix included), and consecutive windows share up to
``overlap_tokens`` tokens of trailing sentences so an answer split across a boundary is still
found whole in one of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from assistant.knowledge.text import split_paragraphs, split_sentences
from connectors.document import Document, content_hash

__all__ = ["Chunk", "Chunker", "EncoderTokenCounter", "embedding_text"]


class EncoderTokenCounter(Protocol):
    """Counts tokens the way the encoder will see them (special tokens excluded)."""

    def count_tokens(self, text: str) -> int:
        """Return the number of tokens of ``text``."""
        ...

    def count_tokens_many(self, texts: Sequence[str]) -> list[int]:
        """``count_tokens`` of each of ``texts``, in order."""
        ...


@dataclass(frozen=True, slots=True)
class Chunk:
    """A passage of a document, the unit that is embedded, stored and cited."""

    chunk_id: str
    document_source: str
    title: str
    heading_path: tuple[str, ...]
    text: str
    position: int

    @property
    def embedding_text(self) -> str:
        """What the encoder reads: title and heading path give the passage its context."""
        return embedding_text(self.title, self.heading_path, self.text)

    @property
    def content_hash(self) -> str:
        """Hash of exactly what the encoder reads; the token cache is keyed by it."""
        return content_hash(self.embedding_text)


def embedding_text(title: str, heading_path: Sequence[str], text: str) -> str:
    """Join title, heading path and body the way chunks are embedded."""
    header = " > ".join(part for part in (title, *heading_path) if part)
    return f"{header}\n{text}" if header else text


class Chunker:
    """Split documents into chunks of at most ``max_tokens`` encoder tokens.

    >>> from assistant.knowledge.chunking import Chunker
    >>> chunker = Chunker(tokenizer, max_tokens=180, overlap_tokens=32)  # doctest: +SKIP
    >>> chunks = chunker.split(document)  # doctest: +SKIP
    """

    def __init__(
        self, counter: EncoderTokenCounter, *, max_tokens: int = 180, overlap_tokens: int = 32
    ):
        if overlap_tokens >= max_tokens // 2:
            raise ValueError("overlap_tokens must be less than half of max_tokens")
        self._counter = counter
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens

    def split(self, document: Document) -> list[Chunk]:
        """Return the document's chunks in reading order, with stable ids."""
        texts: list[tuple[tuple[str, ...], str]] = []
        for section in document.sections:
            prefix = embedding_text(document.title, section.heading_path, "")
            budget = max(16, self.max_tokens - self._count([prefix])[0])
            texts.extend((section.heading_path, text) for text in self._pack(section.text, budget))
        chunks: list[Chunk] = []
        seen: dict[str, int] = {}
        for position, (heading_path, text) in enumerate(texts):
            body = embedding_text(document.title, heading_path, text)
            # Identical passages inside one document get distinct ids through their occurrence.
            occurrence = seen.get(body, 0)
            seen[body] = occurrence + 1
            chunk_id = content_hash(document.source, str(occurrence), body)[:32]
            chunks.append(
                Chunk(chunk_id, document.source, document.title, heading_path, text, position)
            )
        return chunks

    def _count(self, texts: Sequence[str]) -> list[int]:
        return self._counter.count_tokens_many(texts)

    def _pack(self, text: str, budget: int) -> list[str]:
        units = self._units(text, budget)
        if not units:
            return []
        sizes = self._count(units)
        windows: list[str] = []
        start = 0
        while start < len(units):
            end, used = start, 0
            while end < len(units) and (end == start or used + sizes[end] <= budget):
                used += sizes[end]
                end += 1
            windows.append(_join(units[start:end]))
            if end >= len(units):
                break
            # Step back over trailing units that fit in the overlap, but always move forward.
            next_start, carried = end, 0
            while next_start - 1 > start and carried + sizes[next_start - 1] <= self.overlap_tokens:
                next_start -= 1
                carried += sizes[next_start]
            start = next_start
        return windows

    def _units(self, text: str, budget: int) -> list[str]:
        """Paragraphs that fit, else their sentences, else sentences cut by words."""
        units: list[str] = []
        paragraphs = split_paragraphs(text)
        if not paragraphs:
            return units
        for paragraph, size in zip(paragraphs, self._count(paragraphs), strict=True):
            if size <= budget:
                units.append(paragraph)
                continue
            sentences = split_sentences(paragraph)
            for sentence, sentence_size in zip(sentences, self._count(sentences), strict=True):
                if sentence_size <= budget:
                    units.append(sentence)
                else:
                    units.extend(self._cut_words(sentence, sentence_size, budget))
        return units

    def _cut_words(self, sentence: str, size: int, budget: int) -> list[str]:
        """Cut an over-long run (a table row, minified text) into word windows that fit."""
        words = sentence.split()
        # Tokens per word vary; aim below the budget and re-check each piece.
        per_piece = max(1, int(len(words) * budget / max(size, 1) * 0.9))
        pieces = [" ".join(words[i : i + per_piece]) for i in range(0, len(words), per_piece)]
        result: list[str] = []
        for piece, piece_size in zip(pieces, self._count(pieces), strict=True):
            if piece_size <= budget or len(piece.split()) == 1:
                result.append(piece)
            else:
                result.extend(self._cut_words(piece, piece_size, budget))
        return result


def _join(units: Sequence[str]) -> str:
    return "\n".join(units)
