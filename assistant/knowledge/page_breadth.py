"""How much longer than the knowledge base's usual page a page is, and the prior that keeps a
long page's breadth from outranking the page that answers.

A page ranks where its best chunk ranks, and a page of 400 chunks has 400 chances to hold the
chunk that best matches a question. A user manual that covers every command, or a reference
listing every option, then wins questions that a short page answers, on words one of its many
sections shares with them. On Git's documentation the user manual (384 chunks, against a median
page of 16) ranked first for 12 of the 97 questions and answered 3 of them.

So a chunk's fused score is lowered by ``LONG_PAGE_PENALTY`` standard deviations of the pool's
fused scores for each factor of *e* by which its page is longer than ``long_from`` chunks:
twice the knowledge base's median page, and never under ``LONG_PAGE_FLOOR``; the factors count
up to ``LONG_PAGE_MAX_BREADTH``. Pages up to ``long_from`` are not touched, so the prior
adapts to each knowledge base: on Python's documentation, whose median page has 39 chunks, it
starts at 78, on Django's at 36. The counts are made over the same
chunks as the lexical index and saved with it.

>>> sizes = PageSizes.count(["a"] * 4 + ["b"] * 4 + ["c"] * 40)
>>> sizes.long_from
8.0
>>> round(sizes.breadth("c"), 3), sizes.breadth("a"), sizes.breadth("unknown")
(1.5, 0.0, 0.0)
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "LONG_PAGE_FLOOR",
    "LONG_PAGE_MAX_BREADTH",
    "LONG_PAGE_MEDIAN_FACTOR",
    "LONG_PAGE_PENALTY",
    "PageSizes",
]

LONG_PAGE_PENALTY = 0.25
"""Standard deviations of the pool's fused scores taken off per factor of *e* of extra length.

Measured on the three documentation sites of ``bench/sites.py``, page hit@1 of the paraphrased
/ direct questions without → with the prior: Django 0.500 / 0.913 → 0.519 / 0.935, Git
0.429 / 0.782 → 0.524 / 0.855, Python 0.759 / 1.000 → 0.759 / 1.000. On their saved pools 0.2
and 0.3 measure within a question or two of it on each site."""

LONG_PAGE_MEDIAN_FACTOR = 2.0
"""A page counts as long from this many times the knowledge base's median page. With the
median itself as the bound, Django's paraphrased questions gained one more and Python's lost
two: its long reference pages (and its FAQ) are often the answer."""

LONG_PAGE_FLOOR = 8
"""Pages of up to this many chunks (about 1,400 tokens) are never long: a handful of sections
gives no real breadth, and collections of abstracts (BEIR) keep their ranking."""

LONG_PAGE_MAX_BREADTH = 1.5
"""The breadth stops growing at this many factors of *e* (about 4.5 times ``long_from``). The
longest reference pages are often the answer (Git's ``git-config.html``, 523 chunks, holds every
setting): without the bound, the follow-up questions to Git's documentation whose answer cites an
acceptable page fell from 19 of 25 to 16; with it, to 18, and the hit@1 gains above stay."""

_FILE = "page_sizes.json"


@dataclass(frozen=True, slots=True)
class PageSizes:
    """The number of chunks of every page (document URL or path) of a knowledge base."""

    chunks: dict[str, int]
    long_from: float = field(init=False)
    """The length in chunks from which a page's breadth counts against it."""
    _breadths: dict[str, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Computed once: ``breadth`` runs for every candidate of every search.
        median = statistics.median(self.chunks.values()) if self.chunks else 0.0
        bound = max(float(LONG_PAGE_FLOOR), LONG_PAGE_MEDIAN_FACTOR * median)
        object.__setattr__(self, "long_from", bound)
        breadths = {
            url: min(LONG_PAGE_MAX_BREADTH, math.log(chunks / bound))
            for url, chunks in self.chunks.items()
            if chunks > bound
        }
        object.__setattr__(self, "_breadths", breadths)

    @classmethod
    def count(cls, urls: Iterable[str]) -> PageSizes:
        """Count the chunks of each page from the page URL of every chunk."""
        return cls(dict(Counter(urls)))

    def breadth(self, url: str) -> float:
        """``log(chunks / long_from)`` for a page longer than ``long_from``, at most
        ``LONG_PAGE_MAX_BREADTH``; 0 for other pages and for a page not counted (one added
        after the counts were made)."""
        return self._breadths.get(url, 0.0)

    def save(self, directory: Path) -> None:
        """Write the counts into ``directory`` (which must exist)."""
        (directory / _FILE).write_text(json.dumps(self.chunks), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> PageSizes | None:
        """The counts saved in ``directory``; ``None`` for an index saved before they were
        made (its knowledge base ranks without the prior until its next ingestion)."""
        path = directory / _FILE
        if not path.is_file():
            return None
        saved = json.loads(path.read_text(encoding="utf-8"))
        return cls({str(url): int(count) for url, count in saved.items()})
