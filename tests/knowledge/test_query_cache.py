"""A question asked again is not encoded again: copies of the first encoding, within a byte
budget, least recently used out first."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from assistant.core import Assistant
from assistant.knowledge.encoder import EncodedText
from assistant.knowledge.query_cache import QueryCache
from tests.support.docs import write_docs


def counting_encoder(rows: int = 4) -> tuple[Callable[[str], EncodedText], list[str]]:
    """An encoder that records what it encodes; each text gets vectors of its own."""
    calls: list[str] = []

    def encode(text: str) -> EncodedText:
        calls.append(text)
        seed = sum(map(ord, text))
        generator = torch.Generator().manual_seed(seed)
        return EncodedText(
            torch.randn(8, generator=generator),
            torch.randn(rows, 8, generator=generator),
            np.arange(rows, dtype=np.int64) + seed,
        )

    return encode, calls


def test_a_question_asked_again_is_not_encoded_again() -> None:
    encode, calls = counting_encoder()
    cache = QueryCache(max_bytes=1 << 20)

    first = cache.encode("how do refunds work?", encode)
    again = cache.encode("how do refunds work?", encode)
    other = cache.encode("How do refunds work?", encode)  # another text, however close

    assert calls == ["how do refunds work?", "How do refunds work?"]
    assert torch.equal(first.dense, again.dense) and torch.equal(first.tokens, again.tokens)
    assert first.token_ids is not None and again.token_ids is not None
    assert np.array_equal(first.token_ids, again.token_ids)
    assert not torch.equal(first.tokens, other.tokens)
    assert (cache.hits, cache.misses) == (1, 2)


def test_what_a_caller_does_to_its_copy_does_not_reach_the_cache() -> None:
    encode, _ = counting_encoder()
    cache = QueryCache(max_bytes=1 << 20)
    first = cache.encode("q", encode)
    expected = first.tokens.clone()

    first.tokens.zero_()
    again = cache.encode("q", encode)
    again.dense.zero_()

    assert torch.equal(cache.encode("q", encode).tokens, expected)
    assert cache.encode("q", encode).dense.abs().sum() > 0


def test_the_budget_holds_and_the_least_recently_used_go_first() -> None:
    encode, calls = counting_encoder(rows=16)
    size = 16 * 8 * 4 + 8 * 4 + 16 * 8 + 2 + 400  # one entry: tensors, ids, text, overhead
    cache = QueryCache(max_bytes=2 * size + 10)

    for text in ("q1", "q2", "q1", "q3"):  # q1 used again, so q2 is the oldest when q3 comes
        cache.encode(text, encode)
    assert len(cache) == 2
    calls.clear()
    cache.encode("q1", encode)
    cache.encode("q3", encode)
    cache.encode("q2", encode)
    assert calls == ["q2"]


def test_a_budget_of_zero_keeps_nothing() -> None:
    encode, calls = counting_encoder()
    cache = QueryCache(max_bytes=0)
    cache.encode("q", encode)
    cache.encode("q", encode)
    assert calls == ["q", "q"] and len(cache) == 0


def test_threads_asking_at_once_all_get_the_encoding() -> None:
    encode, _ = counting_encoder()
    cache = QueryCache(max_bytes=1 << 20)
    expected = encode("shared question").tokens
    results: list[torch.Tensor] = []
    barrier = threading.Barrier(8)

    def ask() -> None:
        barrier.wait()
        results.append(cache.encode("shared question", encode).tokens)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and all(torch.equal(r, expected) for r in results)
    assert len(cache) == 1


def test_a_search_asked_again_ranks_the_same_without_encoding_again(
    make_assistant: Callable[..., Assistant], tmp_path: Path
) -> None:
    folder = write_docs(
        tmp_path,
        {
            "refunds.md": "# Refunds\n\nAnnual plans are refunded within 14 days.\n",
            "sso.md": "# Single sign-on\n\nSingle sign-on works with Okta.\n",
        },
    )
    bot = make_assistant()
    bot.ingest([str(folder)])
    retriever = bot._kb("default").retriever
    first = bot.search("When are annual plans refunded?")
    again = bot.search("When are annual plans refunded?")

    assert [h.chunk_id for h in again.hits] == [h.chunk_id for h in first.hits]
    assert [h.score for h in again.hits] == [h.score for h in first.hits]
    assert retriever._queries.hits == 1 and retriever._queries.misses == 1
    bot.close()
