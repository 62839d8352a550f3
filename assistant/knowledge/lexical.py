"""Lexical (BM25) recall and scoring, for names, codes and rare words that dense vectors blur.

One index per knowledge base, built with ``bm25s`` over every chunk's embedding text (title,
headings and body) and persisted beside the other stores. Tokens are lowercase words of two or
more characters minus English stopwords; BM25 with k1 = 1.5, b = 0.75. The index is rebuilt
whole after an ingestion changes the knowledge base (seconds for 100k chunks) and swapped in
atomically, so readers never see a half-written index. The token document frequencies that
weigh a question's tokens in MaxSim (``TermWeights``) are counted over the same chunks and saved
in the same directory, so they change with it, as are the pages' lengths in chunks
(``PageSizes``), which keep long pages from winning on breadth, and the dotted names,
one-letter options and version numbers the chunks write (``CodeNames``), which tell a question
about an interface or a release the documentation does not have. The chunks themselves, with
their dense vectors, are saved there too (``ChunkTable``), so a search reads its candidates
from a memory map rather than from Chroma.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np

from assistant.knowledge.chunk_table import ChunkTable
from assistant.knowledge.code_names import CodeNames
from assistant.knowledge.page_breadth import PageSizes
from assistant.knowledge.term_weights import TermWeights

__all__ = ["LexicalIndex", "LexicalScores"]

_IDS_FILE = "chunk_ids.json"


def _tokenize(texts: list[str]) -> list[list[str]]:
    tokens = bm25s.tokenize(texts, stopwords="en", return_ids=False, show_progress=False)
    return [list(row) for row in tokens]


@dataclass(frozen=True, slots=True)
class LexicalScores:
    """BM25 scores of one query against every chunk of the index."""

    chunk_ids: Sequence[str]
    scores: np.ndarray
    positions: dict[str, int]

    def top(self, k: int) -> list[tuple[str, float]]:
        """The ``k`` best chunks with a positive score, best first."""
        if k <= 0 or self.scores.size == 0:
            return []
        k = min(k, self.scores.size)
        best = np.argpartition(-self.scores, k - 1)[:k]
        best = best[np.argsort(-self.scores[best], kind="stable")]
        return [(self.chunk_ids[i], float(self.scores[i])) for i in best if self.scores[i] > 0]

    def of(self, chunk_ids: Sequence[str]) -> list[float]:
        """Scores of the given chunks (0.0 for a chunk the index does not know)."""
        return [
            float(self.scores[self.positions[cid]]) if cid in self.positions else 0.0
            for cid in chunk_ids
        ]


class LexicalIndex:
    """A BM25 index over the chunks of one knowledge base.

    >>> index = LexicalIndex.build([("c1", "Error E-4021: quota exceeded"), ("c2", "SSO with Okta")])
    >>> index.query("okta").top(1)[0][0]
    'c2'
    """

    def __init__(
        self,
        model: bm25s.BM25,
        chunk_ids: list[str],
        *,
        term_weights: TermWeights | None = None,
        page_sizes: PageSizes | None = None,
        code_names: CodeNames | None = None,
        chunk_table: ChunkTable | None = None,
    ) -> None:
        self._model = model
        self.chunk_ids = chunk_ids
        if chunk_table is None:
            self._positions = {cid: i for i, cid in enumerate(chunk_ids)}
        elif list(chunk_table.positions) == chunk_ids:
            self._positions = chunk_table.positions  # the same map, held once
        else:
            raise ValueError("the chunk table must hold the index's chunks in its order")
        self.term_weights = term_weights
        """The encoder's token document frequencies over the same chunks (``None``: not
        counted)."""
        self.page_sizes = page_sizes
        """The number of chunks of every page over the same chunks (``None``: not counted)."""
        self.code_names = code_names
        """The dotted names, one-letter options and version numbers the same chunks write
        (``None``: not read)."""
        self.chunk_table = chunk_table
        """The same chunks with their dense vectors, as read when the index was built
        (``None``: not kept)."""

    @classmethod
    def build(
        cls,
        chunks: Iterable[tuple[str, str]],
        *,
        term_weights: TermWeights | None = None,
        page_sizes: PageSizes | None = None,
        code_names: CodeNames | None = None,
        chunk_table: ChunkTable | None = None,
    ) -> LexicalIndex:
        """Index ``(chunk_id, text)`` pairs; ``term_weights``, ``page_sizes``, ``code_names``
        and the ``chunk_table`` of the same chunks are kept and saved with the index."""
        pairs = list(chunks)
        model = bm25s.BM25(k1=1.5, b=0.75)
        if pairs:
            model.index(_tokenize([text for _, text in pairs]), show_progress=False)
        return cls(
            model,
            [cid for cid, _ in pairs],
            term_weights=term_weights,
            page_sizes=page_sizes,
            code_names=code_names,
            chunk_table=chunk_table,
        )

    def __len__(self) -> int:
        return len(self.chunk_ids)

    def query(self, text: str) -> LexicalScores:
        """Score ``text`` against every chunk."""
        if not self.chunk_ids:
            return LexicalScores([], np.zeros(0, dtype=np.float32), {})
        tokens = _tokenize([text])[0]
        if not tokens:
            # A query of stopwords, digits or punctuation ("?", "0") matches nothing lexically.
            return LexicalScores(
                self.chunk_ids, np.zeros(len(self.chunk_ids), np.float32), self._positions
            )
        scores = np.asarray(self._model.get_scores(tokens), dtype=np.float32)
        return LexicalScores(self.chunk_ids, scores, self._positions)

    def known(self, words: Sequence[str]) -> list[bool]:
        """For each of ``words``, whether every index term it makes occurs in some chunk.

        A word that makes no term (a stopword, a single letter) counts as known: nothing can
        be said of it.

        >>> LexicalIndex.build([("c1", "SSO with Okta")]).known(["Okta", "Auth0", "the"])
        [True, False, True]
        """
        vocabulary = getattr(self._model, "vocab_dict", None) or {}
        return [all(term in vocabulary for term in terms) for terms in _tokenize(list(words))]

    def save(self, directory: Path) -> None:
        """Write the index to ``directory``, replacing what was there in one rename."""
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".lexical-", dir=directory.parent))
        try:
            if self.chunk_ids:
                self._model.save(str(staging), show_progress=False)
            if self.term_weights is not None:
                self.term_weights.save(staging)
            if self.page_sizes is not None:
                self.page_sizes.save(staging)
            if self.code_names is not None:
                self.code_names.save(staging)
            if self.chunk_table is not None:
                self.chunk_table.save(staging)
            (staging / _IDS_FILE).write_text(json.dumps(self.chunk_ids), encoding="utf-8")
            retired = directory.with_name(directory.name + ".old")
            if directory.exists():
                shutil.rmtree(retired, ignore_errors=True)
                directory.rename(retired)
            staging.rename(directory)
            shutil.rmtree(retired, ignore_errors=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    @staticmethod
    def stamp(directory: Path) -> tuple[int, int, int] | None:
        """A value that changes whenever ``save`` replaces the index in ``directory`` (by any
        process); ``None`` when there is none. Cheap enough to check on every search."""
        try:
            status = (directory / _IDS_FILE).stat()
        except OSError:
            return None
        return (status.st_ino, status.st_mtime_ns, status.st_size)

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex | None:
        """Read an index written by ``save``; ``None`` when there is none."""
        ids_file = directory / _IDS_FILE
        if not ids_file.exists():
            return None
        chunk_ids = list(json.loads(ids_file.read_text(encoding="utf-8")))
        term_weights = TermWeights.load(directory)
        page_sizes = PageSizes.load(directory)
        code_names = CodeNames.load(directory)
        chunk_table = ChunkTable.load(directory, chunk_ids)
        if not chunk_ids:
            model = bm25s.BM25(k1=1.5, b=0.75)
        else:
            model = bm25s.BM25.load(str(directory), show_progress=False)
        return cls(
            model,
            chunk_ids,
            term_weights=term_weights,
            page_sizes=page_sizes,
            code_names=code_names,
            chunk_table=chunk_table,
        )
