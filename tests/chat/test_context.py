"""Choosing the passages for the prompt: neighbours joined without repeats, far chunks kept
apart, the ranking's order kept, the token budget and the source limit respected.

The overlapping chunks come from the real chunker over a help-centre page, so the repeats are
the ones ingest produces.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence

import pytest

from assistant.chat.context import (
    SOURCE_OVERHEAD_TOKENS,
    select_context,
    source_from_hit,
    source_tokens,
)
from assistant.chat.events import Source
from assistant.chat.tokens import ApproximateCounter
from assistant.knowledge.chunking import Chunk, Chunker
from assistant.knowledge.retriever import SearchHit
from connectors.document import Document, Section

REFUNDS_URL = "https://help.example/billing/refunds"
SENTENCES = [
    "Refunds are available for annual plans within fourteen days of purchase.",
    "Monthly plans are not refunded, but you can cancel at any time.",
    "To request a refund, open Billing and choose Request refund.",
    "Refunds go back to the original payment method.",
    "Card refunds usually appear within five to ten business days.",
    "Bank transfers can take up to three weeks to arrive.",
    "If you paid by invoice, the credit note is emailed to the billing contact.",
    "Partial refunds are issued when seats were removed mid-term.",
    "Taxes are refunded in the same proportion as the plan price.",
    "Contact support if a refund has not arrived after thirty days.",
    "Support answers refund questions within one business day.",
    "Refunds are never issued as account credit unless you ask for it.",
]


class WordCounter:
    """One token per whitespace-separated word, for the chunker and for budgets."""

    name = "words"

    def count(self, text: str) -> int:
        return len(text.split())

    def count_tokens(self, text: str) -> int:
        return self.count(text)

    def count_tokens_many(self, texts: Sequence[str]) -> list[int]:
        return [self.count(text) for text in texts]


@pytest.fixture(scope="module")
def chunks() -> list[Chunk]:
    """Five chunks of the refunds page, each repeating its predecessor's last sentence."""
    document = Document(
        REFUNDS_URL,
        "Refunds",
        (Section(("Billing", "Refunds"), " ".join(SENTENCES)),),
        "text/html",
    )
    result = Chunker(WordCounter(), max_tokens=45, overlap_tokens=14).split(document)
    assert len(result) == 5
    # The premise of joining: consecutive chunks share whole sentences.
    for before, after in itertools.pairwise(result):
        assert before.text.splitlines()[-1] == after.text.splitlines()[0]
    return result


def hit_of(chunk: Chunk, rank: int, *, known_position: bool = True) -> SearchHit:
    return make_hit(
        chunk.chunk_id,
        chunk.text,
        rank,
        url=chunk.document_source,
        title=chunk.title,
        heading_path=chunk.heading_path,
        position=chunk.position if known_position else -1,
    )


def make_hit(
    chunk_id: str,
    text: str,
    rank: int,
    *,
    url: str,
    title: str = "Help",
    heading_path: tuple[str, ...] = (),
    position: int = -1,
) -> SearchHit:
    score = 1.0 - rank / 100
    return SearchHit(
        chunk_id=chunk_id,
        url=url,
        title=title,
        heading_path=heading_path,
        text=text,
        dense_rank=rank,
        dense_score=score,
        late_interaction_rank=rank,
        late_interaction_score=score,
        lexical_rank=None,
        lexical_score=None,
        rank=rank,
        score=score,
        position=position,
    )


def sentences_of(source: Source) -> list[str]:
    return source.text.splitlines()


@pytest.mark.parametrize("known_position", [True, False], ids=["positions", "text overlap"])
def test_overlapping_neighbours_join_in_document_order_without_repeats(
    chunks: list[Chunk], known_position: bool
) -> None:
    hits = [
        hit_of(chunks[i], rank, known_position=known_position)
        for rank, i in [(1, 1), (2, 2), (3, 0)]
    ]
    (source,) = select_context(hits, counter=WordCounter(), budget_tokens=1000, max_sources=5)
    assert sentences_of(source) == SENTENCES[:8]
    assert source.chunk_ids == (chunks[1].chunk_id, chunks[2].chunk_id, chunks[0].chunk_id)
    assert (source.n, source.chunk_id, source.score) == (1, chunks[1].chunk_id, hits[0].score)
    assert source.heading_path == ("Billing", "Refunds")


def test_chunks_far_apart_in_one_page_stay_apart(chunks: list[Chunk]) -> None:
    hits = [hit_of(chunks[3], 1), hit_of(chunks[0], 2)]
    sources = select_context(hits, counter=WordCounter(), budget_tokens=1000, max_sources=5)
    assert [source.text for source in sources] == [chunks[3].text, chunks[0].text]
    assert [source.chunk_ids for source in sources] == [
        (chunks[3].chunk_id,),
        (chunks[0].chunk_id,),
    ]


def test_known_positions_decide_even_when_a_sentence_repeats(chunks: list[Chunk]) -> None:
    # Chunk 4 starts with the sentence that ends chunk 3, but here they claim to be far apart.
    far = make_hit("far", chunks[4].text, 2, url=REFUNDS_URL, position=9)
    sources = select_context(
        [hit_of(chunks[3], 1), far], counter=WordCounter(), budget_tokens=1000, max_sources=5
    )
    assert [source.chunk_ids for source in sources] == [(chunks[3].chunk_id,), ("far",)]


def test_a_phrase_shared_mid_sentence_is_not_an_overlap() -> None:
    url = "https://help.example/shipping"
    first = make_hit("a", "Orders placed before noon leave the warehouse the same day.", 1, url=url)
    second = make_hit(
        "b", "leave the warehouse the same day. Tracking links follow by email.", 2, url=url
    )
    sources = select_context(
        [first, second], counter=WordCounter(), budget_tokens=1000, max_sources=5
    )
    assert [source.text for source in sources] == [first.text, second.text]


def test_a_short_repeat_of_unknown_position_is_not_an_overlap() -> None:
    url = "https://help.example/contact"
    first = make_hit("a", "Write to us from the app.\nContact support today.", 1, url=url)
    second = make_hit("b", "Contact support today.\nPhone lines open at nine.", 2, url=url)
    sources = select_context(
        [first, second], counter=WordCounter(), budget_tokens=1000, max_sources=5
    )
    assert len(sources) == 2


def test_pages_never_join_even_with_the_same_text(chunks: list[Chunk]) -> None:
    copy = make_hit("copy", chunks[2].text, 2, url="https://mirror.example/refunds", position=2)
    sources = select_context(
        [hit_of(chunks[1], 1), copy], counter=WordCounter(), budget_tokens=1000, max_sources=5
    )
    assert [source.url for source in sources] == [REFUNDS_URL, "https://mirror.example/refunds"]


def test_a_hit_that_bridges_two_sources_makes_them_one(chunks: list[Chunk]) -> None:
    hits = [hit_of(chunks[3], 1), hit_of(chunks[1], 2), hit_of(chunks[2], 3)]
    (source,) = select_context(hits, counter=WordCounter(), budget_tokens=1000, max_sources=5)
    assert sentences_of(source) == SENTENCES[2:11]
    assert source.chunk_ids == tuple(hit.chunk_id for hit in hits)
    assert source.chunk_id == chunks[3].chunk_id


def test_a_repeated_hit_and_a_contained_passage_add_nothing(chunks: list[Chunk]) -> None:
    inside = make_hit("inside", "\n".join(SENTENCES[3:5]), 3, url=REFUNDS_URL)
    hits = [hit_of(chunks[1], 1), hit_of(chunks[1], 2), inside]
    (source,) = select_context(hits, counter=WordCounter(), budget_tokens=1000, max_sources=5)
    assert source.text == chunks[1].text
    assert source.chunk_ids == (chunks[1].chunk_id, "inside")


def distinct_pages(count: int) -> list[SearchHit]:
    return [
        make_hit(
            f"page-{rank}",
            " ".join(SENTENCES[rank % len(SENTENCES) : rank % len(SENTENCES) + 2]),
            rank,
            url=f"https://help.example/page-{rank}",
            title=f"Page {rank}",
        )
        for rank in range(1, count + 1)
    ]


def test_sources_keep_the_ranking_order_and_are_numbered() -> None:
    hits = distinct_pages(4)
    sources = select_context(hits, counter=WordCounter(), budget_tokens=10_000, max_sources=10)
    assert [source.n for source in sources] == [1, 2, 3, 4]
    assert [source.chunk_id for source in sources] == [hit.chunk_id for hit in hits]


def test_the_budget_is_respected_as_the_counter_counts() -> None:
    counter = WordCounter()
    hits = distinct_pages(4)
    costs = [source_tokens(source_from_hit(hit, 1), counter=counter) for hit in hits]
    assert costs[0] == counter.count(hits[0].text) + 2 + 1 + SOURCE_OVERHEAD_TOKENS
    budget = sum(costs[:3]) - 1
    sources = select_context(hits, counter=counter, budget_tokens=budget, max_sources=10)
    assert [source.chunk_id for source in sources] == [hit.chunk_id for hit in hits[:2]]
    exact = select_context(hits, counter=counter, budget_tokens=sum(costs[:3]), max_sources=10)
    assert len(exact) == 3


def test_no_budget_is_ever_overrun(chunks: list[Chunk]) -> None:
    counter = ApproximateCounter()
    hits = [hit_of(chunk, rank) for rank, chunk in enumerate(reversed(chunks), start=1)]
    hits += distinct_pages(6)
    for budget in range(0, 700, 7):
        sources = select_context(hits, counter=counter, budget_tokens=budget, max_sources=4)
        assert sum(source_tokens(source, counter=counter) for source in sources) <= budget
        assert len(sources) <= 4


def test_max_sources_limits_sources_not_the_neighbours_joined(chunks: list[Chunk]) -> None:
    other, last = distinct_pages(2)
    hits = [hit_of(chunks[0], 1), other, hit_of(chunks[1], 3), last]
    sources = select_context(hits, counter=WordCounter(), budget_tokens=10_000, max_sources=2)
    assert [source.chunk_ids for source in sources] == [
        (chunks[0].chunk_id, chunks[1].chunk_id),
        (other.chunk_id,),
    ]


def test_a_first_passage_too_long_is_cut_at_a_sentence_end(chunks: list[Chunk]) -> None:
    counter = WordCounter()
    hit = hit_of(chunks[1], 1)
    overhead = counter.count(hit.title) + counter.count(hit.url) + SOURCE_OVERHEAD_TOKENS
    two_sentences = counter.count(" ".join(SENTENCES[2:4]))
    (source,) = select_context(
        [hit], counter=counter, budget_tokens=overhead + two_sentences + 3, max_sources=5
    )
    assert sentences_of(source) == SENTENCES[2:4]
    assert source.chunk_ids == (hit.chunk_id,)


def test_a_first_sentence_too_long_is_cut_at_a_word(chunks: list[Chunk]) -> None:
    counter = WordCounter()
    hit = hit_of(chunks[1], 1)
    overhead = counter.count(hit.title) + counter.count(hit.url) + SOURCE_OVERHEAD_TOKENS
    (source,) = select_context([hit], counter=counter, budget_tokens=overhead + 4, max_sources=5)
    assert source.text == "To request a refund,"


def test_a_budget_that_holds_no_passage_gives_none(
    chunks: list[Chunk], caplog: pytest.LogCaptureFixture
) -> None:
    hits = [hit_of(chunks[0], 1)]
    with caplog.at_level(logging.WARNING, logger="assistant.chat.context"):
        assert select_context(hits, counter=WordCounter(), budget_tokens=5, max_sources=5) == ()
    assert "holds no passage" in caplog.text
    assert select_context(hits, counter=WordCounter(), budget_tokens=0, max_sources=5) == ()
    assert select_context(hits, counter=WordCounter(), budget_tokens=100, max_sources=0) == ()


def test_a_neighbour_that_does_not_fit_ends_the_walk(chunks: list[Chunk]) -> None:
    counter = WordCounter()
    first = hit_of(chunks[0], 1)
    budget = source_tokens(source_from_hit(first, 1), counter=counter) + 5
    hits = [first, hit_of(chunks[1], 2), *distinct_pages(1)]
    sources = select_context(hits, counter=counter, budget_tokens=budget, max_sources=5)
    assert [source.chunk_ids for source in sources] == [(first.chunk_id,)]


def test_a_source_from_a_hit() -> None:
    hit = make_hit("c1", "Plans start at $8.", 1, url="https://help.example/pricing", position=3)
    source = source_from_hit(hit, 4)
    assert source == Source(
        n=4,
        chunk_id="c1",
        title="Help",
        url="https://help.example/pricing",
        heading_path=(),
        text="Plans start at $8.",
        score=hit.score,
        chunk_ids=("c1",),
    )
