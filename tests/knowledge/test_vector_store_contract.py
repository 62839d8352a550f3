"""The vector-store contract, run against embedded Chroma and a Chroma server, plus the Chroma
quirks our store turns into typed errors."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from assistant.errors import NotFoundError, StoreError
from assistant.knowledge.vector_store import (
    ChromaStore,
    ChunkRecord,
    chroma_client,
    close_chroma_client,
)
from assistant.testing.vector_store_contract import (
    DIMENSION,
    StoreOpener,
    VectorStoreContract,
    record,
    unit,
)
from tests.support.servers import chroma_server

MODEL = "contract-model"


def _opener(client: Any, suffix: str = "") -> StoreOpener:
    def open_store(name: str) -> ChromaStore:
        return ChromaStore.open(client, name + suffix, embedding_model=MODEL, dimension=DIMENSION)

    return open_store


@pytest.fixture(scope="module")
def chroma_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ``chroma run`` server shared by this module's tests (each uses its own names)."""
    folder = tmp_path_factory.mktemp("chroma-server")
    with chroma_server(folder / "data", folder / "chroma.log") as url:
        yield url


@pytest.fixture
def embedded_client(tmp_path: Path) -> Iterator[Any]:
    """An embedded Chroma in the test's folder, closed after the test."""
    client = chroma_client(path=str(tmp_path / "chroma"))
    yield client
    close_chroma_client(client)


class TestEmbeddedChroma(VectorStoreContract):
    @pytest.fixture
    def open_store(self, embedded_client: Any) -> StoreOpener:
        return _opener(embedded_client)


@pytest.fixture(scope="module")
def server_client(chroma_server_url: str) -> Iterator[Any]:
    """A client of the module's Chroma server, closed with the server."""
    client = chroma_client(url=chroma_server_url)
    yield client
    close_chroma_client(client)


@pytest.mark.integration
class TestChromaServer(VectorStoreContract):
    @pytest.fixture
    def open_store(self, server_client: Any) -> StoreOpener:
        # The server outlives the test: unique names keep each test's knowledge bases apart.
        return _opener(server_client, f"-{uuid.uuid4().hex[:12]}")


class _NestedRecord(ChunkRecord):
    """A record whose metadata nests a mapping, which Chroma cannot store."""

    __slots__ = ()

    def metadata(self) -> dict[str, Any]:
        return {**super().metadata(), "author": {"name": "Ada"}}


def test_nested_metadata_is_refused_with_a_store_error(embedded_client: Any) -> None:
    # ChunkRecord flattens what it stores; a record type that does not is refused, typed.
    store = _opener(embedded_client)("alpha")
    base = record("a")
    nested = _NestedRecord(
        base.chunk, base.source, base.document_hash, base.content_type, base.fetched_at
    )

    with pytest.raises(StoreError, match="vector store failed to add chunks"):
        store.add([nested], unit(1.0).unsqueeze(0))

    assert store.count() == 0


def test_chunk_record_metadata_is_flat_and_has_no_none() -> None:
    metadata = record("a", heading_path=("Plans", "Team"), etag=None).metadata()

    assert all(isinstance(value, str | int) for value in metadata.values())
    assert metadata["headings"] == '["Plans", "Team"]'
    assert "etag" not in metadata and "last_modified" not in metadata


def test_a_store_refuses_vectors_that_do_not_match_the_records(embedded_client: Any) -> None:
    store = _opener(embedded_client)("alpha")

    with pytest.raises(ValueError, match="one embedding per record"):
        store.add([record("a", 0), record("a", 1)], unit(1.0).unsqueeze(0))


class _SharedCollectionStore(ChromaStore):
    """A broken store: every knowledge base lands in the same collection."""

    @classmethod
    def open(cls, client: Any, name: str, **options: Any) -> ChromaStore:
        return super().open(client, "shared", **options)


class _StrictDeleteStore(ChromaStore):
    """A broken store: deleting an id that is not there raises."""

    def delete(self, chunk_ids: Sequence[str]) -> None:
        missing = set(chunk_ids) - {chunk.chunk_id for chunk in self.get(chunk_ids)}
        if missing:
            raise NotFoundError(f"no chunks {sorted(missing)}")
        super().delete(chunk_ids)


def test_the_suite_catches_a_store_that_mixes_knowledge_bases(embedded_client: Any) -> None:
    def open_store(name: str) -> ChromaStore:
        return _SharedCollectionStore.open(
            embedded_client, name, embedding_model=MODEL, dimension=DIMENSION
        )

    with pytest.raises(AssertionError):
        VectorStoreContract().test_knowledge_bases_never_see_each_others_chunks(open_store)


def test_the_suite_catches_a_store_that_fails_on_unknown_ids(embedded_client: Any) -> None:
    store = _StrictDeleteStore.open(
        embedded_client, "alpha", embedding_model=MODEL, dimension=DIMENSION
    )

    with pytest.raises(NotFoundError):
        VectorStoreContract().test_delete_removes_chunks_and_ignores_unknown_ids(store)


def test_closing_a_client_twice_is_harmless(tmp_path: Path) -> None:
    client = chroma_client(path=str(tmp_path / "chroma"))

    close_chroma_client(client)
    close_chroma_client(client)
