"""The in-process API: ``Assistant`` ingests sources, searches and answers with citations.

Surfaces (CLI, HTTP API, Slack, SDK) are thin layers over this class. It composes the parts —
encoder, Chroma store, lexical index, token cache, retriever, answerer — from ``Settings``;
every part is also usable on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from assistant.analytics.types import AnalyticsReport
from assistant.assistants import AssistantConfig, AssistantRegistry
from assistant.chat.answerer import Answerer
from assistant.chat.conversations import (
    Conversation,
    ConversationStore,
    ConversationSummary,
    TurnRecord,
)
from assistant.chat.events import Answer, Citation, StreamEvent
from assistant.chat.extractive import ExtractiveProvider
from assistant.chat.history import HistoryTurn
from assistant.chat.orchestrator import ChatOrchestrator
from assistant.chat.policy import AnswererCache, build_answerer, build_orchestrator
from assistant.database.engine import Database, database_url
from assistant.errors import ConfigError
from assistant.knowledge.encoder import Encoder, TokenEncoder
from assistant.knowledge.ingest import IngestReport, ProgressCallback
from assistant.knowledge.reports import SourceSummary
from assistant.knowledge.retriever import SearchHit, SearchResult
from assistant.knowledge.token_cache import TokenCache
from assistant.knowledge.vector_store import ChromaStore, DocumentState, close_chroma_client
from assistant.settings import Settings
from assistant.wiring import (
    KnowledgeBase,
    build_chroma,
    build_encoder,
    build_late_encoder,
    build_token_cache,
    open_sources,
)
from connectors.base import Connector

if TYPE_CHECKING:
    # Training code loads only when ``tune`` runs: searching and chatting never need it.
    from assistant.knowledge.training.tuning import TuneOptions, TuneProgressCallback, TuneReport

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
        self._owns_chroma = chroma is None
        # A cache passed in becomes the assistant's: ``close`` closes it.
        self._token_cache = token_cache
        self._knowledge_bases: dict[str, KnowledgeBase] = {}
        self._answerers = AnswererCache()
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
                self._encoder = build_encoder(self.settings)
            return self._encoder

    @property
    def late_encoder(self) -> TokenEncoder:
        """Token vectors for MaxSim: a ColBERT checkpoint when one is configured, else the
        dense encoder's own pass."""
        with self._lock:
            if self._late_encoder is None:
                self._late_encoder = build_late_encoder(self.settings, self.encoder)
            return self._late_encoder

    @property
    def chroma(self) -> Any:
        """The Chroma client: embedded in the data dir, or the server at ASSISTANT_CHROMA_URL."""
        with self._lock:
            if self._chroma is None:
                self._chroma = build_chroma(self.settings)
            return self._chroma

    @property
    def token_cache(self) -> TokenCache:
        """In-process LRU in front of Redis (when configured) or else a file in the data dir."""
        with self._lock:
            if self._token_cache is None:
                self._token_cache = build_token_cache(self.settings)
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

    def _kb(self, name: str, *, create: bool = False) -> KnowledgeBase:
        with self._lock:
            kb = self._knowledge_bases.get(name)
            if kb is None:
                kb = KnowledgeBase(
                    name,
                    settings=self.settings,
                    chroma=self.chroma,
                    encoder=self.encoder,
                    late_encoder=self.late_encoder,
                    token_cache=self.token_cache,
                    create=create,
                )
                self._knowledge_bases[name] = kb
            else:
                kb.reload_lexical_if_changed()
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
        connectors, unreadable = open_sources(
            sources,
            knowledge_base.store,
            self.settings,
            crawl=crawl,
            max_pages=max_pages,
            max_depth=max_depth,
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
        if changed or not knowledge_base.lexical_is_current:
            knowledge_base.rebuild_lexical()
        return report

    def search(self, query: str, *, kb: str = "default", k: int = 10) -> SearchResult:
        """The ``k`` best passages for ``query``, ranked by the late-interaction stage."""
        return self._kb(kb).retriever.search(query, k=k)

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
        return await orchestrator.answer(
            message, conversation_id=conversation_id, visitor=visitor, remember=remember
        )

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
        self, kb: str = "default", *, since: str = "30d", mask: bool = True, drill_down: bool = True
    ) -> AnalyticsReport:
        """``kb``'s analytics since ``since`` (``30d``, ``12h``, an ISO date), with trends;
        ``drill_down=False`` leaves out each cluster's turn ids (quicker)."""
        from assistant.analytics.service import assistant_report

        return assistant_report(self, kb, since=since, mask=mask, drill_down=drill_down)

    def leads_csv(self, kb: str = "default", *, since: str = "30d") -> str:
        """``kb``'s leads since ``since`` as CSV, best score first, with their signals."""
        from assistant.analytics.service import leads_export

        return leads_export(self, kb, since=since)

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
        return self._kb(kb).sources()

    def documents(self, *, kb: str = "default") -> list[DocumentState]:
        """Every document stored in ``kb``."""
        return self._kb(kb).store.documents()

    def forget(self, source: str, *, kb: str = "default") -> int:
        """Remove a source (or a single document by its URL/path); returns chunks removed."""
        return self._kb(kb).forget(source)

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
        report = self._kb(kb).tune(
            self.encoder,
            self.token_cache,
            self.late_encoder,
            self.settings,
            options=options,
            progress=progress,
        )
        if report.kept:
            # Reopened on next use, with the new head in its retriever and ingestor.
            with self._lock:
                self._knowledge_bases.pop(kb, None)
        return report

    def _kb_and_config(self, kb: str) -> tuple[KnowledgeBase, AssistantConfig]:
        return self._kb(kb), self.registry.get(kb)

    def _orchestrator(
        self, kb: str, knowledge_base: KnowledgeBase, config: AssistantConfig
    ) -> ChatOrchestrator:
        """The chat orchestrator of ``kb`` on the running event loop.

        Vendor SDK clients bind their connection pools to an event loop, so each loop gets its
        own providers; a change of ``kb``'s settings, or of its head (the extractive answerer
        scores sentences in the head's token space), builds new ones.
        """
        retriever = knowledge_base.retriever

        def build() -> Answerer:
            # The extractive answerer scores sentences with the retriever's token encoder, so
            # it reuses the query's token vectors from the search, in the search pool.
            extractive = ExtractiveProvider(retriever.token_encoder, executor=self._searches())
            return build_answerer(kb, config, self.settings, extractive)

        key = (kb, config.model_dump_json(), knowledge_base.head_version)
        answerer = self._answerers.get(key, build)
        return build_orchestrator(
            kb,
            config,
            self.settings,
            answerer=answerer,
            search=retriever.search,
            conversations=self.conversation_store,
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
            # A server client's HTTP sessions; an embedded client shares its system per path.
            if self._owns_chroma and self._chroma is not None and self.settings.chroma_url:
                close_chroma_client(self._chroma)
                self._chroma = None
        with self._runner_lock:
            if self._runner is not None:
                self._runner.run(self._answerers.close())
                self._runner.close()
                self._runner = None

    async def aclose(self) -> None:
        """Close the provider clients bound to the running event loop (for async callers
        that drive ``stream`` on their own loop)."""
        await self._answerers.close()

    def __enter__(self) -> Assistant:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def __getattr__(name: str) -> Any:
    # The tuning types load the training code, which searching and chatting never need.
    if name in ("TuneOptions", "TuneProgressCallback", "TuneReport"):
        from assistant.knowledge.training import tuning

        return getattr(tuning, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
