"""The in-process API: ``Assistant`` ingests sources, searches and answers with citations.

Surfaces (CLI, HTTP API, Slack, SDK) are thin layers over this class. It composes the parts —
encoder, Chroma store, lexical index, token cache, retriever, answerer — from ``Settings``;
every part is also usable on its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import threading
import weakref
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from assistant.chat.answerer import Answerer, drain
from assistant.chat.events import Answer, Citation, StreamEvent
from assistant.chat.extractive import ExtractiveProvider
from assistant.chat.prompts import PromptLibrary
from assistant.chat.provider import ChatProvider
from assistant.chat.providers import provider_from_name
from assistant.errors import ConfigError, ConnectorError, NotFoundError
from assistant.knowledge.chunking import Chunker
from assistant.knowledge.colbert import ColBERTEncoder
from assistant.knowledge.encoder import Encoder, TokenEncoder, TransformerEncoder
from assistant.knowledge.fusion import DEFAULT_WEIGHTS, FusionWeights
from assistant.knowledge.head import BASE_HEAD_VERSION, load_active_head
from assistant.knowledge.ingest import DocumentOutcome, Ingestor, IngestReport, ProgressCallback
from assistant.knowledge.lexical import LexicalIndex
from assistant.knowledge.retriever import Retriever, SearchHit, SearchResult
from assistant.knowledge.token_cache import (
    InProcessTokenCache,
    RedisTokenCache,
    SQLiteTokenCache,
    TieredTokenCache,
    TokenCache,
)
from assistant.knowledge.tuning import (
    TuneOptions,
    TuneProgressCallback,
    TuneReport,
    tune_knowledge_base,
)
from assistant.knowledge.vector_store import ChromaStore, DocumentState, chroma_client
from assistant.settings import Settings
from connectors.base import Connector, Validators
from connectors.sources import open_source, source_key

__all__ = [
    "Answer",
    "Assistant",
    "Citation",
    "IngestReport",
    "SearchHit",
    "SearchResult",
    "SourceSummary",
    "TuneReport",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SourceSummary:
    """One ingested source (a folder, file, page, sitemap or site) and what it holds."""

    source: str
    documents: int
    chunks: int
    last_fetched: str


FUSION_WEIGHTS_KEY = "fusion_weights"


class _KnowledgeBase:
    """The per-knowledge-base parts, opened once and reused."""

    def __init__(self, assistant: Assistant, name: str, create: bool) -> None:
        settings = assistant.settings
        encoder = assistant.encoder
        self.name = name
        self.store = ChromaStore.open(
            assistant.chroma,
            name,
            embedding_model=encoder.model_id,
            dimension=encoder.dimension,
            create=create,
        )
        self.lexical_dir = settings.data_dir / "lexical" / name
        self.lexical = LexicalIndex.load(self.lexical_dir)
        # The head recorded with the knowledge base, so every process ranks with the same one.
        self.heads_dir = settings.data_dir / "heads" / name
        self.late_encoder = load_active_head(self.store, assistant.late_encoder, self.heads_dir)
        self.head_version = (
            self.late_encoder.head_version if self.late_encoder else BASE_HEAD_VERSION
        )
        self.weights = self._fusion_weights()
        self.retriever = self._retriever(assistant)
        self.ingestor = Ingestor(
            self.store,
            encoder,
            assistant.token_cache,
            Chunker(
                encoder,
                max_tokens=settings.chunk_tokens,
                overlap_tokens=settings.chunk_overlap_tokens,
            ),
            late_encoder=self.late_encoder or assistant.late_encoder,
            head_version=self.head_version,
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

    def _retriever(self, assistant: Assistant) -> Retriever:
        return Retriever(
            self.store,
            assistant.encoder,
            assistant.token_cache,
            lexical=self.lexical if self.lexical is not None and len(self.lexical) else None,
            late_encoder=self.late_encoder or assistant.late_encoder,
            recall_k=assistant.settings.recall_k,
            head_version=self.head_version,
            weights=self.weights,
        )

    def rebuild_lexical(self, assistant: Assistant) -> None:
        """Re-index every chunk for BM25 after the knowledge base changed."""
        index = LexicalIndex.build(
            (chunk.chunk_id, chunk.chunk.embedding_text) for chunk in self.store.iter_chunks()
        )
        index.save(self.lexical_dir)
        self.lexical = index
        self.retriever = self._retriever(assistant)


class Assistant:
    """Ingest, search and answer over named knowledge bases.

    >>> bot = Assistant.from_settings(Settings(data_dir=Path("data")))  # doctest: +SKIP
    >>> bot.ingest(["https://example.com/sitemap.xml"], kb="docs")  # doctest: +SKIP
    >>> bot.ask("How do I reset my password?", kb="docs").citations  # doctest: +SKIP
    """

    def __init__(
        self,
        settings: Settings,
        *,
        encoder: Encoder | None = None,
        chroma: Any = None,
        token_cache: TokenCache | None = None,
    ) -> None:
        self.settings = settings
        self._encoder = encoder
        self._late_encoder: TokenEncoder | None = None
        self._chroma = chroma
        self._token_cache = token_cache
        self._knowledge_bases: dict[str, _KnowledgeBase] = {}
        self._answerers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Answerer] = (
            weakref.WeakKeyDictionary()
        )
        self._runner: asyncio.Runner | None = None
        self._runner_lock = threading.Lock()
        self._lock = threading.RLock()

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Assistant:
        """An assistant on ``settings`` (read from the environment when omitted)."""
        return cls(settings or Settings())

    # Parts are built on first use: `assistant sources` needs no model, `search` needs no provider.
    @property
    def encoder(self) -> Encoder:
        """The dense + token encoder (loaded on first use)."""
        with self._lock:
            if self._encoder is None:
                self._encoder = TransformerEncoder(
                    self.settings.embedding_model, max_length=self.settings.max_tokens_per_text
                )
            return self._encoder

    @property
    def late_encoder(self) -> TokenEncoder:
        """Token vectors for MaxSim: a ColBERT checkpoint when one is configured, else the
        dense encoder's own pass."""
        with self._lock:
            if self._late_encoder is None:
                name = self.settings.late_interaction_model
                if name and name != self.settings.embedding_model:
                    self._late_encoder = ColBERTEncoder(name)
                else:
                    self._late_encoder = self.encoder
            return self._late_encoder

    @property
    def chroma(self) -> Any:
        """The Chroma client: embedded in the data dir, or the server at ASSISTANT_CHROMA_URL."""
        with self._lock:
            if self._chroma is None:
                if self.settings.chroma_url:
                    self._chroma = chroma_client(url=self.settings.chroma_url)
                else:
                    self.settings.data_dir.mkdir(parents=True, exist_ok=True)
                    self._chroma = chroma_client(path=str(self.settings.chroma_path))
            return self._chroma

    @property
    def token_cache(self) -> TokenCache:
        """In-process LRU in front of Redis (when configured) or else a file in the data dir."""
        with self._lock:
            if self._token_cache is None:
                settings = self.settings
                durable: TokenCache
                if settings.redis_url is not None:
                    durable = RedisTokenCache.from_url(
                        settings.redis_url.get_secret_value(), format=settings.token_cache_format
                    )
                else:
                    settings.data_dir.mkdir(parents=True, exist_ok=True)
                    durable = SQLiteTokenCache(
                        settings.token_cache_path, format=settings.token_cache_format
                    )
                # ASSISTANT_TOKEN_CACHE_BYTES=0 turns the in-process tier off.
                self._token_cache = (
                    TieredTokenCache(
                        InProcessTokenCache(
                            settings.token_cache_bytes, format=settings.token_cache_format
                        ),
                        durable,
                    )
                    if settings.token_cache_bytes > 0
                    else durable
                )
            return self._token_cache

    def _kb(self, name: str, *, create: bool = False) -> _KnowledgeBase:
        with self._lock:
            kb = self._knowledge_bases.get(name)
            if kb is None:
                kb = _KnowledgeBase(self, name, create)
                self._knowledge_bases[name] = kb
            return kb

    def knowledge_bases(self) -> list[str]:
        """Names of the knowledge bases that exist."""
        return ChromaStore.list_names(self.chroma)

    def ingest(
        self,
        sources: Sequence[str],
        *,
        kb: str = "default",
        crawl: bool = False,
        max_pages: int | None = None,
        max_depth: int = 3,
        progress: ProgressCallback | None = None,
    ) -> IngestReport:
        """Ingest files, folders, page URLs, sitemaps or (with ``crawl``) whole sites.

        ``max_pages`` bounds a crawl (default 200) or a sitemap (default 10,000).
        Returns a report of what was added, updated, unchanged, removed and failed (with the
        reason). A source that cannot be read at all is reported as failed; the rest go on.
        """
        if not sources:
            raise ConfigError("give at least one file, folder or URL to ingest")
        knowledge_base = self._kb(kb, create=True)
        connectors = []
        unreadable: list[DocumentOutcome] = []
        for spec in sources:
            key = source_key(spec)
            known = {
                state.url: Validators(state.etag, state.last_modified)
                for state in knowledge_base.store.documents(key)
                if state.etag or state.last_modified
            }
            try:
                connectors.append(
                    open_source(
                        spec,
                        policy=self.settings.fetch_policy(),
                        known=known,
                        crawl=crawl,
                        max_pages=max_pages or (200 if crawl else 10_000),
                        max_depth=max_depth,
                        max_file_bytes=self.settings.max_file_bytes,
                    )
                )
            except ConnectorError as exc:
                unreadable.append(
                    DocumentOutcome(key, "failed", reason=exc.reason, error_type=type(exc).__name__)
                )
        report = self.ingest_connectors(connectors, kb=kb, progress=progress)
        report.outcomes[:0] = unreadable
        return report

    def ingest_connectors(
        self,
        connectors: Sequence[Connector],
        *,
        kb: str = "default",
        progress: ProgressCallback | None = None,
    ) -> IngestReport:
        """Ingest from connectors built by the caller (any ``Connector`` implementation)."""
        knowledge_base = self._kb(kb, create=True)
        report = knowledge_base.ingestor.ingest(connectors, progress)
        changed = any(o.status in ("added", "updated", "removed") for o in report.outcomes)
        if changed or knowledge_base.lexical is None:
            knowledge_base.rebuild_lexical(self)
        return report

    def search(self, query: str, *, kb: str = "default", k: int = 10) -> SearchResult:
        """The ``k`` best passages for ``query``, ranked by the late-interaction stage."""
        return self._kb(kb).retriever.search(query, k=k)

    async def stream(self, question: str, *, kb: str = "default") -> AsyncIterator[StreamEvent]:
        """Stream a cited answer: ``sources``, text deltas, ``citations``, ``done``."""
        result = await asyncio.to_thread(self.search, question, kb=kb, k=self.settings.context_k)
        async for event in self._answerer().stream(result):
            yield event

    def ask(self, question: str, *, kb: str = "default") -> Answer:
        """Answer ``question`` with citations, and the retrieval that chose its sources."""
        result = self.search(question, kb=kb, k=self.settings.context_k)
        answer = self._run_sync(self._drain(question, result))
        return dataclasses.replace(answer, retrieval=result)

    async def _drain(self, question: str, result: SearchResult) -> Answer:
        return await drain(question, self._answerer().stream(result))

    def sources(self, *, kb: str = "default") -> list[SourceSummary]:
        """What has been ingested into ``kb``, grouped by the source it was ingested from."""
        grouped: dict[str, list[DocumentState]] = {}
        for state in self._kb(kb).store.documents():
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

    def documents(self, *, kb: str = "default") -> list[DocumentState]:
        """Every document stored in ``kb``."""
        return self._kb(kb).store.documents()

    def forget(self, source: str, *, kb: str = "default") -> int:
        """Remove a source (or a single document by its URL/path); returns chunks removed."""
        knowledge_base = self._kb(kb)
        key = source_key(source)
        states = [s for s in knowledge_base.store.documents() if s.source == key or s.url == key]
        if not states:
            raise NotFoundError(
                f"nothing ingested from {source!r} in knowledge base {kb!r}; "
                "see `assistant sources` for what is there"
            )
        chunk_ids = [cid for state in states for cid in state.chunk_ids]
        knowledge_base.store.delete(chunk_ids)
        knowledge_base.rebuild_lexical(self)
        return len(chunk_ids)

    def tune(
        self,
        kb: str = "default",
        *,
        progress: TuneProgressCallback | None = None,
        options: TuneOptions | None = None,
    ) -> TuneReport:
        """Train a late-interaction head on ``kb``'s own text; keep it only if it ranks better.

        Runs on the CPU in minutes (about 15 for 10k chunks on 2 cores). The head is kept when
        the held-out MRR@10 of the full ranking beats the current stage's (or when
        ``options.require_improvement`` is off); then every process that opens ``kb`` uses it.

        Raises:
            NotFoundError: ``kb`` does not exist.
            ConfigError: ``kb`` has too few chunks (under 50) or too little prose to tune on.

        >>> report = bot.tune(kb="docs")  # doctest: +SKIP
        >>> report.mrr_before, report.mrr_after, report.kept  # doctest: +SKIP
        """
        knowledge_base = self._kb(kb)
        report = tune_knowledge_base(
            knowledge_base.store,
            self.encoder,
            self.token_cache,
            late_base=self.late_encoder,
            heads_dir=knowledge_base.heads_dir,
            weights=knowledge_base.retriever.weights,
            use_lexical=knowledge_base.lexical is not None and len(knowledge_base.lexical) > 0,
            recall_k=self.settings.recall_k,
            current=knowledge_base.late_encoder,
            token_format=self.settings.token_cache_format,
            options=options,
            progress=progress,
        )
        if report.kept:
            # Reopened on next use, with the new head in its retriever and ingestor.
            with self._lock:
                self._knowledge_bases.pop(kb, None)
        return report

    def _answerer(self) -> Answerer:
        """Providers in ASSISTANT_PROVIDER order, then the extractive answerer as the last resort.

        Vendor SDK clients bind their connection pools to an event loop, so each loop gets its
        own answerer.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            answerer = self._answerers.get(loop)
            if answerer is None:
                providers: list[ChatProvider] = []
                for name in (part.strip() for part in self.settings.provider.split(",")):
                    if name and name != "extractive":
                        providers.append(provider_from_name(name, model=self.settings.model))
                providers.append(ExtractiveProvider(self.encoder))
                prompts_dir = self.settings.prompts_dir
                answerer = Answerer(
                    providers,
                    prompts=PromptLibrary(prompts_dir) if prompts_dir else None,
                    context_k=self.settings.context_k,
                )
                self._answerers[loop] = answerer
            return answerer

    def _run_sync(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine for the synchronous API on one long-lived event loop."""
        with self._runner_lock:
            if self._runner is None:
                self._runner = asyncio.Runner()
            return self._runner.run(coroutine)

    def close(self) -> None:
        """Close the token cache's connections; the assistant can be used again after."""
        with self._lock:
            caches = [self._token_cache]
            if isinstance(self._token_cache, TieredTokenCache):
                caches = [self._token_cache.first, self._token_cache.second]
            for cache in caches:
                if isinstance(cache, SQLiteTokenCache | RedisTokenCache):
                    cache.close()
            self._token_cache = None
            self._knowledge_bases.clear()
        with self._runner_lock:
            if self._runner is not None:
                self._runner.run(self._close_providers())
                self._runner.close()
                self._runner = None

    async def _close_providers(self) -> None:
        answerer = self._answerers.pop(asyncio.get_running_loop(), None)
        for provider in answerer.providers if answerer else ():
            close = getattr(provider, "aclose", None)
            if close is not None:
                await close()

    def __enter__(self) -> Assistant:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
