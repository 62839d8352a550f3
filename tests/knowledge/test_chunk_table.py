"""The chunk table saved with the lexical index: the same chunks as Chroma holds, read by id
from a memory map, so a search asks Chroma only for its nearest ids and which chunks still
exist."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from assistant.core import Assistant
from assistant.knowledge.chunk_table import ChunkTable, gather_pages
from assistant.knowledge.lexical import LexicalIndex
from assistant.knowledge.vector_store import (
    ChromaStore,
    StoredChunk,
    chroma_client,
    close_chroma_client,
)
from assistant.testing.vector_store_contract import DIMENSION, record, unit
from tests.knowledge.test_chunk_memo import CountingCollection
from tests.support.docs import write_docs


def chunks_and_vectors() -> tuple[list[StoredChunk], np.ndarray]:
    chunks = [
        StoredChunk(
            "a#0", "Prix: 10 € — «mensuel»", "https://x/a", "site", "Prix", ("Plans",), 0, "h0"
        ),
        StoredChunk(
            "a#1",
            'Quote " and \\ backslash\nnew line',
            "https://x/a",
            "site",
            "Prix",
            ("Plans", "Annual"),
            1,
            "h1",
        ),
        StoredChunk("b#0", "", "/docs/b.md", "files", "", (), 0, "h2"),
    ]
    vectors = np.arange(3 * DIMENSION, dtype=np.float32).reshape(3, DIMENSION) / 100.0
    return chunks, vectors


def test_a_saved_table_reads_back_every_chunk_and_vector(tmp_path: Path) -> None:
    chunks, vectors = chunks_and_vectors()
    ChunkTable.build(chunks, vectors).save(tmp_path)

    table = ChunkTable.load(tmp_path, [c.chunk_id for c in chunks])
    assert table is not None and len(table) == 3
    found = table.get_many(["b#0", "unknown", "a#1", "a#0"])
    assert list(found) == ["b#0", "a#1", "a#0"], "in the order asked, unknown ids left out"
    for row, chunk in enumerate(chunks):
        read, vector = found[chunk.chunk_id]
        assert read == chunk
        assert np.array_equal(vector, vectors[row])


def test_a_table_that_does_not_match_its_index_is_not_used(tmp_path: Path) -> None:
    chunks, vectors = chunks_and_vectors()
    ids = [c.chunk_id for c in chunks]
    assert ChunkTable.load(tmp_path, ids) is None, "no table saved"
    ChunkTable.build(chunks, vectors).save(tmp_path)
    assert ChunkTable.load(tmp_path, ids[:2]) is None, "another number of rows"

    records = tmp_path / "chunks.bin"
    records.write_bytes(records.read_bytes()[:-5])
    assert ChunkTable.load(tmp_path, ids) is None, "records cut short"

    ChunkTable.build(chunks, vectors).save(tmp_path)
    shuffled = ChunkTable.load(tmp_path, [ids[1], ids[0], ids[2]])
    assert shuffled is not None
    assert list(shuffled.get_many(ids)) == ["b#0"], (
        "a row that holds another chunk is not returned for this id"
    )

    ChunkTable.build(chunks, vectors).save(tmp_path)
    records.write_bytes(b"x" * len(records.read_bytes()))  # same length, every row damaged
    damaged = ChunkTable.load(tmp_path, ids)
    assert damaged is not None and damaged.get_many(ids) == {}, "damaged rows are left out"

    with pytest.raises(ValueError, match="one dense vector"):
        ChunkTable.build(chunks, vectors[:2])
    (tmp_path / "empty").mkdir()
    ChunkTable.build([], np.zeros((0, DIMENSION), np.float32)).save(tmp_path / "empty")
    loaded = ChunkTable.load(tmp_path / "empty", [])
    assert loaded is not None and len(loaded) == 0 and loaded.get_many(["a#0"]) == {}


def test_the_lexical_index_saves_and_loads_its_table(tmp_path: Path) -> None:
    chunks, vectors = chunks_and_vectors()
    pairs = [(c.chunk_id, c.text or "empty") for c in chunks]
    LexicalIndex.build(pairs, chunk_table=ChunkTable.build(chunks, vectors)).save(tmp_path / "i")
    index = LexicalIndex.load(tmp_path / "i")
    assert index is not None and index.chunk_table is not None
    assert index.chunk_table.get_many(["a#1"])["a#1"][0] == chunks[1]
    assert index.query("backslash").top(1)[0][0] == "a#1"

    with pytest.raises(ValueError, match="in its order"):
        LexicalIndex.build(pairs[::-1], chunk_table=ChunkTable.build(chunks, vectors))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Any]:
    client = chroma_client(path=str(tmp_path / "chroma"))
    yield client
    close_chroma_client(client)


def table_of(store: ChromaStore) -> ChunkTable:
    return ChunkTable.build(*gather_pages(store.iter_embedded_chunks(), DIMENSION))


def test_a_store_with_a_table_reads_no_chunk_from_chroma(client: Any) -> None:
    plain = ChromaStore.open(client, "table", embedding_model="m", dimension=DIMENSION)
    plain.add(
        [record("a", 0, "First."), record("a", 1, "Second."), record("b", 0, "Third.")],
        torch.stack([unit(1.0), unit(1.0, 1.0), unit(0.0, 1.0)]),
    )
    store = ChromaStore(client, CountingCollection(plain._collection), "table")
    counting: CountingCollection = store._collection
    store.use_table(table_of(plain))

    recalled = store.query(unit(1.0), k=2)
    lexical_only = store.get_with_similarity(["b#0", "a#1"], unit(1.0))
    assert counting.text_reads == [] and counting.vector_reads == []
    fresh = ChromaStore.open(client, "table", embedding_model="m", dimension=DIMENSION)
    assert recalled == fresh.query(unit(1.0), k=2)
    assert lexical_only == fresh.get_with_similarity(["b#0", "a#1"], unit(1.0)), (
        "the same chunks and similarities as read from Chroma"
    )

    plain.delete(["b#0"])  # the table still holds it
    assert [c.chunk_id for c, _ in store.get_with_similarity(["b#0", "a#1"], unit(1.0))] == [
        "a#1"
    ], "a chunk deleted since the table was built is not returned"


def test_a_chunk_the_table_lacks_is_read_from_chroma(client: Any) -> None:
    plain = ChromaStore.open(client, "table", embedding_model="m", dimension=DIMENSION)
    plain.add([record("a", 0, "First.")], unit(1.0).unsqueeze(0))
    store = ChromaStore(client, CountingCollection(plain._collection), "table")
    counting: CountingCollection = store._collection
    store.use_table(table_of(plain))
    plain.add([record("b", 0, "Added after the table.")], unit(0.0, 1.0).unsqueeze(0))

    read = store.get_with_similarity(["b#0", "a#0"], unit(0.0, 1.0))
    assert [c.text for c, _ in read] == ["Added after the table.", "First."]
    assert counting.text_reads == [["b#0"]]


@pytest.mark.integration
def test_ingestion_saves_the_table_and_search_reads_from_it(
    make_assistant: Callable[..., Assistant], tmp_path: Path
) -> None:
    folder = write_docs(
        tmp_path,
        {
            "refunds.md": "# Refunds\n\nRefunds are paid within 14 days of a cancelled order.\n",
            "sso.md": "# Single sign-on\n\nConnect Okta or Azure AD under Settings, Security.\n",
        },
    )
    first = make_assistant()
    first.ingest([str(folder)])
    knowledge_base = first._kb("default")
    index = knowledge_base.retriever.lexical
    assert index is not None and index.chunk_table is not None
    assert len(index.chunk_table) == knowledge_base.store.count()
    with_table = first.search("how long until my money comes back?", k=5)
    knowledge_base.store.use_table(None)
    knowledge_base.store.forget_reads()
    from_chroma = first.search("how long until my money comes back?", k=5)
    assert with_table.candidates == from_chroma.candidates
    assert with_table.hits[0].url.endswith("refunds.md")

    # What an earlier version saved: the same index without the table; the next ingestion,
    # even one that changes nothing, writes it.
    LexicalIndex(
        index._model,
        index.chunk_ids,
        term_weights=index.term_weights,
        page_sizes=index.page_sizes,
        code_names=index.code_names,
    ).save(knowledge_base.lexical_dir)
    first.close()
    reopened = make_assistant()
    assert not reopened._kb("default").lexical_is_current
    reopened.ingest([str(folder)])
    rebuilt = reopened._kb("default").retriever.lexical
    assert rebuilt is not None and rebuilt.chunk_table is not None
