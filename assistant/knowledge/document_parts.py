"""Work on a search's candidates split into runs of consecutive documents, the runs done side by
side on helper threads (MaxSim's product and reductions over many token rows)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

from assistant.knowledge.thread_pools import helper_threads

__all__ = ["LEAD_ROWS", "MIN_PART_ROWS", "document_parts", "run_in_parts"]

MIN_PART_ROWS = 4096
"""Fewest rows worth a part of their own: handing a part to another thread and waiting for it
costs tens of microseconds, the product of 4,096 rows (d = 384, 32 query columns) about 0.3 ms
on one core of the machine measured."""


LEAD_ROWS = 2048
"""Rows the first part (the searching thread's own) gets beyond each other part's share: a
helper starts its part 0.1-0.15 ms after it is handed it, the time one core of the machine
measured takes for about 2,000 rows' product and maxima. On a documentation site's searches
(17,000 rows in two parts) MaxSim took 1.3-1.4 ms p50 with the lead against 1.4-1.5 without."""


def document_parts(ends: np.ndarray, parts: int, lead: int = 0) -> list[tuple[int, int]]:
    """``parts`` runs of consecutive documents (``(first, last)``, last excluded) with about
    as many rows each, the first with ``lead`` rows more; ``ends`` are the documents'
    cumulative row counts.

    >>> document_parts(np.array([3, 5, 9, 10]), 2)
    [(0, 2), (2, 4)]
    >>> document_parts(np.array([3, 5, 9, 10]), 2, lead=4)
    [(0, 3), (3, 4)]
    """
    total = int(ends[-1])
    lead = min(max(lead, 0), total)
    cuts = [
        int(np.searchsorted(ends, lead + (total - lead) * part / parts)) + 1
        for part in range(1, parts)
    ]
    bounds = sorted({0, *(min(cut, len(ends)) for cut in cuts), len(ends)})
    return list(itertools.pairwise(bounds))


def run_in_parts(work: Callable[[int, int], None], parts: list[tuple[int, int]]) -> None:
    """``work(first, last)`` for every part: the first here, the others handed to helper
    threads, which take them from the front.

    After its own part this thread takes back, from the back, every part no helper has
    started and does it itself: on a busy machine a search is never much slower than doing
    every part alone, and on an idle one the parts run side by side. The products and
    reductions give the interpreter's lock back while they run.
    """
    if len(parts) <= 1:
        for first, last in parts:
            work(first, last)
        return
    pool = helper_threads()
    handed = [(pool.submit(work, first, last), first, last) for first, last in parts[1:]]
    try:
        work(*parts[0])
        for future, first, last in reversed(handed):
            if future.cancel():
                work(first, last)
    finally:
        # No helper is still writing when this returns or raises; a helper's error is raised.
        for future, _, _ in handed:
            future.cancel()
        for future, _, _ in handed:
            if not future.cancelled():
                future.result()
