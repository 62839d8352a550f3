"""Pseudo-queries made from a knowledge base's own chunks, for training and checking a head.

Seeded, so a run can be repeated exactly:

- 80 %: a sentence of 4–40 words of a chunk is the query; the chunk's embedding text without
  that sentence is the positive;
- 20 %: the title and heading path is the query; the chunk's body is the positive.

Held-out queries come from documents whose chunks never give a training pair. A held-out query
is only a test if its answer is not in the index word for word, so ``held_out_index_texts``
says what a copy of the index must hold instead: the source chunk without the sentence (a
sentence is only chosen if no other chunk of the document holds it), or every chunk of the
document without its title and headings.

>>> pairs = make_pseudo_pairs(store.iter_chunks(), PairOptions(max_pairs=2000))  # doctest: +SKIP
>>> pairs.train[0].query, pairs.train[0].positive  # doctest: +SKIP
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from assistant.knowledge.chunking import embedding_text
from assistant.knowledge.text import split_sentences
from assistant.knowledge.vector_store import StoredChunk

__all__ = [
    "PairOptions",
    "PseudoPair",
    "PseudoPairs",
    "held_out_index_texts",
    "make_pseudo_pairs",
    "mine_hard_negatives",
]

_MIN_HELD_OUT = 50  # aim for at least this many held-out queries where the corpus allows


@dataclass(frozen=True, slots=True)
class PairOptions:
    """How many pseudo-pairs to make, and of which kinds."""

    max_pairs: int = 8000
    pairs_per_chunk: int = 2
    held_out_fraction: float = 0.1
    max_held_out: int = 300
    held_out_per_document: int = 3
    max_held_out_document_share: float = 0.5
    title_query_share: float = 0.2
    min_sentence_words: int = 4
    max_sentence_words: int = 40
    seed: int = 0


@dataclass(frozen=True, slots=True)
class PseudoPair:
    """A made-up query, the text that answers it, and where that text comes from."""

    query: str
    positive: str
    chunk_id: str
    document: str
    kind: Literal["sentence", "title"]


@dataclass(frozen=True, slots=True)
class PseudoPairs:
    """Training pairs and held-out queries, drawn from disjoint documents."""

    train: list[PseudoPair]
    held_out: list[PseudoPair]
    train_chunk_ids: frozenset[str]
    held_out_chunk_ids: frozenset[str]


def make_pseudo_pairs(chunks: Iterable[StoredChunk], options: PairOptions) -> PseudoPairs:
    """Split ``chunks`` by document into held-out queries and training pairs (seeded).

    Documents are shuffled; held-out documents are taken until the held-out target is met
    (``held_out_fraction`` of the chunks, at least 50 or a quarter of the chunks, at most
    ``max_held_out``), each giving one title query or up to ``held_out_per_document`` sentence
    queries, but never more than ``max_held_out_document_share`` of the documents: a site of
    a few long pages gives more queries per held-out page instead (Python's docs, 73 pages of
    about 50 chunks each, once gave all 73 to the held-out set and none to training). The
    chunks of the remaining documents give up to ``pairs_per_chunk`` pairs each, ``max_pairs``
    in all.
    """
    rng = random.Random(options.seed)
    by_document: dict[str, list[StoredChunk]] = {}
    for chunk in sorted(chunks, key=lambda c: (c.url, c.position, c.chunk_id)):
        by_document.setdefault(chunk.url, []).append(chunk)
    documents = sorted(by_document)
    rng.shuffle(documents)
    total = sum(len(group) for group in by_document.values())
    target = min(
        options.max_held_out,
        max(math.ceil(options.held_out_fraction * total), min(_MIN_HELD_OUT, total // 4)),
    )
    most_documents = max(1, math.floor(options.max_held_out_document_share * len(documents)))
    held_out: list[PseudoPair] = []
    held_documents: set[str] = set()
    for document in documents:
        if len(held_out) >= target or len(held_documents) >= most_documents:
            break
        # What is still wanted, spread over the documents still allowed.
        spread = math.ceil((target - len(held_out)) / (most_documents - len(held_documents)))
        per_document = max(options.held_out_per_document, spread)
        queries = _held_out_queries(by_document[document], rng, options, per_document)
        if queries:
            held_documents.add(document)
            held_out.extend(queries)
    held_out = held_out[:target]
    train_chunks = [
        chunk
        for document in sorted(by_document)
        if document not in held_documents
        for chunk in by_document[document]
    ]
    train: list[PseudoPair] = []
    seen: set[tuple[str, str]] = set()
    for _ in range(options.pairs_per_chunk):
        order = list(train_chunks)
        rng.shuffle(order)
        for chunk in order:
            if len(train) >= options.max_pairs:
                break
            pair = _training_pair(chunk, rng, options)
            if pair is not None and (pair.query, pair.positive) not in seen:
                seen.add((pair.query, pair.positive))
                train.append(pair)
    return PseudoPairs(
        train=train,
        held_out=held_out,
        train_chunk_ids=frozenset(chunk.chunk_id for chunk in train_chunks),
        held_out_chunk_ids=frozenset(
            chunk.chunk_id for document in held_documents for chunk in by_document[document]
        ),
    )


def mine_hard_negatives(
    query_vectors: torch.Tensor,
    chunk_vectors: torch.Tensor,
    query_documents: Sequence[str],
    chunk_documents: Sequence[str],
    *,
    ranks: tuple[int, int] = (4, 30),
    seed: int = 0,
) -> list[int | None]:
    """For each query, one chunk index drawn from its dense ranks ``ranks`` (1-based, inclusive).

    Chunks of the query's own document are never chosen; ``None`` where no chunk qualifies.

    Args:
        query_vectors: (Q, d) unit-norm dense vectors of the queries.
        chunk_vectors: (N, d) unit-norm dense vectors of the candidate chunks.
        query_documents: Q document ids, the source of each query.
        chunk_documents: N document ids, the document of each chunk.
    """
    first, last = ranks
    rng = random.Random(seed)
    depth = min(last, int(chunk_vectors.shape[0]))
    chosen: list[int | None] = []
    if depth == 0:
        return [None] * int(query_vectors.shape[0])
    for start in range(0, int(query_vectors.shape[0]), 1024):
        block = query_vectors[start : start + 1024].to(torch.float32)
        nearest = (block @ chunk_vectors.to(torch.float32).T).topk(depth, dim=1).indices
        for offset, row in enumerate(nearest.tolist()):
            document = query_documents[start + offset]
            eligible = [index for index in row[first - 1 :] if chunk_documents[index] != document]
            chosen.append(rng.choice(eligible) if eligible else None)
    return chosen


def _header(chunk: StoredChunk) -> str:
    return embedding_text(chunk.title, chunk.heading_path, "").strip()


def _without(text: str, sentence: str) -> str:
    """``text`` with the first occurrence of ``sentence`` removed and the gap closed."""
    at = text.find(sentence)
    rest = text[:at] + text[at + len(sentence) :] if at >= 0 else text
    lines = (re.sub(r"[ \t]{2,}", " ", line).strip() for line in rest.splitlines())
    return "\n".join(line for line in lines if line)


def _sentences(chunk: StoredChunk, options: PairOptions) -> list[str]:
    return [
        sentence
        for sentence in split_sentences(chunk.text)
        if options.min_sentence_words <= len(sentence.split()) <= options.max_sentence_words
    ]


def _sentence_pair(chunk: StoredChunk, sentence: str) -> PseudoPair | None:
    body = _without(chunk.text, sentence)
    if not body:
        return None
    positive = embedding_text(chunk.title, chunk.heading_path, body)
    return PseudoPair(sentence, positive, chunk.chunk_id, chunk.url, "sentence")


def _title_pair(chunk: StoredChunk) -> PseudoPair | None:
    header = _header(chunk)
    if not header or not chunk.text.strip():
        return None
    return PseudoPair(header, chunk.text, chunk.chunk_id, chunk.url, "title")


def _training_pair(
    chunk: StoredChunk, rng: random.Random, options: PairOptions
) -> PseudoPair | None:
    wants_title = rng.random() < options.title_query_share
    sentences = _sentences(chunk, options)
    sentence_pair = _sentence_pair(chunk, rng.choice(sentences)) if sentences else None
    if wants_title:
        return _title_pair(chunk) or sentence_pair
    return sentence_pair or _title_pair(chunk)


def _held_out_queries(
    document_chunks: list[StoredChunk], rng: random.Random, options: PairOptions, most: int
) -> list[PseudoPair]:
    if rng.random() < options.title_query_share:
        pair = _title_pair(rng.choice(document_chunks))
        if pair is not None:
            return [pair]
    order = list(document_chunks)
    rng.shuffle(order)
    queries: list[PseudoPair] = []
    for chunk in order:
        if len(queries) >= most:
            break
        # A sentence that another chunk of the document also holds (the chunk overlap) would
        # still be in the index word for word.
        others = [other.text for other in document_chunks if other.chunk_id != chunk.chunk_id]
        unique = [s for s in _sentences(chunk, options) if not any(s in text for text in others)]
        pair = _sentence_pair(chunk, rng.choice(unique)) if unique else None
        if pair is not None:
            queries.append(pair)
    return queries


def held_out_index_texts(
    chunks: Sequence[StoredChunk], held_out: Sequence[PseudoPair]
) -> dict[int, str]:
    """What a held-out copy of the index holds instead of some chunks' texts, by chunk index.

    Title queries: every chunk of the document as its body alone; sentence queries: the source
    chunk as the pair's positive (its embedding text without the sentence).
    """
    index_of = {chunk.chunk_id: index for index, chunk in enumerate(chunks)}
    title_documents = {pair.document for pair in held_out if pair.kind == "title"}
    texts = {
        index: chunk.text for index, chunk in enumerate(chunks) if chunk.url in title_documents
    }
    for pair in held_out:
        if pair.kind == "sentence":
            texts[index_of[pair.chunk_id]] = pair.positive
    return texts
