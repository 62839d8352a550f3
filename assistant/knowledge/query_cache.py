"""The encodings of recent questions, so a question asked again is not encoded again.

Visitors ask the same questions again and again: the widget's suggested questions, a site's
top questions, a follow-up condensed into the same standalone question. Encoding a question is
the largest stage of a search on one core (5 ms of 15 on a docs site, and more while other
searches wait for the core), and the same text always gives the same vectors, so they are
kept by text, the most recently used first out, within a budget of bytes
(``ASSISTANT_QUERY_CACHE_BYTES``; 0 keeps nothing). An entry can never be stale: it depends
on the text and the encoder alone, and a cache belongs to one retriever, hence one encoder.

Callers get copies of the tensors, so nothing they do to them reaches the cache.
"""

from __future__ import annotations

from collections.abc import Callable

from assistant.knowledge.encoder import EncodedText
from assistant.knowledge.sized_lru import SizedLRU

__all__ = ["DEFAULT_QUERY_CACHE_BYTES", "QueryCache"]

DEFAULT_QUERY_CACHE_BYTES = 16 * 1024 * 1024
"""About 500 questions of 20 tokens with 384-d vectors."""

_ENTRY_OVERHEAD = 400
"""Bytes of Python objects around an entry's tensors (dataclass, tensors, dict slot)."""


class QueryCache:
    """Least recently used question encodings, bounded by their bytes; safe across threads.

    >>> cache = QueryCache(max_bytes=1 << 20)
    >>> first = cache.encode("how do refunds work?", encoder.encode_query)  # doctest: +SKIP
    >>> again = cache.encode("how do refunds work?", encoder.encode_query)  # no forward pass
    """

    def __init__(self, max_bytes: int = DEFAULT_QUERY_CACHE_BYTES) -> None:
        self._entries: SizedLRU[str, EncodedText] = SizedLRU(max_bytes)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def hits(self) -> int:
        """Questions found since creation."""
        return self._entries.hits

    @property
    def misses(self) -> int:
        """Questions encoded since creation."""
        return self._entries.misses

    def encode(self, text: str, encode: Callable[[str], EncodedText]) -> EncodedText:
        """``encode(text)``, or a copy of what it returned for the same text before."""
        kept = self._entries.get_many([text]).get(text)
        if kept is not None:
            return _copy(kept)
        # Encoded outside any lock: two threads with the same new text each encode it.
        encoded = encode(text)
        if self._entries.max_bytes > 0:  # no copy to keep when nothing is kept
            self._entries.put_many([(text, _copy(encoded), _size(text, encoded))])
        return encoded


def _copy(encoded: EncodedText) -> EncodedText:
    ids = encoded.token_ids
    return EncodedText(
        encoded.dense.clone(), encoded.tokens.clone(), None if ids is None else ids.copy()
    )


def _size(text: str, encoded: EncodedText) -> int:
    tensors = (encoded.dense, encoded.tokens)
    size = sum(tensor.element_size() * tensor.nelement() for tensor in tensors)
    if encoded.token_ids is not None:
        size += encoded.token_ids.nbytes
    return size + len(text.encode("utf-8")) + _ENTRY_OVERHEAD
