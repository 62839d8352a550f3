"""A connector that feeds a BEIR test collection's corpus to the ingestor.

The collection is read by ``assistant.evaluation.load_beir``; this connector only needs its
name and corpus rows, so it depends on nothing but the document model.

>>> connector = BeirConnector(load_beir(Path("../shared/eval/adi")))  # doctest: +SKIP
>>> next(iter(connector.load())).source  # doctest: +SKIP
'beir://adi/1'
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from connectors.document import Document, LoadResult, Section

__all__ = ["BeirConnector", "BeirCorpus", "CorpusRow"]


class CorpusRow(Protocol):
    """One corpus document: its id, title and text (``assistant.evaluation.CorpusDocument``)."""

    @property
    def doc_id(self) -> str: ...

    @property
    def title(self) -> str: ...

    @property
    def text(self) -> str: ...


class BeirCorpus(Protocol):
    """A named corpus (``assistant.evaluation.BeirDataset`` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def corpus(self) -> Sequence[CorpusRow]: ...


class BeirConnector:
    """Yields one ``Document`` per corpus row, at ``beir://<dataset>/<doc id>``.

    A document with a title and no text is indexed by its title; one with neither is skipped
    (there is nothing to retrieve it by) and counted in ``skipped``.
    """

    def __init__(self, dataset: BeirCorpus) -> None:
        self.source = f"beir://{dataset.name}"
        self.complete = False
        self.skipped = 0
        self._corpus = dataset.corpus

    def url(self, doc_id: str) -> str:
        """The source under which the document ``doc_id`` is stored."""
        return f"{self.source}/{doc_id}"

    def load(self) -> Iterator[LoadResult]:
        """Yield the corpus as documents; the corpus is enumerated in full."""
        self.skipped = 0
        for row in self._corpus:
            title, text = row.title.strip(), row.text.strip()
            if not title and not text:
                self.skipped += 1
                continue
            yield Document(
                source=self.url(row.doc_id),
                title=title,
                sections=(Section((), text or title),),
                content_type="text/plain",
            )
        self.complete = True
