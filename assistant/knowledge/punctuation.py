"""Which vocabulary tokens are punctuation alone: their rows are left out of token matrices."""

from __future__ import annotations

import string

from transformers import PreTrainedTokenizerBase

__all__ = ["punctuation_ids"]


def punctuation_ids(tokenizer: PreTrainedTokenizerBase) -> frozenset[int]:
    """Ids of the vocabulary's tokens made of ASCII punctuation alone (``.``, ``),`` ``##-``).

    Their rows are left out of the token matrices, as ColBERT leaves punctuation out of its
    documents: in a zero-shot encoder such a row matches every passage's punctuation about
    equally, so it adds little to MaxSim but a quarter of the rows of code-heavy pages
    (documentation sites: 26% of the rows of Python's docs, 12% of SciFact's abstracts).
    """
    return frozenset(
        int(index)
        for token, index in tokenizer.get_vocab().items()
        if token and all(character in string.punctuation for character in token)
    )
