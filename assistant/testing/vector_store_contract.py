"""The vector-store contract: one pytest suite every ``VectorStore`` must pass.

Subclass ``VectorStoreContract`` and give it an ``open_store`` fixture: a callable that opens
the knowledge base of a given name, every call on the same backend (one Chroma client, one
server), with dimension ``DIMENSION``::

    class TestMyStore(VectorStoreContract):
        @pytest.fixture
        def open_store(self, tmp_path: Path) -> StoreOpener:
            client = my_client(tmp_path)
            return lambda name: MyStore.open(client, name, dimension=DIMENSION)

Names are short and fixed (``"alpha"``, ``"beta"``); a backend shared between tests should make
them unique per test. Besides the seam's plain behaviour (add, query, get, delete, count,
documents), the suite pins down the quirks a Chroma-backed store has to absorb:

- metadata must be flat: a heading path (a list, possibly empty, which Chroma refuses) is
  flattened on the way in and comes back as the same tuple;
- ``None`` is neither a metadata value nor a filter: optional fields that are ``None`` are
  left out and read back as ``None``, and ``documents(source=None)`` means "no filter";
- deleting ids that are not there is silent, and an empty store queries to ``[]``;
- two knowledge bases on one backend never see each other's chunks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
import torch

from assistant.knowledge.chunking import Chunk
from assistant.knowledge.vector_store import ChunkRecord, StoredChunk, VectorStore
from connectors.document import EXTRACTION_VERSION

__all__ = ["DIMENSION", "StoreOpener", "VectorStoreContract", "record", "unit"]

DIMENSION = 8
"""The dimension of every vector the contract stores."""

StoreOpener = Callable[[str], VectorStore]
"""Opens (creating if needed) the knowledge base of the given name."""

_SIMILARITY_TOLERANCE = 1e-4


def unit(*weights: float) -> torch.Tensor:
    """A unit vector of dimension ``DIMENSION`` from its first few coordinates."""
    vector = torch.zeros(DIMENSION)
    vector[: len(weights)] = torch.tensor(weights)
    return torch.nn.functional.normalize(vector, dim=0)


def record(
    url: str,
    position: int = 0,
    text: str = "",
    *,
    source: str = "docs",
    heading_path: tuple[str, ...] = ("Plans",),
    etag: str | None = None,
    last_modified: str | None = None,
    document_hash: str = "document-hash",
) -> ChunkRecord:
    """A chunk record whose id is ``{url}#{position}``."""
    chunk = Chunk(
        f"{url}#{position}",
        url,
        f"Title of {url}",
        heading_path,
        text or f"Passage {position} of {url}.",
        position,
    )
    return ChunkRecord(
        chunk,
        source=source,
        document_hash=document_hash,
        content_type="text/markdown",
        fetched_at="2025-01-01T00:00:00+00:00",
        etag=etag,
        last_modified=last_modified,
    )


def _ids(chunks: Sequence[StoredChunk]) -> list[str]:
    return [chunk.chunk_id for chunk in chunks]


class VectorStoreContract:
    """The vector-store contract; subclasses supply the ``open_store`` fixture."""

    @pytest.fixture
    def store(self, open_store: StoreOpener) -> VectorStore:
        """The knowledge base ``alpha``, empty."""
        return open_store("alpha")

    def test_an_empty_store_counts_nothing_and_queries_to_nothing(self, store: VectorStore) -> None:
        assert store.count() == 0
        assert store.query(unit(1.0), k=5) == []
        assert store.get(["a#0"]) == []
        assert store.get_with_similarity(["a#0"], unit(1.0)) == []
        assert store.documents() == []
        assert store.document_state("a") is None

    def test_added_chunks_read_back_in_the_order_asked(self, store: VectorStore) -> None:
        records = [record("a", 0, "First."), record("a", 1, "Second."), record("b", 0, "Third.")]
        store.add(records, torch.stack([unit(1.0), unit(0.0, 1.0), unit(0.0, 0.0, 1.0)]))

        found = store.get(["b#0", "missing#0", "a#0"])

        assert store.count() == 3
        assert _ids(found) == ["b#0", "a#0"], "unknown ids are left out, the order is kept"
        third, first = found
        assert (first.text, first.url, first.source) == ("First.", "a", "docs")
        assert (first.title, first.position) == ("Title of a", 0)
        assert first.chunk_hash == records[0].chunk.content_hash
        assert first.chunk == records[0].chunk
        assert third.text == "Third."
        assert store.get([]) == []

    def test_an_empty_add_changes_nothing(self, store: VectorStore) -> None:
        store.add([], torch.empty(0, DIMENSION))

        assert store.count() == 0

    def test_query_ranks_by_cosine_similarity_best_first(self, store: VectorStore) -> None:
        store.add(
            [record("a", 0), record("a", 1), record("a", 2)],
            # Stored unnormalised on purpose: similarity is cosine, not a dot product.
            torch.stack([unit(0.0, 1.0) * 3, unit(1.0, 1.0), unit(1.0) * 0.5]),
        )

        hits = store.query(unit(1.0), k=2)
        everything = store.query(unit(1.0), k=10)

        assert _ids([chunk for chunk, _ in hits]) == ["a#2", "a#1"]
        assert [chunk.chunk_id for chunk, _ in everything] == ["a#2", "a#1", "a#0"]
        similarities = [similarity for _, similarity in everything]
        expected = [1.0, 2**-0.5, 0.0]
        assert similarities == pytest.approx(expected, abs=_SIMILARITY_TOLERANCE)

    def test_get_with_similarity_scores_the_ids_asked_for(self, store: VectorStore) -> None:
        store.add([record("a", 0), record("a", 1)], torch.stack([unit(1.0), unit(1.0, 1.0)]))

        pairs = store.get_with_similarity(["a#1", "missing#0", "a#0"], unit(2.0))
        scored = {chunk.chunk_id: similarity for chunk, similarity in pairs}

        assert set(scored) == {"a#0", "a#1"}, "unknown ids are left out"
        assert scored["a#0"] == pytest.approx(1.0, abs=_SIMILARITY_TOLERANCE)
        assert scored["a#1"] == pytest.approx(2**-0.5, abs=_SIMILARITY_TOLERANCE)
        assert store.get_with_similarity([], unit(1.0)) == []

    def test_adding_an_id_again_replaces_the_chunk(self, store: VectorStore) -> None:
        store.add([record("a", 0, "Old text.")], unit(1.0).unsqueeze(0))
        store.add([record("a", 0, "New text.")], unit(0.0, 1.0).unsqueeze(0))

        ((chunk, similarity),) = store.query(unit(0.0, 1.0), k=5)

        assert store.count() == 1
        assert chunk.text == "New text."
        assert similarity == pytest.approx(1.0, abs=_SIMILARITY_TOLERANCE)

    def test_adding_an_id_again_replaces_its_metadata_too(self, store: VectorStore) -> None:
        # Chroma's upsert merges metadata: a field the new record leaves out would survive.
        store.add([record("a", 0, etag='"v1"', last_modified="Mon")], unit(1.0).unsqueeze(0))
        store.add([record("a", 0, etag=None, last_modified=None)], unit(1.0).unsqueeze(0))

        state = store.document_state("a")

        assert state is not None and (state.etag, state.last_modified) == (None, None)

    def test_delete_removes_chunks_and_ignores_unknown_ids(self, store: VectorStore) -> None:
        store.add([record("a", 0), record("a", 1)], torch.stack([unit(1.0), unit(0.0, 1.0)]))

        store.delete(["a#0", "never-stored#0"])
        store.delete(["never-stored#1"])
        store.delete([])

        assert store.count() == 1
        assert store.get(["a#0", "a#1"])[0].chunk_id == "a#1"
        assert [chunk.chunk_id for chunk, _ in store.query(unit(1.0), k=5)] == ["a#1"]

    def test_document_state_gathers_a_documents_chunks_in_position_order(
        self, store: VectorStore
    ) -> None:
        records = [
            record("a", 2, document_hash="hash-a", etag='"v1"', last_modified="Wed, 01 Jan"),
            record("a", 0, document_hash="hash-a", etag='"v1"', last_modified="Wed, 01 Jan"),
            record("a", 1, document_hash="hash-a", etag='"v1"', last_modified="Wed, 01 Jan"),
            record("b", 0),
        ]
        store.add(records, torch.stack([unit(1.0)] * 4))

        state = store.document_state("a")

        assert state is not None
        assert state.chunk_ids == ("a#0", "a#1", "a#2")
        assert (state.url, state.source, state.title) == ("a", "docs", "Title of a")
        assert (state.document_hash, state.content_type) == ("hash-a", "text/markdown")
        assert state.fetched_at == "2025-01-01T00:00:00+00:00"
        assert (state.etag, state.last_modified) == ('"v1"', "Wed, 01 Jan")
        assert state.extraction_version == EXTRACTION_VERSION
        assert store.document_state("never-stored") is None

    def test_none_fields_are_left_out_and_read_back_as_none(self, store: VectorStore) -> None:
        # Chroma refuses None as a metadata value; the store must not pass it on.
        store.add([record("a", 0, etag=None, last_modified=None)], unit(1.0).unsqueeze(0))

        state = store.document_state("a")

        assert state is not None and (state.etag, state.last_modified) == (None, None)

    def test_documents_filter_by_source_and_none_means_every_source(
        self, store: VectorStore
    ) -> None:
        records = [
            record("https://example.com/b", source="https://example.com/sitemap.xml"),
            record("/docs/a.md", source="/docs"),
            record("/docs/c.md", source="/docs"),
        ]
        store.add(records, torch.stack([unit(1.0)] * 3))

        every = store.documents()
        unfiltered = store.documents(None)
        from_folder = store.documents("/docs")

        assert [state.url for state in every] == [
            "/docs/a.md",
            "/docs/c.md",
            "https://example.com/b",
        ], "sorted by source, then URL"
        assert unfiltered == every
        assert [state.url for state in from_folder] == ["/docs/a.md", "/docs/c.md"]
        assert store.documents("never-ingested") == []

    @pytest.mark.parametrize(
        "heading_path",
        [(), ("Plans",), ("Plans", "Team", "Billing"), ('Quotes "and" [brackets]', "Ünïcode")],
        ids=["empty", "one", "nested", "awkward"],
    )
    def test_heading_paths_are_flattened_and_come_back_whole(
        self, store: VectorStore, heading_path: tuple[str, ...]
    ) -> None:
        # Chroma metadata is flat and refuses empty lists: the path is stored as one value.
        store.add([record("a", 0, heading_path=heading_path)], unit(1.0).unsqueeze(0))

        (chunk,) = store.get(["a#0"])
        ((queried, _),) = store.query(unit(1.0), k=1)

        assert chunk.heading_path == heading_path
        assert queried.heading_path == heading_path

    def test_knowledge_bases_never_see_each_others_chunks(self, open_store: StoreOpener) -> None:
        alpha, beta = open_store("alpha"), open_store("beta")
        alpha.add([record("a", 0, "Alpha only.")], unit(1.0).unsqueeze(0))
        beta.add(
            [record("a", 0, "Beta only."), record("b", 0, "Beta too.")],
            torch.stack([unit(1.0), unit(0.0, 1.0)]),
        )

        assert (alpha.count(), beta.count()) == (1, 2)
        assert [chunk.text for chunk, _ in alpha.query(unit(1.0), k=10)] == ["Alpha only."]
        assert [chunk.text for chunk in alpha.get(["a#0", "b#0"])] == ["Alpha only."]
        assert [state.url for state in alpha.documents()] == ["a"]
        assert alpha.document_state("b") is None

        beta.delete(["a#0"])

        assert [chunk.text for chunk in alpha.get(["a#0"])] == ["Alpha only."]
        assert [chunk.text for chunk in open_store("alpha").get(["a#0"])] == ["Alpha only."]
