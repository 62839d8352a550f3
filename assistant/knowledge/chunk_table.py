"""The knowledge base's chunks as read at the last lexical build, on disk beside the index.

A search needs each candidate's text and metadata, and the dense vector of a candidate that
only lexical recall found. Reading them from Chroma is the costly part of recall on a large
knowledge base: 100 random chunks of a 100,000-chunk collection take about 6 ms with their
documents and metadata and 8 ms with their vectors, against 2.4 ms for the top-100 query
itself. The in-process memo (``chunk_memo``) hides this on a site whose visitors ask about a
few thousand chunks, not on one whose questions spread over tens of thousands.

So the lexical build, which reads every chunk anyway, also writes them out: each chunk's text
and metadata as one JSON record in ``chunks.bin`` (``chunk_offsets.npy`` says where each
starts) and its dense vector, as Chroma holds it, in ``chunk_vectors.npy``. All three are
memory-mapped: nothing is read until a search asks for a chunk, and worker processes share
the pages. The rows are in the lexical index's order, so its position of a chunk id finds the
row.

The table is a copy, not the truth: Chroma stays that. A chunk id is a hash of the chunk's
page, title, headings and text, so a row cannot hold another chunk's text; what can change
under a row until the next build is whether the chunk still exists (the store still asks
Chroma for that, ids only) and its position on the page.
"""

from __future__ import annotations

import json
import logging
import mmap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assistant.knowledge.store_records import StoredChunk

__all__ = ["ChunkTable", "gather_pages"]

logger = logging.getLogger(__name__)

_RECORDS = "chunks.bin"
_OFFSETS = "chunk_offsets.npy"
_VECTORS = "chunk_vectors.npy"
_FILES = (_RECORDS, _OFFSETS, _VECTORS)


def gather_pages(
    pages: Iterable[tuple[list[StoredChunk], Any]], dimension: int
) -> tuple[list[StoredChunk], np.ndarray]:
    """Every chunk of a store's pages of ``(chunks, dense vectors)`` (as
    ``iter_embedded_chunks`` reads them), and their vectors in one (N, ``dimension``) array."""
    chunks: list[StoredChunk] = []
    vectors: list[np.ndarray] = []
    for page, dense in pages:
        chunks.extend(page)
        vectors.append(np.asarray(dense, dtype=np.float32).reshape(len(page), dimension))
    if not vectors:
        return chunks, np.zeros((0, dimension), np.float32)
    return chunks, np.concatenate(vectors)


def _record(chunk: StoredChunk) -> bytes:
    fields = [
        chunk.chunk_id,
        chunk.text,
        chunk.url,
        chunk.source,
        chunk.title,
        list(chunk.heading_path),
        chunk.position,
        chunk.chunk_hash,
    ]
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class ChunkTable:
    """Chunks and their dense vectors by row, read by chunk id.

    >>> chunk = StoredChunk("c1", "SSO with Okta", "https://x/sso", "site", "SSO", (), 0, "h")
    >>> table = ChunkTable.build([chunk], np.ones((1, 2), np.float32))
    >>> table.get_many(["c1", "c2"])["c1"][0].text
    'SSO with Okta'
    """

    def __init__(
        self,
        records: bytes | mmap.mmap,
        offsets: np.ndarray,
        vectors: np.ndarray,
        positions: dict[str, int],
    ) -> None:
        self._records = records
        # Plain arrays (a memory map's views cost microseconds each), and the offsets as Python
        # ints: a search reads a few hundred rows one by one.
        self._offsets: list[int] = offsets.tolist()
        self._vectors = vectors.view(np.ndarray)
        # Loaded: the lexical index's own map, whose rows these are (same ids, same order).
        self._positions = positions

    @classmethod
    def build(cls, chunks: Sequence[StoredChunk], vectors: np.ndarray) -> ChunkTable:
        """A table of ``chunks``, in their order, with their dense ``vectors``
        ((len(chunks), dimension))."""
        if vectors.ndim != 2 or vectors.shape[0] != len(chunks):
            raise ValueError("one dense vector per chunk")
        positions = {chunk.chunk_id: row for row, chunk in enumerate(chunks)}
        encoded = [_record(chunk) for chunk in chunks]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(record) for record in encoded], out=offsets[1:])
        return cls(b"".join(encoded), offsets, vectors.astype(np.float32, copy=False), positions)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    @property
    def positions(self) -> dict[str, int]:
        """Chunk id → row, in row order (not to be changed)."""
        return self._positions

    def get_many(self, chunk_ids: Sequence[str]) -> dict[str, tuple[StoredChunk, np.ndarray]]:
        """The chunks of ``chunk_ids`` the table holds, with their dense vectors (absent ids
        are left out)."""
        found: dict[str, tuple[StoredChunk, np.ndarray]] = {}
        rows, offsets, records = len(self), self._offsets, self._records
        for chunk_id in chunk_ids:
            row = self._positions.get(chunk_id)
            if row is None or row >= rows:
                continue
            try:
                fields = json.loads(records[offsets[row] : offsets[row + 1]].decode("utf-8"))
                if fields[0] != chunk_id:
                    continue  # not this table's row: read it from the store instead
                chunk = StoredChunk(
                    chunk_id=chunk_id,
                    text=str(fields[1]),
                    url=str(fields[2]),
                    source=str(fields[3]),
                    title=str(fields[4]),
                    heading_path=tuple(str(heading) for heading in fields[5]),
                    position=int(fields[6]),
                    chunk_hash=str(fields[7]),
                )
            except (ValueError, TypeError, IndexError, KeyError):
                # A damaged row (the file changed on disk): the store reads this chunk instead.
                logger.warning(
                    "chunk table row %d unreadable; reading %s from the store", row, chunk_id
                )
                continue
            found[chunk_id] = (chunk, self._vectors[row])
        return found

    def save(self, directory: Path) -> None:
        """Write the table's three files into ``directory``."""
        (directory / _RECORDS).write_bytes(bytes(self._records))
        np.save(directory / _OFFSETS, np.asarray(self._offsets, dtype=np.int64))
        np.save(directory / _VECTORS, self._vectors)

    @classmethod
    def load(cls, directory: Path, chunk_ids: Sequence[str]) -> ChunkTable | None:
        """Map the table saved in ``directory`` with the lexical index of ``chunk_ids`` (its
        rows, in order); ``None`` when there is none, or when it does not match them (then the
        store reads every chunk from Chroma)."""
        if not all((directory / name).exists() for name in _FILES):
            return None
        try:
            offsets = np.load(directory / _OFFSETS, mmap_mode="r")
            vectors = np.load(directory / _VECTORS, mmap_mode="r")
            with open(directory / _RECORDS, "rb") as file:
                size = file.seek(0, 2)
                records: bytes | mmap.mmap = (
                    mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
                )
        except (OSError, ValueError) as exc:
            logger.warning(
                "chunk table in %s unreadable, reading chunks from the store: %s", directory, exc
            )
            return None
        rows = len(chunk_ids)
        if (
            offsets.ndim != 1
            or offsets.size != rows + 1
            or vectors.ndim != 2
            or vectors.shape[0] != rows
            or (rows and int(offsets[-1]) != len(records))
        ):
            logger.warning(
                "chunk table in %s does not match its index, reading chunks from the store",
                directory,
            )
            return None
        return cls(records, offsets, vectors, {cid: row for row, cid in enumerate(chunk_ids)})
