"""The store's memo of chunks read: bounded, asked before Chroma, never returning a chunk that
no longer exists."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from assistant.knowledge.chunk_memo import ChunkMemo
from assistant.knowledge.vector_store import (
    ChromaStore,
    StoredChunk,
    chroma_client,
    close_chroma_client,
)
from assistant.testing.vector_store_contract import DIMENSION, record, unit


def stored(chunk_id: str, text: str = "text") -> StoredChunk:
    return StoredChunk(chunk_id, text, "https://example.com/a", "docs", "A", (), 0, "hash")


def test_the_memo_keeps_the_most_recently_used_within_its_bound() -> None:
    vector = np.zeros(DIMENSION, np.float32)
    memo: ChunkMemo[StoredChunk] = ChunkMemo(max_bytes=1)
    memo.put_many([(stored("a"), vector)])
    assert len(memo) == 0, "an entry larger than the bound is not kept"

    memo = ChunkMemo(max_bytes=10**9)
    memo.put_many([(stored("a"), vector)])
    entry = memo.size_bytes
    memo = ChunkMemo(max_bytes=2 * entry)
    memo.put_many([(stored("a"), vector), (stored("b"), vector)])
    memo.get_many(["a"])  # a is now the most recently used
    memo.put_many([(stored("c"), vector)])
    assert set(memo.get_many(["a", "b", "c"])) == {"a", "c"}
    assert memo.size_bytes <= 2 * entry

    memo.forget(["a", "unknown"])
    assert set(memo.get_many(["a", "c"])) == {"c"}
    memo.forget()
    assert len(memo) == 0 and memo.size_bytes == 0


class CountingCollection:
    """A Chroma collection that counts the reads which return chunk text."""

    def __init__(self, collection: Any) -> None:
        self._collection = collection
        self.text_reads: list[list[str]] = []
        self.vector_reads: list[list[str]] = []

    def get(self, ids: Any = None, include: Any = (), **kwargs: Any) -> Any:
        if "documents" in include:
            self.text_reads.append(list(ids or []))
        if "embeddings" in include:
            self.vector_reads.append(list(ids or []))
        return self._collection.get(ids=ids, include=include, **kwargs)

    def query(self, **kwargs: Any) -> Any:
        assert "documents" not in kwargs.get("include", ()), "a query asks for ids only"
        return self._collection.query(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._collection, name)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Any]:
    client = chroma_client(path=str(tmp_path / "chroma"))
    yield client
    close_chroma_client(client)


def open_counting(client: Any) -> tuple[ChromaStore, CountingCollection]:
    store = ChromaStore.open(client, "memo", embedding_model="m", dimension=DIMENSION)
    counting = CountingCollection(store._collection)
    return ChromaStore(client, counting, "memo"), counting


def test_chunks_read_once_are_not_read_from_chroma_again(client: Any) -> None:
    store, counting = open_counting(client)
    store.add(
        [record("a", 0), record("a", 1), record("b", 0)],
        torch.stack([unit(1.0), unit(1.0, 1.0), unit(0.0, 1.0)]),
    )
    first = store.query(unit(1.0), k=2)
    assert len(counting.text_reads) == 1
    again = store.query(unit(1.0), k=2)
    assert again == first and len(counting.text_reads) == 1
    # A lexical-only candidate: only the one not read before is fetched with its text.
    scored = store.get_with_similarity(["b#0", "a#0"], unit(1.0))
    assert [chunk.chunk_id for chunk, _ in scored] == ["b#0", "a#0"], "in the order asked"
    assert scored[1][1] == pytest.approx(1.0, abs=1e-4)
    assert scored[0][1] == pytest.approx(0.0, abs=1e-4)
    assert counting.text_reads[1:] == [["b#0"]]


def test_a_vector_is_read_only_when_a_lexical_only_candidate_needs_it(client: Any) -> None:
    store, counting = open_counting(client)
    store.add(
        [record("a", 0), record("a", 1), record("b", 0)],
        torch.stack([unit(1.0), unit(1.0, 1.0), unit(0.0, 1.0)]),
    )
    store.query(unit(1.0), k=2)
    assert counting.vector_reads == [], "dense recall's similarity comes with the query"

    scored = store.get_with_similarity(["a#1", "b#0"], unit(1.0))
    assert [chunk.chunk_id for chunk, _ in scored] == ["a#1", "b#0"]
    assert scored[0][1] == pytest.approx(2**-0.5, abs=1e-4)
    assert sorted(map(sorted, counting.vector_reads)) == [["a#1"], ["b#0"]]
    assert counting.text_reads[1:] == [["b#0"]], "a#1's text came from the memo"

    store.get_with_similarity(["a#1", "b#0"], unit(0.0, 1.0))
    assert len(counting.vector_reads) == 2, "vectors read once are remembered"


def test_a_chunk_deleted_by_another_process_is_not_returned(client: Any) -> None:
    reader, _ = open_counting(client)
    writer = ChromaStore.open(client, "memo", embedding_model="m", dimension=DIMENSION)
    writer.add([record("a", 0), record("a", 1)], torch.stack([unit(1.0), unit(1.0, 1.0)]))
    assert len(reader.query(unit(1.0), k=5)) == 2
    assert len(reader.get_with_similarity(["a#0", "a#1"], unit(1.0))) == 2
    dense_only, _ = open_counting(client)  # remembers the chunks, not their vectors
    assert len(dense_only.query(unit(1.0), k=5)) == 2

    writer.delete(["a#0"])  # the readers still remember a#0

    assert [c.chunk_id for c, _ in reader.query(unit(1.0), k=5)] == ["a#1"]
    assert [c.chunk_id for c, _ in reader.get_with_similarity(["a#0", "a#1"], unit(1.0))] == ["a#1"]
    kept = dense_only.get_with_similarity(["a#0", "a#1"], unit(1.0))
    assert [c.chunk_id for c, _ in kept] == ["a#1"]


def test_writes_and_forget_reads_drop_what_was_remembered(client: Any) -> None:
    store, counting = open_counting(client)
    store.add([record("a", 0, "Old text.")], unit(1.0).unsqueeze(0))
    assert store.query(unit(1.0), k=1)[0][0].text == "Old text."
    store.add([record("a", 0, "New text.")], unit(1.0).unsqueeze(0))
    assert store.query(unit(1.0), k=1)[0][0].text == "New text."

    other = ChromaStore.open(client, "memo", embedding_model="m", dimension=DIMENSION)
    other.add([record("a", 0, "Newest text.")], unit(1.0).unsqueeze(0))
    store.forget_reads()
    assert store.query(unit(1.0), k=1)[0][0].text == "Newest text."
    assert len(counting.text_reads) == 3
