"""What the store keeps per chunk and per document, as written and as read back.

Chroma metadata cannot hold lists or ``None``: heading paths are stored as JSON text and
missing validators are simply left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from assistant.knowledge.chunking import Chunk
from connectors.document import EXTRACTION_VERSION

__all__ = ["ChunkRecord", "DocumentState", "StoredChunk"]


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    """A chunk plus what the store keeps about its document."""

    chunk: Chunk
    source: str
    document_hash: str
    content_type: str
    fetched_at: str
    etag: str | None = None
    last_modified: str | None = None
    extraction_version: int = EXTRACTION_VERSION

    def metadata(self) -> dict[str, str | int]:
        """Flat Chroma metadata: no lists, no ``None``."""
        values: dict[str, str | int] = {
            "url": self.chunk.document_source,
            "source": self.source,
            "title": self.chunk.title,
            "headings": json.dumps(list(self.chunk.heading_path), ensure_ascii=False),
            "position": self.chunk.position,
            "chunk_hash": self.chunk.content_hash,
            "document_hash": self.document_hash,
            "content_type": self.content_type,
            "fetched_at": self.fetched_at,
            "extraction_version": self.extraction_version,
        }
        if self.etag:
            values["etag"] = self.etag
        if self.last_modified:
            values["last_modified"] = self.last_modified
        return values


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """A chunk as read back from the store."""

    chunk_id: str
    text: str
    url: str
    source: str
    title: str
    heading_path: tuple[str, ...]
    position: int
    chunk_hash: str

    @property
    def chunk(self) -> Chunk:
        """The chunk, e.g. to recompute its token embeddings from its embedding text."""
        return Chunk(
            self.chunk_id, self.url, self.title, self.heading_path, self.text, self.position
        )

    @classmethod
    def from_chroma(cls, chunk_id: str, text: str | None, metadata: Any) -> StoredChunk:
        """Build from one row of a Chroma ``get``/``query`` result."""
        meta = dict(metadata or {})
        return cls(
            chunk_id=chunk_id,
            text=text or "",
            url=str(meta.get("url", "")),
            source=str(meta.get("source", "")),
            title=str(meta.get("title", "")),
            heading_path=tuple(json.loads(str(meta.get("headings", "[]")))),
            position=int(meta.get("position", 0)),
            chunk_hash=str(meta.get("chunk_hash", "")),
        )


@dataclass(frozen=True, slots=True)
class DocumentState:
    """What the store holds for one document URL or path."""

    url: str
    source: str
    title: str
    document_hash: str
    chunk_ids: tuple[str, ...]
    content_type: str
    fetched_at: str
    etag: str | None = None
    last_modified: str | None = None
    extraction_version: int = 0
    """The ``EXTRACTION_VERSION`` the document was read with (0: before versions were kept)."""
