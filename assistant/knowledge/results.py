"""What a search returns: ranked hits, the trace of how they were found, and the result.

Plain dataclasses with no torch, Chroma or Redis at import, so the HTTP client reads search
answers into the very types ``Assistant.search`` returns without loading the retriever.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["TURN_HITS", "SearchHit", "SearchResult", "SearchTrace"]

TURN_HITS = 20
"""Hits a chat turn's search asks for, at the least: the passages its context is chosen from,
and those whose best match the no-answer rule reads (``SearchResult.best_match``). Tuning
takes a held-out query's best match over as many."""


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One passage with every signal's score and rank among the candidates (1 = best)."""

    chunk_id: str
    url: str
    title: str
    heading_path: tuple[str, ...]
    text: str
    dense_rank: int
    dense_score: float
    late_interaction_rank: int
    late_interaction_score: float
    lexical_rank: int | None
    lexical_score: float | None
    rank: int
    score: float
    position: int = -1
    """The chunk's place in its document (0 = first); -1 where unknown."""
    page_breadth: float = 0.0
    """How much longer than the knowledge base's usual page the chunk's page is
    (``PageSizes.breadth``; 0 for most pages), which lowered its ``score``."""


@dataclass(slots=True)
class SearchTrace:
    """How a search went: stage timings, pool sizes, cache behaviour, fusion weights."""

    timings_ms: dict[str, float] = field(default_factory=dict)
    candidates: int = 0
    dense_candidates: int = 0
    lexical_candidates: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    weights: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SearchResult:
    """The ranked passages for a query and the trace of how they were found.

    ``query_tokens`` is the query's token embeddings, shape ``(query_tokens, dim)``, kept
    in-process for reuse (``None`` over HTTP).
    """

    query: str
    hits: list[SearchHit]
    trace: SearchTrace
    # Out of the repr, like token_matrices: asyncio's runner formats a finished task's result
    # (an answer holding this) on every synchronous call, and a tensor's repr costs milliseconds.
    query_tokens: torch.Tensor | None = field(default=None, repr=False)
    candidates: Sequence[SearchHit] = field(default_factory=list, repr=False)
    """Every candidate of the pool, ranked (``hits`` is its head). A search's hits here are
    made when first read (``RankedHits``): most callers read only ``hits``."""
    token_matrices: Mapping[str, torch.Tensor] = field(default_factory=dict, repr=False)
    """The token vectors the rerank read, by chunk id: each (n_tokens, token_dimension), the
    rows of the chunk's embedding text. Kept in-process for reuse (empty over HTTP)."""
    unknown_names: tuple[str, ...] = ()
    """Names the query asks about that no chunk of the knowledge base contains ("PyO3" on a
    site that never mentions it; see ``unknown_names``). In-process only (empty over HTTP)."""
    best_match: float | None = None
    """The best plain MaxSim among ``hits``: each of the query's tokens' best similarity in the
    passage, averaged with every token counting the same, common words included. The hits'
    ``late_interaction_score`` weighs rare tokens more, to rank; this one says how closely the
    question as written is matched, which the no-answer threshold reads. ``None`` without hits.
    In-process only (``None`` over HTTP)."""
