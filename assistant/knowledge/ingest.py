"""Ingestion: connectors → documents → chunks → dense vectors + token embeddings → stores.

Re-ingesting is idempotent. A document whose content hash is unchanged costs nothing; a
changed one gets its new chunks written before its stale chunks are deleted, so a crash
in between leaves extra chunks, never missing ones; a document that vanished from a source
that was enumerated in full (a folder, a sitemap, a crawl that finished) is removed. Failures
are reported per page or file and never stop the rest of the batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from assistant.errors import ConnectorError, DocumentTooLargeError, EncoderError
from assistant.knowledge.chunking import Chunk, Chunker
from assistant.knowledge.encoder import Encoder, TokenEncoder, shared_pass
from assistant.knowledge.reports import (
    DocumentOutcome,
    IngestReport,
    ProgressCallback,
    ProgressEvent,
    Status,
)
from assistant.knowledge.token_cache import TokenCache, cache_key, token_space
from assistant.knowledge.vector_store import ChunkRecord, VectorStore
from connectors.base import Connector
from connectors.document import EXTRACTION_VERSION, Document, SourceFailure, Unchanged
from connectors.limits import DEFAULT_LIMITS

__all__ = [
    "DocumentOutcome",
    "IngestReport",
    "Ingestor",
    "ProgressCallback",
    "ProgressEvent",
    "Status",
]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Pending:
    """A document to write: its chunks, and which of them are stored already.

    A chunk's id is a hash of its page, title, headings and text, all of what is embedded, so
    a chunk stored under the same id has the same vectors: only the new ones are encoded
    (``fresh``); the others (``kept``) get their position and the document's new hash.
    """

    document: Document
    source: str
    chunks: list[Chunk]
    previous_ids: tuple[str, ...]
    same_text: bool = False
    """Stored already with this text, read by an earlier extraction: only its records change."""
    fresh: list[Chunk] = field(init=False)
    kept: list[Chunk] = field(init=False)

    def __post_init__(self) -> None:
        stored = set(self.previous_ids)
        self.fresh = [chunk for chunk in self.chunks if chunk.chunk_id not in stored]
        self.kept = [chunk for chunk in self.chunks if chunk.chunk_id in stored]


class Ingestor:
    """Writes documents of connectors into one knowledge base.

    >>> report = Ingestor(store, encoder, token_cache, chunker).ingest([FileConnector("docs")])  # doctest: +SKIP
    >>> report.count("added")  # doctest: +SKIP
    """

    def __init__(
        self,
        store: VectorStore,
        encoder: Encoder,
        token_cache: TokenCache,
        chunker: Chunker,
        *,
        late_encoder: TokenEncoder | None = None,
        head_version: str = "base",
        batch_chunks: int = 64,
        max_document_chunks: int = DEFAULT_LIMITS.max_chunks,
    ) -> None:
        self._store = store
        self._encoder = encoder
        # Without a separate late-interaction model, token vectors come from the dense pass.
        self._late_encoder: TokenEncoder = late_encoder or encoder
        self._cache = token_cache
        self._chunker = chunker
        self._head_version = head_version
        self._batch_chunks = batch_chunks
        self._max_document_chunks = max_document_chunks

    def ingest(
        self, connectors: Sequence[Connector], progress: ProgressCallback | None = None
    ) -> IngestReport:
        """Load every connector and bring the store in line with what it yields."""
        started = time.perf_counter()
        report = IngestReport()
        notify: ProgressCallback = progress or (lambda event: None)
        done: set[str] = set()
        for connector in connectors:
            self._ingest_source(connector, report, notify, done)
        report.seconds = time.perf_counter() - started
        return report

    def _ingest_source(
        self,
        connector: Connector,
        report: IngestReport,
        notify: ProgressCallback,
        done: set[str],
    ) -> None:
        seen: set[str] = set()
        pending: list[_Pending] = []
        try:
            for result in connector.load():
                if isinstance(result, SourceFailure):
                    seen.add(result.source)
                    self._fail(report, notify, result.source, result.reason, result.error)
                    continue
                seen.add(result.source)
                if result.source in done:
                    continue  # the same page reached twice in one run (e.g. two sitemaps)
                done.add(result.source)
                notify(ProgressEvent("loaded", 1, result.source))
                if isinstance(result, Unchanged):
                    report.outcomes.append(DocumentOutcome(result.source, "unchanged"))
                    continue
                try:
                    item = self._prepare(result, connector.source, report)
                except DocumentTooLargeError as too_large:
                    # One document over a limit fails alone; the rest of its source goes on.
                    self._fail(report, notify, result.source, too_large.reason, too_large)
                    continue
                if item is not None:
                    pending.append(item)
                if sum(len(p.fresh) for p in pending) >= self._batch_chunks:
                    self._write(pending, report, notify)
                    pending = []
        except ConnectorError as exc:
            self._fail(report, notify, exc.source, exc.reason, exc)
            report.incomplete_sources.append(connector.source)
            self._write(pending, report, notify)
            return
        self._write(pending, report, notify)
        if connector.complete:
            self._remove_absent(connector.source, seen, report)
        else:
            report.incomplete_sources.append(connector.source)

    def _prepare(self, document: Document, source: str, report: IngestReport) -> _Pending | None:
        state = self._store.document_state(document.source)
        same_text = state is not None and state.document_hash == document.content_hash
        if same_text and state is not None and state.extraction_version == EXTRACTION_VERSION:
            report.outcomes.append(DocumentOutcome(document.source, "unchanged"))
            return None
        chunks = self._chunker.split(document)
        if len(chunks) > self._max_document_chunks:
            raise DocumentTooLargeError(
                document.source,
                f"the document splits into {len(chunks):,} chunks, over the "
                f"{self._max_document_chunks:,} limit; raise ASSISTANT_MAX_DOCUMENT_CHUNKS to "
                "read it",
                limit="ASSISTANT_MAX_DOCUMENT_CHUNKS",
            )
        previous = state.chunk_ids if state is not None else ()
        return _Pending(document, source, chunks, previous, same_text)

    def _write(
        self, pending: list[_Pending], report: IngestReport, notify: ProgressCallback
    ) -> None:
        if not pending:
            return
        texts = [chunk.embedding_text for item in pending for chunk in item.fresh]
        try:
            encoded = self._encoder.encode_documents(texts)
            # One pass per chunk when the late-interaction vectors come from the dense model.
            from_pass = shared_pass(self._late_encoder, self._encoder)
            tokens = (
                [from_pass(e.tokens) for e in encoded]
                if from_pass is not None
                else self._late_encoder.encode_document_tokens(texts)
            )
        except EncoderError as exc:
            for item in pending:
                self._fail(report, notify, item.document.source, str(exc), exc)
            return
        offset = 0
        for item in pending:
            vectors = encoded[offset : offset + len(item.fresh)]
            matrices = tokens[offset : offset + len(item.fresh)]
            offset += len(item.fresh)
            model_id = token_space(self._late_encoder)
            self._cache.put_many(
                {
                    cache_key(model_id, self._head_version, chunk.content_hash): matrix
                    for chunk, matrix in zip(item.fresh, matrices, strict=True)
                }
            )
            if item.fresh:
                self._store.add(
                    self._records(item, item.fresh), torch.stack([v.dense for v in vectors])
                )
            self._store.update_records(self._records(item, item.kept))
            new_ids = {chunk.chunk_id for chunk in item.chunks}
            self._store.delete([cid for cid in item.previous_ids if cid not in new_ids])
            status: Status = (
                "unchanged"
                if item.same_text and not item.fresh
                else "updated"
                if item.previous_ids
                else "added"
            )
            report.outcomes.append(DocumentOutcome(item.document.source, status, len(item.chunks)))
            report.chunks_embedded += len(item.fresh)
            notify(ProgressEvent("embedded", len(item.fresh), item.document.source))

    @staticmethod
    def _records(item: _Pending, chunks: list[Chunk]) -> list[ChunkRecord]:
        document = item.document
        return [
            ChunkRecord(
                chunk=chunk,
                source=item.source,
                document_hash=document.content_hash,
                content_type=document.content_type,
                fetched_at=document.fetched_at.isoformat(),
                etag=document.etag,
                last_modified=document.last_modified,
            )
            for chunk in chunks
        ]

    def _remove_absent(self, source: str, seen: set[str], report: IngestReport) -> None:
        for state in self._store.documents(source):
            if state.url not in seen:
                self._store.delete(state.chunk_ids)
                report.outcomes.append(DocumentOutcome(state.url, "removed", len(state.chunk_ids)))

    @staticmethod
    def _fail(
        report: IngestReport,
        notify: ProgressCallback,
        source: str,
        reason: str,
        error: Exception,
    ) -> None:
        logger.warning("failed to ingest %s: %s", source, reason)
        report.outcomes.append(
            DocumentOutcome(source, "failed", reason=reason, error_type=type(error).__name__)
        )
        notify(ProgressEvent("failed", 1, f"{source}: {reason}"))
