"""LangChain adapters: the assistant's search as a retriever, MaxSim as a document compressor.

``AssistantRetriever`` runs a search of a knowledge base — in-process through ``Assistant``,
or remote through ``Client`` / ``AsyncClient`` — and returns its hits as LangChain
``Document``\\ s, every score kept in the metadata. ``LateInteractionCompressor`` reranks any
documents by late interaction (MaxSim over per-token vectors) with the packaged encoder, for
pipelines whose recall comes from elsewhere.

Needs ``langchain-core`` (``pip install 'assistant-rag[langchain]'``); the rest of the package
never imports this module.

>>> from assistant.client import Client  # doctest: +SKIP
>>> retriever = AssistantRetriever(searcher=Client(url, key), kb="help-centre", k=4)  # doctest: +SKIP
>>> retriever.invoke("How do I reset my password?")[0].metadata["url"]  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Sequence
from typing import Annotated, Protocol

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
    Callbacks,
)
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from pydantic import ConfigDict, Field, PrivateAttr, SkipValidation, field_validator

from assistant.knowledge.encoder import TokenEncoder, TransformerEncoder
from assistant.knowledge.maxsim import maxsim_scores_ragged
from assistant.knowledge.retriever import SearchHit, SearchResult

__all__ = [
    "AssistantRetriever",
    "AsyncSearcher",
    "LateInteractionCompressor",
    "Searcher",
    "document_from_hit",
]


class Searcher(Protocol):
    """Anything that searches a knowledge base: ``Assistant`` or ``Client``."""

    def search(self, query: str, *, kb: str = ..., k: int = ...) -> SearchResult:
        """The ``k`` best passages of ``kb`` for ``query``."""
        ...


class AsyncSearcher(Protocol):
    """An asynchronous searcher: ``AsyncClient``."""

    async def search(self, query: str, *, kb: str = ..., k: int = ...) -> SearchResult:
        """The ``k`` best passages of ``kb`` for ``query``."""
        ...


def document_from_hit(hit: SearchHit, *, kb: str) -> Document:
    """A LangChain ``Document`` of one search hit: the passage's text, and in the metadata its
    URL, title, headings, chunk id, knowledge base and every rank and score (``score`` and
    ``rank`` are the final ones). Signals that did not find the passage (``lexical_*``) are left
    out rather than set to ``None``, which several vector stores refuse in metadata.
    """
    metadata: dict[str, object] = {
        "url": hit.url,
        "title": hit.title,
        "headings": list(hit.heading_path),
        "chunk_id": hit.chunk_id,
        "kb": kb,
        "rank": hit.rank,
        "score": hit.score,
        "dense_rank": hit.dense_rank,
        "dense_score": hit.dense_score,
        "late_interaction_rank": hit.late_interaction_rank,
        "late_interaction_score": hit.late_interaction_score,
    }
    if hit.lexical_rank is not None:
        metadata["lexical_rank"] = hit.lexical_rank
    if hit.lexical_score is not None:
        metadata["lexical_score"] = hit.lexical_score
    return Document(page_content=hit.text, metadata=metadata, id=hit.chunk_id)


class AssistantRetriever(BaseRetriever):
    """A knowledge base's search as a LangChain retriever.

    ``searcher`` is an ``Assistant`` (in-process), a ``Client`` or an ``AsyncClient`` (remote);
    ``k`` documents are returned (``invoke(query, k=…)`` overrides it for one call). With an
    ``AsyncClient`` use ``ainvoke``; the others work both ways (``ainvoke`` runs their search
    in a worker thread).

    >>> retriever = AssistantRetriever(searcher=bot, kb="docs", k=4)  # doctest: +SKIP
    >>> [document.metadata["url"] for document in retriever.invoke("refunds")]  # doctest: +SKIP
    """

    searcher: Annotated[Searcher | AsyncSearcher, SkipValidation]
    kb: str = "default"
    k: int = Field(default=4, ge=1, le=100)

    @field_validator("searcher", mode="before")
    @classmethod
    def _has_search(cls, value: object) -> object:
        if not callable(getattr(value, "search", None)):
            raise ValueError("searcher needs a search(query, kb=..., k=...) method")
        return value

    @property
    def is_async(self) -> bool:
        """Whether the searcher's ``search`` is a coroutine (an ``AsyncClient``)."""
        return inspect.iscoroutinefunction(self.searcher.search)

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
    ) -> list[Document]:
        if self.is_async:
            raise TypeError(
                "this retriever's searcher is asynchronous (an AsyncClient); call ainvoke, "
                "or give it a Client or an Assistant"
            )
        searcher: Searcher = self.searcher  # type: ignore[assignment]
        result = searcher.search(query, kb=self.kb, k=k or self.k)
        return [document_from_hit(hit, kb=self.kb) for hit in result.hits]

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
    ) -> list[Document]:
        if not self.is_async:
            # A blocking search (the in-process encoder, or a synchronous HTTP call) must not
            # hold the event loop.
            return await run_in_executor(
                None,
                self._get_relevant_documents,
                query,
                run_manager=run_manager.get_sync(),
                k=k,
            )
        searcher: AsyncSearcher = self.searcher  # type: ignore[assignment]
        result = await searcher.search(query, kb=self.kb, k=k or self.k)
        return [document_from_hit(hit, kb=self.kb) for hit in result.hits]


class LateInteractionCompressor(BaseDocumentCompressor):
    """Reranks documents by late interaction and keeps the ``top_n`` best.

    Each document's score is the MaxSim of the query's token vectors against its own
    (``maxsim_scores_ragged``), written to ``metadata[score_key]``; ties keep the given order.
    ``encoder`` is any token encoder; by default the packaged all-MiniLM-L6-v2, loaded on first
    use.

    >>> compressor = LateInteractionCompressor(top_n=3)  # doctest: +SKIP
    >>> ContextualCompressionRetriever(base_compressor=compressor, base_retriever=other)  # doctest: +SKIP
    """

    # The encoder is a protocol, checked by mypy, not at run time.
    model_config = ConfigDict(arbitrary_types_allowed=True)

    encoder: Annotated[TokenEncoder | None, SkipValidation] = None
    top_n: int = Field(default=3, ge=1)
    score_key: str = "relevance_score"

    _loading: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def token_encoder(self) -> TokenEncoder:
        """The encoder in use (the packaged one is loaded here on first use)."""
        with self._loading:
            if self.encoder is None:
                self.encoder = TransformerEncoder()
            return self.encoder

    def scores(self, documents: Sequence[Document], query: str) -> list[float]:
        """The MaxSim score of each document for ``query``, in the documents' order."""
        if not documents:
            return []
        encoder = self.token_encoder()
        query_tokens = encoder.encode_query_tokens(query)
        document_tokens = encoder.encode_document_tokens(
            [document.page_content for document in documents]
        )
        scores: list[float] = maxsim_scores_ragged(query_tokens, document_tokens).tolist()
        return scores

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """The ``top_n`` documents with the best MaxSim for ``query``, best first, each a copy
        with its score in ``metadata[score_key]``."""
        scores = self.scores(documents, query)
        order = sorted(range(len(documents)), key=lambda index: (-scores[index], index))
        return [
            documents[index].model_copy(
                update={"metadata": {**documents[index].metadata, self.score_key: scores[index]}}
            )
            for index in order[: self.top_n]
        ]
