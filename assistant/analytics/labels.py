"""Cluster labels from class-based TF-IDF: the words most distinctive of each cluster.

Each cluster's questions are joined into one document; a word's weight is its frequency in the
cluster times ``log(1 + A / f)``, where ``A`` is the average number of words per cluster and
``f`` the word's frequency over all clusters (the c-TF-IDF of BERTopic). English stop words are
left out; two-word phrases count too, so "reset password" can beat "reset" and "password".
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer

__all__ = ["cluster_labels"]

_PLACEHOLDER = re.compile(r"\[(?:email|phone|card)\]")


def cluster_labels(documents: Sequence[Sequence[str]], *, words: int = 3) -> list[str]:
    """One label per cluster: its ``words`` most distinctive terms, joined by " · ".

    Args:
        documents: the questions of each cluster.
        words: terms per label.

    >>> cluster_labels([["reset my password", "password reset link"], ["refund for annual plan"]])
    ['password · reset · link', 'annual plan · refund']
    """
    # Masked personal data ("[email]") says nothing about the subject.
    joined = [_PLACEHOLDER.sub(" ", " ".join(questions)) for questions in documents]
    if not any(text.strip() for text in joined):
        return ["" for _ in documents]
    vectorizer = CountVectorizer(
        stop_words="english", ngram_range=(1, 2), token_pattern=r"(?u)\b[A-Za-z][\w-]+\b"
    )
    try:
        counts = vectorizer.fit_transform(joined).toarray().astype(np.float64)
    except ValueError:  # only stop words
        return ["" for _ in documents]
    terms = vectorizer.get_feature_names_out()
    term_frequency = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    average_words = counts.sum() / len(documents)
    idf = np.log1p(average_words / np.maximum(counts.sum(axis=0), 1.0))
    weights = term_frequency * idf
    return [_pick(terms, row, words) for row in weights]


def _pick(terms: Sequence[str], weights: np.ndarray, words: int) -> str:
    """The best terms, where a phrase replaces the single words it contains."""
    chosen: list[str] = []
    for index in np.argsort(-weights, kind="stable"):
        if weights[index] <= 0 or len(chosen) >= words:
            break
        term = str(terms[index])
        covered = {word for phrase in chosen for word in phrase.split()}
        if set(term.split()) <= covered:
            continue
        chosen = [phrase for phrase in chosen if not set(phrase.split()) <= set(term.split())]
        chosen.append(term)
    return " · ".join(chosen)
