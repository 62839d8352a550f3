"""The spans each token row read, remembered for recent passages: the same spans as a fresh
tokenization, without tokenizing a remembered passage again."""

from __future__ import annotations

from transformers import BatchEncoding

from assistant.knowledge.encoder import TransformerEncoder
from assistant.knowledge.token_spans import TokenSpans

PASSAGES = [
    "Refunds are paid within 14 days, to the card that paid.",
    "def read(path): return open(path).read()  # (a comment)",
]


def _counting(encoder: TransformerEncoder, calls: list[list[str]]) -> TokenSpans:
    def tokenize(texts: list[str]) -> BatchEncoding:
        calls.append(list(texts))
        return encoder._tokenize_unpadded(texts, return_offsets_mapping=True)

    return TokenSpans(tokenize, encoder._skipped_ids)


def test_remembered_spans_are_those_of_a_fresh_tokenization(encoder: TransformerEncoder) -> None:
    calls: list[list[str]] = []
    spans = _counting(encoder, calls)
    first = spans([PASSAGES[0], PASSAGES[1], PASSAGES[0]])
    assert calls == [PASSAGES]  # each text tokenized once, the repeat answered too
    assert first[0] == first[2]
    again = spans([PASSAGES[1], PASSAGES[0]])
    assert calls == [PASSAGES]  # nothing tokenized again
    assert again == [first[1], first[0]]
    fresh = TokenSpans(
        lambda texts: encoder._tokenize_unpadded(texts, return_offsets_mapping=True),
        encoder._skipped_ids,
        max_bytes=0,
    )
    assert fresh(PASSAGES) == first[:2]
    # A span per row of the passage's token matrix, in the same order.
    rows = encoder.encode_document_tokens([PASSAGES[1]])[0]
    assert len(first[1]) == rows.shape[0]
    assert all(PASSAGES[1][start:end].strip() for start, end in first[1] if end > start)


def test_a_caller_changing_its_lists_changes_nothing_remembered(
    encoder: TransformerEncoder,
) -> None:
    spans = _counting(encoder, [])
    first = spans([PASSAGES[0]])
    first[0].clear()
    assert spans([PASSAGES[0]])[0]
