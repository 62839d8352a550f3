"""Source usage: which pages answered, which were only given as context, which were cited in
answers rated 👎, which were never used at all, and which questions each page served."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence

from assistant.analytics.records import Page, TurnFacts
from assistant.analytics.types import SourceUse

__all__ = ["SourceUse", "page_questions", "source_usage", "unused_pages"]


def source_usage(
    turns: Sequence[TurnFacts],
    *,
    examples: int = 5,
    render: Callable[[str], str] = str,
) -> list[SourceUse]:
    """Every page used by ``turns``, most cited first (then most used as context)."""
    titles: dict[str, str] = {}
    cited: Counter[str] = Counter()
    in_context: Counter[str] = Counter()
    thumbs_down: Counter[str] = Counter()
    questions: dict[str, Counter[str]] = defaultdict(Counter)
    for turn in turns:
        for page in turn.context_pages:
            titles.setdefault(page.url, page.title)
            in_context[page.url] += 1
            questions[page.url][render(turn.question)] += 1
        for url in turn.cited_urls:
            cited[url] += 1
            if turn.rating == -1:
                thumbs_down[url] += 1
    uses = [
        SourceUse(
            url=url,
            title=titles.get(url, ""),
            cited=cited[url],
            in_context=in_context[url],
            cited_in_thumbs_down=thumbs_down[url],
            questions=tuple(text for text, _ in questions[url].most_common(examples)),
        )
        for url in set(in_context) | set(cited)
    ]
    return sorted(uses, key=lambda use: (-use.cited, -use.in_context, use.url))


def unused_pages(documents: Sequence[Page], turns: Sequence[TurnFacts]) -> list[Page]:
    """The knowledge base's pages that no turn of ``turns`` used as context."""
    used = {page.url for turn in turns for page in turn.context_pages}
    return sorted((page for page in documents if page.url not in used), key=lambda p: p.url)


def page_questions(
    turns: Sequence[TurnFacts], url: str, *, render: Callable[[str], str] = str
) -> list[tuple[str, int]]:
    """Drill-down from a page: the questions it was used for, with counts, most frequent first."""
    counts: Counter[str] = Counter(
        render(turn.question)
        for turn in turns
        if any(page.url == url for page in turn.context_pages)
    )
    return counts.most_common()
