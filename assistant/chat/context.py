"""The passages sent to the model: the ranked hits, neighbours joined, cut to a token budget.

Hits are taken in the order the late-interaction ranking gave them. A hit from the same
document as a passage already chosen joins it when the two are neighbours: adjacent positions
where both positions are known, else text that overlaps (the chunker repeats a chunk's trailing
sentences at the start of the next one). The joined text keeps document order and holds the
repeated sentences once. Each passage costs what ``source_tokens`` counts; the walk stops at
the first hit that would exceed the budget or need a source beyond ``max_sources``.

>>> sources = select_context(hits, counter=counter, budget_tokens=3000, max_sources=6)  # doctest: +SKIP
>>> [source.n for source in sources]  # doctest: +SKIP
[1, 2, 3]
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from assistant.chat.events import Source
from assistant.chat.tokens import PromptTokenCounter
from assistant.knowledge.retriever import SearchHit

__all__ = [
    "MIN_OVERLAP_WORDS",
    "SOURCE_OVERHEAD_TOKENS",
    "select_context",
    "source_from_hit",
    "source_tokens",
]

logger = logging.getLogger(__name__)

MIN_OVERLAP_WORDS = 5
"""Words two passages of unknown position must share at their seam to be taken as neighbours."""

SOURCE_OVERHEAD_TOKENS = 16
"""Tokens of the markup around a passage in the prompt (``<source n=.. title=.. url=..>``)."""

_WORD = re.compile(r"\S+")
# A word that closes a sentence or clause: . ! ? … : ; then optional closing quotes/brackets.
_CLOSES_SENTENCE = re.compile(r"[.!?…:;][\"'”’)\]]*$")
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*(?=\s|$)")


def source_from_hit(hit: SearchHit, n: int) -> Source:
    """The passage of one hit, numbered ``n``."""
    return Source(
        n=n,
        chunk_id=hit.chunk_id,
        title=hit.title,
        url=hit.url,
        heading_path=hit.heading_path,
        text=hit.text,
        score=hit.score,
        chunk_ids=(hit.chunk_id,),
    )


def source_tokens(source: Source, *, counter: PromptTokenCounter) -> int:
    """What ``source`` costs in the prompt: its text, title and URL plus the markup around them."""
    return _cost(counter, source.title, source.url, source.text)


def _cost(counter: PromptTokenCounter, title: str, url: str, text: str) -> int:
    return counter.count(text) + counter.count(title) + counter.count(url) + SOURCE_OVERHEAD_TOKENS


@dataclass(frozen=True, slots=True)
class _Passage:
    """A passage being built: its best hit, its text, the positions it spans, its chunks."""

    best: SearchHit
    text: str
    first_position: int
    last_position: int
    chunk_ids: tuple[str, ...]
    cost: int

    @property
    def positioned(self) -> bool:
        return self.first_position >= 0 and self.last_position >= 0


def select_context(
    hits: Sequence[SearchHit], *, counter: PromptTokenCounter, budget_tokens: int, max_sources: int
) -> tuple[Source, ...]:
    """The passages for the prompt, numbered 1..n in ranking order, within ``budget_tokens``.

    The total of ``source_tokens`` over the result never exceeds ``budget_tokens``: if the
    first hit alone does not fit, its text is cut at the last sentence end that fits (a word
    end where no sentence end does). A merged source keeps its best hit's ``chunk_id``, title,
    headings and score, and lists every chunk it holds in ``chunk_ids``, best first.
    """
    if budget_tokens <= 0 or max_sources <= 0:
        return ()
    passages: list[_Passage] = []
    # Walk order of every chunk taken, to list a source's chunks best first.
    order: dict[str, int] = {}
    for hit in hits:
        if hit.chunk_id in order:
            continue
        single = _Passage(
            hit,
            hit.text,
            hit.position,
            hit.position,
            (hit.chunk_id,),
            _cost(counter, hit.title, hit.url, hit.text),
        )
        used = sum(passage.cost for passage in passages)
        index, joined = _first_join(passages, single, counter)
        if joined is not None:
            if used - passages[index].cost + joined.cost > budget_tokens:
                break
            order[hit.chunk_id] = len(order)
            passages[index] = joined
            _coalesce(passages, index, counter, budget_tokens)
            continue
        if len(passages) >= max_sources:
            break
        if used + single.cost > budget_tokens:
            if not passages:
                cut = _truncated(single, counter, budget_tokens)
                if cut is not None:
                    order[hit.chunk_id] = len(order)
                    passages.append(cut)
                else:
                    logger.warning(
                        "a context budget of %d tokens holds no passage; raise it", budget_tokens
                    )
            break
        order[hit.chunk_id] = len(order)
        passages.append(single)
    return tuple(
        Source(
            n=n,
            chunk_id=passage.best.chunk_id,
            title=passage.best.title,
            url=passage.best.url,
            heading_path=passage.best.heading_path,
            text=passage.text,
            score=passage.best.score,
            chunk_ids=tuple(sorted(passage.chunk_ids, key=order.__getitem__)),
        )
        for n, passage in enumerate(passages, start=1)
    )


def _first_join(
    passages: Sequence[_Passage], single: _Passage, counter: PromptTokenCounter
) -> tuple[int, _Passage | None]:
    """The first chosen passage ``single`` joins, and the passage they make together."""
    for index, passage in enumerate(passages):
        joined = _join(passage, single, counter)
        if joined is not None:
            return index, joined
    return -1, None


def _coalesce(
    passages: list[_Passage], index: int, counter: PromptTokenCounter, budget_tokens: int
) -> None:
    """Join passages that the growth of ``passages[index]`` made neighbours of it."""
    changed = True
    while changed:
        changed = False
        for other in range(len(passages)):
            if other == index:
                continue
            better, worse = sorted((index, other))
            joined = _join(passages[better], passages[worse], counter)
            if joined is None:
                continue
            total = sum(p.cost for p in passages) - passages[better].cost - passages[worse].cost
            if total + joined.cost > budget_tokens:
                continue
            passages[better] = joined
            del passages[worse]
            index, changed = better, True
            break


def _join(better: _Passage, worse: _Passage, counter: PromptTokenCounter) -> _Passage | None:
    """``better`` grown by ``worse`` if they are neighbours in one document, else ``None``."""
    if better.best.url != worse.best.url:
        return None
    first, last = better.first_position, better.last_position
    if _contains(better.text, worse.text):
        text = better.text
    elif _contains(worse.text, better.text):
        text, first, last = worse.text, worse.first_position, worse.last_position
    elif better.positioned and worse.positioned:
        # Positions decide: only consecutive chunks are joined, their repeat found at any length.
        if worse.first_position == better.last_position + 1:
            text, last = _glue(better.text, worse.text), worse.last_position
        elif worse.last_position == better.first_position - 1:
            text, first = _glue(worse.text, better.text), worse.first_position
        else:
            return None
    elif (end := _repeat_end(better.text, worse.text, MIN_OVERLAP_WORDS)) is not None:
        text = _joined(better.text, worse.text, end)
    elif (end := _repeat_end(worse.text, better.text, MIN_OVERLAP_WORDS)) is not None:
        text = _joined(worse.text, better.text, end)
    else:
        return None
    return replace(
        better,
        text=text,
        first_position=first,
        last_position=last,
        chunk_ids=better.chunk_ids + worse.chunk_ids,
        cost=_cost(counter, better.best.title, better.best.url, text),
    )


def _contains(outer: str, inner: str) -> bool:
    """Whether ``inner``'s words run, whole, inside ``outer`` (and are not a mere phrase)."""
    inner_count, inner_words = _spaced_words(inner)
    outer_words = _spaced_words(outer)[1]
    if inner_count < MIN_OVERLAP_WORDS and inner_words != outer_words:
        return False
    return inner_words in outer_words


# Each pair of passages from one page is compared, on every turn, and the same chunks come back
# turn after turn: their words are split once.
@functools.lru_cache(maxsize=1024)
def _spaced_words(text: str) -> tuple[int, str]:
    """How many words ``text`` has, and the words joined by single spaces with one space on
    either side (words hold no space, so two texts' words are equal when these are)."""
    words = _WORD.findall(text)
    return len(words), f" {' '.join(words)} "


def _glue(left: str, right: str) -> str:
    """``left`` then what ``right`` adds to it; ``right`` on a new line if it repeats nothing."""
    end = _repeat_end(left, right, 1)
    return _joined(left, right, end) if end is not None else f"{left.rstrip()}\n{right.strip()}"


def _joined(left: str, right: str, end: int) -> str:
    return left.rstrip() + right[end:].rstrip()


def _repeat_end(left: str, right: str, min_words: int) -> int | None:
    """Where the part of ``right`` that repeats the end of ``left`` stops, or ``None``.

    The repeated part is the longest run of whole words, at least ``min_words`` long, that ends
    ``left`` and starts ``right``, beginning a sentence or line in ``left`` and ending one in
    ``right`` (the chunker repeats whole sentences).
    """
    left_words = list(_WORD.finditer(left))
    right_words = list(_WORD.finditer(right))
    if not right_words:
        return None
    first_word = right_words[0].group()
    for start, match in enumerate(left_words):
        length = len(left_words) - start
        if (
            match.group() == first_word
            and min_words <= length <= len(right_words)
            and all(left_words[start + i].group() == right_words[i].group() for i in range(length))
            and _begins_unit(left, left_words, start)
            and _ends_unit(right, right_words, length - 1)
        ):
            return right_words[length - 1].end()
    return None


def _begins_unit(text: str, words: list[re.Match[str]], index: int) -> bool:
    if index == 0:
        return True
    gap = text[words[index - 1].end() : words[index].start()]
    return "\n" in gap or _CLOSES_SENTENCE.search(words[index - 1].group()) is not None


def _ends_unit(text: str, words: list[re.Match[str]], index: int) -> bool:
    if index == len(words) - 1:
        return True
    gap = text[words[index].end() : words[index + 1].start()]
    return "\n" in gap or _CLOSES_SENTENCE.search(words[index].group()) is not None


def _truncated(
    passage: _Passage, counter: PromptTokenCounter, budget_tokens: int
) -> _Passage | None:
    """``passage`` cut at the last sentence end (else word end) that fits ``budget_tokens``."""
    text = passage.text

    def cost(end: int) -> int:
        return _cost(counter, passage.best.title, passage.best.url, text[:end].rstrip())

    sentence_ends = sorted(
        {match.end() for match in _SENTENCE_END.finditer(text)}
        | {match.start() for match in re.finditer(r"\n", text)}
    )
    word_ends = [match.end() for match in _WORD.finditer(text)]
    for ends in (sentence_ends, word_ends):
        end = _last_fitting(ends, lambda end: cost(end) <= budget_tokens)
        if end is not None:
            cut = text[:end].rstrip()
            return replace(passage, text=cut, cost=cost(end))
    return None


def _last_fitting(ends: Sequence[int], fits: Callable[[int], bool]) -> int | None:
    """The largest of the sorted ``ends`` that ``fits``, by binary search (cost grows with end)."""
    low, high, best = 0, len(ends) - 1, None
    while low <= high:
        middle = (low + high) // 2
        if ends[middle] > 0 and fits(ends[middle]):
            best, low = ends[middle], middle + 1
        else:
            high = middle - 1
    return best
