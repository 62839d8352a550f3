"""The in-process API: ``Assistant`` ingests sources, searches and answers with citations.

Surfaces (CLI, HTTP API, Slack, SDK) are thin layers over this class. It composes the parts —
encoder, Chroma store, lexical index, token cache, retriever, answerer — from ``Settings``;
every part is also usable on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import threading
import weakref
from collections.abc import AsyncIterator, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from assistant.assistants import AssistantConfig, AssistantRegistry
from assistant.chat.answerer import Answerer, Brand, drain
from assistant.chat.condense import Condenser, ProviderCondenser, RuleBasedCondenser
from assistant.chat.conversations import (
    Conversation,
    ConversationStore,
    ConversationSummary,
    TurnRecord,
)
from assistant.chat.events import Answer, Citation, StreamEvent
from assistant.chat.extractive import ExtractiveProvider
from assistant.chat.history import HistoryTurn
from assistant.chat.orchestrator import ChatOrchestrator, TurnBudget
from assistant.chat.prompts import PromptLibrary
from assistant.chat.provider import ChatProvider
from assistant.chat.providers import provider_from_name
from assistant.chat.tokens import context_window, counter_for
from assistant.database.engine import Database, database_url
from assistant.errors import ConfigError, ConnectorError, NotFoundError
from assistant.knowledge.chunking import Chunker
from assistant.knowledge.colbert import ColBERTEncoder
from assistant.knowledge.encoder import Encoder, TokenEncoder, TransformerEncoder
from assistant.knowledge.fusion import DEFAULT_WEIGHTS, FusionWeights
from assistant.knowledge.ingest import DocumentOutcome, Ingestor, IngestReport, ProgressCallback
from assistant.knowledge.lexical import LexicalIndex
from assistant.knowledge.redis_token_cache import RedisTokenCache
from assistant.knowledge.retriever import Retriever, SearchHit, SearchResult
from assistant.knowledge.token_cache import (
    InProcessTokenCache,
    SQLiteTokenCache,
    TieredTokenCache,
    TokenCache,
)
from assistant.knowledge.training.head import BASE_HEAD_VERSION, load_active_head
from assistant.knowledge.training.tuning import (
    TuneOptions,
    TuneProgressCallback,
    TuneReport,
    tune_knowledge_base,
)
from assistant.knowledge.vector_store import ChromaStore, DocumentState, chroma_client
from assistant.settings import Settings
from connectors.base import Connector, Validators
from connectors.sources import open_source, source_key

if TYPE_CHECKING:
    from assistant.analytics.report import AnalyticsReport

__all__ = [
    "Answer",
    "Assistant",
    "AssistantConfig",
    "Citation",
    "Conversation",
    "ConversationSummary",
    "IngestReport",
    "SearchHit",
    "SearchResult",
    "SourceSummary",
    "TuneReport",
    "TurnRecord",
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
        self.lexical_stamp = LexicalIndex.stamp(self.lexical_dir)
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
        self.lexical_stamp = LexicalIndex.stamp(self.lexical_dir)
        self.lexical = index
        self.retriever = self._retriever(assistant)

    def reload_lexical_if_changed(self, assistant: Assistant) -> None:
        """Pick up an index another process (an ingestion worker) saved since it was loaded."""
        stamp = LexicalIndex.stamp(self.lexical_dir)
        if stamp != self.lexical_stamp:
            self.lexical_stamp = stamp
            self.lexical = LexicalIndex.load(self.lexical_dir)
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
        # A cache passed in becomes the assistant's: ``close`` closes it.
        self._token_cache = token_cache
        self._knowledge_bases: dict[str, _KnowledgeBase] = {}
        self._answerers: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[tuple[str, str], Answerer]
        ] = weakref.WeakKeyDictionary()
        self._database: Database | None = None
        self._search_pool: ThreadPoolExecutor | None = None
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

    @property
    def database(self) -> Database:
        """The application database (SQLite in the data dir, or ASSISTANT_DATABASE_URL)."""
        with self._lock:
            if self._database is None:
                self._database = Database.open(
                    database_url(self.settings.database_url, self.settings.data_dir)
                )
            return self._database

    @property
    def registry(self) -> AssistantRegistry:
        """Per-assistant settings, kept in the application database."""
        return AssistantRegistry(self.database)

    @property
    def conversation_store(self) -> ConversationStore:
        """Conversations and turns, kept in the application database."""
        return ConversationStore(self.database)

    def _kb(self, name: str, *, create: bool = False) -> _KnowledgeBase:
        with self._lock:
            kb = self._knowledge_bases.get(name)
            if kb is None:
                kb = _KnowledgeBase(self, name, create)
                self._knowledge_bases[name] = kb
            else:
                kb.reload_lexical_if_changed(self)
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

    # Conversations -------------------------------------------------------------------------

    async def stream(
        self,
        message: str,
        *,
        kb: str = "default",
        conversation_id: str | None = None,
        visitor: str | None = None,
        remember: bool = True,
        history: Sequence[HistoryTurn] | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """Stream a cited answer as the next turn of a conversation.

        Events: ``sources`` (first; carries the conversation id), text deltas, ``citations``,
        then ``done`` (usage, cost estimate, time per stage, the stored turn's id) or ``error``.
        ``conversation_id`` ``None`` starts a new conversation; ``remember=False`` answers
        without stored history and stores nothing. ``history`` (earlier exchanges the caller
        holds) is used instead of the stored history.

        Raises (before the first event):
            NotFoundError: ``kb`` or the conversation does not exist.
            InvalidInputError: the message is empty or too long.
        """
        # Opening a knowledge base and reading its settings block: off the event loop.
        knowledge_base, config = await asyncio.to_thread(self._kb_and_config, kb)
        orchestrator = self._orchestrator(kb, knowledge_base, config)
        # Closing this stream (a client that went away) closes the orchestrator's at once,
        # and with it the provider's HTTP stream, rather than whenever it is collected.
        async with contextlib.aclosing(
            orchestrator.stream(
                message,
                conversation_id=conversation_id,
                visitor=visitor,
                remember=remember,
                history=history,
            )
        ) as events:
            async for event in events:
                yield event

    def chat(
        self,
        message: str,
        *,
        kb: str = "default",
        conversation_id: str | None = None,
        visitor: str | None = None,
    ) -> Answer:
        """Answer ``message`` as the next turn of a conversation (drains ``stream``).

        >>> first = bot.chat("What does Harbor Sync do?", kb="docs")  # doctest: +SKIP
        >>> bot.chat("and how much does it cost?", kb="docs",  # doctest: +SKIP
        ...          conversation_id=first.conversation_id).citations
        """
        return self._run_sync(self._chat(message, kb, conversation_id, visitor, remember=True))

    def ask(self, question: str, *, kb: str = "default") -> Answer:
        """Answer one question with citations, without conversation memory; ``retrieval`` holds
        the search that chose the sources."""
        return self._run_sync(self._chat(question, kb, None, None, remember=False))

    async def _chat(
        self,
        message: str,
        kb: str,
        conversation_id: str | None,
        visitor: str | None,
        *,
        remember: bool,
    ) -> Answer:
        orchestrator = self._orchestrator(kb, *self._kb_and_config(kb))
        retrieval: list[SearchResult] = []
        answer = await drain(
            message,
            orchestrator.stream(
                message,
                conversation_id=conversation_id,
                visitor=visitor,
                remember=remember,
                on_retrieval=retrieval.append,
            ),
        )
        return dataclasses.replace(answer, retrieval=retrieval[0] if retrieval else None)

    def conversations(
        self, *, kb: str = "default", limit: int = 50, offset: int = 0
    ) -> list[ConversationSummary]:
        """Conversations with ``kb``'s assistant, most recently active first."""
        return self.conversation_store.list_conversations(kb, limit=limit, offset=offset)

    def conversation(self, conversation_id: str, *, kb: str = "default") -> Conversation:
        """One conversation with every turn (question, answer, citations, trace, usage)."""
        return self.conversation_store.get(kb, conversation_id)

    def delete_conversation(self, conversation_id: str, *, kb: str = "default") -> None:
        """Delete a conversation, its turns and their feedback."""
        self.conversation_store.delete(kb, conversation_id)

    def feedback(
        self, turn_id: int, rating: int, comment: str = "", *, kb: str = "default"
    ) -> None:
        """Record thumbs up (``1``) or down (``-1``) on a turn, with an optional comment."""
        self.conversation_store.add_feedback(kb, turn_id, rating, comment)

    def content_gaps(self, *, kb: str = "default", limit: int = 100) -> list[TurnRecord]:
        """Questions the assistant could not answer from ``kb``, newest first."""
        return self.conversation_store.content_gaps(kb, limit=limit)

    def report(
        self, kb: str = "default", *, since: str = "30d", mask: bool = True
    ) -> AnalyticsReport:
        """``kb``'s analytics since ``since`` (``30d``, ``12h``, an ISO date), with trends."""
        from assistant.analytics.service import assistant_report

        return assistant_report(self, kb, since=since, mask=mask)

    # Per-assistant settings --------------------------------------------------------------------

    def config(self, kb: str = "default") -> AssistantConfig:
        """``kb``'s assistant settings (brand, answering, retrieval, access, limits)."""
        return self.registry.get(kb)

    def configure(self, kb: str = "default", **changes: object) -> AssistantConfig:
        """Change ``kb``'s assistant settings by section and store them.

        >>> bot.configure("docs", brand={"company": "Harbor", "tone": "Warm, brief."})  # doctest: +SKIP

        Raises:
            InvalidInputError: an unknown section or field, or an invalid value.
        """
        return self.registry.update(kb, dict(changes))

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

    def _kb_and_config(self, kb: str) -> tuple[_KnowledgeBase, AssistantConfig]:
        return self._kb(kb), self.registry.get(kb)

    def _orchestrator(
        self, kb: str, knowledge_base: _KnowledgeBase, config: AssistantConfig
    ) -> ChatOrchestrator:
        """The chat orchestrator of ``kb`` on the running event loop.

        Vendor SDK clients bind their connection pools to an event loop, so each loop gets its
        own providers; a change of ``kb``'s settings builds new ones.
        """
        settings = self.settings
        loop = asyncio.get_running_loop()
        key = (kb, config.model_dump_json())
        with self._lock:
            per_loop = self._answerers.setdefault(loop, {})
            answerer = per_loop.get(key)
            if answerer is None:
                answerer = self._build_answerer(kb, config)
                per_loop[key] = answerer
        answering = config.answering
        first = answerer.providers[0]
        model = getattr(first, "model", None)
        counter = counter_for(first.name, model)
        max_output = answering.max_output_tokens or 1024
        window = context_window(first.name, model)
        history_tokens = settings.history_tokens
        context_tokens = config.retrieval.context_tokens or settings.context_tokens
        # The context never pushes the prompt past the model's window: room is kept for the
        # answer, the earlier turns and the instructions.
        context_tokens = max(256, min(context_tokens, window - max_output - history_tokens - 800))
        # The brand's own name is in most questions; it is never what "it" refers to.
        rules = RuleBasedCondenser(
            ignored_terms=[kb, answerer.brand.assistant_name, answerer.brand.company]
        )
        condenser: Condenser = (
            rules
            if first.name == "extractive"
            else ProviderCondenser(first, answerer.prompts, fallback=rules)
        )
        threshold = config.retrieval.no_answer_threshold
        return ChatOrchestrator(
            assistant=kb,
            search=lambda query, k: knowledge_base.retriever.search(query, k=k),
            answerer=answerer,
            condenser=condenser,
            counter=counter,
            conversations=self.conversation_store,
            budget=TurnBudget(
                context_k=config.retrieval.context_k or settings.context_k,
                context_tokens=context_tokens,
                history_tokens=history_tokens,
                candidates=max(20, 4 * (config.retrieval.context_k or settings.context_k)),
                max_message_chars=config.limits.max_message_chars,
            ),
            no_answer_threshold=settings.no_answer_threshold if threshold is None else threshold,
            executor=self._searches(),
        )

    def _searches(self) -> ThreadPoolExecutor:
        """The bounded pool chat searches run in (``ASSISTANT_SEARCH_WORKERS`` threads)."""
        with self._lock:
            if self._search_pool is None:
                self._search_pool = ThreadPoolExecutor(
                    max_workers=self.settings.search_workers, thread_name_prefix="search"
                )
            return self._search_pool

    def _build_answerer(self, kb: str, config: AssistantConfig) -> Answerer:
        """Providers in order (the assistant's, else ASSISTANT_PROVIDER; then its fallbacks),
        always ending with the extractive answerer."""
        answering = config.answering
        names = [
            part.strip()
            for part in (answering.provider or self.settings.provider).split(",")
            if part.strip()
        ]
        names += [name for name in answering.fallbacks if name not in names]
        providers: list[ChatProvider] = []
        for position, name in enumerate(names):
            if name == "extractive":
                continue
            # The model setting names the main provider's model; fallbacks use their defaults.
            model = (answering.model or self.settings.model) if position == 0 else None
            providers.append(
                provider_from_name(
                    name,
                    self.settings,
                    model=model,
                    temperature=answering.temperature,
                    max_output_tokens=answering.max_output_tokens,
                )
            )
        providers.append(ExtractiveProvider(self.encoder))
        brand = config.brand
        display_name = brand.display_name or kb
        prompts_dir = self.settings.prompts_dir
        return Answerer(
            providers,
            prompts=PromptLibrary(prompts_dir) if prompts_dir else None,
            brand=Brand(
                assistant_name=display_name,
                company=brand.company or display_name,
                tone=brand.tone,
                custom_instructions=brand.custom_instructions,
                language=brand.language,
                no_answer_message=brand.no_answer_message,
            ),
        )

    def _run_sync(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine for the synchronous API on one long-lived event loop."""
        with self._runner_lock:
            if self._runner is None:
                self._runner = asyncio.Runner()
            return self._runner.run(coroutine)

    def close(self) -> None:
        """Close the token cache (every tier), the database and the provider clients; the
        assistant can be used again after, with fresh ones."""
        with self._lock:
            if self._token_cache is not None:
                self._token_cache.close()
            self._token_cache = None
            self._knowledge_bases.clear()
            if self._database is not None:
                self._database.close()
                self._database = None
            if self._search_pool is not None:
                self._search_pool.shutdown(wait=False)
                self._search_pool = None
        with self._runner_lock:
            if self._runner is not None:
                self._runner.run(self._close_providers())
                self._runner.close()
                self._runner = None

    async def aclose(self) -> None:
        """Close the provider clients bound to the running event loop (for async callers
        that drive ``stream`` on their own loop)."""
        await self._close_providers()

    async def _close_providers(self) -> None:
        answerers = self._answerers.pop(asyncio.get_running_loop(), {})
        for answerer in answerers.values():
            for provider in answerer.providers:
                close = getattr(provider, "aclose", None)
                if close is not None:
                    await close()

    def __enter__(self) -> Assistant:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
