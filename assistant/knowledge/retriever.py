"""Retrieval: dense recall (∪ lexical recall) → token embeddings → MaxSim → fused ranking.

The query is encoded once (dense vector and token vectors from one pass). Candidates come from
Chroma's ANN search and, when the knowledge base has a lexical index, from BM25 as well. Their
token embeddings come from the cache; misses are recomputed from the stored text and written
back. The final score fuses the standardised dense, MaxSim and lexical scores. MaxSim weighs
the question's tokens by their rarity in the knowledge base where its lexical index counted
them (``TermWeights``); the plain mean is kept as the result's ``best_match``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch

from assistant.errors import CacheError
from assistant.knowledge.encoder import (
    Encoder,
    TokenEncoder,
    TokenIds,
    row_token_ids,
    shared_pass,
)
from assistant.knowledge.fusion import (
    DEFAULT_WEIGHTS,
    DEFAULT_WEIGHTS_WITHOUT_LEXICAL,
    FusionWeights,
)
from assistant.knowledge.lexical import LexicalIndex
from assistant.knowledge.maxsim import (
    PackedTokens,
    pack_token_matrices,
    token_maxima,
    weighted_mean,
)
from assistant.knowledge.page_breadth import PageSizes
from assistant.knowledge.query_cache import QueryCache
from assistant.knowledge.ranked_hits import RankedHits
from assistant.knowledge.ranking import rank_candidates, recall_union
from assistant.knowledge.results import SearchHit, SearchResult, SearchTrace
from assistant.knowledge.term_weights import query_token_weights
from assistant.knowledge.token_cache import (
    TokenCache,
    cache_keys,
    decode_or_none,
    get_encoded,
    token_space,
)
from assistant.knowledge.token_codec import DEFAULT_FORMAT, decode_packed
from assistant.knowledge.unknown_names import unknown_names
from assistant.knowledge.vector_store import StoredChunk, VectorSearch

__all__ = ["Candidate", "Retriever", "SearchHit", "SearchResult", "SearchTrace"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Candidate:
    """A recalled chunk and its scores, before ranking."""

    chunk: StoredChunk
    dense_score: float
    lexical_score: float | None = None


class Retriever:
    """Searches one knowledge base.

    >>> retriever = Retriever(store, encoder, token_cache)  # doctest: +SKIP
    >>> retriever.search("how do refunds work?", k=5).hits[0].url  # doctest: +SKIP
    """

    def __init__(
        self,
        store: VectorSearch,
        encoder: Encoder,
        token_cache: TokenCache,
        *,
        lexical: LexicalIndex | None = None,
        late_encoder: TokenEncoder | None = None,
        recall_k: int = 100,
        head_version: str = "base",
        weights: FusionWeights | None = None,
        query_cache: QueryCache | None = None,
        match_scale: Callable[[float], float] | None = None,
    ) -> None:
        self._store = store
        # A trained head's scores put back on the base vectors' scale, which the no-answer
        # threshold was chosen for (``training.match_scale``); none: the scores as they are.
        self._match_scale = match_scale
        self._encoder = encoder
        # A question asked again is not encoded again (``query_cache``); none: every time.
        self._queries = query_cache if query_cache is not None else QueryCache(max_bytes=0)
        # Without a separate late-interaction model, token vectors come from the dense pass.
        self._late_encoder: TokenEncoder = late_encoder or encoder
        self._cache = token_cache
        # Decided once: a protocol check with data members costs microseconds per search.
        self._token_ids: TokenIds | None = row_token_ids(self._late_encoder, encoder)
        self._lexical = lexical if lexical is not None and len(lexical) else None
        self._recall_k = recall_k
        self._head_version = head_version
        if weights is None:
            weights = DEFAULT_WEIGHTS if lexical is not None else DEFAULT_WEIGHTS_WITHOUT_LEXICAL
        self.weights = weights

    @property
    def lexical(self) -> LexicalIndex | None:
        """The BM25 index of lexical recall (``None``: dense recall only)."""
        return self._lexical

    @property
    def token_encoder(self) -> TokenEncoder:
        """What makes the query's and the passages' token vectors for MaxSim."""
        return self._late_encoder

    def reload_lexical(self, lexical: LexicalIndex | None) -> None:
        """Search with ``lexical`` from now on (an index rebuilt after the knowledge base
        changed); an empty index means dense recall only.

        Safe while other threads search: a search reads the index once, so it runs wholly on
        the old index or wholly on the new one.
        """
        self._lexical = lexical if lexical is not None and len(lexical) else None

    def search(
        self, query: str, k: int = 10, *, weights: FusionWeights | None = None
    ) -> SearchResult:
        """The ``k`` best passages for ``query`` after late-interaction reranking."""
        trace = SearchTrace(weights=(weights or self.weights).as_dict())
        clock = _Clock(trace)
        # Read once: ``reload_lexical`` may swap the index while this search runs.
        lexical_index = self._lexical
        encoded = self._queries.encode(query, self._encoder.encode_query)
        from_pass = shared_pass(self._late_encoder, self._encoder)
        query_tokens = (
            from_pass(encoded.tokens)
            if from_pass is not None
            else self._late_encoder.encode_query_tokens(query)
        )
        token_weights = self._token_weights(
            query, query_tokens.shape[0], lexical_index, encoded.token_ids
        )
        clock.lap("encode")
        candidates, unknown = self._recall(query, encoded.dense, trace, lexical_index)
        clock.lap("recall")
        if not candidates:
            return SearchResult(query, [], trace, query_tokens, unknown_names=unknown)
        packed = self._packed_tokens([c.chunk for c in candidates], trace)
        clock.lap("cache")
        maxima = token_maxima(query_tokens, packed)
        plain = weighted_mean(maxima)
        late = plain if token_weights is None else weighted_mean(maxima, token_weights)
        clock.lap("maxsim")
        page_sizes = lexical_index.page_sizes if lexical_index is not None else None
        ranked = self._rank(candidates, late, weights or self.weights, page_sizes)
        hits = ranked[:k]
        clock.lap("fuse")
        # The offline answerer scores sentences from the vectors of the few passages it reads.
        matrices = packed.by_key([c.chunk.chunk_id for c in candidates])
        return SearchResult(
            query,
            hits,
            trace,
            query_tokens,
            ranked,
            matrices,
            unknown_names=unknown,
            best_match=self._best_match([float(plain[i]) for i in ranked.positions(len(hits))]),
        )

    def _best_match(self, scores: list[float]) -> float | None:
        """The best of the hits' plain MaxSim scores, on the base vectors' scale."""
        if not scores:
            return None
        best = max(scores)
        return best if self._match_scale is None else self._match_scale(best)

    def _token_weights(
        self,
        query: str,
        rows: int,
        lexical_index: LexicalIndex | None,
        token_ids: np.ndarray | None,
    ) -> np.ndarray | None:
        """The weight of each of the query's token rows, from the token document frequencies
        counted with ``lexical_index`` (``None``: plain MaxSim)."""
        counts = lexical_index.term_weights if lexical_index is not None else None
        return query_token_weights(counts, self._token_ids, query, rows, token_ids)

    def token_matrices(self, chunks: list[StoredChunk]) -> list[torch.Tensor]:
        """Token embeddings of ``chunks`` (each (n_tokens, token_dimension)), cache first."""
        return self._packed_tokens(chunks, SearchTrace()).split()

    def _recall(
        self,
        query: str,
        query_dense: torch.Tensor,
        trace: SearchTrace,
        lexical_index: LexicalIndex | None,
    ) -> tuple[list[Candidate], tuple[str, ...]]:
        """The candidate pool, and the names ``query`` asks about that no chunk contains
        (empty without a lexical index: its vocabulary is what says so)."""
        unknown: tuple[str, ...] = ()
        dense = self._store.query(query_dense, self._recall_k)
        candidates = {chunk.chunk_id: Candidate(chunk, score) for chunk, score in dense}
        trace.dense_candidates = len(candidates)
        if lexical_index is not None:
            lexical = lexical_index.query(query)
            unknown = unknown_names(query, lexical_index.known)
            if lexical_index.code_names is not None:
                # "typing.override", "-Z": names whose words are all known, but not as written.
                unknown = (*unknown, *lexical_index.code_names.unknown(query))
            top = [chunk_id for chunk_id, _ in lexical.top(self._recall_k)]
            trace.lexical_candidates = len(top)
            missing = recall_union(list(candidates), top)[len(candidates) :]
            for chunk, score in self._store.get_with_similarity(missing, query_dense):
                candidates[chunk.chunk_id] = Candidate(chunk, score)
            pool = list(candidates)
            for cid, score in zip(pool, lexical.of(pool), strict=True):
                candidates[cid].lexical_score = score
        trace.candidates = len(candidates)
        return list(candidates.values()), unknown

    def _packed_tokens(self, chunks: list[StoredChunk], trace: SearchTrace) -> PackedTokens:
        """The candidates' token matrices stacked in one tensor, cache first.

        Hits are read as stored bytes and decoded together; misses are recomputed from the
        stored text and written back.
        """
        model_id = token_space(self._late_encoder)
        dimension = self._late_encoder.token_dimension
        keys = cache_keys(model_id, self._head_version, [c.chunk_hash for c in chunks])
        encoded = get_encoded(self._cache, keys, DEFAULT_FORMAT)
        packed: PackedTokens | None = None
        if all(value is not None for value in encoded):
            try:
                packed = decode_packed(cast("list[bytes]", encoded), dimension)
            except CacheError:
                packed = None  # one unreadable value: decode one by one below
        if packed is not None:
            trace.cache_hits = len(chunks)
            trace.cache_misses = 0
            return packed
        cached: list[torch.Tensor | None] = [
            decode_or_none(key, value) for key, value in zip(keys, encoded, strict=True)
        ]
        missing = [index for index, value in enumerate(cached) if value is None]
        trace.cache_hits = len(chunks) - len(missing)
        trace.cache_misses = len(missing)
        if missing:
            recomputed = self._late_encoder.encode_document_tokens(
                [chunks[index].chunk.embedding_text for index in missing]
            )
            fresh = {}
            for index, matrix in zip(missing, recomputed, strict=True):
                cached[index] = matrix
                fresh[keys[index]] = matrix
            self._cache.put_many(fresh)
        return pack_token_matrices([m for m in cached if m is not None], dimension)

    @staticmethod
    def _rank(
        candidates: list[Candidate],
        late: np.ndarray,
        weights: FusionWeights,
        page_sizes: PageSizes | None,
    ) -> RankedHits:
        # Through numpy arrays: a pool's lists of floats are read in one call each.
        dense = np.array([c.dense_score for c in candidates], np.float32)
        lexical: np.ndarray | None = None
        if all(c.lexical_score is not None for c in candidates):
            lexical = np.array([float(c.lexical_score or 0.0) for c in candidates], np.float32)
        breadth = page_sizes.breadth if page_sizes is not None else None
        breadths = (
            [breadth(c.chunk.url) for c in candidates] if breadth else [0.0] * len(candidates)
        )
        ranked = rank_candidates(dense, late, weights, lexical, breadths)
        return RankedHits(
            [c.chunk for c in candidates],
            ranked,
            dense.tolist(),
            late.astype(np.float32, copy=False).tolist(),
            lexical.tolist() if lexical is not None else None,
            breadths,
        )


class _Clock:
    def __init__(self, trace: SearchTrace) -> None:
        self._trace = trace
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self._trace.timings_ms[stage] = round((now - self._last) * 1000.0, 3)
        self._last = now
