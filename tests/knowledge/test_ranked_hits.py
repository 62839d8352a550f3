"""A ranked pool's hits are made when first read, and read as the ranking says."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from assistant.knowledge.ranked_hits import RankedHits
from assistant.knowledge.ranking import RankedPool
from assistant.knowledge.results import SearchHit


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    url: str = "https://example.com/page"
    source: str = "https://example.com/sitemap.xml"
    title: str = "Page"
    heading_path: tuple[str, ...] = ("Section",)
    text: str = "text"
    position: int = 0


class ReadChunks(list[Chunk]):
    """A pool's chunks that remember which positions were read."""

    def __init__(self, chunks: list[Chunk]) -> None:
        super().__init__(chunks)
        self.read: list[int] = []

    def __getitem__(self, index):  # type: ignore[no-untyped-def, override]
        self.read.append(index)
        return super().__getitem__(index)


def pool() -> tuple[ReadChunks, RankedHits]:
    chunks = ReadChunks([Chunk(f"c{i}", position=i) for i in range(4)])
    # Fused order: position 2, then 0, 3, 1.
    ranked = RankedPool([2, 0, 3, 1], [0.5, -1.0, 1.5, 0.0])
    hits = RankedHits(
        chunks,
        ranked,
        dense_scores=[0.9, 0.1, 0.5, 0.3],
        late_scores=[0.2, 0.4, 0.8, 0.6],
        lexical_scores=[3.0, 0.0, 2.0, 1.0],
        breadths=[0.0, 0.0, 0.4, 0.0],
    )
    return chunks, hits


def test_hits_follow_the_ranking_with_every_signals_rank() -> None:
    _, hits = pool()
    assert [hit.chunk_id for hit in hits] == ["c2", "c0", "c3", "c1"]
    assert [hit.rank for hit in hits] == [1, 2, 3, 4]
    first = hits[0]
    assert first == SearchHit(
        chunk_id="c2",
        url="https://example.com/page",
        title="Page",
        heading_path=("Section",),
        text="text",
        dense_rank=2,
        dense_score=0.5,
        late_interaction_rank=1,
        late_interaction_score=0.8,
        lexical_rank=2,
        lexical_score=2.0,
        rank=1,
        score=1.5,
        position=2,
        page_breadth=0.4,
    )
    assert (hits[-1].chunk_id, hits[-1].late_interaction_rank, hits[-1].lexical_rank) == (
        "c1",
        3,
        4,
    )
    assert hits.positions(2) == [2, 0]


def test_only_the_hits_read_are_made() -> None:
    chunks, hits = pool()
    head = hits[:2]
    assert [hit.chunk_id for hit in head] == ["c2", "c0"]
    assert sorted(chunks.read) == [0, 2]
    assert hits[0] is head[0]  # made once, then kept
    assert sorted(chunks.read) == [0, 2]


def test_equal_to_a_list_of_the_same_hits() -> None:
    _, hits = pool()
    _, again = pool()
    assert hits == list(again)
    assert hits == again
    assert hits != list(again)[:3]
    assert len(hits) == 4
    with pytest.raises(IndexError):
        hits[4]
    with pytest.raises(TypeError):
        hash(hits)


def test_without_a_lexical_signal() -> None:
    hits = RankedHits(
        [Chunk("a"), Chunk("b")], RankedPool([1, 0], [0.0, 1.0]), [0.2, 0.1], [0.3, 0.4]
    )
    assert [(hit.chunk_id, hit.lexical_rank, hit.lexical_score) for hit in hits] == [
        ("b", None, None),
        ("a", None, None),
    ]
    assert [hit.page_breadth for hit in hits] == [0.0, 0.0]


def test_scores_of_another_length_are_refused() -> None:
    with pytest.raises(ValueError, match="2 chunks"):
        RankedHits([Chunk("a"), Chunk("b")], RankedPool([1, 0], [0.0, 1.0]), [0.2], [0.3, 0.4])
