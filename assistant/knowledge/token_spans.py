"""Which characters of a passage each of its token rows read, remembered for recent passages.

The offline answerer finds the rows that read a sentence by these spans. It asks for the
passages of every answer, and the same chunks come back turn after turn; tokenizing them
again each time (about 0.1 ms a passage) is work the search pool would otherwise repeat.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from transformers import BatchEncoding

from assistant.knowledge.sized_lru import SizedLRU

__all__ = ["SPANS_MEMO_BYTES", "TokenSpans"]

SPANS_MEMO_BYTES = 16 * 1024 * 1024
"""How much the remembered spans may hold: about a thousand passages of 120 tokens."""

_SPAN_BYTES = 120
"""What one remembered span costs: a tuple of two ints and its slot."""

Spans = tuple[tuple[int, int], ...]


class TokenSpans:
    """``texts`` -> for each, the ``(start, end)`` characters of each kept token (the ids in
    ``skipped`` are left out, as their rows are), from ``tokenize``'s offset mapping."""

    def __init__(
        self,
        tokenize: Callable[[list[str]], BatchEncoding],
        skipped: frozenset[int],
        max_bytes: int = SPANS_MEMO_BYTES,
    ) -> None:
        self._tokenize = tokenize
        self._skipped = skipped
        self._memo = SizedLRU[str, Spans](max_bytes)

    def __call__(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        known = self._memo.get_many(texts)
        missing = [text for text in dict.fromkeys(texts) if text not in known]
        if missing:
            batch = self._tokenize(missing)
            fresh = [
                tuple(
                    (int(start), int(end))
                    for token_id, (start, end) in zip(ids, row, strict=True)
                    if token_id not in self._skipped
                )
                for ids, row in zip(batch["input_ids"], batch["offset_mapping"], strict=True)
            ]
            known.update(zip(missing, fresh, strict=True))
            self._memo.put_many(
                (text, spans, len(text) + _SPAN_BYTES * len(spans))
                for text, spans in zip(missing, fresh, strict=True)
            )
        return [list(known[text]) for text in texts]
