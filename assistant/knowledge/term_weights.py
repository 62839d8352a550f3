"""How much each token of a question counts in MaxSim: its rarity in the knowledge base.

MaxSim averages, over the question's tokens, each token's best match in a passage. A zero-shot
encoder's token vectors (not trained for late interaction, as ColBERT's are) match "how", "do",
"I" and the special tokens about as well in every passage, so those tokens add the same to every
candidate and the words that tell passages apart count for as little as they do. Weighting each
token by its inverse document frequency over the knowledge base's chunks, squared, lets the rare
words decide, as BM25 does with exact terms, while each still matches by meaning.

Measured with the packaged encoder and the shipped fusion, on the same knowledge bases before
and after (``bench/sites.py``; the 8 BEIR sets through ``assistant eval``'s search): page hit@1
on questions asked in a visitor's own words to real documentation sites Django 0.481 -> 0.558,
Git 0.476 -> 0.500, Python 0.778 -> 0.759; on direct ones Django 0.913 -> 0.913, Git 0.800 ->
0.836, Python 0.980 -> 1.000; BEIR nDCG@10 0.5565 -> 0.5632 in the mean of the 8 sets (SciFact
0.7396 -> 0.7431; Medline 0.8200 -> 0.8011 fell most). Plain (unsquared) IDF did less on the
sites in a first measurement (counted over chunk bodies): paraphrased questions Django 0.519,
Python 0.759, against 0.558 and 0.778 squared, for about the same BEIR mean (0.5636, 0.5644).

The document frequencies are counted with the lexical index, over the same chunks, and saved
with it, so both change together when the knowledge base does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from assistant.knowledge.encoder import TokenIds

__all__ = ["TermWeights", "count_term_weights", "query_token_weights"]

_FILE = "token_document_frequency.npz"
_COUNT_BATCH = 1000
"""Texts tokenized at a time when counting."""


class TermWeights:
    """Document frequencies of an encoder's token ids over a knowledge base's chunks.

    ``space`` names the tokenizer the ids come from (the encoder's model id): weights are only
    meaningful for the query tokens of that same tokenizer.

    >>> weights = TermWeights.count([[101, 7, 102], [101, 8, 102]], 200, space="m")
    >>> [round(float(w), 3) for w in weights.of(np.array([101, 7, 9]))]
    [0.033, 0.48, 3.21]
    """

    def __init__(self, document_frequency: np.ndarray, documents: int, *, space: str) -> None:
        if document_frequency.ndim != 1:
            raise ValueError("document_frequency must be one count per token id")
        self.document_frequency = document_frequency.astype(np.int64, copy=False)
        self.documents = documents
        self.space = space

    @classmethod
    def count(
        cls, token_ids: Iterable[Iterable[int]], vocabulary_size: int, *, space: str
    ) -> TermWeights:
        """Count, for every id below ``vocabulary_size``, the texts whose ``token_ids`` hold it.

        Ids outside the vocabulary are ignored.
        """
        frequency = np.zeros(vocabulary_size, dtype=np.int64)
        documents = 0
        for ids in token_ids:
            documents += 1
            present = np.unique(np.fromiter(ids, dtype=np.int64))
            present = present[(present >= 0) & (present < vocabulary_size)]
            frequency[present] += 1
        return cls(frequency, documents, space=space)

    def of(self, token_ids: np.ndarray) -> np.ndarray:
        """The weight of each of ``token_ids``: BM25's inverse document frequency, squared.

        A token in every chunk (the special tokens) weighs almost nothing; one in no chunk
        weighs the most. Ids outside the vocabulary count as in no chunk.
        """
        ids = np.asarray(token_ids, dtype=np.int64)
        inside = (ids >= 0) & (ids < self.document_frequency.size)
        frequency = np.zeros(ids.shape, dtype=np.float64)
        frequency[inside] = self.document_frequency[ids[inside]]
        rarity = np.log1p((self.documents - frequency + 0.5) / (frequency + 0.5))
        return (rarity**2).astype(np.float32)

    def save(self, directory: Path) -> None:
        """Write the counts into ``directory`` (which must exist)."""
        np.savez(
            directory / _FILE,
            document_frequency=self.document_frequency.astype(np.int32),
            documents=np.int64(self.documents),
            space=np.str_(self.space),
        )

    @classmethod
    def load(cls, directory: Path) -> TermWeights | None:
        """The counts saved in ``directory``; ``None`` when there are none (an index saved before
        they were counted, or without an encoder that says its token ids)."""
        path = directory / _FILE
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as saved:
            return cls(
                saved["document_frequency"], int(saved["documents"]), space=str(saved["space"])
            )


def count_term_weights(encoder: TokenIds, texts: Sequence[str]) -> TermWeights:
    """The document frequencies of ``encoder``'s token ids over ``texts`` (the chunks'
    embedding texts), tokenized a batch at a time."""
    return TermWeights.count(
        (
            ids
            for start in range(0, len(texts), _COUNT_BATCH)
            for ids in encoder.document_token_ids(texts[start : start + _COUNT_BATCH])
        ),
        encoder.vocabulary_size,
        space=encoder.model_id,
    )


def query_token_weights(
    counts: TermWeights | None,
    encoder: TokenIds | None,
    query: str,
    rows: int,
    token_ids: np.ndarray | None = None,
) -> np.ndarray | None:
    """The weight of each of the ``rows`` token rows ``encoder`` gives ``query``; ``None``
    (plain MaxSim) without counts or an encoder that says its ids, for counts of another
    tokenizer, or when the ids are not one per row. ``token_ids`` are the rows' ids where the
    encoding pass gave them (saves tokenizing ``query`` again)."""
    if counts is None or encoder is None or counts.space != encoder.model_id or rows == 0:
        return None
    ids = token_ids if token_ids is not None else encoder.document_token_ids([query])[0]
    if ids.shape[0] != rows:
        return None  # not the rows this encoder's pass gave: never weigh the wrong ones
    return counts.of(ids)
