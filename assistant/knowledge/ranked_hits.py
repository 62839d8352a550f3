"""A ranked candidate pool read as ``SearchHit``s, each made when it is first read.

A search returns its first ``k`` hits but keeps its whole pool (about 160 candidates on a
documentation site) for the chat trace, evaluation and tuning. A frozen ``SearchHit`` of 15
fields takes about 2 µs to make, so making every candidate's up front cost a search a third of
a millisecond, twice that right after MaxSim has streamed the pool's token vectors through the
CPU's caches, for hits most searches never read.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, overload

from assistant.knowledge.chunk_memo import MemoChunk
from assistant.knowledge.ranking import RankedPool, signal_ranks
from assistant.knowledge.results import SearchHit

__all__ = ["PooledChunk", "RankedHits"]


class PooledChunk(MemoChunk, Protocol):
    """What a hit is made from: a recalled chunk (the retriever's ``StoredChunk``)."""

    @property
    def position(self) -> int: ...


class RankedHits(Sequence[SearchHit]):
    """Every candidate of a ranked pool as a ``SearchHit``, best first.

    ``chunks`` and the score lists are by pool position; ``ranked`` orders those positions.
    A hit is made on first read and kept, so reading one twice gives the same object (two
    threads reading it at once may each make it; the two are equal). Equal to any sequence of
    the same hits (a list included).

    >>> from assistant.knowledge.ranking import RankedPool
    >>> from types import SimpleNamespace as Chunk
    >>> chunks = [Chunk(chunk_id=c, url="u", source="u", title="", heading_path=(), text="",
    ...                 position=0)
    ...           for c in ("a", "b")]
    >>> hits = RankedHits(chunks, RankedPool([1, 0], [0.1, 0.9]), [0.5, 0.4], [0.2, 0.8])
    >>> [(hit.chunk_id, hit.rank, hit.dense_rank) for hit in hits]
    [('b', 1, 2), ('a', 2, 1)]
    """

    __slots__ = (
        "_breadths",
        "_chunks",
        "_dense",
        "_hits",
        "_late",
        "_lexical",
        "_ranked",
        "_ranks",
    )

    def __init__(
        self,
        chunks: Sequence[PooledChunk],
        ranked: RankedPool,
        dense_scores: Sequence[float],
        late_scores: Sequence[float],
        lexical_scores: Sequence[float] | None = None,
        breadths: Sequence[float] | None = None,
    ) -> None:
        count = len(chunks)
        lengths = [len(ranked.order), len(ranked.scores), len(dense_scores), len(late_scores)]
        if lexical_scores is not None:
            lengths.append(len(lexical_scores))
        if breadths is not None:
            lengths.append(len(breadths))
        if any(length != count for length in lengths):
            raise ValueError(f"a pool of {count} chunks with scores of lengths {lengths}")
        self._chunks = chunks
        self._ranked = ranked
        self._dense = dense_scores
        self._late = late_scores
        self._lexical = lexical_scores
        self._breadths = breadths
        self._hits: list[SearchHit | None] = [None] * count
        # Each signal's ranks, counted when the first hit is made (None until then).
        self._ranks: tuple[list[int], list[int], list[int] | None] | None = None

    def __len__(self) -> int:
        return len(self._hits)

    def positions(self, count: int) -> list[int]:
        """The pool positions (indexes into ``chunks``) of the first ``count`` hits."""
        return self._ranked.order[:count]

    @overload
    def __getitem__(self, index: int) -> SearchHit: ...
    @overload
    def __getitem__(self, index: slice) -> list[SearchHit]: ...
    def __getitem__(self, index: int | slice) -> SearchHit | list[SearchHit]:
        # A range reads indexes and slices as a list does (negative ones, IndexError).
        ranks = range(len(self._hits))
        if isinstance(index, slice):
            return [self._hit(i) for i in ranks[index]]
        return self._hit(ranks[index])

    def __iter__(self) -> Iterator[SearchHit]:
        for index in range(len(self._hits)):
            yield self._hit(index)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # equal to lists, which are unhashable

    def __repr__(self) -> str:
        return f"RankedHits({len(self)} hits)"

    def _hit(self, rank_index: int) -> SearchHit:
        hit = self._hits[rank_index]
        if hit is not None:
            return hit
        if self._ranks is None:
            lexical = signal_ranks(self._lexical) if self._lexical is not None else None
            self._ranks = (signal_ranks(self._dense), signal_ranks(self._late), lexical)
        dense_ranks, late_ranks, lexical_ranks = self._ranks
        position = self._ranked.order[rank_index]
        chunk = self._chunks[position]
        hit = SearchHit(
            chunk_id=chunk.chunk_id,
            url=chunk.url,
            title=chunk.title,
            heading_path=chunk.heading_path,
            text=chunk.text,
            dense_rank=dense_ranks[position],
            dense_score=self._dense[position],
            late_interaction_rank=late_ranks[position],
            late_interaction_score=self._late[position],
            lexical_rank=lexical_ranks[position] if lexical_ranks is not None else None,
            lexical_score=self._lexical[position] if self._lexical is not None else None,
            rank=rank_index + 1,
            score=self._ranked.scores[position],
            position=chunk.position,
            page_breadth=self._breadths[position] if self._breadths is not None else 0.0,
        )
        self._hits[rank_index] = hit
        return hit
