"""The retrieval trace of a turn as a JSON document: stored with the turn, printed by ``--json``.

It holds every candidate of the pool with its dense, late-interaction and lexical rank and
score, the final ranking, the chunks chosen as context, cache behaviour and stage timings.
"""

from __future__ import annotations

from dataclasses import asdict

from assistant.chat.events import Source
from assistant.knowledge.results import SearchHit, SearchResult

__all__ = ["hit_document", "retrieval_trace"]


def hit_document(hit: SearchHit, *, with_text: bool = True) -> dict[str, object]:
    """One candidate's ranks and scores (and, with ``with_text``, its text and title)."""
    document: dict[str, object] = {
        "chunk_id": hit.chunk_id,
        "url": hit.url,
        "dense_rank": hit.dense_rank,
        "dense_score": round(hit.dense_score, 6),
        "late_interaction_rank": hit.late_interaction_rank,
        "late_interaction_score": round(hit.late_interaction_score, 6),
        "lexical_rank": hit.lexical_rank,
        "lexical_score": None if hit.lexical_score is None else round(hit.lexical_score, 6),
        "rank": hit.rank,
        "score": round(hit.score, 6),
    }
    if with_text:
        document.update(title=hit.title, headings=list(hit.heading_path), text=hit.text)
    return document


def retrieval_trace(result: SearchResult, sources: tuple[Source, ...] = ()) -> dict[str, object]:
    """The trace of ``result``; ``sources`` are the passages it chose as the LLM context."""
    trace: dict[str, object] = asdict(result.trace)
    trace["query"] = result.query
    trace["pool_size"] = result.trace.candidates
    trace["context"] = [
        chunk_id for source in sources for chunk_id in (source.chunk_ids or (source.chunk_id,))
    ]
    trace["candidates"] = [
        hit_document(hit, with_text=False) for hit in (result.candidates or result.hits)
    ]
    return trace
