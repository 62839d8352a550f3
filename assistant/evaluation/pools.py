"""Candidate pools of a search, kept with every signal's score so rankings can be redone offline.

A search returns its whole candidate pool (dense recall ∪ lexical recall), each candidate with
its dense, MaxSim and BM25 scores and ranks. ``Pool`` keeps just that, in dense order, as plain
data that survives a JSON round trip; ``stage_orderings`` orders it by each stage of the
ranking, and ``fused_order`` re-fuses it with any ``FusionWeights`` through ``rank_candidates``,
the function the retriever ranks with, so a saved pool re-ranked with the knowledge base's own
weights reproduces the live ranking exactly.

Chunks map to pages by URL: a page ranks where its best chunk ranks (``page_ranking``), and an
acceptable path such as ``topics/db/queries.html`` matches a page whose URL path ends with it
(``http://127.0.0.1:8000/topics/db/queries.html``).

>>> page_path("http://127.0.0.1:8000/topics/db/queries.html#spanning")
'topics/db/queries.html'
>>> is_acceptable("http://127.0.0.1:8000/docs/intro/", ("intro/index.html",))
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import torch

from assistant.knowledge.fusion import FusionWeights
from assistant.knowledge.ranking import rank_candidates
from assistant.knowledge.retriever import SearchHit

__all__ = [
    "STAGES",
    "Candidate",
    "Pool",
    "first_acceptable_rank",
    "fused_order",
    "is_acceptable",
    "page_path",
    "page_ranking",
    "stage_orderings",
]

STAGES = ("dense", "lexical", "maxsim_only", "fused", "without_late_interaction")
"""The rankings compared: by one signal each, the shipped fusion, and the fusion without
MaxSim."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """One chunk of a pool: its scores and 1-based ranks by each signal and by the fusion."""

    chunk_id: str
    url: str
    dense_score: float
    maxsim_score: float
    lexical_score: float | None
    dense_rank: int
    maxsim_rank: int
    lexical_rank: int | None
    fused_rank: int
    page_breadth: float = 0.0

    @classmethod
    def of(cls, hit: SearchHit) -> Candidate:
        """The candidate a search hit describes."""
        return cls(
            chunk_id=hit.chunk_id,
            url=hit.url,
            dense_score=hit.dense_score,
            maxsim_score=hit.late_interaction_score,
            lexical_score=hit.lexical_score,
            dense_rank=hit.dense_rank,
            maxsim_rank=hit.late_interaction_rank,
            lexical_rank=hit.lexical_rank,
            fused_rank=hit.rank,
            page_breadth=hit.page_breadth,
        )

    def to_json(self) -> dict[str, object]:
        """Plain JSON; floats are written in full so they read back bit for bit."""
        return {
            "chunk_id": self.chunk_id,
            "url": self.url,
            "dense": self.dense_score,
            "maxsim": self.maxsim_score,
            "bm25": self.lexical_score,
            "ranks": [self.dense_rank, self.maxsim_rank, self.lexical_rank, self.fused_rank],
            "breadth": self.page_breadth,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Candidate:
        """The candidate ``to_json`` wrote."""
        ranks = data["ranks"]
        if not isinstance(ranks, list) or len(ranks) != 4:
            raise ValueError("a candidate's ranks are [dense, maxsim, bm25, fused]")
        lexical = data.get("bm25")
        return cls(
            chunk_id=str(data["chunk_id"]),
            url=str(data["url"]),
            dense_score=float(data["dense"]),  # type: ignore[arg-type]
            maxsim_score=float(data["maxsim"]),  # type: ignore[arg-type]
            lexical_score=None if lexical is None else float(lexical),  # type: ignore[arg-type]
            dense_rank=int(ranks[0]),
            maxsim_rank=int(ranks[1]),
            lexical_rank=None if ranks[2] is None else int(ranks[2]),
            fused_rank=int(ranks[3]),
            # Pools saved before pages' breadth counted rank as they did then.
            page_breadth=float(data.get("breadth", 0.0)),  # type: ignore[arg-type]
        )


@dataclass(frozen=True, slots=True)
class Pool:
    """One question's candidates in dense order, with the fusion weights the search used."""

    candidates: tuple[Candidate, ...]
    weights: FusionWeights

    @classmethod
    def of(cls, hits: Sequence[SearchHit], weights: FusionWeights) -> Pool:
        """The pool of a search's candidates (all of them, in any order)."""
        ordered = sorted(hits, key=lambda hit: hit.dense_rank)
        return cls(tuple(Candidate.of(hit) for hit in ordered), weights)

    def to_json(self) -> dict[str, object]:
        """Plain JSON: the weights and every candidate."""
        return {
            "weights": self.weights.as_dict(),
            "candidates": [candidate.to_json() for candidate in self.candidates],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Pool:
        """The pool ``to_json`` wrote."""
        weights = data["weights"]
        candidates = data["candidates"]
        if not isinstance(weights, dict) or not isinstance(candidates, list):
            raise ValueError("a pool is {'weights': {...}, 'candidates': [...]}")
        return cls(
            tuple(Candidate.from_json(candidate) for candidate in candidates),
            FusionWeights(**{name: float(value) for name, value in weights.items()}),
        )


def fused_order(pool: Pool, weights: FusionWeights) -> list[Candidate]:
    """``pool`` ranked by fusing its signals with ``weights``, exactly as the retriever does."""
    candidates = pool.candidates
    if not candidates:
        return []
    lexical: torch.Tensor | None = None
    if all(candidate.lexical_score is not None for candidate in candidates):
        lexical = torch.tensor([float(c.lexical_score or 0.0) for c in candidates])
    ranked = rank_candidates(
        torch.tensor([candidate.dense_score for candidate in candidates]),
        torch.tensor([candidate.maxsim_score for candidate in candidates]),
        weights,
        lexical,
        torch.tensor([candidate.page_breadth for candidate in candidates]),
    )
    return [candidates[index] for index in ranked.order]


def stage_orderings(pool: Pool) -> dict[str, list[Candidate]]:
    """The pool ordered by every stage of ``STAGES``."""
    candidates = pool.candidates
    return {
        "dense": sorted(candidates, key=lambda c: c.dense_rank),
        "lexical": sorted(
            candidates, key=lambda c: (c.lexical_rank is None, c.lexical_rank or 0, c.dense_rank)
        ),
        "maxsim_only": sorted(candidates, key=lambda c: c.maxsim_rank),
        "fused": sorted(candidates, key=lambda c: c.fused_rank),
        "without_late_interaction": fused_order(pool, pool.weights.without_late_interaction()),
    }


def page_path(url: str) -> str:
    """The path of a page's URL without the leading slash, query or fragment; a folder's path
    gets ``index.html`` (how static sites serve it). A path that is not a URL is kept."""
    parts = urlsplit(url)
    path = unquote(parts.path) if parts.scheme else url.split("#", 1)[0]
    if path.endswith("/") or not path:
        path += "index.html"
    return path.lstrip("/")


def is_acceptable(url: str, acceptable: Sequence[str]) -> bool:
    """Whether the page at ``url`` is one of the ``acceptable`` paths (relative to a site root
    that may itself sit under a path on the server)."""
    path = "/" + page_path(url)
    return any(path.endswith("/" + page_path(accepted)) for accepted in acceptable)


def page_ranking(candidates: Sequence[Candidate]) -> list[str]:
    """Page URLs (without fragment) in the order of their best chunk."""
    pages: dict[str, None] = {}
    for candidate in candidates:
        pages.setdefault(candidate.url.split("#", 1)[0], None)
    return list(pages)


def first_acceptable_rank(pages: Sequence[str], acceptable: Sequence[str]) -> int | None:
    """The 1-based rank of the first acceptable page, ``None`` when none is in the pool."""
    for rank, url in enumerate(pages, start=1):
        if is_acceptable(url, acceptable):
            return rank
    return None
