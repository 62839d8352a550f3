"""A bounded in-process memo of chunks read from the vector store, with their dense vectors.

Reading a chunk's text and metadata back from Chroma costs more than finding it: for a query
of 100 neighbours on a 3,500-chunk site, the nearest ids and distances come back in about
1 ms, and with documents and metadata in about 6 ms, plus 4 ms more for the lexical-only
candidates' vectors. A search recalls mostly the same few thousand chunks again and again, so
the store asks Chroma only for ids and distances (or, for lexical-only candidates, which ids
still exist) and takes the chunks it has read before from here.

A chunk found by dense recall is kept without its vector: its similarity came with the
query, and reading vectors back costs a third to nearly double a read (a query's 100 chunks of
a 100,000-chunk knowledge base: 7.5 ms with their vectors, 4.0 ms without; 100 random ones:
8.3 and 6.3 ms). The vector is read, and kept, the first time
the chunk is a lexical-only candidate.

Where the knowledge base's lexical index keeps its chunk table (``chunk_table``), the chunks
the memo lacks are taken from that memory map, vectors included, and only what the table lacks
is read from Chroma; the memo still saves decoding them again.

A chunk id is a hash of the chunk's page, title, headings and text, so a memo entry cannot
hold another chunk's text. What it could hold stale is the chunk's position on its page after
an edit elsewhere on the page; the store forgets the ids it writes or deletes, and the
knowledge base forgets everything when another process changes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Generic, Protocol, TypeVar

import numpy as np

from assistant.knowledge.sized_lru import SizedLRU

__all__ = ["DEFAULT_MEMO_BYTES", "ChunkMemo", "MemoChunk"]

DEFAULT_MEMO_BYTES = 32 * 1024 * 1024
"""About 10,000 chunks of 180 tokens with 384-d vectors: the pages a site is asked about."""

_ENTRY_OVERHEAD = 900
"""Bytes of Python objects around an entry's text and vector (dataclass, the strings' headers,
dict slot)."""


class MemoChunk(Protocol):
    """What the memo reads of a chunk (``StoredChunk`` is one): its id and its strings."""

    @property
    def chunk_id(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def heading_path(self) -> tuple[str, ...]: ...


ChunkT = TypeVar("ChunkT", bound=MemoChunk)


class ChunkMemo(Generic[ChunkT]):
    """Least recently used chunks and their vectors (``None`` where not read), bounded by an
    estimate of their bytes.

    Safe to use from several threads. ``max_bytes=0`` keeps nothing.
    """

    def __init__(self, max_bytes: int = DEFAULT_MEMO_BYTES) -> None:
        self._entries: SizedLRU[str, tuple[ChunkT, np.ndarray | None]] = SizedLRU(max_bytes)

    @property
    def max_bytes(self) -> int:
        """The budget of estimated bytes."""
        return self._entries.max_bytes

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """The estimated bytes held now."""
        return self._entries.size_bytes

    def get_many(self, chunk_ids: Sequence[str]) -> dict[str, tuple[ChunkT, np.ndarray | None]]:
        """The chunks and vectors held for ``chunk_ids`` (absent ids are left out)."""
        return self._entries.get_many(chunk_ids)

    def put_many(self, items: Iterable[tuple[ChunkT, np.ndarray | None]]) -> None:
        """Hold these chunks and vectors, dropping the least recently used beyond the bound."""
        self._entries.put_many(
            (chunk.chunk_id, (chunk, vector), _size(chunk, vector)) for chunk, vector in items
        )

    def forget(self, chunk_ids: Iterable[str] | None = None) -> None:
        """Drop ``chunk_ids`` (``None``: everything)."""
        self._entries.forget(chunk_ids)


def _size(chunk: MemoChunk, vector: np.ndarray | None) -> int:
    # An estimate, made for every chunk a search reads: characters count as bytes, and each
    # string's own overhead is in ``_ENTRY_OVERHEAD``.
    headings = chunk.heading_path
    strings = len(chunk.text) + len(chunk.url) + len(chunk.source) + len(chunk.title)
    if headings:
        strings += sum(map(len, headings))
    vector_bytes = 0 if vector is None else vector.nbytes
    return _ENTRY_OVERHEAD + vector_bytes + strings
