"""Turns ``Settings`` into parts: encoders, the Chroma client, the token-cache tiers, and the
parts of one knowledge base (store, lexical index, head, retriever, ingestor).

``Assistant`` builds each part on first use through these functions; every part is also usable
on its own.

>>> settings = Settings(data_dir=Path("data"))  # doctest: +SKIP
>>> encoder = build_encoder(settings)  # doctest: +SKIP
>>> docs = KnowledgeBase("docs", settings=settings, chroma=build_chroma(settings),
...     encoder=encoder, late_encoder=build_late_encoder(settings, encoder),
...     token_cache=build_token_cache(settings), create=True)  # doctest: +SKIP
>>> docs.retriever.search("refunds?", k=3)  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from assistant.errors import ConnectorError, NotFoundError
from assistant.knowledge.chunk_table import ChunkTable, gather_pages
from assistant.knowledge.chunking import Chunker
from assistant.knowledge.code_names import CodeNames
from assistant.knowledge.colbert import ColBERTEncoder
from assistant.knowledge.encoder import (
    Encoder,
    TokenEncoder,
    TokenIds,
    TransformerEncoder,
    row_token_ids,
)
from assistant.knowledge.fusion import DEFAULT_WEIGHTS, FusionWeights
from assistant.knowledge.ingest import DocumentOutcome, Ingestor
from assistant.knowledge.lexical import LexicalIndex
from assistant.knowledge.long_lived import settle
from assistant.knowledge.page_breadth import PageSizes
from assistant.knowledge.query_cache import QueryCache
from assistant.knowledge.redis_token_cache import RedisTokenCache
from assistant.knowledge.reports import SourceSummary
from assistant.knowledge.retriever import Retriever
from assistant.knowledge.term_weights import count_term_weights
from assistant.knowledge.token_cache import (
    InProcessTokenCache,
    SQLiteTokenCache,
    TieredTokenCache,
    TokenCache,
)
from assistant.knowledge.training.head import (
    BASE_HEAD_VERSION,
    ProjectedTokenEncoder,
    load_active_head,
)
from assistant.knowledge.vector_store import ChromaStore, DocumentState, chroma_client
from assistant.settings import Settings
from connectors.base import Connector, Validators
from connectors.document import EXTRACTION_VERSION
from connectors.sources import open_source, source_key

if TYPE_CHECKING:
    from assistant.knowledge.training.tuning import TuneOptions, TuneProgressCallback, TuneReport

__all__ = [
    "FUSION_WEIGHTS_KEY",
    "KnowledgeBase",
    "build_chroma",
    "build_encoder",
    "build_late_encoder",
    "build_token_cache",
    "open_sources",
]

FUSION_WEIGHTS_KEY = "fusion_weights"
"""Key of the knowledge-base metadata entry that holds its fusion weights (JSON)."""


def build_encoder(settings: Settings) -> Encoder:
    """The dense + token encoder of ``ASSISTANT_EMBEDDING_MODEL``.

    ``ASSISTANT_TORCH_THREADS`` (when not 0) sets torch's threads for the whole process first.
    """
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    return TransformerEncoder(
        settings.embedding_model,
        max_length=settings.max_tokens_per_text,
        runtime=settings.encoder_runtime,
        onnx_dir=settings.onnx_dir,
    )


def build_late_encoder(settings: Settings, encoder: Encoder) -> TokenEncoder:
    """Token vectors for MaxSim: a ColBERT checkpoint when one is configured, else the dense
    encoder's own pass."""
    name = settings.late_interaction_model
    if name and name != settings.embedding_model:
        return ColBERTEncoder(name)
    return encoder


def build_chroma(settings: Settings) -> Any:
    """The Chroma client: embedded in the data dir, or the server at ASSISTANT_CHROMA_URL."""
    if settings.chroma_url:
        return chroma_client(url=settings.chroma_url)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return chroma_client(path=str(settings.chroma_path))


def build_token_cache(settings: Settings) -> TokenCache:
    """In-process LRU in front of Redis (when configured) or else a file in the data dir.

    ``ASSISTANT_TOKEN_CACHE_BYTES=0`` turns the in-process tier off.
    """
    durable: TokenCache
    if settings.redis_url is not None:
        durable = RedisTokenCache.from_url(
            settings.redis_url.get_secret_value(), format=settings.token_cache_format
        )
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        durable = SQLiteTokenCache(settings.token_cache_path, format=settings.token_cache_format)
    if settings.token_cache_bytes <= 0:
        return durable
    return TieredTokenCache(
        InProcessTokenCache(settings.token_cache_bytes, format=settings.token_cache_format),
        durable,
    )


def open_sources(
    specs: Sequence[str],
    store: ChromaStore,
    settings: Settings,
    *,
    crawl: bool = False,
    max_pages: int | None = None,
    max_depth: int = 3,
) -> tuple[list[Connector], list[DocumentOutcome]]:
    """Connectors for files, folders, page URLs and sitemaps (sites, with ``crawl``), and a
    failed outcome for each spec that cannot be opened at all.

    What ``store`` knows of each page (ETag, Last-Modified) goes with its connector, so an
    unchanged page is not fetched again, unless an earlier ``EXTRACTION_VERSION`` read it.
    ``max_pages`` bounds a crawl (default 200) or a sitemap (default 10,000).
    """
    connectors: list[Connector] = []
    unreadable: list[DocumentOutcome] = []
    for spec in specs:
        key = source_key(spec)
        known = {
            state.url: Validators(state.etag, state.last_modified)
            for state in store.documents(key)
            if (state.etag or state.last_modified)
            and state.extraction_version == EXTRACTION_VERSION
        }
        try:
            connectors.append(
                open_source(
                    spec,
                    policy=settings.fetch_policy(),
                    known=known,
                    crawl=crawl,
                    max_pages=max_pages or (200 if crawl else 10_000),
                    max_depth=max_depth,
                    max_file_bytes=settings.max_file_bytes,
                    limits=settings.extraction_limits(),
                )
            )
        except ConnectorError as exc:
            unreadable.append(
                DocumentOutcome(key, "failed", reason=exc.reason, error_type=type(exc).__name__)
            )
    return connectors, unreadable


class KnowledgeBase:
    """The parts of one knowledge base, opened once and reused.

    ``late_encoder`` is the knowledge base's trained head (``None``: the base token vectors);
    ``retriever`` searches it and ``ingestor`` adds to it, both with that head.
    """

    def __init__(
        self,
        name: str,
        *,
        settings: Settings,
        chroma: Any,
        encoder: Encoder,
        late_encoder: TokenEncoder,
        token_cache: TokenCache,
        create: bool = False,
    ) -> None:
        self.name = name
        self.store = ChromaStore.open(
            chroma,
            name,
            embedding_model=encoder.model_id,
            dimension=encoder.dimension,
            create=create,
        )
        self._dimension = encoder.dimension
        self.lexical_dir = settings.data_dir / "lexical" / name
        self._lexical_stamp = LexicalIndex.stamp(self.lexical_dir)
        lexical = LexicalIndex.load(self.lexical_dir)
        self.store.use_table(lexical.chunk_table if lexical is not None else None)
        # The head recorded with the knowledge base, so every process ranks with the same one.
        self.heads_dir = settings.data_dir / "heads" / name
        self.late_encoder: ProjectedTokenEncoder | None = load_active_head(
            self.store, late_encoder, self.heads_dir
        )
        self.head_version = (
            self.late_encoder.head_version if self.late_encoder else BASE_HEAD_VERSION
        )
        token_encoder = self.late_encoder or late_encoder
        # Token rarity weighs MaxSim only where an encoder says the ids of the token rows.
        self._counts_terms: TokenIds | None = row_token_ids(token_encoder, encoder)
        self.retriever = Retriever(
            self.store,
            encoder,
            token_cache,
            lexical=lexical,
            late_encoder=token_encoder,
            recall_k=settings.recall_k,
            head_version=self.head_version,
            weights=self._fusion_weights(),
            query_cache=QueryCache(settings.query_cache_bytes),
            match_scale=self.late_encoder.match_on_base_scale if self.late_encoder else None,
        )
        self.ingestor = Ingestor(
            self.store,
            encoder,
            token_cache,
            Chunker(
                encoder,
                max_tokens=settings.chunk_tokens,
                overlap_tokens=settings.chunk_overlap_tokens,
            ),
            late_encoder=token_encoder,
            head_version=self.head_version,
            max_document_chunks=settings.max_document_chunks,
        )
        self._lexical_loaded = lexical is not None
        settle()

    @property
    def lexical_is_current(self) -> bool:
        """Whether the saved lexical index is there and holds the pages' lengths, the code
        names and the token counts this encoder weighs MaxSim with; an index saved before they
        were counted is rebuilt at the next ingestion, even one that changes nothing."""
        if not self._lexical_loaded:
            return False
        lexical = self.retriever.lexical
        if lexical is None:
            return True  # no chunk to count
        if lexical.page_sizes is None or lexical.code_names is None or lexical.chunk_table is None:
            return False
        if self._counts_terms is None:
            return True  # no token counts to keep
        counts = lexical.term_weights
        return counts is not None and counts.space == self._counts_terms.model_id

    def sources(self) -> list[SourceSummary]:
        """What has been ingested, grouped by the source it was ingested from."""
        grouped: dict[str, list[DocumentState]] = {}
        for state in self.store.documents():
            grouped.setdefault(state.source, []).append(state)
        return [
            SourceSummary(
                source=source,
                documents=len(states),
                chunks=sum(len(s.chunk_ids) for s in states),
                last_fetched=max(s.fetched_at for s in states),
            )
            for source, states in sorted(grouped.items())
        ]

    def forget(self, source: str) -> int:
        """Remove a source (or a single document by its URL/path); returns chunks removed.

        Raises:
            NotFoundError: nothing was ingested from ``source``.
        """
        key = source_key(source)
        states = [s for s in self.store.documents() if s.source == key or s.url == key]
        if not states:
            raise NotFoundError(
                f"nothing ingested from {source!r} in knowledge base {self.name!r}; "
                "see `assistant sources` for what is there"
            )
        chunk_ids = [chunk_id for state in states for chunk_id in state.chunk_ids]
        self.store.delete(chunk_ids)
        self.rebuild_lexical()
        return len(chunk_ids)

    def tune(
        self,
        encoder: Encoder,
        token_cache: TokenCache,
        late_base: TokenEncoder,
        settings: Settings,
        *,
        options: TuneOptions | None = None,
        progress: TuneProgressCallback | None = None,
    ) -> TuneReport:
        """Train a head on this knowledge base, judged by the ranking its retriever ships
        (see ``tune_knowledge_base``). A kept head takes effect when the knowledge base is
        opened again."""
        # Imported here: opening a knowledge base to search never loads the training code.
        from assistant.knowledge.training.tuning import tune_knowledge_base

        return tune_knowledge_base(
            self.store,
            encoder,
            token_cache,
            late_base=late_base,
            heads_dir=self.heads_dir,
            weights=self.retriever.weights,
            use_lexical=self.retriever.lexical is not None,
            recall_k=settings.recall_k,
            current=self.late_encoder,
            token_format=settings.token_cache_format,
            options=options,
            progress=progress,
        )

    def _fusion_weights(self) -> FusionWeights:
        """The weights recorded with the knowledge base, recording the defaults on first use.

        Keeping them with the knowledge base means a later change of defaults never silently
        changes how an existing knowledge base ranks, and every process ranks alike.
        """
        stored = self.store.kb_metadata().get(FUSION_WEIGHTS_KEY)
        if isinstance(stored, str):
            return FusionWeights(**json.loads(stored))
        self.store.update_kb_metadata({FUSION_WEIGHTS_KEY: json.dumps(DEFAULT_WEIGHTS.as_dict())})
        return DEFAULT_WEIGHTS

    def rebuild_lexical(self) -> None:
        """Re-index every chunk for BM25 after the knowledge base changed, and count over the
        same chunks the token document frequencies that weigh MaxSim (``TermWeights``), the
        pages' lengths (``PageSizes``) and the dotted names and options they write
        (``CodeNames``); the chunks and their dense vectors are kept with it (``ChunkTable``)
        for searches to read instead of Chroma."""
        chunks, dense = gather_pages(self.store.iter_embedded_chunks(), self._dimension)
        pairs = [(chunk.chunk_id, chunk.chunk.embedding_text) for chunk in chunks]
        counter = self._counts_terms
        counts = count_term_weights(counter, [t for _, t in pairs]) if counter else None
        sizes = PageSizes.count(chunk.url for chunk in chunks)
        names = CodeNames.count(text for _, text in pairs)
        LexicalIndex.build(
            pairs,
            term_weights=counts,
            page_sizes=sizes,
            code_names=names,
            chunk_table=ChunkTable.build(chunks, dense),
        ).save(self.lexical_dir)
        del chunks, dense
        # Read back as every other process reads it: the chunk table memory-mapped. The stamp
        # first: an index another process saves in between is then loaded again, not missed.
        self._lexical_stamp = LexicalIndex.stamp(self.lexical_dir)
        index = LexicalIndex.load(self.lexical_dir)
        self._lexical_loaded = True
        self._use_lexical(index)
        settle()

    def _use_lexical(self, index: LexicalIndex | None) -> None:
        """Search with ``index``, and read chunks from its table."""
        self.store.use_table(index.chunk_table if index is not None else None)
        self.retriever.reload_lexical(index)

    def reload_lexical_if_changed(self) -> None:
        """Pick up an index another process (an ingestion worker) saved since it was loaded."""
        stamp = LexicalIndex.stamp(self.lexical_dir)
        if stamp != self._lexical_stamp:
            self._lexical_stamp = stamp
            # Chunks may have been re-positioned or removed: read them from the store again.
            self.store.forget_reads()
            index = LexicalIndex.load(self.lexical_dir)
            self._lexical_loaded = index is not None
            self._use_lexical(index)
            settle()
