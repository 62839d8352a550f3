"""Groundedness of an answer: the share of its sentences that its cited passages support.

Each answer sentence is scored by MaxSim (the late-interaction scorer of the retrieval stage)
between the sentence's token vectors and those of the passages it cites; a sentence is
supported when its best score reaches ``SUPPORT_THRESHOLD``. Citation markers ``[n]`` follow
the sentences they cover, so a sentence cites the markers that close its group; sentences after
the last marker (or answers without markers) are checked against every cited passage.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from assistant.knowledge.maxsim import maxsim_scores_ragged
from assistant.knowledge.text import split_sentences

__all__ = [
    "SUPPORT_THRESHOLD",
    "CitedSentence",
    "cited_sentences",
    "groundedness_score",
]

SUPPORT_THRESHOLD = 0.5
"""Mean-MaxSim a sentence must reach against one of its passages to count as supported.

Measured with the packaged all-MiniLM-L6-v2 token vectors against a two-sentence refunds
passage: the sentence copied from it scored 0.94; loose paraphrases of its two claims 0.74 and
0.55; a sentence from the same help centre on another subject 0.32; unrelated sentences 0.10
and 0.13. 0.5 keeps paraphrases and refuses "same site, other claim". A different
late-interaction model needs its own measurement."""

_MARKERS = re.compile(r"((?:\s*\[\d{1,3}\])+)")
_NUMBER = re.compile(r"\[(\d{1,3})\]")
_MIN_WORDS = 3


@dataclass(frozen=True, slots=True)
class CitedSentence:
    """An answer sentence and the source numbers it cites (empty: every cited source)."""

    text: str
    cites: tuple[int, ...]


def cited_sentences(answer: str) -> list[CitedSentence]:
    """The sentences of ``answer`` with the citation markers that close their group.

    Sentences under three words (list bullets, "Yes.") carry no claim to check and are left out.

    >>> [(s.text, s.cites) for s in cited_sentences("Plans start at $8 a month. SSO is on Team. [2]")]
    [('Plans start at $8 a month.', (2,)), ('SSO is on Team.', (2,))]
    """
    parts = _MARKERS.split(answer)
    result: list[CitedSentence] = []
    # split() with one group alternates text, markers, text, markers, ..., text.
    for index in range(0, len(parts), 2):
        markers = parts[index + 1] if index + 1 < len(parts) else ""
        cites = tuple(int(number) for number in _NUMBER.findall(markers))
        for sentence in split_sentences(parts[index]):
            if len(sentence.split()) >= _MIN_WORDS:
                result.append(CitedSentence(sentence, cites))
    return result


def groundedness_score(
    sentences: Sequence[CitedSentence],
    passages: Mapping[int, str],
    encode: Callable[[Sequence[str]], list[torch.Tensor]],
    *,
    threshold: float = SUPPORT_THRESHOLD,
) -> float | None:
    """The share of ``sentences`` supported by their passages, or ``None`` with nothing to check.

    Args:
        sentences: the answer's sentences with the source numbers they cite.
        passages: source number → passage text (the cited sources of the turn).
        encode: texts → token matrices, each (n_tokens_i, d) with unit-norm rows (the
            late-interaction encoder's ``encode_document_tokens``).
        threshold: the MaxSim a sentence needs against one of its passages.
    """
    if not sentences or not passages:
        return None
    numbers = sorted(passages)
    encoded = encode([s.text for s in sentences] + [passages[number] for number in numbers])
    sentence_tokens, passage_tokens = encoded[: len(sentences)], encoded[len(sentences) :]
    by_number = dict(zip(numbers, passage_tokens, strict=True))
    supported = 0
    for sentence, tokens in zip(sentences, sentence_tokens, strict=True):
        chosen = [by_number[n] for n in sentence.cites if n in by_number] or passage_tokens
        if float(maxsim_scores_ragged(tokens, chosen).max()) >= threshold:
            supported += 1
    return supported / len(sentences)
